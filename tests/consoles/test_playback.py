"""The pure core of playback: the picture at a moment folded from events, the period's
events as the live feed shows them, and the period's arguments."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from command.model import RecordedEvent
from consoles.authz import CONSOLE_ROLES, authorize
from consoles.playback import Period, period_events, picture_at
from workflows.geo import Location
from workflows.incident_messages import IncidentReported, StatusChanged
from workflows.unit import UnitMoved, UnitRegistered

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
_seq = iter(range(1, 10_000))


def rec(stream_id: str, version: int, event: Any, at: datetime) -> RecordedEvent:
    return RecordedEvent(seq=next(_seq), event_id=str(uuid.uuid4()), stream_id=stream_id,
                         version=version, type=event.type,
                         data=event.model_dump(mode="json"), actor="test", recorded_at=at)


def reported(incident_id: str, at: datetime, version: int = 1) -> RecordedEvent:
    return rec(f"incident:{incident_id}", version, IncidentReported(
        at=at, incident_id=incident_id, signal_id=f"s-{incident_id}", source="hotline",
        category="fire", priority=2, location=Location(lat=34.75, lon=113.62),
        summary="smoke"), at)


def status(incident_id: str, version: int, to: str, was: str, at: datetime) -> RecordedEvent:
    return rec(f"incident:{incident_id}", version,
               StatusChanged(at=at, status=to, previous=was, by="d"), at)  # type: ignore[arg-type]


def test_an_incident_open_at_from_is_there_as_it_was_then() -> None:
    """Reported and verified before ``from``, resolved after: open at ``from``, verified,
    at the version it had then."""
    m = timedelta(minutes=1)
    events = [reported("a", T0), status("a", 2, "verified", "reported", T0 + m),
              status("a", 3, "resolved", "verified", T0 + 10 * m)]
    picture = picture_at(events, T0 + 5 * m)
    [view] = picture["incidents"]
    assert view["incident_id"] == "a" and view["status"] == "verified"
    assert view["version"] == 2
    assert picture_at(events, T0 + 10 * m)["incidents"] == []  # resolved by then


def test_an_incident_closed_before_from_or_reported_after_is_absent() -> None:
    m = timedelta(minutes=1)
    events = [reported("gone", T0), status("gone", 2, "cancelled", "reported", T0 + m),
              reported("later", T0 + 9 * m), reported("open", T0 + 2 * m)]
    picture = picture_at(events, T0 + 5 * m)
    assert [v["incident_id"] for v in picture["incidents"]] == ["open"]


def test_a_units_status_at_from() -> None:
    m = timedelta(minutes=1)
    events = [
        rec("unit:E1", 1, UnitRegistered(at=T0, unit_id="E1", call_sign="Engine 1",
                                         agency="fire", capabilities=("engine",),
                                         status="available"), T0),
        rec("unit:E1", 2, UnitMoved(at=T0 + 2 * m, status="out_of_service",
                                    previous="available"), T0 + 2 * m),
        rec("unit:E1", 3, UnitMoved(at=T0 + 8 * m, status="available",
                                    previous="out_of_service"), T0 + 8 * m),
        rec("unit:A2", 1, UnitRegistered(at=T0 + 9 * m, unit_id="A2", call_sign="Amb 2",
                                         agency="health", capabilities=("als",),
                                         status="available"), T0 + 9 * m),
    ]
    [unit] = picture_at(events, T0 + 5 * m)["units"]
    assert unit["unit_id"] == "E1" and unit["status"] == "out_of_service"
    assert [u["status"] for u in picture_at(events, T0 + 9 * m)["units"]] == [
        "available", "available"]


def test_period_events_are_what_the_live_feed_shows_in_seq_order_and_capped() -> None:
    m = timedelta(minutes=1)
    signal = RecordedEvent(seq=next(_seq), event_id=str(uuid.uuid4()), stream_id="signal:x",
                           version=1, type="signal.received",
                           data={"reporter": {"name": "Ann", "phone": "123"}}, actor="t",
                           recorded_at=T0)
    timer = RecordedEvent(seq=next(_seq), event_id=str(uuid.uuid4()), stream_id="incident:b",
                          version=9, type="timer.fired", data={}, actor="t", recorded_at=T0)
    one, two = reported("b", T0 + m), status("b", 2, "verified", "reported", T0 + 2 * m)
    kept, truncated = period_events([two, signal, timer, one])
    assert [e["seq"] for e in kept] == [one.seq, two.seq] and not truncated
    assert "Ann" not in str(kept)
    kept, truncated = period_events([two, one], limit=1)
    assert [e["seq"] for e in kept] == [one.seq] and truncated


@pytest.mark.parametrize(("args", "says"), [
    ({"from": "2026-03-01T10:00:00Z", "to": "2026-03-01T09:00:00Z"}, "before"),
    ({"from": "2026-03-01T10:00:00Z", "to": "2026-03-02T10:00:01Z"}, "24 hours"),
    ({"from": "2026-03-01T10:00:00", "to": "2026-03-01T11:00:00"}, "timezone"),
    ({"from": "yesterday", "to": "2026-03-01T11:00:00Z"}, "from"),
    ({"to": "2026-03-01T11:00:00Z"}, "from"),
])
def test_a_bad_period_is_refused_with_a_reason(args: dict[str, str], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        Period.model_validate(args)


def test_a_good_period() -> None:
    p = Period.model_validate({"from": "2026-03-01T10:00:00Z", "to": "2026-03-01T11:00:00+00:00"})
    assert p.end - p.start == timedelta(hours=1)


def test_who_may_play_back() -> None:
    """The desks and those who watch them may read the past; a crew's console may not."""
    allowed = {r for r in CONSOLE_ROLES if authorize(r, None, "history.period").allowed}
    assert allowed == {"viewer", "call_taker", "dispatcher", "supervisor", "admin"}
    refused = authorize("field_unit", None, "history.period")
    assert not refused.allowed and "may not history period" in refused.reason
