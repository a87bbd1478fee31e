"""Shell: the PostgreSQL event store, the source of truth, and the one door to the
database: no module outside this package imports asyncpg or holds SQL.

One transaction carries a command's whole effect: the inbox record, the
events (with expected versions), the projection rows, the timers, the audit row and
the outbox rows. After commit, the outbox relay publishes the outbox to JetStream.

The package, one module per thing the database holds:

- ``db``: :class:`Store` (the pool) and :class:`Tx` (one transaction), assembled
  from the parts below
- ``events``: append with expected versions, read the log
- ``inbox``: handled message ids
- ``outbox``: what a transaction publishes after commit
- ``projections``: incidents, units and desk alerts, and the console snapshot
- ``timers``: durable timers, claimed ``FOR UPDATE SKIP LOCKED``
- ``dispatch``: what the dispatcher ranks and the recommendations it leaves
- ``figures``: the read-only figures the metrics sample
- ``session``: connections of their own (leaders' locks, LISTEN, the readiness probe)
- ``roles``: PostgreSQL's roles, their rights, and moving objects to the owner
- ``audit``: the audit log's one writer
- ``tokens``: bearer tokens and remembered command answers
- ``tracks``: units' stored positions (AVL tracks), thinned reads, pruning
- ``migrate``: migrations (``command/migrations``) and the service's grants
- ``connection``: codecs and reset of pooled connections
- ``errors``: the error tree below

Errors (one tree; driver errors never escape this package)::

    StoreError
    ├── ConcurrencyError   a stream moved since it was read; reload and retry
    ├── StoreUnavailable   the database cannot be reached or aborted us; retry later
    ├── DataRejected       the database refused the content itself (a data exception,
    │                      SQLSTATE class 22): it will refuse it on every try
    └── MigrationRefused   migrations are pending and this role may not apply them

Ordering: ``events.seq`` is assigned under a transaction-level advisory lock
held until commit, so seq order is commit order. A reader that saw seq N has
seen every event below N: that is what lets a console resume "after N" and
the relay publish in order. The lock serialises only the short tail of each
append (insert events and outbox, commit).
"""

from __future__ import annotations

from command.store.audit import write_audit
from command.store.connection import Conn
from command.store.db import Store, Tx
from command.store.errors import (
    ConcurrencyError,
    DataRejected,
    MigrationRefused,
    StoreError,
    StoreUnavailable,
)
from command.store.events import Append, NewEvent, event_subject, on_the_bus
from command.store.figures import Sample
from command.store.migrate import (
    APPEND_ONLY_TABLES,
    PRUNED_TABLES,
    READ_ONLY_TABLES,
    grant_service,
    migrate,
    migrate_at,
    migrations,
)
from command.store.outbox import OUTBOX_CHANNEL
from command.store.session import OutboxRow, Probe, Session
from command.store.tokens import Principal, hash_token, remember_result
from command.store.tracks import TrackPoint

__all__ = [
    "APPEND_ONLY_TABLES",
    "OUTBOX_CHANNEL",
    "PRUNED_TABLES",
    "READ_ONLY_TABLES",
    "Append",
    "ConcurrencyError",
    "Conn",
    "DataRejected",
    "MigrationRefused",
    "NewEvent",
    "OutboxRow",
    "Principal",
    "Probe",
    "Sample",
    "Session",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TrackPoint",
    "Tx",
    "event_subject",
    "grant_service",
    "hash_token",
    "migrate",
    "migrate_at",
    "migrations",
    "on_the_bus",
    "remember_result",
    "write_audit",
]

# Not public, importable for the fault harness (tests/faults), which opens connections
# of its own beside the store's and reads events back as the store does.
from command.store.connection import _init_connection as _init_connection
from command.store.events import _recorded as _recorded
