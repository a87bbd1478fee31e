"""Shell: units' tracks. Every position on ``<ns>.unit.*.position`` is stored in
``unit_positions`` (:mod:`command.store.tracks`), and positions older than the retention
(``ECC_TRACK_RETENTION``) are deleted in batches.

Why a durable JetStream consumer (``tracks`` on POSITIONS) and not a core subscription:
a stored track must not lose what it acked, and must not lose what came while the
service restarted. The consumer is acked only after the batch's commit, so a crash
between the two delivers the batch again, and ``(unit_id, at)`` being the table's key
makes the repeat harmless; several service processes share it. POSITIONS keeps one
message per unit (latest wins): a consumer that falls behind (the database away for a
while) finds only each unit's latest position waiting, so its backlog is bounded by the
number of units and the track is thinned over the outage rather than the stream grown.

Positions are best effort: one that is not valid, names another unit than its subject,
or is stamped in the future is logged, counted (``refused``) and acked without effect;
none is dead-lettered (the dispatcher already tells the crew, docs/protocol.md).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from nats.aio.msg import Msg
from pydantic import ValidationError

from command.bus import ConsumerSpec
from command.engine import utc_now
from command.model import PositionReport
from command.store import Store, TrackPoint
from command.subjects import Namespace
from workflows.text import validate_json

log = structlog.get_logger("ecc.tracks")

CONSUMER = "tracks"
# A position stamped further than this ahead of the service's clock is not stored.
FUTURE_SKEW = timedelta(seconds=60)
# Pruning: every this many seconds, rows in batches of this many (one short delete each).
PRUNE_EVERY = 60.0
PRUNE_BATCH = 5000


class TrackWriter:
    """A :class:`command.bus.BatchHandler` for the POSITIONS stream, and the pruner."""

    def __init__(self, store: Store, ns: Namespace, *, retention: float = 7 * 86400.0,
                 clock: Callable[[], datetime] = utc_now, prune_every: float = PRUNE_EVERY,
                 prune_batch: int = PRUNE_BATCH) -> None:
        self.store = store
        self.ns = ns
        self.retention = timedelta(seconds=retention)
        self.clock = clock
        self.prune_every = prune_every
        self.prune_batch = prune_batch
        self.refused: Counter[str] = Counter()
        self.stored = 0
        self.pruned = 0

    def spec(self) -> ConsumerSpec:
        return ConsumerSpec(stream=self.ns.stream("POSITIONS"), durable=CONSUMER,
                            subject=self.ns.unit_positions, batch=256, max_ack_pending=4096)

    def source_of(self, msg: Msg) -> str:
        return "unit"

    def decode(self, msg: Msg) -> TrackPoint | None:
        """The position to store, or None (logged and counted) for one that is not used."""
        unit = self.ns.unit_of(msg.subject)
        try:
            report = validate_json(PositionReport, msg.data)
        except (ValidationError, ValueError, UnicodeError):
            self._refuse("invalid", msg.subject)
            return None
        if unit != report.unit_id:
            self._refuse("subject_mismatch", msg.subject)
            return None
        now = self.clock()
        if report.at > now + FUTURE_SKEW:
            self._refuse("future", msg.subject)
            return None
        if report.at < now - self.retention:
            self._refuse("expired", msg.subject)
            return None
        return TrackPoint(report.unit_id, report.at, report.lat, report.lon, report.heading,
                          report.speed_mps)

    def _refuse(self, reason: str, subject: str) -> None:
        self.refused[reason] += 1
        log.warning("tracks.position_refused", subject=subject[:200], reason=reason)

    async def handle(self, items: list[TrackPoint | None]) -> None:
        points = [p for p in items if p is not None]
        await self.store.put_track_points(points)
        self.stored += len(points)

    async def prune(self) -> int:
        """Delete every position older than the retention, a batch at a time."""
        before = self.clock() - self.retention
        total = 0
        while True:
            gone = await self.store.prune_track_points(before, self.prune_batch)
            total += gone
            if gone < self.prune_batch:
                break
            await asyncio.sleep(0)  # let the loop breathe between batches
        if total:
            self.pruned += total
            log.info("tracks.pruned", rows=total, before=before.isoformat())
        return total

    async def run_pruner(self) -> None:
        """Prune now and then every ``prune_every`` seconds, until cancelled."""
        while True:
            try:
                await self.prune()
            except Exception as exc:  # the database is away: try again next round
                log.warning("tracks.prune_failed", error=str(exc) or type(exc).__name__)
            await asyncio.sleep(self.prune_every)
