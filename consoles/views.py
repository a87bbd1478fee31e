"""Shell: the view each delta carries, folded with the core's own ``evolve``.

A console replaces its copy of an incident, unit or desk alert with the view a delta
carries; it folds nothing itself (one fold, the core's, instead of a JavaScript copy
that silently skipped what it did not know). The view is the stream's state after the
delta's event, dumped as the projection stores it, so it is what a snapshot taken at
that seq holds for the stream. Incident views also carry what the core would take now
(:func:`console_view`): ``actions`` and ``task_actions``.

:class:`Views` keeps each stream's state as of the last event it folded. An event that
follows it (version + 1) is folded in memory; any other (the first one seen of a
stream, one after a gap) folds the stream again from the store, up to that version.
The gateway keeps one for the live feed; a resume folds the events it sends with a
fresh one. Views carry no caller's personal data (a signal's reference, never its
reporter), so one view serves every role, as one snapshot does.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

from pydantic import ValidationError

from command.model import RecordedEvent
from consoles.registry import view_actions
from workflows import alert as alerts
from workflows import incident as incidents
from workflows import unit as units
from workflows.upcast import Reader, alert_event, incident_event, unit_event

# Each stream kind a console shows: (evolve, event reader, whether to keep it in memory).
_FOLDS: dict[str, tuple[Any, Reader[Any], Any]] = {
    "incident": (incidents.evolve, incident_event, incidents.is_open),
    "unit": (units.evolve, unit_event, lambda _: True),
    "alert": (alerts.evolve, alert_event, lambda s: s.status == "open"),
}
# Streams whose state is kept between events (incidents and alerts leave when they end).
MEMORY = 20_000


class StreamReader(Protocol):
    async def read_stream(self, stream_id: str) -> list[RecordedEvent]: ...


def kind_of(stream_id: str) -> str:
    return stream_id.partition(":")[0]


def has_view(stream_id: str) -> bool:
    """Whether a stream's deltas carry a view (incidents, units, desk alerts)."""
    return kind_of(stream_id) in _FOLDS


def console_view(kind: str, view: dict[str, Any], state: Any = None) -> dict[str, Any]:
    """A view as consoles get it: an incident's with the commands its state takes now
    (``actions``: incident-wide console commands; ``task_actions``: by task id). ``state``
    is the view's model when the caller has it (else it is read from ``view``)."""
    if kind != "incident":
        return view
    if state is None:
        try:
            state = incidents.Incident.model_validate(view)
        except ValidationError:  # a row the core cannot read offers nothing (it would refuse)
            return {**view, "actions": [], "task_actions": {}}
    actions, by_task = view_actions(state)
    return {**view, "actions": actions, "task_actions": by_task}


def snapshot_views(incidents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A snapshot's incident views (projection rows) as consoles get them."""
    return [console_view("incident", v) for v in incidents]


class Views:
    """Each stream's state as of the last event folded: see the module docstring."""

    def __init__(self, store: StreamReader, memory: int = MEMORY) -> None:
        self.store = store
        self.memory = memory
        self._states: OrderedDict[str, tuple[int, Any]] = OrderedDict()

    async def after(self, event: RecordedEvent) -> dict[str, Any] | None:
        """The console view of ``event``'s stream after it; None for a stream without one.

        Raises what the store raises when the stream must be read again."""
        kind = kind_of(event.stream_id)
        if kind not in _FOLDS:
            return None
        evolve, reader, keep = _FOLDS[kind]
        held = self._states.pop(event.stream_id, None)
        if held is not None and held[0] == event.version - 1:
            state = evolve(held[1], reader.read(event.data, event.schema_version))
        else:
            state = await self._fold(event.stream_id, event.version)
            if state is None:  # the store has no such stream (cannot be, after commit)
                return None
        if keep(state):
            self._states[event.stream_id] = (event.version, state)
            while len(self._states) > self.memory:
                self._states.popitem(last=False)
        return console_view(kind, state.model_dump(mode="json"), state)

    async def _fold(self, stream_id: str, version: int) -> Any:
        """The stream's state at ``version``, folded from the store."""
        evolve, reader, _ = _FOLDS[kind_of(stream_id)]
        state: Any = None
        for e in await self.store.read_stream(stream_id):
            if e.version > version:
                break
            state = evolve(state, reader.read(e.data, e.schema_version))
        return state
