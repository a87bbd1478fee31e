"""Shell: the timers table, durable SLA and acknowledgement timers as rows with a due
time. Commands write them with their events; the scheduler (:mod:`command.timers`)
claims due rows with ``FOR UPDATE SKIP LOCKED`` so several instances share the work."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from command.store.connection import Conn


class DueTimer(NamedTuple):
    """A timer row that is due: its id, its stream and its kind."""

    timer_id: str
    stream_id: str
    kind: str


class TimersTx:
    """The timers' part of a transaction (:class:`command.store.Tx`)."""

    conn: Conn

    async def due_timers(self, now: datetime, limit: int) -> list[DueTimer]:
        """Up to ``limit`` timers due at ``now``, earliest first (not locked)."""
        rows = await self.conn.fetch(
            "SELECT timer_id, stream_id, kind FROM timers WHERE due_at <= $1 "
            "ORDER BY due_at LIMIT $2", now, limit)
        return [DueTimer(r["timer_id"], r["stream_id"], r["kind"]) for r in rows]

    async def claim_timers(self, timer_ids: Sequence[str]) -> list[str]:
        """Lock these timer rows for this transaction; returns those no one else holds
        (``SKIP LOCKED``: another scheduler has the rest, or a command cancelled them)."""
        rows = await self.conn.fetch(
            "SELECT timer_id FROM timers WHERE timer_id = ANY($1::text[]) "
            "FOR UPDATE SKIP LOCKED", list(timer_ids))
        return [r["timer_id"] for r in rows]

    async def put_timers(self, rows: Sequence[tuple[str, str, str, datetime]]) -> None:
        """Add timer rows ``(timer_id, stream_id, kind, due_at)``; one already there stays."""
        await self.conn.executemany(
            "INSERT INTO timers (timer_id, stream_id, kind, due_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING", rows)

    async def drop_timers(self, timer_ids: Sequence[str]) -> None:
        """Delete these timer rows (fired or cancelled)."""
        await self.conn.execute("DELETE FROM timers WHERE timer_id = ANY($1::text[])",
                                list(timer_ids))
