"""Stored events' schema versions and upcasters (workflows/upcast.py): every event type has
a version, every chain reaches it, and an old shape reads as today's model."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from command.model import RecordedEvent
from workflows import alert, incident, unit, upcast
from workflows.incident import IncidentReclassified
from workflows.upcast import Reader, UpcastError, Upcasters


def members(union: Any) -> list[type[BaseModel]]:
    if isinstance(union, type) and issubclass(union, BaseModel):
        return [union]
    return [m for arg in typing.get_args(union) for m in members(arg)]


UNIONS = {"incident": incident.IncidentEvent, "unit": unit.UnitEvent, "alert": alert.AlertEvent}
STORED = {str(m.model_fields["type"].default) for u in UNIONS.values() for m in members(u)}

# An old shape, as a release before a rename would have stored it: version 1 of
# incident.reclassified said ``from``/``to``; today's model says ``previous``/``category``.
OLD_RECLASSIFIED = json.loads("""{"type": "incident.reclassified",
    "at": "2026-07-20T02:10:00+00:00", "from": "fire", "to": "flood",
    "by": "desk-1", "reason": "water, not smoke"}""")


def rename_from_to(data: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in data.items() if k not in ("from", "to")}
    return {**out, "previous": data["from"], "category": data["to"]}


RENAMED = Upcasters({**upcast.CURRENT, "incident.reclassified": 2},
                    {("incident.reclassified", 1): rename_from_to})
RENAMED_READER: Reader[incident.AnyIncidentEvent] = Reader(incident.IncidentEvent, RENAMED)


def test_every_event_of_every_union_has_a_current_version() -> None:
    """Each event type a stream can hold (the three unions and the signals' evidence) is
    named in CURRENT, and CURRENT names nothing else."""
    assert len(STORED) >= 30
    assert set(upcast.CURRENT) == STORED | {"signal.received"}
    assert all(v >= 1 for v in upcast.CURRENT.values())


def test_every_chain_reaches_the_current_version() -> None:
    """From every version of every type, the service's steps reach today's version."""
    assert upcast.EVENTS.check() == []
    for type, version in upcast.CURRENT.items():
        for old in range(1, version + 1):
            assert upcast.EVENTS.upcast_typed(type, {"type": type}, old)[0] == type


def test_a_gap_in_a_chain_is_found() -> None:
    """A type moved to version 3 with only the step from 1 is reported, as is a rename
    into a type that does not exist."""
    gap = Upcasters({"incident.verified": 3}, {("incident.verified", 1): lambda d: d})
    assert any("no step to version 3" in p for p in gap.check())
    lost = Upcasters({"incident.verified": 1},
                     {("incident.checked", 1): lambda d: {**d, "type": "incident.gone"}})
    assert any("incident.gone" in p for p in lost.check())


def test_an_old_shape_reads_as_todays_model() -> None:
    """A version-1 event recorded as JSON, read through a real upcaster, is today's model;
    read without it, it is refused."""
    reader = RENAMED_READER
    event = reader.read(OLD_RECLASSIFIED, 1)
    assert event == IncidentReclassified(at=datetime(2026, 7, 20, 2, 10, tzinfo=UTC),
                                         category="flood", previous="fire", by="desk-1",
                                         reason="water, not smoke")
    assert reader.read(event.model_dump(mode="json"), 2) == event  # today's passes through
    with pytest.raises(ValidationError):
        upcast.incident_event.read(OLD_RECLASSIFIED, 1)


def test_an_envelope_from_the_bus_is_upcast(monkeypatch: pytest.MonkeyPatch) -> None:
    """An envelope at version 1 (or with no version, as before 0008) comes out with
    today's data and says it is at today's version."""
    monkeypatch.setattr(upcast, "EVENTS", RENAMED)
    raw = {"seq": 7, "event_id": "e1", "stream_id": "incident:i1", "version": 3,
           "type": "incident.reclassified", "data": OLD_RECLASSIFIED, "actor": "desk-1",
           "recorded_at": "2026-07-20T02:10:00+00:00"}
    for envelope in (raw, {**raw, "schema_version": 1}):
        event = RecordedEvent.model_validate_json(json.dumps(envelope))
        assert event.schema_version == 2
        assert event.data["previous"] == "fire" and "from" not in event.data
        assert upcast.incident_event.read(event.data, event.schema_version).category == "flood"


def test_a_step_may_rename_the_type() -> None:
    """A type renamed at version 1 continues under its new name from version 2."""
    table = Upcasters({"incident.checked": 2},
                      {("incident.verified", 1): lambda d: {**d, "type": "incident.checked"}},
                      {"incident.checked": 2})
    assert table.check() == []
    assert table.upcast({"type": "incident.verified", "by": "x"}, 1) == {
        "type": "incident.checked", "by": "x"}


def test_a_version_from_the_future_is_refused() -> None:
    """Data written by a newer release says which release to run, and is not guessed at."""
    with pytest.raises(UpcastError, match="newer than this code knows"):
        upcast.upcast({"type": "incident.verified"}, 2)
    with pytest.raises(ValidationError):
        RecordedEvent.model_validate({
            "seq": 1, "event_id": "e", "stream_id": "incident:i", "version": 1,
            "type": "incident.verified", "data": {}, "actor": "a",
            "recorded_at": "2026-07-20T02:10:00+00:00", "schema_version": 9})


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda c: st.lists(c, max_size=3)
                           | st.dictionaries(st.text(max_size=8), c, max_size=3), max_leaves=8)


@given(data=st.dictionaries(st.sampled_from(["type", "from", "to", "at", "x"]) | st.text(),
                            json_values, max_size=5),
       type=st.sampled_from(["incident.reclassified", "incident.verified", "nope", ""]),
       version=st.integers(min_value=-3, max_value=5))
def test_garbage_is_upcast_or_refused_by_name(data: dict[str, Any], type: str,
                                              version: int) -> None:
    """Whatever data and version a row holds, the upcasters give a dict or an UpcastError,
    and a reader an event or a ValidationError/UpcastError, never anything else."""
    data = {**data, "type": type}
    try:
        out = RENAMED.upcast(data, version)
    except UpcastError:
        assert version != 1 or type == "incident.reclassified"
        return
    assert isinstance(out, dict)
    try:
        RENAMED_READER.read(data, version)
    except (ValidationError, UpcastError):
        pass


@given(envelope=st.dictionaries(st.sampled_from(["seq", "event_id", "stream_id", "version",
                                                 "type", "data", "actor", "recorded_at",
                                                 "schema_version"]), json_values))
def test_garbage_envelopes_are_refused(envelope: dict[str, Any]) -> None:
    """An envelope of garbage is a ValidationError, never another exception."""
    with pytest.raises(ValidationError):
        RecordedEvent.model_validate(envelope)
