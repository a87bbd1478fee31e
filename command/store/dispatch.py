"""Shell: what the dispatcher reads and keeps: the units and the incidents with
pending tasks it ranks, and the recommendations it leaves for the desk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from command.store.connection import Conn


class DispatchTx:
    """The recommendations' part of a transaction (:class:`command.store.Tx`)."""

    conn: Conn

    async def replace_recommendations(self, records: Sequence[tuple[str, str, str]]) -> None:
        """Replace every recommendation with ``(incident_id, task_id, candidates JSON)``."""
        await self.conn.execute("DELETE FROM recommendations")
        if records:
            await self.conn.executemany(
                "INSERT INTO recommendations (incident_id, task_id, candidates) "
                "VALUES ($1, $2, $3::text::jsonb)", records)


class DispatchReads:
    """The dispatcher's reads (:class:`command.store.Store`)."""

    pool: asyncpg.Pool

    async def unit_views(self) -> list[dict[str, Any]]:
        """Every unit's view, by unit id."""
        rows = await self.pool.fetch("SELECT view FROM units ORDER BY unit_id")
        return [r["view"] for r in rows]

    async def unit_ids(self) -> set[str]:
        """The ids of the units the store knows."""
        return {r["unit_id"] for r in await self.pool.fetch("SELECT unit_id FROM units")}

    async def unit_agency(self, unit_id: str) -> str | None:
        """The unit's agency, or None for a unit the store does not know."""
        agency: str | None = await self.pool.fetchval(
            "SELECT agency FROM units WHERE unit_id = $1", unit_id)
        return agency

    async def incidents_with_pending_tasks(self) -> list[tuple[str, dict[str, Any]]]:
        """``(incident_id, view)`` of each open incident with a pending task, oldest
        change first."""
        rows = await self.pool.fetch(
            "SELECT incident_id, view FROM incidents WHERE is_open "
            "AND view->'tasks' @> '[{\"status\": \"pending\"}]'::jsonb ORDER BY last_seq")
        return [(r["incident_id"], r["view"]) for r in rows]

    async def clear_recommendations(self) -> None:
        """Drop every recommendation (nothing is pending)."""
        await self.pool.execute("DELETE FROM recommendations")

    async def recommendations(self, incident_id: str) -> list[tuple[str, Any]]:
        """``(task_id, candidates)`` the dispatcher left for this incident, by task."""
        rows = await self.pool.fetch(
            "SELECT task_id, candidates FROM recommendations WHERE incident_id = $1 "
            "ORDER BY task_id", incident_id)
        return [(r["task_id"], r["candidates"]) for r in rows]
