"""Command: the ECC service, the I/O shell around the workflows core.

Public modules (import them by name; this package re-exports nothing):

core (no I/O): ``model`` (wire models), ``subjects`` (NATS names)
shell: ``settings``, ``runtime`` (embedded servers), ``bus`` (JetStream), ``store``
(event store) with ``migrations/``, ``engine`` (commands through the deciders),
``intake`` (signals in), ``outbox`` (events out), ``timers`` (durable SLA timers),
``projections`` (rebuild), ``service`` (composition root), ``cli`` (``ecc``).
"""

__all__: list[str] = []
