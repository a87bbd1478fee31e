"""Golden event histories: reading them, folding them, and the projections they fold to.

A history is a ``<name>.jsonl`` file of recorded events (one :class:`RecordedEvent` a
line, in seq order, as the store returns them), with ``<name>.expected.json`` beside it:
the incidents and units views the live service held when it was recorded. Reading goes
through the upcasters (the envelope's validation), folding through today's ``evolve``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from command.model import RecordedEvent
from workflows import alert as alerts
from workflows import incident as incidents
from workflows import unit as units
from workflows.upcast import alert_event, incident_event, unit_event

HERE = Path(__file__).parent
NAMES = sorted(p.name.removesuffix(".jsonl") for p in HERE.glob("*.jsonl"))


def read(name: str) -> list[RecordedEvent]:
    """The recorded events of history ``name``, upcast to today's schemas."""
    lines = (HERE / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [RecordedEvent.model_validate_json(line) for line in lines if line.strip()]


def expected(name: str) -> dict[str, dict[str, Any]]:
    """What history ``name`` folds to: ``{"incidents": {id: view}, "units": {id: view}}``."""
    return json.loads((HERE / f"{name}.expected.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def fold(events: list[RecordedEvent]) -> dict[str, dict[str, Any]]:
    """The incidents and units views ``events`` fold to with today's evolve functions."""
    states: dict[str, Any] = {}
    for e in sorted(events, key=lambda x: x.seq):
        kind = e.stream_id.partition(":")[0]
        if kind == "incident":
            states[e.stream_id] = incidents.evolve(states.get(e.stream_id),
                                                   incident_event.read(e.data, e.schema_version))
        elif kind == "unit":
            states[e.stream_id] = units.evolve(states.get(e.stream_id),
                                               unit_event.read(e.data, e.schema_version))
        elif kind == "alert":
            states[e.stream_id] = alerts.evolve(states.get(e.stream_id),
                                                alert_event.read(e.data, e.schema_version))
    return views(states)


def views(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {"incidents": {}, "units": {}}
    for sid, state in sorted(states.items()):
        kind, _, entity = sid.partition(":")
        if kind in ("incident", "unit"):
            out[f"{kind}s"][entity] = state.model_dump(mode="json")
    return out


def write(name: str, events: list[RecordedEvent], projections: dict[str, dict[str, Any]]) -> None:
    """Record history ``name`` (see docs/store.md for when that is right)."""
    with (HERE / f"{name}.jsonl").open("w", encoding="utf-8") as f:
        for e in sorted(events, key=lambda x: x.seq):
            f.write(e.model_dump_json() + "\n")
    (HERE / f"{name}.expected.json").write_text(
        json.dumps(projections, indent=1, sort_keys=True) + "\n", encoding="utf-8")
