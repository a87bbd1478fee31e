"""Shell: the dispatcher. Pending tasks get units.

Each round (on a task or unit event, or every ``interval`` seconds) it reads
the pending tasks of open incidents and the units, and:

* for incidents the catalogue lets ECC dispatch itself (``[dispatch] auto``),
  assigns all their pending tasks together, optimally (:func:`command.assign.assign`),
  and offers each task to its unit through the engine: the order reaches the
  crew through the outbox;
* for the others, writes the three best candidates per task to
  ``recommendations`` for a dispatcher to confirm on the console;
* when no able unit is free, stacks the task on the committed unit that would
  reach it soonest once it clears (``stacked`` in ``recommendations``); the
  task stays pending and the round after that unit clears offers it.

A declined or unanswered task is pending again with the unit remembered, so the
next round offers it to the next-best unit. One dispatcher leads at a time (a
session advisory lock); others stand by.

Positions come from the POSITIONS stream (latest per unit); a unit with no
report yet is at its station.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import api
from pydantic import ValidationError

from command.assign import Need, assign, stack
from command.engine import Engine, Meta, utc_now
from command.metrics import Metrics
from command.model import PositionReport, StatusRejected
from command.recommend import UnitIndex, UnitInfo
from command.roads import RoadNetwork
from command.subjects import Namespace
from command.tasks import check_cancelled
from workflows import incident as inc
from workflows.messages import Rejected

log = structlog.get_logger("ecc.dispatcher")

_LEADER_LOCK = 0x0ECC_0004
# A device clock this far ahead is wrong; trusting it would block its later reports.
FUTURE_SKEW = timedelta(seconds=60)
_WAKE_TYPES = ("task.created", "task.returned", "unit.released", "unit.moved",
               "unit.registered", "incident.priority_changed")


class Dispatcher:
    def __init__(self, engine: Engine, nc: NATS, ns: Namespace, *, interval: float = 2.0,
                 roads: RoadNetwork | None = None,
                 clock: Callable[[], datetime] = utc_now,
                 metrics: Metrics | None = None) -> None:
        self.engine = engine
        self.metrics = metrics if metrics is not None else Metrics()
        self.roads = roads
        self.nc = nc
        self.ns = ns
        self.interval = interval
        self.clock = clock
        self.positions: dict[str, PositionReport] = {}
        self.status: dict[str, str] = {}
        self.agency: dict[str, str] = {}
        self.offers = 0
        self._wake = asyncio.Event()
        self._stacked: dict[str, str] = {}  # task key -> the unit it was last stacked on

    async def run(self) -> None:
        """Keep positions current, lead when the lock is free, dispatch until cancelled."""
        js = self.nc.jetstream()
        positions = await js.subscribe(
            self.ns.unit_positions, stream=self.ns.stream("POSITIONS"), ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT, cb=self._on_position)
        events = await self.nc.subscribe(self.ns.events, cb=self._on_event)
        try:
            while True:
                check_cancelled()
                try:
                    await self._lead()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("dispatcher.failed", error=str(exc) or type(exc).__name__)
                    await asyncio.sleep(1.0)
        finally:
            for sub in (positions, events):
                try:
                    await sub.unsubscribe()
                except Exception:
                    pass

    async def _lead(self) -> None:
        async with self.engine.store.session() as session:
            await session.lead(_LEADER_LOCK)
            log.info("dispatcher.leading")
            while True:
                check_cancelled()
                self._wake.clear()
                started = time.monotonic()
                await self.round()
                # A round is CPU work on the event loop the signal intake shares: under
                # a stream of events, rest twice as long as the round took, so a round
                # never has more than a third of the loop.
                await asyncio.sleep(max(0.0, 2 * (time.monotonic() - started)))
                try:
                    await asyncio.wait_for(self._wake.wait(), self.interval)
                    await asyncio.sleep(0.01)  # let a burst of events settle into one round
                except TimeoutError:
                    pass

    async def _on_event(self, msg: Msg) -> None:
        if any(f'"type":"{t}"'.encode() in msg.data for t in _WAKE_TYPES):
            self._wake.set()

    async def _on_position(self, msg: Msg) -> None:
        unit_id = self.ns.unit_of(msg.subject)
        try:
            report = PositionReport.model_validate_json(msg.data)
        except ValidationError as exc:
            problem = exc.errors(include_url=False)[0]
            reason = f"position not used: {'.'.join(map(str, problem['loc']))}: {problem['msg']}"
            log.warning("dispatcher.bad_position", subject=msg.subject, reason=reason)
            await self._tell(unit_id, reason)
            return
        if unit_id != report.unit_id:
            log.warning("dispatcher.position_subject_mismatch", subject=msg.subject)
            await self._tell(unit_id, f"position not used: it names unit {report.unit_id}")
            return
        if report.at > self.clock() + FUTURE_SKEW:
            log.info("dispatcher.future_position", unit_id=report.unit_id)
            await self._tell(unit_id, "position not used: its time is in the future; "
                                      "check the device clock")
            return
        last = self.positions.get(report.unit_id)
        if last is not None and report.at <= last.at:
            log.info("dispatcher.stale_position", unit_id=report.unit_id)
            await self._tell(unit_id, f"position not used: older than the last one "
                                      f"({last.at.isoformat()})")
            return
        self.positions[report.unit_id] = report

    async def _tell(self, unit_id: str | None, reason: str) -> None:
        """Tell a crew why its report was not used, on its dispatch subject."""
        if unit_id is None:
            return
        agency = self.agency.get(unit_id) or await self.engine.store.unit_agency(unit_id)
        if agency is None:
            return  # unknown unit: the log has it
        message = StatusRejected(unit_id=unit_id, status="position", reason=reason,
                                 at=self.clock())
        try:
            await self.nc.publish(self.ns.dispatch(agency, unit_id),
                                  message.model_dump_json().encode())
        except Exception as exc:
            log.warning("dispatcher.tell_failed", unit_id=unit_id, error=str(exc))

    # --- one round ---------------------------------------------------------------------

    async def index(self) -> UnitIndex:
        """The units as they stand: available or not, where they last said they were."""
        views = await self.engine.store.unit_views()
        infos = []
        for u in views:
            pos = self.positions.get(u["unit_id"])
            home = u.get("home") or {}
            lat = pos.lat if pos else home.get("lat")
            lon = pos.lon if pos else home.get("lon")
            if lat is None or lon is None:
                continue  # nowhere known: cannot be ranked
            infos.append(UnitInfo(unit_id=u["unit_id"], agency=u["agency"],
                                  kind=u.get("kind") or u["capabilities"][0],
                                  capabilities=tuple(u["capabilities"]),
                                  district=u.get("district") or "", lat=lat, lon=lon,
                                  available=u["status"] == "available"))
        self.status = {u["unit_id"]: u["status"] for u in views}
        self.agency = {u["unit_id"]: u["agency"] for u in views}
        return UnitIndex(infos, roads=self.roads)

    async def round(self) -> dict[str, str]:
        """Offer what ECC may offer, recommend the rest; returns task key -> unit offered."""
        rows = await self.engine.store.incidents_with_pending_tasks()
        if not rows:
            await self.engine.store.clear_recommendations()
            return {}
        auto: list[Need] = []
        manual: list[Need] = []
        pending_since: dict[str, str] = {}  # task key -> when it became pending
        catalogue = self.engine.catalogue
        for incident_id, v in rows:
            if v["status"] not in inc.ACTIVE:
                continue
            target = auto if catalogue.dispatches_itself(v["category"], v["priority"]) \
                else manual
            for task in v["tasks"]:
                if task["status"] == "pending":
                    pending_since[f"{incident_id}/{task['task_id']}"] = \
                        task["updated_at"]
                    target.append(Need(key=f"{incident_id}/{task['task_id']}",
                                       capability=task["capability"],
                                       lat=v["location"]["lat"], lon=v["location"]["lon"],
                                       priority=v["priority"],
                                       exclude=tuple(task["passed_over"])))
        index = await self.index()
        offered: dict[str, str] = {}
        started = time.perf_counter()
        chosen = assign(index, auto)
        computing = time.perf_counter() - started
        for key, candidate in chosen.items():
            incident_id, task_id = key.split("/", 1)
            at = self.clock()
            try:
                await self.engine.execute(
                    incident_id,
                    inc.OfferTask(at=at, by="dispatcher", task_id=task_id,
                                  unit_id=candidate.unit_id),
                    Meta(actor="dispatcher", correlation_id=incident_id))
            except Rejected as exc:  # the world moved since we read it; next round retries
                log.info("dispatcher.offer_refused", incident_id=incident_id, task_id=task_id,
                         unit_id=candidate.unit_id, reason=exc.reason)
                continue
            index.set_available(candidate.unit_id, False)
            offered[key] = candidate.unit_id
            self.offers += 1
            self.metrics.offers.inc()
            waited = at - datetime.fromisoformat(pending_since[key])
            self.metrics.offer_wait_seconds.observe(max(0.0, waited.total_seconds()))
            log.info("dispatcher.offered", incident_id=incident_id, task_id=task_id,
                     unit_id=candidate.unit_id, eta_s=round(candidate.eta_s))
        stacked = [need for need in auto if need.key not in chosen]
        computing += await self._recommend(index, manual, stacked)
        self.metrics.recommend_seconds.observe(computing)
        return offered

    def stack(self, index: UnitIndex, need: Need) -> dict[str, Any] | None:
        """No unit free: the committed unit to stack the task on (see command.assign.stack)."""
        found = stack(index, need, self.status)
        if found is None:
            return None
        candidate, free_in = found
        return {"unit_id": candidate.unit_id, "eta_s": round(candidate.eta_s, 1),
                "stacked": True, "free_in_s": free_in,
                "status": self.status.get(candidate.unit_id)}

    async def _recommend(self, index: UnitIndex, needs: list[Need],
                         stacked: list[Need]) -> float:
        """Write the recommendations; returns the seconds spent computing them."""
        started = time.perf_counter()
        records: list[tuple[str, str, Any]] = []
        now_stacked: dict[str, str] = {}
        for need in stacked:
            incident_id, task_id = need.key.split("/", 1)
            queued = self.stack(index, need)
            records.append((incident_id, task_id, json.dumps([queued] if queued else [])))
            if queued and self._stacked.get(need.key) != queued["unit_id"]:
                # once per task and unit, not once per round: a city-wide emergency
                # stacks thousands of tasks and a round runs every few seconds
                log.info("dispatcher.stacked", incident_id=incident_id, task_id=task_id,
                         unit_id=queued["unit_id"], free_in_s=queued["free_in_s"])
            if queued:
                now_stacked[need.key] = queued["unit_id"]
        for need in needs:
            cands = index.recommend(need.capability, need.lat, need.lon, k=3,
                                    exclude=need.exclude)
            incident_id, task_id = need.key.split("/", 1)
            records.append((incident_id, task_id, json.dumps([
                {"unit_id": c.unit_id, "eta_s": round(c.eta_s, 1),
                 "distance_m": round(c.distance_m), "mutual_aid": c.mutual_aid}
                for c in cands])))
        self._stacked = now_stacked
        computing = time.perf_counter() - started
        async with self.engine.store.transaction() as tx:
            await tx.replace_recommendations(records)
        return computing
