"""Shell: crews' status reports in, as task and unit commands.

Each report on ``<ns>.unit.<unit>.status`` (the UNITS stream) becomes the
commands it means for the unit's current task, as the pure core decides
(:func:`workflows.dispatching.crew_report`): acknowledged -> accept, declined
-> decline, en route / on scene -> the task moves, clear -> the task is
completed and the unit is available again. This shell only loads and applies.
A report for a task the unit does not hold, or a move the unit cannot make,
changes nothing: the crew is told why on its dispatch subject
(``status.rejected``), and it is logged.

Exactly once: each report's stream sequence is claimed in the inbox in the
transaction that applies it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import ValidationError

from command.bus import ConsumerSpec, Undeliverable
from command.engine import Engine, Meta, UnitOfWork, utc_now
from command.metrics import Metrics
from command.model import StatusRejected, StatusReport
from command.store import ConcurrencyError
from command.subjects import Namespace
from workflows import incident as inc
from workflows import unit as un
from workflows.dispatching import crew_report
from workflows.messages import Rejected
from workflows.text import validate_json

log = structlog.get_logger("ecc.crews")

CONSUMER = "crews"

class CrewReports:
    """A :class:`command.bus.BatchHandler` for the UNITS stream."""

    def __init__(self, engine: Engine, js: JetStreamContext, ns: Namespace, *,
                 clock: Callable[[], datetime] = utc_now,
                 metrics: Metrics | None = None) -> None:
        self.engine = engine
        self.js = js
        self.ns = ns
        self.clock = clock
        self.metrics = metrics if metrics is not None else Metrics()

    def spec(self) -> ConsumerSpec:
        return ConsumerSpec(stream=self.ns.stream("UNITS"), durable=CONSUMER,
                            subject=self.ns.unit_statuses, batch=32)

    def source_of(self, msg: Msg) -> str:
        return "unit"

    def decode(self, msg: Msg) -> tuple[str, StatusReport]:
        unit = self.ns.unit_of(msg.subject)
        try:
            report = validate_json(StatusReport, msg.data)
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
                            self.metrics.crew_reports.labels(outcome="duplicate").inc()
                            return True  # seen before: its effect is already committed
                        uow = UnitOfWork(tx, self.engine.catalogue, self.engine.ids)
                        waits = await self._commands(uow, report)
                        await uow.flush()
                    break
                except ConcurrencyError:
                    if attempt == 5:
                        raise  # the consumer loop naks it; it comes back later
        except Rejected as exc:
            bound.warning("crews.rejected", code=exc.code, reason=exc.reason)
            self.metrics.crew_reports.labels(outcome="refused").inc()
            await self._tell(report, exc.reason)
            return False
        bound.info("crews.applied")
        self.metrics.crew_reports.labels(outcome="applied").inc()
        for waited in waits:
            self.metrics.accept_seconds.observe(waited)
        return True

    async def _commands(self, uow: UnitOfWork, report: StatusReport) -> list[float]:
        """Stage what the report means; returns the seconds from offer to acceptance of
        each order it accepts (for ``ecc_order_accept_seconds``)."""
        # Lock the incident before the unit, as every other command does: peek at
        # the unit's task without a lock, lock the incident, then the unit, and check.
        peek = await uow.tx.unit_incident(report.unit_id)
        if peek:
            await uow.incident(peek)
        unit = await uow.unit(report.unit_id)
        if unit is not None and unit.incident_id != peek:
            raise ConcurrencyError(f"unit:{report.unit_id}", -1, None)  # it moved: run again
        if unit is None:
            raise Rejected("unknown_unit", f"unit {report.unit_id} is not registered")
        meta = Meta(actor=f"unit:{unit.unit_id}", correlation_id=unit.task_id)
        incident = await uow.incident(unit.incident_id) if unit.incident_id else None
        waits: list[float] = []
        for command in crew_report(unit, incident, report.status, at=report.at,
                                   task_id=report.task_id, reason=report.reason):
            if isinstance(command, un.MoveUnit):
                await uow.run_unit(unit.unit_id, command, meta)
                continue
            assert unit.incident_id is not None
            for event in await uow.run(unit.incident_id, command, meta):
                if isinstance(event, inc.TaskAccepted) and incident is not None:
                    offered_at = incident.task(event.task_id).updated_at
                    waits.append(max(0.0, (event.at - offered_at).total_seconds()))
        return waits

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
