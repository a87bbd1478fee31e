"""Shell: units' tracks, the ``unit_positions`` table (migration 0009): positions stored
as crews report them, read back thinned for playback and an incident's detail, and
deleted past the retention in batches. Its rows are never updated (the service may read,
add and delete them: ``PRUNED_TABLES``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg


class TrackPoint(NamedTuple):
    """One stored position: ``(unit_id, at, lat, lon, heading, speed_mps)``."""

    unit_id: str
    at: datetime
    lat: float
    lon: float
    heading: float | None
    speed_mps: float | None


class TrackStore:
    """The tracks' part of :class:`command.store.Store` (each call its own transaction)."""

    pool: asyncpg.Pool

    async def put_track_points(self, points: Sequence[TrackPoint]) -> None:
        """Store ``points`` in one transaction; one already there (same unit and time: a
        redelivery) stays as it is."""
        if not points:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO unit_positions (unit_id, at, lat, lon, heading, speed_mps) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING", list(points))

    async def prune_track_points(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` positions taken before ``before``; how many went (a short
        transaction each, so pruning never holds many locks or a long one)."""
        status = await self.pool.execute(
            "DELETE FROM unit_positions WHERE ctid = ANY(ARRAY("
            "SELECT ctid FROM unit_positions WHERE at < $1 LIMIT $2))", before, limit)
        return int(status.rsplit(" ", 1)[-1])

    async def tracks(self, start: datetime, end: datetime, points: int,
                     unit_ids: Sequence[str] | None = None,
                     max_units: int = 5000) -> dict[str, list[dict[str, Any]]]:
        """Each unit's positions taken in [``start``, ``end``] (only ``unit_ids``' if
        given; at most ``max_units`` units), thinned to at most ``points`` a unit: the
        period is cut into ``points`` equal spans and the last position of each is kept.
        By unit id, each track in time order, points as ``{"at", "lat", "lon", "heading",
        "speed_mps"}``."""
        if points < 1 or end <= start:
            return {}
        span = (end - start).total_seconds() / points
        rows = await self.pool.fetch(
            "SELECT DISTINCT ON (unit_id, b) unit_id, at, lat, lon, heading, speed_mps FROM ("
            " SELECT *, LEAST(floor(extract(epoch FROM at - $1) / $3)::int, $4 - 1) AS b"
            " FROM unit_positions WHERE at >= $1 AND at <= $2"
            " AND ($5::text[] IS NULL OR unit_id = ANY($5::text[]))) AS p"
            " ORDER BY unit_id, b, at DESC",
            start, end, span, points, None if unit_ids is None else list(unit_ids))
        found: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            track = found.get(r["unit_id"])
            if track is None:
                if len(found) >= max_units:
                    continue
                track = found[r["unit_id"]] = []
            track.append({"at": r["at"].isoformat().replace("+00:00", "Z"), "lat": r["lat"],
                          "lon": r["lon"], "heading": r["heading"],
                          "speed_mps": r["speed_mps"]})
        for track in found.values():
            track.sort(key=lambda p: p["at"])
        return found
