"""Core: a period of the past, rebuilt from events, for the console's playback.

No I/O here. The shell (:meth:`consoles.commands.ConsoleCommands.query`) reads the
event store in one read-only transaction and hands the rows to these functions:
:func:`picture_at` folds every incident and unit stream up to the period's start with
the same ``evolve`` functions the engine uses (the picture as it was then), and
:func:`period_events` keeps what a console would have seen in the period, as the live
feed shows it, each with its stream's view after it (the console replaces, as it does
with live deltas, and folds nothing). Nothing here touches live state.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from command.model import RecordedEvent
from command.store import on_the_bus
from consoles.protocol import in_timeline
from consoles.views import console_view
from workflows import incident as incidents
from workflows import unit as units
from workflows.upcast import incident_event, unit_event

MAX_SPAN = timedelta(hours=24)
MAX_EVENTS = 20_000



class Period(BaseModel):
    """``history.period``'s args: ``from`` < ``to``, both with a timezone, at most a day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")

    @model_validator(mode="after")
    def _check(self) -> Period:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("from and to need a timezone (e.g. 2026-01-01T10:00:00Z)")
        if self.start >= self.end:
            raise ValueError("from must be before to")
        if self.end - self.start > MAX_SPAN:
            raise ValueError("a period is at most 24 hours; ask for a shorter one")
        return self


def states_at(events: Iterable[RecordedEvent], at: datetime) -> dict[str, tuple[int, Any]]:
    """Each incident and unit stream's (last seq, state) folded from its events recorded at
    or before ``at``, in version order, stopping at its first event recorded after ``at``;
    other streams (signals, timers' own) are ignored."""
    by_stream: dict[str, list[RecordedEvent]] = {}
    for e in events:
        if e.stream_id.startswith(("incident:", "unit:")):
            by_stream.setdefault(e.stream_id, []).append(e)
    found: dict[str, tuple[int, Any]] = {}
    for sid, stream in by_stream.items():
        state: Any = None
        last_seq = 0
        for e in sorted(stream, key=lambda x: x.version):
            if e.recorded_at > at:
                break
            state = _evolve(state, e)
            last_seq = e.seq
        if state is not None:
            found[sid] = (last_seq, state)
    return found


def _evolve(state: Any, e: RecordedEvent) -> Any:
    if e.stream_id.startswith("incident:"):
        return incidents.evolve(state, incident_event.read(e.data, e.schema_version))
    return units.evolve(state, unit_event.read(e.data, e.schema_version))


def picture_at(events: Iterable[RecordedEvent] | dict[str, tuple[int, Any]],
               at: datetime) -> dict[str, Any]:
    """The live picture as it was at ``at``: open incidents (ordered by their last seq, as
    the snapshot orders them) and all units, folded from their streams' events recorded at
    or before ``at`` (or given as :func:`states_at` found them), as consoles get views."""
    states = events if isinstance(events, dict) else states_at(events, at)
    found_incidents: list[tuple[int, dict[str, Any]]] = []
    found_units: list[dict[str, Any]] = []
    for sid, (last_seq, state) in states.items():
        if sid.startswith("incident:"):
            if incidents.is_open(state):
                found_incidents.append((last_seq, console_view(
                    "incident", state.model_dump(mode="json"), state)))
        else:
            found_units.append(state.model_dump(mode="json"))
    found_incidents.sort(key=lambda p: p[0])
    found_units.sort(key=lambda v: str(v["unit_id"]))
    return {"incidents": [v for _, v in found_incidents], "units": found_units}


def period_events(events: Iterable[RecordedEvent], limit: int = MAX_EVENTS,
                  start: dict[str, tuple[int, Any]] | None = None,
                  ) -> tuple[list[dict[str, Any]], bool]:
    """The events a console would have been sent, in seq order, as the live feed sends
    them (:func:`in_timeline`, callers' details withheld as on the bus); at most
    ``limit`` of them, and whether there were more. Given ``start`` (:func:`states_at`
    the period's start), each carries ``view``: its stream's view after it, as a live
    delta does (folded over every event given, timers' too, shown or not)."""
    kept: list[dict[str, Any]] = []
    states = {sid: state for sid, (_, state) in (start or {}).items()}
    for e in sorted(events, key=lambda x: x.seq):
        view: dict[str, Any] | None = None
        if start is not None and e.stream_id.startswith(("incident:", "unit:")):
            states[e.stream_id] = state = _evolve(states.get(e.stream_id), e)
            view = console_view(e.stream_id.partition(":")[0], state.model_dump(mode="json"),
                                state)
        if not in_timeline(e):
            continue
        if len(kept) >= limit:
            return kept, True
        shown = on_the_bus(e).model_dump(mode="json")
        kept.append(shown if start is None else {**shown, "view": view})
    return kept, False
