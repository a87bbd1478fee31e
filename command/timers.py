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
        """Fire up to ``batch`` due timers, one transaction per incident; returns how many.

        The timers of one incident that are due together (a plan's five tasks, none
        offered) fire in one transaction: under a city-wide emergency the scheduler
        keeps up with hundreds of escalations instead of trailing them by a minute.
        """
        now = self.clock()
        async with self.engine.store.transaction() as tx:  # driver errors translated
            due = await tx.due_timers(now, self.batch)
        by_incident: dict[str, list[str]] = {}
        for timer in due:
            by_incident.setdefault(timer.stream_id.partition(":")[2], []).append(
                timer.timer_id)
        fired = 0
        for incident_id, timer_ids in by_incident.items():
            try:
                fired += await self._fire(incident_id, timer_ids, now)
            except ConcurrencyError:
                continue  # the incident moved; its rows are unlocked and come round again
        self.fired += fired
        return fired

    async def _fire(self, incident_id: str, timer_ids: list[str], now: datetime) -> int:
        store = self.engine.store
        fired: list[tuple[str, list[str]]] = []
        async with store.transaction() as tx:
            uow = UnitOfWork(tx, self.engine.catalogue, self.engine.ids)
            # Locks in the order every command takes them: the incident's stream first,
            # then its timer rows, so a scheduler and a command never wait in a circle.
            await uow.incident(incident_id)
            claimed = await tx.claim_timers(timer_ids)
            for timer_id in sorted(claimed, key=timer_ids.index):
                try:
                    events = await uow.run(incident_id, FireTimer(at=now, timer_id=timer_id),
                                           Meta(actor="timer", causation_id=timer_id))
                except Rejected as exc:  # e.g. a follow-up a unit refused: record, not loop
                    log.warning("timers.rejected", timer_id=timer_id, code=exc.code,
                                reason=exc.reason)
                    events = []
                fired.append((timer_id, [e.type for e in events]))
            await uow.flush()
            # another scheduler has the rest, or a command cancelled them
            await tx.drop_timers(claimed)
        for timer_id, types in fired:
            log.info("timers.fired", timer_id=timer_id, incident_id=incident_id,
                     events=types)
        return len(fired)
