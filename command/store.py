# size: all the event store's SQL until the store is a package (issue 14, part 4)
"""Shell: the PostgreSQL event store, the source of truth.

One transaction carries a command's whole effect: the inbox record, the
events (with expected versions), the projection rows and the outbox rows.
After commit, the outbox relay publishes the outbox to JetStream.

Errors (one tree; driver errors never escape this module)::

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

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from command.fusion import cell_of
from command.model import RecordedEvent
from command.subjects import Namespace
from command.tokens import default_ttl
from workflows.text import clean, clean_data
from workflows.upcast import current as schema_version

log = structlog.get_logger("ecc.store")

# Any constant works; it names "the global order of events" for this database.
_ORDER_LOCK = 0x0ECC_0001
_MIGRATION_LOCK = 0x0ECC_0002
OUTBOX_CHANNEL = "ecc_outbox"

Conn = asyncpg.Connection | PoolConnectionProxy

_TRANSIENT_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03", "53300", "08000", "08003",
                        "08006", "08001", "08004"}


class StoreError(Exception):
    """Base of the store's errors."""

    retryable = False


class ConcurrencyError(StoreError):
    """``stream_id`` was not at ``expected`` when we appended; reload and retry."""

    retryable = True

    def __init__(self, stream_id: str, expected: int, actual: int | None) -> None:
        super().__init__(f"stream {stream_id} is at version {actual}, expected {expected}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class StoreUnavailable(StoreError):
    """The database is unreachable or aborted the transaction; retry later."""

    retryable = True


class DataRejected(StoreError):
    """PostgreSQL refused the data itself (SQLSTATE class 22: a character it cannot store,
    a value out of range). Retrying cannot help: ``permanent`` tells the consumer loop to
    dead-letter the message at once with the reason (command.bus)."""

    retryable = False
    permanent = True

    def __init__(self, sqlstate: str | None, detail: str) -> None:
        super().__init__(f"the database refused the content ({sqlstate}): {detail}")
        self.sqlstate = sqlstate


@dataclass(frozen=True)
class NewEvent:
    """An event to append. ``data`` is the event's JSON object."""

    type: str
    data: dict[str, Any]
    actor: str
    event_id: uuid.UUID
    causation_id: str | None = None
    correlation_id: str | None = None


@dataclass(frozen=True)
class Append:
    """Events for one stream, valid only if the stream is at ``expected`` (0 = new)."""

    stream_id: str
    expected: int
    events: Sequence[NewEvent]


@dataclass(frozen=True)
class Principal:
    """Who a token belongs to: ``kinds`` are the ingress doors of an adapter token (empty
    for other roles), ``key`` the token's hash (what per-token records are keyed by)."""

    name: str
    role: str
    agency: str | None
    kinds: tuple[str, ...] = ()
    expires_at: datetime | None = None
    key: bytes = field(default=b"", repr=False)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def event_subject(ns: Namespace, stream_id: str) -> str:
    """``incident:<id>`` publishes on ``<ns>.event.incident.<id>``."""
    kind, _, entity = stream_id.partition(":")
    return ns.event(kind, entity)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (OSError, asyncpg.InterfaceError, TimeoutError)):
        return True
    if isinstance(exc, asyncpg.PostgresConnectionError):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(exc, asyncpg.PostgresError) and sqlstate in _TRANSIENT_SQLSTATES


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """What a connection needs on its way back to the pool: nothing, unless it was left
    inside a transaction. asyncpg's default reset (RESET ALL, unlock all advisory locks,
    UNLISTEN, CLOSE ALL) is a round trip on every transaction, about a fifth of the
    service's time in socket writes under load (py-spy); ECC keeps no session state on
    pooled connections (its session locks and LISTEN live on connections of their own,
    and the migration lock is released before the connection goes back)."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def _encode_json(value: Any) -> str:
    """JSON for a ``jsonb`` parameter. ``json.dumps`` escapes NUL as ``\\u0000`` and a
    lone surrogate as ``\\udXXX``, both of which PostgreSQL refuses: the rare text that
    holds either is cleaned first (workflows.text), so no content can fail a write."""
    text = json.dumps(value)
    if "\\u0000" in text or "\\ud" in text:
        text = json.dumps(clean_data(value))
    return text


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("jsonb", "json"):
        await conn.set_type_codec(typ, encoder=_encode_json, decoder=json.loads,
                                  schema="pg_catalog")
    # Every text parameter passes the same normalisation: the last line of defence
    # behind the borders' own (an audit row must never fail on what a console sent).
    await conn.set_type_codec("text", encoder=clean, decoder=_same, schema="pg_catalog",
                              format="text")


def _same(text: str) -> str:
    return text


@dataclass
class Tx:
    """One open transaction. Obtain it from :meth:`Store.transaction`."""

    conn: Conn
    ns: Namespace
    recorded: list[RecordedEvent] = field(default_factory=list)
    _appended: bool = False

    async def claim(self, consumer: str, message_id: str) -> bool:
        """Record ``message_id`` as handled by ``consumer``; False if it already was."""
        row = await self.conn.fetchval(
            "INSERT INTO inbox (consumer, message_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            consumer,
            message_id,
        )
        return row is not None

    async def claim_many(self, consumer: str, message_ids: Sequence[str]) -> set[str]:
        """Claim several message ids at once; returns those not handled before."""
        rows = await self.conn.fetch(
            "INSERT INTO inbox (consumer, message_id) SELECT $1, m FROM unnest($2::text[]) AS m "
            "ON CONFLICT DO NOTHING RETURNING message_id",
            consumer,
            list(message_ids),
        )
        return {r["message_id"] for r in rows}

    async def append(self, appends: Sequence[Append]) -> list[RecordedEvent]:
        """Append to one or more streams at once; each must be at its expected version.

        Raises :class:`ConcurrencyError` if any stream moved. Call once per
        transaction: stream rows are locked in a fixed order before the order
        lock, which is what keeps multi-stream appends free of deadlocks.
        """
        if self._appended:
            raise RuntimeError("append() once per transaction: pass every stream together")
        self._appended = True
        # Every stream's version in two statements, not one per stream: a batch of 64
        # signals writes ~130 streams (each signal's evidence and its incident). New
        # streams are inserted in stream-id order; existing ones were locked by the unit
        # of work that read them (FOR UPDATE), so the update takes no new locks.
        fresh = sorted((a for a in appends if a.expected == 0), key=lambda a: a.stream_id)
        moved = sorted((a for a in appends if a.expected != 0), key=lambda a: a.stream_id)
        if fresh:
            got = await self.conn.fetch(
                "INSERT INTO streams (stream_id, version) "
                "SELECT * FROM unnest($1::text[], $2::int[]) "
                "ON CONFLICT DO NOTHING RETURNING stream_id",
                [a.stream_id for a in fresh], [len(a.events) for a in fresh])
            await self._check_versions(fresh, {r["stream_id"] for r in got})
        if moved:
            got = await self.conn.fetch(
                "UPDATE streams s SET version = v.new, updated_at = now() "
                "FROM unnest($1::text[], $2::int[], $3::int[]) AS v(stream_id, expected, new) "
                "WHERE s.stream_id = v.stream_id AND s.version = v.expected "
                "RETURNING s.stream_id",
                [a.stream_id for a in moved], [a.expected for a in moved],
                [a.expected + len(a.events) for a in moved])
            await self._check_versions(moved, {r["stream_id"] for r in got})

        await self.conn.execute("SELECT pg_advisory_xact_lock($1)", _ORDER_LOCK)
        flat = [(a, i, e) for a in appends for i, e in enumerate(a.events, start=1)]
        rows = await self.conn.fetch(
            """
            INSERT INTO events (event_id, stream_id, version, type, data,
                                causation_id, correlation_id, actor, schema_version)
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::jsonb[],
                                 $6::text[], $7::text[], $8::text[], $9::int[])
            RETURNING seq, event_id, recorded_at
            """,
            [e.event_id for _, _, e in flat],
            [a.stream_id for a, _, _ in flat],
            [a.expected + i for a, i, _ in flat],
            [e.type for _, _, e in flat],
            [e.data for _, _, e in flat],
            [e.causation_id for _, _, e in flat],
            [e.correlation_id for _, _, e in flat],
            [e.actor for _, _, e in flat],
            [schema_version(e.type) for _, _, e in flat],
        )
        by_id = {row["event_id"]: row for row in rows}
        recorded = []
        for a, i, e in flat:
            row = by_id[e.event_id]
            recorded.append(
                RecordedEvent(
                    seq=row["seq"],
                    event_id=str(e.event_id),
                    stream_id=a.stream_id,
                    version=a.expected + i,
                    type=e.type,
                    data=e.data,
                    causation_id=e.causation_id,
                    correlation_id=e.correlation_id,
                    actor=e.actor,
                    recorded_at=row["recorded_at"],
                    schema_version=schema_version(e.type),
                )
            )
        recorded.sort(key=lambda r: r.seq)
        await self.conn.execute(
            "INSERT INTO outbox (subject, msg_id, payload) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])",
            [event_subject(self.ns, r.stream_id) for r in recorded],
            [r.event_id for r in recorded],
            [on_the_bus(r).model_dump_json().encode() for r in recorded],
        )
        await self.conn.execute("SELECT pg_notify($1, '')", OUTBOX_CHANNEL)
        self.recorded.extend(recorded)
        return recorded

    async def _check_versions(self, appends: list[Append], written: set[str]) -> None:
        for item in appends:
            if item.stream_id not in written:
                actual = await self.conn.fetchval(
                    "SELECT version FROM streams WHERE stream_id = $1", item.stream_id)
                raise ConcurrencyError(item.stream_id, item.expected, actual)

    async def audit(self, *, actor: str, role: str, command: str, args: dict[str, Any],
                    outcome: str, reason: str = "", agency: str | None = None,
                    peer: str | None = None, incident_id: str | None = None,
                    seqs: Sequence[int] = ()) -> None:
        """An audit row in this transaction (:func:`write_audit`): it commits with what it
        records, or not at all."""
        await write_audit(self.conn, actor=actor, role=role, agency=agency, peer=peer,
                          command=command, outcome=outcome, reason=reason,
                          incident_id=incident_id, args=args, seqs=seqs)

    async def outbox(self, subject: str, msg_id: str, payload: bytes) -> None:
        """Publish ``payload`` on ``subject`` after commit, once (``Nats-Msg-Id`` = ``msg_id``)."""
        await self.conn.execute(
            "INSERT INTO outbox (subject, msg_id, payload) VALUES ($1, $2, $3)",
            subject, msg_id, payload)
        await self.conn.execute("SELECT pg_notify($1, '')", OUTBOX_CHANNEL)

    async def put_incident(
        self, incident_id: str, *, is_open: bool, version: int, last_seq: int, view: dict[str, Any]
    ) -> None:
        """Upsert the incident's projection row (with its fusion columns, from the view)."""
        await self.put_incidents([(incident_id, is_open, version, last_seq, view)])

    async def put_incidents(
        self, rows: Sequence[tuple[str, bool, int, int, dict[str, Any]]]
    ) -> None:
        """Upsert projection rows ``(incident_id, is_open, version, last_seq, view)`` in one
        statement (with their fusion columns, from the views)."""
        cols: list[list[Any]] = [[] for _ in range(10)]
        for incident_id, is_open, version, last_seq, view in sorted(rows, key=lambda r: r[0]):
            loc = view.get("location") or {}
            lat, lon = loc.get("lat"), loc.get("lon")
            # fusion's clock: when the sources saw it (replays keep their own time), else
            # when ECC took it in; compared as instants, not as strings
            times = [datetime.fromisoformat(t) for s in view.get("signals", ())
                     if (t := s.get("observed_at") or s.get("at"))]
            for col, value in zip(cols, (
                    incident_id, is_open, version, last_seq, view, view.get("category"), lat,
                    lon, cell_of(lat, lon) if lat is not None and lon is not None else None,
                    max(times) if times else None), strict=True):
                col.append(value)
        await self.conn.execute(
            """
            INSERT INTO incidents (incident_id, is_open, version, last_seq, view, category,
                                   lat, lon, cell, last_signal_at)
            SELECT * FROM unnest($1::text[], $2::bool[], $3::int[], $4::bigint[], $5::jsonb[],
                                 $6::text[], $7::float8[], $8::float8[], $9::text[],
                                 $10::timestamptz[])
            ON CONFLICT (incident_id) DO UPDATE
            SET is_open = EXCLUDED.is_open, version = EXCLUDED.version,
                last_seq = EXCLUDED.last_seq, view = EXCLUDED.view,
                category = EXCLUDED.category, lat = EXCLUDED.lat, lon = EXCLUDED.lon,
                cell = EXCLUDED.cell, last_signal_at = EXCLUDED.last_signal_at,
                updated_at = now()
            """,
            *cols,
        )

    async def put_unit(
        self, unit_id: str, *, agency: str, status: str, version: int, last_seq: int,
        view: dict[str, Any],
    ) -> None:
        await self.conn.execute(
            """
            INSERT INTO units (unit_id, agency, status, version, last_seq, view)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (unit_id) DO UPDATE
            SET agency = $2, status = $3, version = $4, last_seq = $5, view = $6,
                updated_at = now()
            """,
            unit_id, agency, status, version, last_seq, view,
        )


    async def put_alert(self, alert_id: str, *, kind: str, is_open: bool, version: int,
                        last_seq: int, view: dict[str, Any]) -> None:
        """Upsert a desk alert's projection row (workflows/alert.py)."""
        await self.conn.execute(
            """
            INSERT INTO desk_alerts (alert_id, kind, is_open, version, last_seq, view)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (alert_id) DO UPDATE
            SET kind = $2, is_open = $3, version = $4, last_seq = $5, view = $6,
                updated_at = now()
            """,
            alert_id, kind, is_open, version, last_seq, view,
        )


class Store:
    """The event store on a connection pool. Open with :meth:`connect`."""

    def __init__(self, pool: asyncpg.Pool, ns: Namespace, url: str) -> None:
        self.pool = pool
        self.ns = ns
        self.url = url

    @classmethod
    async def connect(
        cls, url: str, ns: Namespace | None = None, *, min_size: int = 2, max_size: int = 10
    ) -> Store:
        try:
            pool = await asyncpg.create_pool(
                url, min_size=min_size, max_size=max_size, init=_init_connection,
                reset=_reset_connection,
            )
        except Exception as exc:
            if _is_transient(exc):
                raise StoreUnavailable(f"cannot reach PostgreSQL at {_redact(url)}: {exc}") from exc
            raise
        assert pool is not None
        return cls(pool, ns or Namespace(), url)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A transaction that commits when the block ends without error.

        Translates driver errors: transient ones to :class:`StoreUnavailable`,
        constraint races on streams to :class:`ConcurrencyError`.
        """
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                yield Tx(conn, self.ns)
        except StoreError:
            raise
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name in ("events_stream_version_key", "streams_pkey"):
                raise ConcurrencyError(str(exc.detail or ""), -1, None) from exc
            raise
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
            # Two writers crossed: like a moved stream, the cure is to run it again.
            raise ConcurrencyError("(lock conflict)", -1, None) from exc
        except asyncpg.DataError as exc:
            raise DataRejected(getattr(exc, "sqlstate", None), str(exc)) from exc
        except UnicodeError as exc:  # text the driver cannot encode at all
            raise DataRejected(None, str(exc)) from exc
        except Exception as exc:
            if _is_transient(exc):
                raise StoreUnavailable(str(exc) or type(exc).__name__) from exc
            raise

    # --- reads --------------------------------------------------------------

    async def read_stream(self, stream_id: str) -> list[RecordedEvent]:
        rows = await self.pool.fetch(
            "SELECT * FROM events WHERE stream_id = $1 ORDER BY version", stream_id
        )
        return [_recorded(r) for r in rows]

    async def read_all(self, after: int, limit: int = 1000) -> list[RecordedEvent]:
        """Events with seq > ``after``, in seq order, at most ``limit``."""
        rows = await self.pool.fetch(
            "SELECT * FROM events WHERE seq > $1 ORDER BY seq LIMIT $2", after, limit
        )
        return [_recorded(r) for r in rows]

    async def head(self) -> int:
        """The highest committed seq (0 when empty)."""
        return int(await self.pool.fetchval("SELECT coalesce(max(seq), 0) FROM events"))

    async def snapshot(self) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
        """Open incidents, all units, and the seq they are consistent with, read atomically."""
        seq, incidents, units, _ = await self.console_snapshot()
        return seq, incidents, units

    async def console_snapshot(
        self,
    ) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """What a console starts from: open incidents, all units, open desk alerts, and the
        seq they are all consistent with, read atomically."""
        async with self.pool.acquire() as conn, conn.transaction(
            isolation="repeatable_read", readonly=True
        ):
            seq = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM events")
            rows = await conn.fetch(
                "SELECT view FROM incidents WHERE is_open ORDER BY last_seq"
            )
            unit_rows = await conn.fetch("SELECT view FROM units ORDER BY unit_id")
            alert_rows = await conn.fetch(
                "SELECT view FROM desk_alerts WHERE is_open ORDER BY last_seq")
        return (int(seq), [r["view"] for r in rows], [r["view"] for r in unit_rows],
                [r["view"] for r in alert_rows])

    async def incident_view(self, incident_id: str) -> tuple[int, dict[str, Any]] | None:
        row = await self.pool.fetchrow(
            "SELECT version, view FROM incidents WHERE incident_id = $1", incident_id
        )
        return None if row is None else (row["version"], row["view"])

    # --- tokens -------------------------------------------------------------

    async def create_token(self, token: str, *, name: str, role: str, agency: str | None,
                           kinds: Sequence[str] | None = None,
                           ttl: timedelta | None = None) -> datetime:
        """Store ``token`` (hashed) for ``name``; it ends after ``ttl`` (the role's default,
        :func:`command.tokens.default_ttl`, unless given). An adapter token posts only at
        the doors in ``kinds`` (none when not given). Returns when it expires."""
        expires: datetime = await self.pool.fetchval(
            "INSERT INTO tokens (token_hash, name, role, agency, kinds, expires_at) "
            "VALUES ($1, $2, $3, $4, $5, now() + $6::interval) RETURNING expires_at",
            hash_token(token), name, role, agency,
            list(kinds or ()) if role == "adapter" else None,
            ttl if ttl is not None else default_ttl(role))
        return expires

    async def principal(self, token: str) -> Principal | None:
        """The principal behind ``token``, or None if unknown, revoked or expired."""
        key = hash_token(token)
        row = await self.pool.fetchrow(
            "SELECT name, role, agency, kinds, expires_at FROM tokens WHERE token_hash = $1 "
            "AND revoked_at IS NULL AND expires_at > now()", key)
        if row is None:
            return None
        return Principal(row["name"], row["role"], row["agency"], tuple(row["kinds"] or ()),
                         row["expires_at"], key)

    async def revoked(self, tokens: list[str]) -> set[str]:
        """Which of these tokens are revoked, expired or gone (for consoles already
        connected: the gateway closes them)."""
        if not tokens:
            return set()
        hashes = {hash_token(t): t for t in tokens}
        rows = await self.pool.fetch(
            "SELECT token_hash FROM tokens WHERE token_hash = ANY($1::bytea[]) "
            "AND revoked_at IS NULL AND expires_at > now()", list(hashes))
        valid = {bytes(r["token_hash"]) for r in rows}
        return {t for h, t in hashes.items() if h not in valid}

    async def revoke_token(self, name: str) -> int:
        """Revoke every live token of this name; returns how many."""
        result = await self.pool.execute(
            "UPDATE tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL "
            "AND expires_at > now()", name)
        return int(result.split()[-1])

    async def rotate_token(self, name: str, token: str, *, grace: timedelta,
                           ttl: timedelta | None = None,
                           kinds: Sequence[str] | None = None) -> tuple[Principal, int] | None:
        """A new token for ``name`` with the role and agency of its newest live token (and
        its kinds, unless ``kinds`` is given), ending after ``ttl`` (the role's default);
        every older live token of that name now ends within ``grace``, so the platform or
        desk can switch over without a gap. Returns the new principal and how many old
        tokens were cut short, or None when ``name`` has no live token (nothing changes)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT role, agency, kinds FROM tokens WHERE name = $1 AND revoked_at IS NULL "
                "AND expires_at > now() ORDER BY created_at DESC LIMIT 1 FOR UPDATE", name)
            if row is None:
                return None
            role = row["role"]
            doors = list(kinds) if kinds is not None else list(row["kinds"] or ())
            cut = await conn.execute(
                "UPDATE tokens SET expires_at = least(expires_at, now() + $2::interval) "
                "WHERE name = $1 AND revoked_at IS NULL AND expires_at > now()", name, grace)
            key = hash_token(token)
            expires = await conn.fetchval(
                "INSERT INTO tokens (token_hash, name, role, agency, kinds, expires_at) "
                "VALUES ($1, $2, $3, $4, $5, now() + $6::interval) RETURNING expires_at",
                key, name, role, row["agency"], doors if role == "adapter" else None,
                ttl if ttl is not None else default_ttl(role))
        return (Principal(name, role, row["agency"], tuple(doors) if role == "adapter" else (),
                          expires, key), int(cut.split()[-1]))

    # --- the audit log and command results ----------------------------------

    async def audit(self, *, actor: str, role: str, agency: str | None, peer: str | None,
                    command: str, outcome: str, reason: str = "",
                    incident_id: str | None = None, args: dict[str, Any] | None = None,
                    seqs: Sequence[int] = ()) -> bool:
        """One audit row on its own connection (a refusal, a console opening or shut out,
        an ingress refusal). Never raises: a log that is away must not keep anyone out or
        turn an answer into a false one; the failure is logged loudly. True if written."""
        try:
            async with self.pool.acquire() as conn:
                await write_audit(conn, actor=actor, role=role, agency=agency, peer=peer,
                                  command=command, outcome=outcome, reason=reason,
                                  incident_id=incident_id, args=args, seqs=seqs)
            return True
        except Exception as exc:
            log.error("audit.write_failed", command=command, outcome=outcome, actor=actor,
                      error=str(exc))
            return False

    async def recall_result(self, key: bytes,
                            request_id: str) -> tuple[bytes, dict[str, Any]] | None:
        """The fingerprint and first answer of the command this token sent with this request
        id in the last day, or None."""
        row = await self.pool.fetchrow(
            "SELECT fingerprint, result FROM command_results WHERE token_hash = $1 AND "
            "request_id = $2 AND at > now() - interval '1 day'", key, request_id)
        return None if row is None else (bytes(row["fingerprint"]), row["result"])

    # --- schema -------------------------------------------------------------

    async def migrate(self) -> list[str]:
        """Apply pending migrations in order; returns the names applied."""
        return await migrate(self.pool)


async def write_audit(conn: Conn, *, actor: str, role: str, agency: str | None,
                      peer: str | None, command: str, outcome: str, reason: str = "",
                      incident_id: str | None = None, args: dict[str, Any] | None = None,
                      seqs: Sequence[int] = ()) -> None:
    """The one writer of ``audit_log`` rows, on ``conn`` (inside a command's transaction, so
    the row commits with its events or not at all; or on its own: :meth:`Store.audit`).

    No content can fail it: every text is cleaned (workflows.text; the connection's
    codecs do it again) and bounded, so what a console sent is always on record."""
    await conn.execute(
        "INSERT INTO audit_log (actor, role, agency, peer, command, incident_id, args, "
        "outcome, reason, seqs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        clean(actor)[:200], clean(role)[:40], clean(agency)[:40] if agency else agency,
        clean(peer)[:200] if peer else peer, clean(command)[:64],
        clean(incident_id)[:128] if incident_id else incident_id,
        clean_data(args) if args is not None else {}, outcome, clean(reason)[:2000],
        list(seqs))


async def remember_result(conn: Conn, key: bytes, request_id: str, fingerprint: bytes,
                          result: dict[str, Any]) -> bool:
    """Keep the first answer to (token, request id), in the command's own transaction;
    False if another answer is already kept (a twin of this request committed first: roll
    back and answer with that one). Also clears a few rows older than a day."""
    await conn.execute(
        "DELETE FROM command_results WHERE ctid = ANY(ARRAY(SELECT ctid FROM command_results "
        "WHERE at < now() - interval '1 day' LIMIT 100 FOR UPDATE SKIP LOCKED))")
    kept = await conn.fetchval(
        "INSERT INTO command_results (token_hash, request_id, fingerprint, result) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
        key, request_id, fingerprint, result)
    return kept is not None


def on_the_bus(event: RecordedEvent) -> RecordedEvent:
    """The copy of an event that goes on EVENTS: a caller's name and number stay in the
    store (consoles that need them read them there, by role); the bus has no roles."""
    reporter = event.data.get("reporter") if event.type == "signal.received" else None
    if not reporter:
        return event
    hidden = {k: "(withheld)" for k, v in reporter.items() if v}
    return event.model_copy(update={"data": {**event.data, "reporter": hidden}})


def _recorded(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(
        seq=row["seq"],
        event_id=str(row["event_id"]),
        stream_id=row["stream_id"],
        version=row["version"],
        type=row["type"],
        data=row["data"],
        causation_id=row["causation_id"],
        correlation_id=row["correlation_id"],
        actor=row["actor"],
        recorded_at=row["recorded_at"],
        schema_version=row["schema_version"],
    )


def _redact(url: str) -> str:
    """A URL fit for a log line: no password."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}@{host}"


def migrations() -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` for every file in command/migrations, in order."""
    found = []
    for entry in resources.files("command.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql"):
            found.append((int(name.split("_", 1)[0]), name, entry.read_text()))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


# The service role's grants, re-applied after every migration by :func:`migrate`: every
# table of schema public gets SELECT, INSERT, UPDATE and DELETE (a new migration's table
# too, with nothing to add) except the ones named here. An append-only table may only be
# read and added to; the migrations' ledger may only be read.
APPEND_ONLY_TABLES = ("audit_log",)
READ_ONLY_TABLES = ("schema_migrations",)


class MigrationRefused(StoreError):
    """Migrations are pending and this role may not apply them: run ``ecc migrate``
    (the owner role's URL; ``DATABASE_OWNER_URL`` for an external server)."""

    def __init__(self, pending: list[str], role: str) -> None:
        super().__init__(
            f"migrations {pending} are pending and role {role!r} may not apply them: run "
            "`ecc migrate` (it connects as the schema's owner: DATABASE_OWNER_URL for an "
            "external server), then start again")
        self.pending = pending
        self.role = role


async def migrate(pool: asyncpg.Pool | Conn, *, service_role: str | None = None) -> list[str]:
    """Apply pending migrations, each in its own transaction, under a lock; then, with
    ``service_role``, give that role exactly the service's privileges (see
    ``APPEND_ONLY_TABLES``) in one transaction. Run it as the schema's owner.

    Safe to run from several processes at once: the advisory lock makes the
    second wait, then find nothing to do. With nothing pending it creates nothing, so
    the service's own role may call it at start; with migrations pending and a role
    that may not create tables it raises :class:`MigrationRefused`.
    """
    applied: list[str] = []
    async with _connection(pool) as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            pending = migrations()
            try:
                if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NULL"):
                    await conn.execute(
                        "CREATE TABLE schema_migrations ("
                        " version integer PRIMARY KEY, name text NOT NULL,"
                        " applied_at timestamptz NOT NULL DEFAULT now())")
                done = {r["version"]
                        for r in await conn.fetch("SELECT version FROM schema_migrations")}
                pending = [(v, n, sql) for v, n, sql in pending if v not in done]
                for version, name, sql in pending:
                    async with conn.transaction():
                        await conn.execute(sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                            version,
                            name,
                        )
                    applied.append(name)
                    log.info("store.migration_applied", migration=name)
            except asyncpg.InsufficientPrivilegeError as exc:
                role = str(await conn.fetchval("SELECT current_user"))
                raise MigrationRefused([n for _, n, _ in pending if n not in applied],
                                       role) from exc
            if service_role is not None:
                await grant_service(conn, service_role)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied


async def grant_service(conn: Conn, role: str) -> None:
    """(Re)apply ``role``'s privileges on schema public, as its owner, atomically: it
    may use the schema but create nothing in it; every table is its to read and write
    but ``APPEND_ONLY_TABLES`` (SELECT, INSERT) and ``READ_ONLY_TABLES`` (SELECT); it
    may use every sequence. Nothing else (no TRUNCATE, REFERENCES or TRIGGER)."""
    if role == await conn.fetchval("SELECT current_user"):
        raise ValueError(f"{role!r} runs the migrations: the service needs a role of its own")
    ident = await conn.fetchval("SELECT quote_ident($1::text)", role)
    tables = [r["name"] for r in await conn.fetch(
        "SELECT quote_ident(c.relname) AS name FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1")]
    async with conn.transaction():
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        await conn.execute(f"REVOKE ALL ON SCHEMA public FROM {ident}")
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {ident}")
        await conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ident}")
        await conn.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {ident}")
        for table in tables:
            if table in APPEND_ONLY_TABLES:
                rights = "SELECT, INSERT"
            elif table in READ_ONLY_TABLES:
                rights = "SELECT"
            else:
                rights = "SELECT, INSERT, UPDATE, DELETE"
            await conn.execute(f"GRANT {rights} ON {table} TO {ident}")
        await conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {ident}")
    log.info("store.service_granted", role=role, tables=len(tables))


@asynccontextmanager
async def _connection(pool: asyncpg.Pool | Conn) -> AsyncIterator[Conn]:
    if isinstance(pool, asyncpg.Pool):
        async with pool.acquire() as conn:
            yield conn
    else:
        yield pool
