"""Command: the ECC service, the I/O shell around the workflows core.

Public modules (import them by name; this package re-exports nothing):

core (no I/O): ``model`` (wire models), ``subjects`` (NATS names), ``natsauth``
(NATS users and grants), ``fusion`` (which incident a signal joins), ``city``
(the city file), ``recommend`` (units by ETA), ``assign`` (optimal assignment,
stacking), ``roads`` (road-network travel times)
shell: ``settings``, ``runtime`` (embedded servers), ``bus`` (JetStream), ``store``
(event store) with ``migrations/``, ``engine`` (commands through the deciders),
``intake`` (signals in), ``crews`` (crews' status reports in), ``dispatcher``
(pending tasks get units), ``outbox`` (events out), ``timers`` (durable SLA
timers), ``projections`` (rebuild), ``metrics`` (Prometheus metrics, readiness),
``logs`` (structlog setup), ``tasks`` (a guard for long-lived loops), ``faults``
(fault points for crash tests), ``service`` (composition root), ``cli`` (``ecc``).
"""

__all__: list[str] = []
