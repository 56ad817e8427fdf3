"""The workflow: the canonical model of patients, orders and reports, and the rules that
apply one message to it (see docs/model.md).

- :mod:`.model` the values, :mod:`.status` the status table, :mod:`.commands` what a
  message asks for, :mod:`.events` what changed for the systems downstream,
  :mod:`.findings` and :mod:`.trace` what was found and why;
- :mod:`.engine` applies one message's commands through :mod:`.patients`,
  :mod:`.orders` and :mod:`.reports` (with :mod:`.identity` for who a patient is),
  gathering the :mod:`.outcome`;
- :mod:`.repository` is the one port it reads and writes through (:mod:`.memory` is
  the in-memory one; the SQL store implements it too).

Rules: pure. No sockets, no database, no clock reads, no HL7 types: time and ids are
passed in, and state goes through the repository. Nothing is imported here.
"""
