"""Core: the unit decider. A unit is on at most one active task.

Statuses::

    off_duty <-> available -> dispatched -> en_route -> on_scene -> transporting
                   ^  |                                   |            |
                   |  v                                   v            v
              out_of_service                         returning <- at_hospital

A unit is ``dispatched`` from the moment a task is offered to it until it
moves; declining, an acknowledgement timeout or a cancelled task releases it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from workflows.geo import Location
from workflows.messages import Command, Event, Frozen, Rejected, Token

UnitStatus = Literal["available", "dispatched", "en_route", "on_scene", "transporting",
                     "at_hospital", "returning", "out_of_service", "off_duty"]
ON_TASK: frozenset[str] = frozenset({"dispatched", "en_route", "on_scene", "transporting",
                                     "at_hospital"})

# Where a crew may report itself from each status (field-unit status buttons).
MOVES: dict[str, frozenset[str]] = {
    "available": frozenset({"out_of_service", "off_duty"}),
    "dispatched": frozenset({"en_route", "on_scene"}),
    "en_route": frozenset({"on_scene"}),
    "on_scene": frozenset({"transporting", "returning"}),
    "transporting": frozenset({"at_hospital"}),
    "at_hospital": frozenset({"returning"}),
    "returning": frozenset({"available", "out_of_service"}),
    "out_of_service": frozenset({"available", "off_duty"}),
    "off_duty": frozenset({"available"}),
}


class Unit(Frozen):
    unit_id: str
    call_sign: str
    agency: str
    capabilities: tuple[str, ...]
    kind: str = ""
    station: str = ""
    district: str = ""
    home: Location | None = None
    status: UnitStatus
    incident_id: str | None = None
    task_id: str | None = None
    updated_at: datetime
    version: int = 0


# --- commands ---------------------------------------------------------------------------


# Unit ids go into subjects as they are (ecc.dispatch.fire.E12): letters, digits, _ and -.
UnitId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}$")]


class RegisterUnit(Command):
    type: Literal["unit.register"] = "unit.register"
    unit_id: UnitId
    call_sign: str = Field(min_length=1, max_length=40)
    agency: Token
    capabilities: tuple[Token, ...] = Field(min_length=1)
    kind: str = Field(default="", max_length=40)
    station: str = Field(default="", max_length=80)
    district: str = Field(default="", max_length=80)
    home: Location | None = None
    status: Literal["available", "off_duty"] = "available"


class DispatchUnit(Command):
    type: Literal["unit.dispatch"] = "unit.dispatch"
    incident_id: str
    task_id: str
    capability: str
    agency: str = ""  # the task's agency; empty accepts any


class ReleaseUnit(Command):
    """The task ended for this unit: declined, timed out, cancelled or completed.

    A unit that had not reached the scene is available again; one on scene
    starts returning; one transporting a patient carries on and reports itself.
    """

    type: Literal["unit.release"] = "unit.release"
    incident_id: str
    task_id: str
    reason: str = ""


class MoveUnit(Command):
    type: Literal["unit.move"] = "unit.move"
    status: UnitStatus


UnitCommand = Annotated[RegisterUnit | DispatchUnit | ReleaseUnit | MoveUnit,
                        Field(discriminator="type")]


# --- events -----------------------------------------------------------------------------


class UnitRegistered(Event):
    type: Literal["unit.registered"] = "unit.registered"
    unit_id: str
    call_sign: str
    agency: str
    capabilities: tuple[str, ...]
    kind: str = ""
    station: str = ""
    district: str = ""
    home: Location | None = None
    status: UnitStatus


class UnitDispatched(Event):
    type: Literal["unit.dispatched"] = "unit.dispatched"
    incident_id: str
    task_id: str


class UnitReleased(Event):
    type: Literal["unit.released"] = "unit.released"
    incident_id: str
    task_id: str
    reason: str


class UnitMoved(Event):
    type: Literal["unit.moved"] = "unit.moved"
    status: UnitStatus
    previous: UnitStatus


AnyUnitEvent = UnitRegistered | UnitDispatched | UnitReleased | UnitMoved
UnitEvent = Annotated[AnyUnitEvent, Field(discriminator="type")]


def decide(state: Unit | None,
           command: RegisterUnit | DispatchUnit | ReleaseUnit | MoveUnit) -> list[AnyUnitEvent]:
    """The events ``command`` causes on the unit. Raises :class:`Rejected`."""
    if isinstance(command, RegisterUnit):
        if state is not None:
            raise Rejected("already_exists", f"unit {command.unit_id} is already registered")
        return [UnitRegistered(at=command.at, unit_id=command.unit_id,
                               call_sign=command.call_sign, agency=command.agency,
                               capabilities=command.capabilities, kind=command.kind,
                               station=command.station, district=command.district,
                               home=command.home, status=command.status)]
    if state is None:
        raise Rejected("unknown_unit", "no such unit; register it first")
    if isinstance(command, DispatchUnit):
        if state.status != "available":
            where = f" on incident {state.incident_id}" if state.incident_id else ""
            raise Rejected("unit_unavailable",
                           f"{state.call_sign} is {state.status.replace('_', ' ')}{where}")
        if command.agency and command.agency != state.agency:
            raise Rejected("wrong_agency",
                           f"{state.call_sign} is {state.agency}, the task needs {command.agency}")
        if command.capability not in state.capabilities:
            raise Rejected("wrong_capability",
                           f"{state.call_sign} has no {command.capability} capability")
        return [UnitDispatched(at=command.at, incident_id=command.incident_id,
                               task_id=command.task_id)]
    if isinstance(command, ReleaseUnit):
        if (state.incident_id, state.task_id) != (command.incident_id, command.task_id):
            return []  # not on that task (any more): nothing to release
        if state.status in ("dispatched", "en_route"):
            return [UnitReleased(at=command.at, incident_id=command.incident_id,
                                 task_id=command.task_id, reason=command.reason)]
        if state.status == "on_scene":
            return [UnitMoved(at=command.at, status="returning", previous=state.status)]
        return []
    if command.status not in MOVES[state.status]:
        raise Rejected("wrong_status", f"{state.call_sign} cannot go from "
                                       f"{state.status} to {command.status}")
    return [UnitMoved(at=command.at, status=command.status, previous=state.status)]


def evolve(state: Unit | None, event: AnyUnitEvent) -> Unit:
    if isinstance(event, UnitRegistered):
        return Unit(unit_id=event.unit_id, call_sign=event.call_sign, agency=event.agency,
                    capabilities=event.capabilities, kind=event.kind, station=event.station,
                    district=event.district, home=event.home, status=event.status,
                    updated_at=event.at, version=1)
    assert state is not None, f"{event.type} before unit.registered"
    update: dict[str, object] = {"version": state.version + 1, "updated_at": event.at}
    if isinstance(event, UnitDispatched):
        update |= {"status": "dispatched", "incident_id": event.incident_id,
                   "task_id": event.task_id}
    elif isinstance(event, UnitReleased):
        update |= {"status": "available", "incident_id": None, "task_id": None}
    else:
        update["status"] = event.status
        if event.status not in ON_TASK:
            update |= {"incident_id": None, "task_id": None}
    return state.model_copy(update=update)


def fold(events: list[AnyUnitEvent], state: Unit | None = None) -> Unit | None:
    for event in events:
        state = evolve(state, event)
    return state


def on_task(state: Unit) -> bool:
    return state.status in ON_TASK
