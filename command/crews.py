"""Shell: crews' status reports in, as task and unit commands.

Each report on ``<ns>.unit.<unit>.status`` (the UNITS stream) becomes the
commands it means for the unit's current task: acknowledged -> accept,
declined -> decline, en route / on scene -> the task moves, clear -> the task
is completed and the unit is available again. A report for a task the unit
does not hold, or a move the unit cannot make, changes nothing: the crew is
told why on its dispatch subject (``status.rejected``), and it is logged.

Exactly once: each report's stream sequence is claimed in the inbox in the
transaction that applies it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import ValidationError

from command.bus import ConsumerSpec, Undeliverable
from command.engine import Engine, Meta, UnitOfWork
from command.model import StatusRejected, StatusReport
from command.store import ConcurrencyError
from command.subjects import Namespace
from workflows import incident as inc
from workflows import unit as un
from workflows.messages import Rejected

log = structlog.get_logger("ecc.crews")

CONSUMER = "crews"

# How a crew that reports "clear" gets from where it is back to available.
_TO_AVAILABLE: dict[str, tuple[str, ...]] = {
    "on_scene": ("returning", "available"),
    "transporting": ("at_hospital", "returning", "available"),
    "at_hospital": ("returning", "available"),
    "returning": ("available",),
    "out_of_service": ("available",),
    "off_duty": ("available",),
    "available": (),
}


class CrewReports:
    """A :class:`command.bus.BatchHandler` for the UNITS stream."""

    def __init__(self, engine: Engine, js: JetStreamContext, ns: Namespace, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine = engine
        self.js = js
        self.ns = ns
        self.clock = clock

    def spec(self) -> ConsumerSpec:
        return ConsumerSpec(stream=self.ns.stream("UNITS"), durable=CONSUMER,
                            subject=self.ns.unit_statuses, batch=32)

    def source_of(self, msg: Msg) -> str:
        return "unit"

    def decode(self, msg: Msg) -> tuple[str, StatusReport]:
        unit = self.ns.unit_of(msg.subject)
        try:
            report = StatusReport.model_validate_json(msg.data)
        except ValidationError as exc:
            raise Undeliverable("invalid", "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}"
                for e in exc.errors(include_url=False)[:5])) from exc
        if unit != report.unit_id:
            raise Undeliverable("subject_mismatch",
                                f"subject unit {unit!r} != payload {report.unit_id!r}")
        return f"units:{msg.metadata.sequence.stream}", report

    async def handle(self, items: list[tuple[str, StatusReport]]) -> None:
        for message_id, report in items:  # one transaction each: a refusal is per report
            await self.apply(message_id, report)

    async def apply(self, message_id: str, report: StatusReport) -> bool:
        """Apply one report; False (and the crew told why) if it was refused."""
        bound = log.bind(unit_id=report.unit_id, status=report.status, task_id=report.task_id)
        try:
            for attempt in range(1, 6):
                try:
                    async with self.engine.store.transaction() as tx:
                        if not await tx.claim(CONSUMER, message_id):
                            return True  # seen before: its effect is already committed
                        uow = UnitOfWork(tx, self.engine.catalogue, self.engine.ids)
                        await self._commands(uow, report)
                        await uow.flush()
                    break
                except ConcurrencyError:
                    if attempt == 5:
                        raise  # the consumer loop naks it; it comes back later
        except Rejected as exc:
            bound.warning("crews.rejected", code=exc.code, reason=exc.reason)
            await self._tell(report, exc.reason)
            return False
        bound.info("crews.applied")
        return True

    async def _commands(self, uow: UnitOfWork, report: StatusReport) -> None:
        # Lock the incident before the unit, as every other command does: peek at
        # the unit's task without a lock, lock the incident, then the unit, and check.
        peek = await uow.tx.conn.fetchval(
            "SELECT view->>'incident_id' FROM units WHERE unit_id = $1", report.unit_id)
        if peek:
            await uow.incident(peek)
        unit = await uow.unit(report.unit_id)
        if unit is not None and unit.incident_id != peek:
            raise ConcurrencyError(f"unit:{report.unit_id}", -1, None)  # it moved: run again
        if unit is None:
            raise Rejected("unknown_unit", f"unit {report.unit_id} is not registered")
        meta = Meta(actor=f"unit:{unit.unit_id}", correlation_id=unit.task_id)
        at = report.at
        if report.task_id is not None and report.task_id != unit.task_id:
            raise Rejected("not_your_task", f"{unit.call_sign} holds task {unit.task_id or 'none'}"
                                            f", not {report.task_id}")
        status = report.status
        if status in ("transporting", "at_hospital", "out_of_service"):
            await uow.run_unit(unit.unit_id, un.MoveUnit(at=at, status=status), meta)
            return
        if status == "clear":
            if unit.incident_id and unit.task_id:
                incident = await uow.incident(unit.incident_id)
                assert incident is not None
                task_status = incident.task(unit.task_id).status
                if task_status == "on_scene":
                    await uow.run(unit.incident_id,
                                  inc.CompleteTask(at=at, task_id=unit.task_id), meta)
                elif task_status in inc.LIVE_TASK:
                    raise Rejected("not_on_scene", "clear is for a crew done on scene; "
                                                   "decline the order or report on scene first")
                # a task already ended (cancelled while transporting): just come back
            unit = await uow.unit(report.unit_id)
            assert unit is not None
            for step in _TO_AVAILABLE.get(unit.status, ()):
                await uow.run_unit(unit.unit_id, un.MoveUnit(at=at, status=step), meta)
            return
        if not (unit.incident_id and unit.task_id):
            raise Rejected("no_task", f"{unit.call_sign} has no task to report {status} on")
        incident = await uow.incident(unit.incident_id)
        assert incident is not None
        task = incident.task(unit.task_id)
        commands: list[Any] = []
        if status == "acknowledged":
            commands = [inc.AcceptTask(at=at, task_id=task.task_id, unit_id=unit.unit_id)]
        elif status == "declined":
            commands = [inc.DeclineTask(at=at, task_id=task.task_id, unit_id=unit.unit_id,
                                        reason=report.reason)]
        else:
            if task.status == "offered":  # moving is acknowledging
                commands.append(inc.AcceptTask(at=at, task_id=task.task_id,
                                               unit_id=unit.unit_id))
            if status == "en_route":
                commands.append(inc.TaskEnRoute(at=at, task_id=task.task_id))
            if status == "on_scene":
                commands.append(inc.TaskOnScene(at=at, task_id=task.task_id))
        for command in commands:
            await uow.run(incident.incident_id, command, meta)

    async def _tell(self, report: StatusReport, reason: str) -> None:
        unit = None
        try:
            async with self.engine.store.transaction() as tx:
                unit = await UnitOfWork(tx, self.engine.catalogue).unit(report.unit_id)
        except Exception:
            pass
        if unit is None:
            return  # nobody to tell: an unknown unit has no dispatch subject
        message = StatusRejected(unit_id=report.unit_id, status=report.status, reason=reason,
                                 at=self.clock())
        await self.js.publish(self.ns.dispatch(unit.agency, unit.unit_id),
                              message.model_dump_json().encode())
