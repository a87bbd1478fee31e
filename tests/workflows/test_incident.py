"""The incident decider: plain calls, no loop, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflows import Incident, IncidentReported, Rejected, ReportIncident, decide, evolve, fold
from workflows.geo import Location
from workflows.incident import DEFAULT_PRIORITY, FALLBACK_PRIORITY, is_open

AT = datetime(2026, 7, 20, 8, 30, tzinfo=UTC)


def report(**overrides: object) -> ReportIncident:
    fields: dict[str, object] = {
        "incident_id": "inc-1",
        "signal_id": "sig-1",
        "source": "hotline",
        "category": "fire",
        "location": Location(lat=34.75, lon=113.62),
        "summary": "smoke",
        "at": AT,
    }
    fields.update(overrides)
    return ReportIncident(**fields)  # type: ignore[arg-type]


def test_report_raises_one_reported_event() -> None:
    """Reporting a new incident yields exactly one incident.reported with the command's facts."""
    [event] = decide(None, report())
    assert isinstance(event, IncidentReported)
    assert (event.incident_id, event.signal_id, event.category, event.at) == (
        "inc-1", "sig-1", "fire", AT)
    assert event.priority == DEFAULT_PRIORITY["fire"]


def test_unknown_category_gets_the_fallback_priority() -> None:
    """A category without a default priority starts at the fallback, not at 1 or 4."""
    [event] = decide(None, report(category="noise_complaint"))
    assert event.priority == FALLBACK_PRIORITY


def test_reporting_an_existing_incident_is_rejected_with_a_reason() -> None:
    """The decider refuses to report an incident twice and says why."""
    state = fold(decide(None, report()))
    with pytest.raises(Rejected) as info:
        decide(state, report())
    assert info.value.code == "already_exists"
    assert "inc-1" in info.value.reason


def test_evolve_builds_the_open_reported_incident() -> None:
    """Folding incident.reported gives an open incident carrying its first signal."""
    state = fold(decide(None, report()))
    assert isinstance(state, Incident)
    assert state.status == "reported"
    assert state.signal_ids == ("sig-1",)
    assert state.reported_at == AT
    assert is_open(state)


@given(
    lat=st.floats(min_value=-90, max_value=90),
    lon=st.floats(min_value=-180, max_value=180),
    summary=st.text(max_size=200),
    category=st.from_regex(r"^[a-z][a-z0-9_]{0,39}$", fullmatch=True),
)
def test_replay_of_the_log_gives_the_live_state(
    lat: float, lon: float, summary: str, category: str
) -> None:
    """evolve over decide's events equals folding the events serialised and read back."""
    command = report(location=Location(lat=lat, lon=lon), summary=summary, category=category)
    events = decide(None, command)
    live = fold(events)
    replayed = fold([IncidentReported.model_validate_json(e.model_dump_json()) for e in events])
    assert live == replayed
    assert live is not None and evolve(None, events[0]) == live
