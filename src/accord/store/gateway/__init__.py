"""The message gateway in the store: received messages and their dedupe claims, the
outbox and its deliveries, the error queue, and background job locks
(:class:`~accord.store.gateway.store.SqlStore`, the :class:`accord.store.Store` port)."""
