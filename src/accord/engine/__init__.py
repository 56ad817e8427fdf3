"""The engine's stages: what happens to a message between the socket and the store.

The flow, one module per stage:

- :mod:`.ingest`: every received message stored, processed and answered in one
  transaction (persist, then acknowledge), batched by :mod:`.group_commit`, with the
  stored record and the ACK built by :mod:`.records`;
- :mod:`.processor`: the processing seam ingest calls inside its transaction, with two
  processors: :mod:`.router` (by message category) and :mod:`.workflow` (the canonical
  model of :mod:`accord.workflow`, outbound messages per destination dialect);
- :mod:`.deliver`: the outbox sent downstream over MLLP, in order, at least once;
- :mod:`.jobs`: background jobs run by one node at a time (retention pruning).

Rules: the stages talk to the outside only through the ports they are given (the
store, MLLP clients, the clock); the listeners and the wiring live elsewhere
(:mod:`accord.mllp`, :mod:`accord.dicom`, :mod:`accord.runtime`). Nothing is imported
here, so ``import accord.engine.group_commit`` costs only that module.
"""
