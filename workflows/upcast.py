"""Core: stored events' schema versions, and the upcasters that bring old ones up to date.

Every stored event row records the schema version of its type at the time it was written
(``events.schema_version``, migration 0008; rows written before it are version 1). An
event model may change shape (a field renamed, split, given a new meaning): then its
version in :data:`CURRENT` goes up by one, and a step is added to :data:`STEPS` under
``(type, old version)`` that turns the old data into the new. Whatever reads a stored
event passes its data through :func:`upcast` first, and validates the result against
today's model, so the service always reads its whole history. A step may rename the type
(its output's ``type``); the chain then goes on under the new name from the next version
(name that version as the new type's first in :data:`FIRST`).

Writing stamps :func:`current`. Steps are pure functions of the data (no clock, no
lookups): an upcast must give the same answer at every replay. See docs/store.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

from workflows import alert as alerts
from workflows import incident as incidents
from workflows import unit as units

__all__ = [
    "CURRENT",
    "EVENTS",
    "FIRST",
    "STEPS",
    "Reader",
    "Step",
    "UpcastError",
    "Upcasters",
    "alert_event",
    "current",
    "incident_event",
    "unit_event",
    "upcast",
]

Step = Callable[[dict[str, Any]], dict[str, Any]]
E = TypeVar("E")


class UpcastError(ValueError):
    """Stored data this code cannot bring up to date: a version newer than it knows (a
    newer service wrote it: run that version), or a gap in a type's chain (a bug: add the
    missing step). Carries the event ``type`` and the ``version`` stuck at."""

    def __init__(self, type: str, version: int, why: str) -> None:
        super().__init__(f"event {type!r} at schema version {version}: {why}")
        self.type = type
        self.version = version


# Today's schema version of every event type the store holds. A type not named here is
# at version 1 (a new type starts there); tests/workflows/test_upcast.py checks that every
# event of every union is named.
CURRENT: Mapping[str, int] = {
    # incident:<id> streams (workflows.incident.IncidentEvent)
    "incident.reported": 1,
    "incident.signal_attached": 1,
    "incident.signal_detached": 1,
    "incident.verified": 1,
    "incident.reclassified": 1,
    "incident.priority_changed": 1,
    "incident.escalated": 1,
    "incident.note_added": 1,
    "incident.linked": 1,
    "incident.merged": 1,
    "incident.merge_absorbed": 1,
    "incident.merge_undone": 1,
    "incident.merge_released": 1,
    "incident.split_off": 1,
    "incident.status_changed": 1,
    "incident.public_warning": 1,
    "task.created": 1,
    "task.offered": 1,
    "task.accepted": 1,
    "task.returned": 1,
    "task.moved": 1,
    "task.cancelled": 1,
    "timer.scheduled": 1,
    "timer.cancelled": 1,
    "timer.fired": 1,
    # unit:<id> streams (workflows.unit.UnitEvent)
    "unit.registered": 1,
    "unit.dispatched": 1,
    "unit.released": 1,
    "unit.moved": 1,
    # alert:<id> streams (workflows.alert.AlertEvent)
    "alert.raised": 1,
    "alert.closed": 1,
    # signal:<source>-<id> streams: the evidence (command.model.Signal)
    "signal.received": 1,
}

# (type, from version) -> the step to from version + 1. None yet: every type is at 1.
STEPS: Mapping[tuple[str, int], Step] = {}

# A type's first stored version, where it is not 1 (see :class:`Upcasters`).
FIRST: Mapping[str, int] = {}


@dataclass(frozen=True)
class Upcasters:
    """A table of current versions and steps; :data:`EVENTS` is the service's own."""

    current_versions: Mapping[str, int]
    steps: Mapping[tuple[str, int], Step] = field(default_factory=dict)
    # The first version a type was stored at, when not 1: a type that a step renamed
    # into from version n starts at n + 1 (its lower versions were never written).
    first: Mapping[str, int] = field(default_factory=dict)

    def current(self, type: str) -> int:
        """The version an event of ``type`` is written at today."""
        return self.current_versions.get(type, 1)

    def upcast(self, data: Mapping[str, Any], version: int) -> dict[str, Any]:
        """``data`` (stored at schema ``version``; its type in ``data["type"]``, or
        ``type`` for data that does not carry one) as today's model reads it.

        Raises :class:`UpcastError` for a version newer than today's, or a missing step.
        """
        out = dict(data)
        type = str(out.get("type", ""))
        return self._walk(type, version, out)[1]

    def upcast_typed(self, type: str, data: Mapping[str, Any],
                     version: int) -> tuple[str, dict[str, Any]]:
        """Like :meth:`upcast`, for data whose type is kept beside it (an envelope's
        ``type``, a signal's evidence): returns the type and the data, both current."""
        return self._walk(type, version, dict(data))

    def _walk(self, type: str, version: int,
              data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if version < 1:
            raise UpcastError(type, version, "schema versions start at 1")
        target = self.current(type)
        while version < target or (type, version) in self.steps:
            step = self.steps.get((type, version))
            if step is None:
                raise UpcastError(type, version, f"no step to version {version + 1}; "
                                  "add one to workflows/upcast.py STEPS")
            try:
                data = step(data)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise UpcastError(type, version, f"the step to version {version + 1} "
                                  f"cannot read this data ({exc!r})") from exc
            version += 1
            type = str(data.get("type", type))
            target = self.current(type)
        if version > target:
            raise UpcastError(type, version, f"newer than this code knows (version {target}); "
                              "run the ECC release that wrote it")
        return type, data

    def check(self) -> list[str]:
        """Problems with the table: a type whose chain from some version does not reach
        today's version. Empty when every stored version of every type can be read."""
        problems = []
        retired = {t for t, _ in self.steps if t not in self.current_versions}
        starts = [(t, v) for t, top in self.current_versions.items()
                  for v in range(self.first.get(t, 1), top + 1)]
        starts += [(t, v) for t, v in self.steps if t in retired]
        for type, version in starts:
            try:
                end, data = self._walk(type, version, {"type": type})
            except UpcastError as exc:
                problems.append(str(exc))
                continue
            if end not in self.current_versions:
                problems.append(f"event {type!r} at version {version} ends as {end!r}, "
                                "which is no type of today's")
            elif data.get("type", end) != end:
                problems.append(f"event {type!r} at version {version}: data type mismatch")
        return problems


EVENTS = Upcasters(CURRENT, STEPS, FIRST)


def current(type: str) -> int:
    """The schema version an event of ``type`` is written at today."""
    return EVENTS.current(type)


def upcast(data: Mapping[str, Any], version: int) -> dict[str, Any]:
    """Stored event ``data`` at schema ``version``, as today's models read it."""
    return EVENTS.upcast(data, version)


class Reader(Generic[E]):
    """Stored events of one union (a stream kind's events), read the only right way:
    through the upcasters, then validated against today's models."""

    def __init__(self, union: Any, upcasters: Upcasters | None = None) -> None:
        self._adapter: TypeAdapter[E] = TypeAdapter(union)
        self._upcasters = upcasters  # None: the service's own table, :data:`EVENTS`

    def read(self, data: Mapping[str, Any], schema_version: int) -> E:
        """The event stored as ``data`` at ``schema_version``, as today's model.

        Raises :class:`UpcastError` or :class:`pydantic.ValidationError`."""
        table = self._upcasters or EVENTS
        return self._adapter.validate_python(table.upcast(data, schema_version))


# The readers of the three stream kinds a decider owns; signal evidence is read by its
# envelope (command.model.RecordedEvent), which upcasts on validation.
incident_event: Reader[incidents.AnyIncidentEvent] = Reader(incidents.IncidentEvent)
unit_event: Reader[units.AnyUnitEvent] = Reader(units.UnitEvent)
alert_event: Reader[alerts.AlertEvent] = Reader(alerts.AnyAlertEvent)
