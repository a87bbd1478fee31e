"""Core: what task events mean for units. The process between the two deciders.

The shell appends an incident's events and the unit events they imply in one
transaction; if a unit refuses (busy, wrong capability), the whole command is
refused, so a unit can never be on two tasks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from workflows.incident import (
    LIVE_TASK,
    AcceptTask,
    AnyIncidentEvent,
    CompleteTask,
    DeclineTask,
    Incident,
    TaskCancelled,
    TaskEnRoute,
    TaskMoved,
    TaskOffered,
    TaskOnScene,
    TaskReturned,
)
from workflows.messages import Rejected
from workflows.unit import DispatchUnit, MoveUnit, ReleaseUnit, Unit, UnitStatus

UnitFollowUp = tuple[str, DispatchUnit | ReleaseUnit | MoveUnit]


def unit_commands(before: Incident | None, events: list[AnyIncidentEvent]) -> list[UnitFollowUp]:
    """The unit commands that ``events`` (decided on ``before``) imply, in order."""
    if before is None:
        return []
    incident_id = before.incident_id
    capability = {t.task_id: t.capability for t in before.tasks}
    agency = {t.task_id: t.agency for t in before.tasks}
    unit_of = {t.task_id: t.unit_id for t in before.tasks}
    out: list[UnitFollowUp] = []
    for e in events:
        if isinstance(e, TaskOffered):
            unit_of[e.task_id] = e.unit_id
            out.append((e.unit_id, DispatchUnit(at=e.at, by=e.by, incident_id=incident_id,
                                                task_id=e.task_id,
                                                capability=capability[e.task_id],
                                                agency=agency[e.task_id])))
        elif isinstance(e, TaskReturned):
            out.append((e.unit_id, ReleaseUnit(at=e.at, incident_id=incident_id,
                                               task_id=e.task_id, reason=e.why)))
        elif isinstance(e, TaskCancelled) and e.unit_id is not None:
            out.append((e.unit_id, ReleaseUnit(at=e.at, incident_id=incident_id,
                                               task_id=e.task_id, reason=e.reason)))
        elif isinstance(e, TaskMoved):
            unit_id = unit_of.get(e.task_id)
            if unit_id is None:
                continue
            if e.status == "completed":
                out.append((unit_id, ReleaseUnit(at=e.at, incident_id=incident_id,
                                                 task_id=e.task_id, reason="task completed")))
            else:
                out.append((unit_id, MoveUnit(at=e.at, status=e.status)))
    return out


# --- crews' reports ----------------------------------------------------------------------

CrewStatus = Literal["acknowledged", "declined", "en_route", "on_scene", "transporting",
                     "at_hospital", "clear", "out_of_service", "off_duty"]

# How a crew that reports "clear" gets from where it is back to available.
TO_AVAILABLE: dict[str, tuple[UnitStatus, ...]] = {
    "on_scene": ("returning", "available"),
    "transporting": ("at_hospital", "returning", "available"),
    "at_hospital": ("returning", "available"),
    "returning": ("available",),
    "out_of_service": ("available",),
    "off_duty": ("available",),
    "available": (),
}

CrewCommand = (AcceptTask | DeclineTask | TaskEnRoute | TaskOnScene | CompleteTask | MoveUnit)


def crew_report(unit: Unit, incident: Incident | None, status: CrewStatus, *, at: datetime,
                task_id: str | None = None, reason: str = "") -> list[CrewCommand]:
    """What a crew's status report means, as commands in order.

    Task commands are for the unit's current incident; ``MoveUnit`` is for the
    unit. Raises :class:`Rejected` when the report does not fit (no task, not
    the unit's task, clear before on scene). ``incident`` is the unit's current
    incident, or None when it has none.
    """
    if task_id is not None and task_id != unit.task_id:
        raise Rejected("not_your_task",
                       f"{unit.call_sign} holds task {unit.task_id or 'none'}, not {task_id}")
    if status in ("transporting", "at_hospital", "out_of_service", "off_duty"):
        return [MoveUnit(at=at, status=status)]
    if status == "clear":
        out: list[CrewCommand] = []
        start: str = unit.status
        if incident is not None and unit.task_id:
            task_status = incident.task(unit.task_id).status
            if task_status == "on_scene":
                out.append(CompleteTask(at=at, task_id=unit.task_id))
                if unit.status == "on_scene":
                    start = "returning"  # completing the task sends an on-scene unit back
            elif task_status in LIVE_TASK:
                raise Rejected("not_on_scene", "clear is for a crew done on scene; "
                                               "decline the order or report on scene first")
            # a task already ended (cancelled while transporting): just come back
        return out + [MoveUnit(at=at, status=s) for s in TO_AVAILABLE.get(start, ())]
    if incident is None or not unit.task_id:
        raise Rejected("no_task", f"{unit.call_sign} has no task to report {status} on")
    task = incident.task(unit.task_id)
    if status == "acknowledged":
        return [AcceptTask(at=at, task_id=task.task_id, unit_id=unit.unit_id)]
    if status == "declined":
        return [DeclineTask(at=at, task_id=task.task_id, unit_id=unit.unit_id, reason=reason)]
    moves: list[CrewCommand] = []
    if task.status == "offered":  # moving is acknowledging
        moves.append(AcceptTask(at=at, task_id=task.task_id, unit_id=unit.unit_id))
    if status == "en_route":
        moves.append(TaskEnRoute(at=at, task_id=task.task_id))
    else:
        moves.append(TaskOnScene(at=at, task_id=task.task_id))
    return moves
