"""Shell: the events table, the log itself: append to streams at their expected versions
(with the outbox rows that publish what was appended), and read it back in order.

Ordering: ``events.seq`` is assigned under a transaction-level advisory lock held until
commit, so seq order is commit order (see :mod:`command.store`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from command.model import RecordedEvent
from command.store.connection import Conn
from command.store.errors import ConcurrencyError
from command.store.outbox import OUTBOX_CHANNEL
from command.subjects import Namespace
from workflows.upcast import current as schema_version

# Any constant works; it names "the global order of events" for this database.
_ORDER_LOCK = 0x0ECC_0001

_INCIDENTS_IN_PERIOD = """
    WITH chosen AS (
        SELECT stream_id FROM events
        WHERE type = 'incident.reported'
          AND (data->>'at')::timestamptz >= $1 AND (data->>'at')::timestamptz < $2)
    SELECT e.stream_id, e.data, e.schema_version FROM events e JOIN chosen USING (stream_id)
    ORDER BY e.stream_id, e.version
"""


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



def event_subject(ns: Namespace, stream_id: str) -> str:
    """``incident:<id>`` publishes on ``<ns>.event.incident.<id>``."""
    kind, _, entity = stream_id.partition(":")
    return ns.event(kind, entity)



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




class Stored(NamedTuple):
    """An event as a fold reads it: where it is in the log and its stored data."""

    seq: int
    stream_id: str
    data: dict[str, Any]
    schema_version: int


class EventsTx:
    """The events' part of a transaction (:class:`command.store.Tx`)."""

    conn: Conn
    ns: Namespace
    recorded: list[RecordedEvent]
    _appended: bool

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


    async def events_after(self, after: int, limit: int) -> list[Stored]:
        """Up to ``limit`` events with seq > ``after``, in seq order, in this transaction."""
        rows = await self.conn.fetch(
            "SELECT seq, stream_id, data, schema_version FROM events WHERE seq > $1 "
            "ORDER BY seq LIMIT $2",
            after, limit)
        return [Stored(r["seq"], r["stream_id"], r["data"], r["schema_version"]) for r in rows]

    async def signals_from_origin(self, source: str, origins: Sequence[str]) -> set[str]:
        """The signal ids of ``source`` whose ``origin`` is one of ``origins`` (the parts
        of one CAP alert)."""
        rows = await self.conn.fetch(
            "SELECT data->>'signal_id' AS signal_id FROM events "
            "WHERE type = 'signal.received' AND data->>'origin' IS NOT NULL "
            "AND data->>'source' = $1 AND data->>'origin' = ANY($2::text[])",
            source, list(origins))
        return {r["signal_id"] for r in rows}


class EventReads:
    """Reading the log (:class:`command.store.Store`)."""

    pool: asyncpg.Pool

    async def period_events(self, start: datetime, end: datetime,
                            limit: int) -> tuple[list[RecordedEvent], list[RecordedEvent]]:
        """In one read-only repeatable-read transaction: every incident and unit event
        recorded up to ``start`` (by stream, in version order: the picture at ``start``
        folds from them), and up to ``limit`` of those recorded in (``start``, ``end``],
        in seq order, timer events too (they change the views a playback shows)."""
        async with self.pool.acquire() as conn, conn.transaction(
                isolation="repeatable_read", readonly=True):
            before = await conn.fetch(
                "SELECT * FROM events WHERE (stream_id LIKE 'incident:%' OR stream_id LIKE "
                "'unit:%') AND recorded_at <= $1 ORDER BY stream_id, version", start)
            during = await conn.fetch(
                "SELECT * FROM events WHERE recorded_at > $1 AND recorded_at <= $2 "
                "AND (stream_id LIKE 'incident:%' OR stream_id LIKE 'unit:%') "
                "ORDER BY seq LIMIT $3",
                start, end, limit)
        return [_recorded(r) for r in before], [_recorded(r) for r in during]

    async def incidents_reported_in(
            self, start: datetime, end: datetime,
    ) -> AsyncIterator[list[tuple[dict[str, Any], int]]]:
        """The ``(data, schema_version)`` of every event of each incident reported in
        ``[start, end)``, one incident at a time, read with a cursor in one read-only
        transaction (a long period does not sit in memory)."""
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            current: str | None = None
            events: list[tuple[dict[str, Any], int]] = []
            async for row in conn.cursor(_INCIDENTS_IN_PERIOD, start, end, prefetch=500):
                if row["stream_id"] != current and events:
                    yield events
                    events = []
                current = row["stream_id"]
                events.append((row["data"], row["schema_version"]))
            if events:
                yield events

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
