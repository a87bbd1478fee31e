"""Shell: the simulated command-centre desk, a console like any other.

It connects over the real console websocket with a supervisor token and does
what the staff on shift would do with what ECC shows them, and nothing more (it
never reads the simulator's ground truth):

* verifies an incident ECC could not verify on its own once its verify SLA
  escalates, when a person reported it (the call taker spoke to the caller) and
  it is of a known type;
* accepts the top recommendation of a task that waits for a person, after a
  human delay;
* resolves an incident once every task is completed, and closes it;
* cancels an incident it could not verify (no caller to speak to, or of no
  known type) ``give_up_s`` after it first saw it, once ECC has escalated it.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import structlog

from command.tasks import check_cancelled
from consoles.client import ConsoleClient, open_console
from consoles.protocol import Delta, Snapshot
from sim.clock import SimClock

log = structlog.get_logger("ecc.sim.desk")

CLOSED = frozenset({"resolved", "closed", "cancelled", "merged"})


@dataclass
class DeskStats:
    verified: int = 0
    accepted: int = 0
    resolved: int = 0
    closed: int = 0
    cancelled: int = 0
    refused: int = 0


class Desk:
    def __init__(self, console_url: str, token: str, clock: SimClock, *, seed: int = 1,
                 think_s: tuple[float, float] = (10.0, 40.0), give_up_s: float = 900.0,
                 every_s: float = 0.5) -> None:
        self.console_url = console_url
        self.token = token
        self.clock = clock
        self.rng = random.Random(seed)
        self.think_s = think_s
        self.give_up_s = give_up_s
        self.every_s = every_s
        self.stats = DeskStats()
        self.incidents: dict[str, dict[str, Any]] = {}  # open ones, as last read
        self.seen_at: dict[str, float] = {}  # sim time each incident was first seen
        self.due: dict[tuple[str, str], float] = {}  # (incident, task) -> when to accept

    async def run(self) -> None:
        """Until cancelled; reconnects if the gateway drops it."""
        while True:
            try:
                async with open_console(self.console_url, self.token) as console:
                    await self._work(console)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("desk.reconnect", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(1.0)

    async def _work(self, console: ConsoleClient) -> None:
        await console.receive()  # welcome
        first = await console.receive()
        if isinstance(first, Snapshot):
            for view in first.incidents:
                self._note(view["incident_id"])
        while True:
            check_cancelled()  # wait_for in _drain can swallow a cancel (Python 3.11)
            await self._drain(console)
            for incident_id in list(self.seen_at):
                await self._look(console, incident_id)
            await asyncio.sleep(self.every_s)  # wall seconds: a person looks every few

    async def _drain(self, console: ConsoleClient) -> None:
        """Take in what arrived since the last look, without waiting (recv is safe to
        cancel: nothing is lost)."""
        while True:
            check_cancelled()
            try:
                msg = await asyncio.wait_for(console.receive(), 0.01)
            except TimeoutError:
                return
            if isinstance(msg, Delta) and msg.event.stream_id.startswith("incident:"):
                self._note(msg.event.stream_id.partition(":")[2])

    def _note(self, incident_id: str) -> None:
        self.seen_at.setdefault(incident_id, self.clock.elapsed())

    async def _look(self, console: ConsoleClient, incident_id: str) -> None:
        detail = await console.detail(incident_id)
        if not detail.ok:
            return
        view = detail.data["incident"]
        if view["status"] in CLOSED:
            if view["status"] == "resolved":
                await self._do(console, "incident.close", incident_id)
                self.stats.closed += 1
            self.seen_at.pop(incident_id, None)
            return
        now = self.clock.elapsed()
        tasks = view.get("tasks", [])
        if tasks and all(t["status"] in ("completed", "cancelled") for t in tasks) and \
                any(t["status"] == "completed" for t in tasks):
            if await self._do(console, "incident.resolve", incident_id):
                self.stats.resolved += 1
            return
        overdue = view["status"] == "reported" and \
            any(e["rule"] == "verify_sla" for e in view.get("escalations", []))
        person = any(s["source"] == "hotline" for s in view.get("signals", []))
        if overdue and person and view.get("category") != "other":
            if await self._do(console, "incident.verify", incident_id):
                self.stats.verified += 1
            return
        if overdue and now - self.seen_at[incident_id] > self.give_up_s and \
                not any(t.get("unit_id") for t in tasks):
            if await self._do(console, "incident.cancel", incident_id,
                              reason="nobody could confirm it and nothing else reported it: "
                                     "treated as a false alarm"):
                self.stats.cancelled += 1
            return
        for rec in detail.data.get("recommendations", []):
            task = next((t for t in tasks if t["task_id"] == rec["task_id"]), None)
            candidates = [c for c in rec["candidates"] if not c.get("stacked")]
            if task is None or task["status"] != "pending" or not candidates:
                continue
            key = (incident_id, rec["task_id"])
            due = self.due.setdefault(key, now + self.rng.uniform(*self.think_s))
            if now >= due:
                if await self._do(console, "task.dispatch", incident_id,
                                  task_id=rec["task_id"], unit_id=candidates[0]["unit_id"]):
                    self.stats.accepted += 1
                self.due.pop(key, None)

    async def _do(self, console: ConsoleClient, name: str, incident_id: str,
                  **args: Any) -> bool:
        result = await console.command(name, incident_id, **args)
        if not result.ok:
            self.stats.refused += 1
            log.info("desk.refused", command=name, incident_id=incident_id, code=result.code,
                     reason=result.message)
        return result.ok
