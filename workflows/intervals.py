"""Core: the response-time intervals of one incident, measured from its events.

The intervals are NFPA 1225's and NFPA 1710's, on ECC's record (docs/report.md)::

    received ──verification──► verified
    received ──call_processing──► first unit dispatched (the first ``task.offered``)
    dispatched ──turnout──► en route           (every unit that went en route)
    en route ──travel──► on scene              (the first unit on scene)
    en route ──travel_first_engine──► on scene (the first engine on scene)
    received ──total_response──► first unit on scene

*Received* is the ``at`` of ``incident.reported``: when ECC's intake took the
first signal in, on the same clock as every later step. (A signal's
``observed_at`` is the source's clock: historical in a replay, simulated time
in the simulator.) A unit's moments are its task's events: ``task.offered``
(the order goes out: dispatched), ``task.moved`` to ``en_route`` and to
``on_scene``, while that unit holds the task.

A step that never happened gives no measure, never a zero or a failure: an
incident never verified has no ``verification``; a unit that went straight
on scene has no ``turnout`` and, if it arrived first, leaves the incident
without ``travel``; a declined offer still counts as the first dispatch (the
order went out) but has no turnout; a cancelled or merged incident keeps the
measures of the steps it reached. A split-off incident has no received
moment of its own (its ``incident.reported`` is the split), so it gives no
``verification``, ``call_processing`` or ``total_response``.

A measure can come out negative when a crew's device clock is behind ECC's
(crews stamp their own reports). It is returned as it is; the report leaves
it out of the figures and counts it (:func:`command.report.summarise`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from workflows.incident_messages import (
    AnyIncidentEvent,
    IncidentReclassified,
    IncidentReported,
    IncidentVerified,
    PriorityChanged,
    TaskCancelled,
    TaskCreated,
    TaskMoved,
    TaskOffered,
    TaskReturned,
)

Interval = Literal["verification", "call_processing", "turnout", "travel",
                   "travel_first_engine", "total_response"]
INTERVALS: tuple[Interval, ...] = ("verification", "call_processing", "turnout", "travel",
                                   "travel_first_engine", "total_response")
ENGINE = "engine"  # the capability whose first arrival NFPA 1710's travel objective is about


@dataclass(frozen=True, slots=True)
class Measure:
    """One interval of one incident (or of one unit on it), in seconds.

    ``agency`` is the agency of the unit whose moment ends the interval (the
    first unit dispatched, the unit that turned out, the first on scene), or
    ``""`` when no unit is involved (``verification``). ``category`` and
    ``priority`` are the incident's as its record ends; ``priority`` is a label
    (``P1``…``P4`` for ECC, the department's own code for other records).
    """

    interval: Interval
    seconds: float
    incident_id: str
    category: str
    priority: str
    agency: str = ""
    unit_id: str | None = None


@dataclass(slots=True)
class _Assignment:
    """One unit on one task, from its offer until the task leaves it."""

    unit_id: str
    agency: str
    capability: str
    offered_at: datetime
    en_route_at: datetime | None = None
    on_scene_at: datetime | None = None


@dataclass(slots=True)
class _Record:
    incident_id: str = ""
    category: str = ""
    priority: int = 0
    received_at: datetime | None = None
    split: bool = False
    verified_at: datetime | None = None
    tasks: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> agency, capability
    holding: dict[str, _Assignment] = field(default_factory=dict)  # task -> current unit
    assignments: list[_Assignment] = field(default_factory=list)  # every offer, in order


def measure(events: Iterable[AnyIncidentEvent]) -> list[Measure]:
    """The intervals of one incident, from its events in stream order.

    The first event must be its ``incident.reported``; a stream that does not
    start with one (a filtered or truncated list) gives no measures. Measures
    come in the order of :data:`INTERVALS`, turnouts in the order of the offers.
    """
    record = _Record()
    for i, event in enumerate(events):
        if i == 0 and not isinstance(event, IncidentReported):
            return []
        _take(record, event)
    return _measures(record)


def _take(r: _Record, e: AnyIncidentEvent) -> None:
    if isinstance(e, IncidentReported):
        r.incident_id, r.category, r.priority = e.incident_id, e.category, e.priority
        r.received_at, r.split = e.at, e.split_from is not None
    elif isinstance(e, IncidentVerified):
        if r.verified_at is None:  # verified again after an undone merge: the first counts
            r.verified_at = e.at
    elif isinstance(e, IncidentReclassified):
        r.category = e.category
    elif isinstance(e, PriorityChanged):
        r.priority = e.priority
    elif isinstance(e, TaskCreated):
        r.tasks[e.task_id] = (e.agency, e.capability)
    elif isinstance(e, TaskOffered):
        agency, capability = r.tasks.get(e.task_id, ("", ""))
        held = _Assignment(e.unit_id, agency, capability, e.at)
        r.holding[e.task_id] = held
        r.assignments.append(held)
    elif isinstance(e, TaskReturned | TaskCancelled):
        r.holding.pop(e.task_id, None)
    elif isinstance(e, TaskMoved):
        held_now = r.holding.get(e.task_id)
        if held_now is None:
            return
        if e.status == "en_route" and held_now.en_route_at is None:
            held_now.en_route_at = e.at
        elif e.status == "on_scene" and held_now.on_scene_at is None:
            held_now.on_scene_at = e.at
        elif e.status == "completed":
            r.holding.pop(e.task_id, None)


def _measures(r: _Record) -> list[Measure]:
    if r.received_at is None:
        return []
    priority = f"P{r.priority}"

    def m(interval: Interval, start: datetime, end: datetime, agency: str = "",
          unit_id: str | None = None) -> Measure:
        return Measure(interval, (end - start).total_seconds(), r.incident_id, r.category,
                       priority, agency, unit_id)

    received = None if r.split else r.received_at
    out: list[Measure] = []
    if received is not None and r.verified_at is not None:
        out.append(m("verification", received, r.verified_at))
    if received is not None and r.assignments:
        first = min(r.assignments, key=lambda a: a.offered_at)  # min keeps the earliest event
        out.append(m("call_processing", received, first.offered_at, first.agency, first.unit_id))
    for a in r.assignments:
        if a.en_route_at is not None:
            out.append(m("turnout", a.offered_at, a.en_route_at, a.agency, a.unit_id))
    arrived = [a for a in r.assignments if a.on_scene_at is not None]
    first_on_scene = _first_arrival(arrived)
    if first_on_scene is not None and first_on_scene.en_route_at is not None:
        assert first_on_scene.on_scene_at is not None
        out.append(m("travel", first_on_scene.en_route_at, first_on_scene.on_scene_at,
                     first_on_scene.agency, first_on_scene.unit_id))
    engine = _first_arrival([a for a in arrived if a.capability == ENGINE])
    if engine is not None and engine.en_route_at is not None:
        assert engine.on_scene_at is not None
        out.append(m("travel_first_engine", engine.en_route_at, engine.on_scene_at,
                     engine.agency, engine.unit_id))
    if received is not None and first_on_scene is not None:
        assert first_on_scene.on_scene_at is not None
        out.append(m("total_response", received, first_on_scene.on_scene_at,
                     first_on_scene.agency, first_on_scene.unit_id))
    return out


def _first_arrival(arrived: list[_Assignment]) -> _Assignment | None:
    if not arrived:
        return None
    return min(arrived, key=lambda a: a.on_scene_at or a.offered_at)
