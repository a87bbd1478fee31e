"""Shell: the projection tables (incidents, units, desk alerts), written in the
transaction of the events they fold, and the reads consoles start from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from command.fusion import cell_of
from command.store.connection import Conn

# Each stream kind's projection table and its key column.
_TABLES = {
    "incident": ("incidents", "incident_id"),
    "unit": ("units", "unit_id"),
    "alert": ("desk_alerts", "alert_id"),
}
# What a rebuild replaces, and what it locks writers out of first.
_REBUILT = ("incidents", "units", "timers", "desk_alerts")


@dataclass(frozen=True)
class Locked:
    """A stream locked for this transaction: its projection's ``view`` and ``version``
    (None and 0 without a row), and the ``(data, schema_version)`` of each event after
    that version (a projection behind its stream: a rebuild in progress, an old row)."""

    view: dict[str, Any] | None
    version: int
    tail: list[tuple[dict[str, Any], int]]


class Nearby(NamedTuple):
    """An open incident in a fusion cell, as fusion compares it."""

    incident_id: str
    category: str
    lat: float
    lon: float
    last_signal_at: datetime | None


class ProjectionsTx:
    """The projections' part of a transaction (:class:`command.store.Tx`)."""

    conn: Conn

    async def lock_stream(self, stream_id: str) -> Locked:
        """Lock the stream's row for this transaction (writers of one stream queue here
        instead of failing their optimistic check) and read its projection, in one round
        trip; the events only when the projection is behind its stream."""
        kind, _, entity = stream_id.partition(":")
        table, key = _TABLES[kind]
        row = await self.conn.fetchrow(
            f"SELECT s.version AS stream_version, p.version, p.view FROM streams s "
            f"LEFT JOIN {table} p ON p.{key} = $2 WHERE s.stream_id = $1 FOR UPDATE OF s",
            stream_id, entity,
        )
        if row is None:
            return Locked(None, 0, [])
        view, version = (None, 0) if row["view"] is None else (row["view"], row["version"])
        tail = [] if row["stream_version"] == version else [
            (r["data"], r["schema_version"]) for r in await self.conn.fetch(
                "SELECT data, schema_version FROM events WHERE stream_id = $1 AND version > $2 "
                "ORDER BY version",
                stream_id, version,
            )]
        return Locked(view, version, tail)

    async def open_incidents_in(self, cells: Sequence[str]) -> list[Nearby]:
        """The open incidents in these fusion cells."""
        rows = await self.conn.fetch(
            "SELECT incident_id, category, lat, lon, last_signal_at FROM incidents "
            "WHERE is_open AND cell = ANY($1::text[])", list(cells))
        return [Nearby(r["incident_id"], r["category"], r["lat"], r["lon"], r["last_signal_at"])
                for r in rows]

    async def incidents_holding(self, source: str, signal_ids: Sequence[str]) -> list[str]:
        """The open incidents holding one of ``signal_ids`` of ``source``, newest change
        first: a scan of the open incidents' signal lists (updates and retractions are
        rare next to signals, and the open set is thousands, not millions)."""
        rows = await self.conn.fetch(
            """
            SELECT incident_id FROM incidents i
            WHERE is_open AND EXISTS (
                SELECT 1 FROM jsonb_array_elements(i.view -> 'signals') s
                WHERE s ->> 'source' = $1 AND s ->> 'signal_id' = ANY($2::text[]))
            ORDER BY last_seq DESC
            """, source, list(signal_ids))
        return [r["incident_id"] for r in rows]

    async def unit_incident(self, unit_id: str) -> str | None:
        """The incident the unit's projection says it is on, read without a lock (a peek:
        the caller locks the incident, then the unit, and checks)."""
        found: str | None = await self.conn.fetchval(
            "SELECT view->>'incident_id' FROM units WHERE unit_id = $1", unit_id)
        return found

    async def lock_for_rebuild(self) -> None:
        """Lock writers out of the log and every projection, in one statement, before
        touching anything: a command in flight finishes, later ones wait, and nobody
        waits on us in a circle."""
        await self.conn.execute("LOCK TABLE streams, events, incidents, units, timers, desk_alerts "
                                "IN EXCLUSIVE MODE")

    async def clear_projections(self) -> None:
        """Delete every projection row and every timer (a rebuild writes them again)."""
        for table in _REBUILT:
            await self.conn.execute(f"DELETE FROM {table}")

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
            # a location unknown (a stand-in point) has no fusion cell: nothing fuses on it
            known = lat is not None and lon is not None and not loc.get("unknown")
            # fusion's clock: when the sources saw it (replays keep their own time), else
            # when ECC took it in; compared as instants, not as strings
            times = [datetime.fromisoformat(t) for s in view.get("signals", ())
                     if (t := s.get("observed_at") or s.get("at"))]
            for col, value in zip(cols, (
                    incident_id, is_open, version, last_seq, view, view.get("category"), lat,
                    lon, cell_of(lat, lon) if known and lat is not None and lon is not None
                    else None,
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
