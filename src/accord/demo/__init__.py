"""The simulated department of ``accord demo``: the systems around a running engine.

- :mod:`.traffic`: the HIS/RIS traffic generator (registrations, orders, status,
  reports, and now and then realistic mess) and :class:`~.traffic.Receiver`, a
  simulated downstream system (also the fake peer of tests and benchmarks);
- :mod:`.ris`: the RIS that sends that traffic and reports on the exams it hears about;
- :mod:`.modality`: modalities that query the worklist and send MPPS;
- :mod:`.department`: :class:`~.department.DemoDepartment`, which starts them all
  around a runtime.

Rules: everything is synthetic (no real person) and stays on 127.0.0.1; nothing here
logs a name or an identifier. The generators are pure (seed and time passed in); the
I/O is in the listeners and clients. Nothing is imported here, so a test or benchmark
that wants the generator does not load the runtime or pynetdicom.
"""
