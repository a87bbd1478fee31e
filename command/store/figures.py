"""Shell: the read-only figures the metrics sample (command/metrics.py): open incidents
by state, the outbox's backlog and age, the head of the log."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class Sample:
    """One reading of the store, taken on one connection."""

    open_incidents: dict[str, int]   # state -> how many open incidents are in it
    outbox_backlog: int              # outbox rows not yet published
    outbox_oldest_seconds: float     # age of the oldest of them (0 when none)
    head: int                        # the highest committed seq


class FigureReads:
    """The figures' part of the store (:class:`command.store.Store`)."""

    pool: asyncpg.Pool

    async def sample(self) -> Sample:
        """Read the figures once."""
        async with self.pool.acquire() as conn:
            states = await conn.fetch(
                "SELECT view->>'status' AS state, count(*) AS n FROM incidents WHERE is_open "
                "GROUP BY 1")
            outbox = await conn.fetchrow(
                "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0) "
                "AS age FROM outbox")
            head = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM events")
        assert outbox is not None
        return Sample({r["state"]: r["n"] for r in states}, outbox["n"], float(outbox["age"]),
                      head)
