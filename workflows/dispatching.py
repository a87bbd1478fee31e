"""Core: what task events mean for units. The process between the two deciders.

The shell appends an incident's events and the unit events they imply in one
transaction; if a unit refuses (busy, wrong capability), the whole command is
refused, so a unit can never be on two tasks.
"""

from __future__ import annotations

from workflows.incident import (
    AnyIncidentEvent,
    Incident,
    TaskCancelled,
    TaskMoved,
    TaskOffered,
    TaskReturned,
)
from workflows.unit import DispatchUnit, MoveUnit, ReleaseUnit

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
