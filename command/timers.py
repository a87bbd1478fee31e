"""Shell: the durable timer scheduler.

Deciders schedule timers as events; the engine keeps one row per live timer
(``timers``). The scheduler claims due rows with ``FOR UPDATE SKIP LOCKED``
and, in the same transaction, runs ``timer.fire`` through the incident
decider and deletes the row. So a timer due while every service was down
fires once after restart, two schedulers never fire one timer twice, and a
timer cancelled before it is due never fires (its row is gone, and the
decider ignores a timer the incident no longer holds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Literal

import structlog

from command.engine import Engine, Meta, UnitOfWork, utc_now
from command.store import ConcurrencyError, StoreUnavailable
from command.tasks import check_cancelled
from workflows.incident import FireTimer
from workflows.messages import Rejected

log = structlog.get_logger("ecc.timers")


class TimerScheduler:
    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utc_now,
                 poll: float = 0.25, batch: int = 100) -> None:
        self.engine = engine
        self.clock = clock
        self.poll = poll
        self.batch = batch
        self.fired = 0

    async def run(self) -> None:
        """Fire due timers until cancelled."""
        while True:
            check_cancelled()
            try:
                if await self.fire_due() == 0:
                    await asyncio.sleep(self.poll)
            except StoreUnavailable as exc:
                log.warning("timers.store_unavailable", error=str(exc))
                await asyncio.sleep(1.0)

    async def fire_due(self) -> int:
        """Fire up to ``batch`` due timers, one transaction each; returns how many."""
        fired = 0
        for _ in range(self.batch):
            now = self.clock()
            try:
                outcome = await self._fire_one(now)
            except ConcurrencyError:
                continue  # the incident moved; the row is unlocked and comes round again
            if outcome == "idle":
                break
            fired += outcome == "fired"
        self.fired += fired
        return fired

    async def _fire_one(self, now: datetime) -> Literal["fired", "skipped", "idle"]:
        store = self.engine.store
        due = await store.pool.fetchrow(
            "SELECT timer_id, stream_id, kind FROM timers WHERE due_at <= $1 "
            "ORDER BY due_at LIMIT 1", now)
        if due is None:
            return "idle"
        timer_id, stream_id = due["timer_id"], due["stream_id"]
        incident_id = stream_id.partition(":")[2]
        async with store.transaction() as tx:
            uow = UnitOfWork(tx, self.engine.catalogue, self.engine.ids)
            # Locks in the order every command takes them: the incident's stream first,
            # then its timer rows, so a scheduler and a command never wait in a circle.
            await uow.incident(incident_id)
            claimed = await tx.conn.fetchval(
                "SELECT 1 FROM timers WHERE timer_id = $1 FOR UPDATE SKIP LOCKED", timer_id)
            if claimed is None:
                return "skipped"  # another scheduler has it, or a command cancelled it
            try:
                events = await uow.run(incident_id, FireTimer(at=now, timer_id=timer_id),
                                       Meta(actor="timer", causation_id=timer_id))
            except Rejected as exc:  # e.g. a follow-up a unit refused: record, do not loop
                log.warning("timers.rejected", timer_id=timer_id, code=exc.code,
                            reason=exc.reason)
                events = []
            await uow.flush()
            await tx.conn.execute("DELETE FROM timers WHERE timer_id = $1", timer_id)
        log.info("timers.fired", timer_id=timer_id, incident_id=incident_id, kind=due["kind"],
                 events=[e.type for e in events])
        return "fired"
