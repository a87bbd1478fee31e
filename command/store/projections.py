"""Shell: the projection tables (incidents, units, desk alerts), written in the
transaction of the events they fold, and the reads consoles start from."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from command.fusion import cell_of
from command.store.connection import Conn


class ProjectionsTx:
    """The projections' part of a transaction (:class:`command.store.Tx`)."""

    conn: Conn

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

class ProjectionReads:
    """Reading the projections (:class:`command.store.Store`)."""

    pool: asyncpg.Pool

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
