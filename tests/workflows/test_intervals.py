"""Response-time intervals of one incident, from small literal event lists checked by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workflows import incident as inc
from workflows.catalogue import Catalogue
from workflows.geo import Location
from workflows.incident_messages import (
    AnyIncidentEvent,
    IncidentReclassified,
    IncidentReported,
    IncidentVerified,
    PriorityChanged,
    StatusChanged,
    TaskCancelled,
    TaskCreated,
    TaskMoved,
    TaskOffered,
    TaskReturned,
)
from workflows.intervals import Measure, measure

T0 = datetime(2026, 7, 20, 2, 0, tzinfo=UTC)
HERE = Location(lat=34.75, lon=113.62)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def reported(at: float = 0, **kw: object) -> IncidentReported:
    fields: dict[str, object] = {"incident_id": "i1", "signal_id": "s1", "source": "hotline",
                                 "category": "fire", "priority": 2, "location": HERE,
                                 "summary": "smoke"}
    fields.update(kw)
    return IncidentReported(at=t(at), **fields)  # type: ignore[arg-type]


def created(task_id: str, agency: str, capability: str, at: float = 0) -> TaskCreated:
    return TaskCreated(at=t(at), task_id=task_id, agency=agency, capability=capability)


def offered(task_id: str, unit_id: str, at: float) -> TaskOffered:
    return TaskOffered(at=t(at), task_id=task_id, unit_id=unit_id, by="dispatcher")


def moved(task_id: str, status: str, at: float) -> TaskMoved:
    return TaskMoved(at=t(at), task_id=task_id, status=status)  # type: ignore[arg-type]


def table(measures: list[Measure]) -> list[tuple[str, float, str, str | None]]:
    return [(m.interval, m.seconds, m.agency, m.unit_id) for m in measures]


def test_a_fire_from_call_to_two_units_on_scene() -> None:
    """Received at 0, verified at 20, engine offered at 35 (en route 110, on scene 290),
    ambulance offered at 40 (en route 95, on scene 250): call processing 35 s by fire,
    turnouts 75 s and 55 s, travel and total response of the ambulance (first on
    scene: 155 s and 250 s), first engine's travel 180 s."""
    events: list[AnyIncidentEvent] = [
        reported(0),
        IncidentVerified(at=t(20), by="system", reason="two sources"),
        created("t1", "fire", "engine", 20), created("t2", "health", "als", 20),
        offered("t1", "E11", 35), offered("t2", "A11", 40),
        moved("t2", "en_route", 95), moved("t1", "en_route", 110),
        moved("t2", "on_scene", 250), moved("t1", "on_scene", 290),
        moved("t2", "completed", 900),
    ]
    assert table(measure(events)) == [
        ("verification", 20.0, "", None),
        ("call_processing", 35.0, "fire", "E11"),
        ("turnout", 75.0, "fire", "E11"),
        ("turnout", 55.0, "health", "A11"),
        ("travel", 155.0, "health", "A11"),
        ("travel_first_engine", 180.0, "fire", "E11"),
        ("total_response", 250.0, "health", "A11"),
    ]
    assert {(m.incident_id, m.category, m.priority) for m in measure(events)} == {
        ("i1", "fire", "P2")}


def test_an_incident_never_verified_gives_nothing_but_no_zero() -> None:
    """Reported and left alone, or cancelled while reported: no measures at all."""
    assert measure([reported(0)]) == []
    assert measure([reported(0), StatusChanged(at=t(900), status="cancelled",
                                               previous="reported", by="desk",
                                               reason="false alarm")]) == []


def test_a_declined_offer_is_the_first_dispatch_but_has_no_turnout() -> None:
    """E11 declines the offer made at 30; E12 is offered at 50 and turns out at 120:
    call processing is 30 s (E11's order went out), the one turnout is E12's 70 s."""
    events: list[AnyIncidentEvent] = [
        reported(0), IncidentVerified(at=t(10), by="system", reason="sure"),
        created("t1", "fire", "engine", 10), offered("t1", "E11", 30),
        TaskReturned(at=t(45), task_id="t1", unit_id="E11", why="declined"),
        offered("t1", "E12", 50), moved("t1", "en_route", 120),
        moved("t1", "on_scene", 300),
    ]
    assert table(measure(events)) == [
        ("verification", 10.0, "", None),
        ("call_processing", 30.0, "fire", "E11"),
        ("turnout", 70.0, "fire", "E12"),
        ("travel", 180.0, "fire", "E12"),
        ("travel_first_engine", 180.0, "fire", "E12"),
        ("total_response", 300.0, "fire", "E12"),
    ]


def test_a_unit_that_never_went_en_route_has_no_turnout_and_no_travel() -> None:
    """An ambulance reports on scene straight from its offer (at 200): no turnout and no
    travel, but it is still the first on scene for total response (200 s)."""
    events: list[AnyIncidentEvent] = [
        reported(0, category="medical"), IncidentVerified(at=t(5), by="system", reason="x"),
        created("t1", "health", "als", 5), offered("t1", "A11", 15),
        moved("t1", "on_scene", 200),
    ]
    assert table(measure(events)) == [
        ("verification", 5.0, "", None),
        ("call_processing", 15.0, "health", "A11"),
        ("total_response", 200.0, "health", "A11"),
    ]


def test_a_cancelled_incident_keeps_the_steps_it_reached() -> None:
    """Cancelled while its engine drives (en route at 100): verification, call processing
    and turnout stand; travel and total response do not exist."""
    events: list[AnyIncidentEvent] = [
        reported(0), IncidentVerified(at=t(60), by="desk", reason="verified by a person"),
        created("t1", "fire", "engine", 60), offered("t1", "E11", 70),
        moved("t1", "en_route", 100),
        TaskCancelled(at=t(130), task_id="t1", unit_id="E11", reason="incident cancelled"),
        StatusChanged(at=t(130), status="cancelled", previous="responding", by="desk",
                      reason="false alarm"),
    ]
    assert table(measure(events)) == [
        ("verification", 60.0, "", None),
        ("call_processing", 70.0, "fire", "E11"),
        ("turnout", 30.0, "fire", "E11"),
    ]


def test_a_reassigned_task_times_each_unit_from_its_own_offer() -> None:
    """E11 turns out (offer 10, en route 90) and is reassigned at 100 to E12 (en route
    140, on scene 260): two turnouts, 80 s and 40 s; E11's later moves are not its own."""
    events: list[AnyIncidentEvent] = [
        reported(0), IncidentVerified(at=t(5), by="system", reason="x"),
        created("t1", "fire", "engine", 5), offered("t1", "E11", 10),
        moved("t1", "en_route", 90),
        TaskReturned(at=t(100), task_id="t1", unit_id="E11", why="reassigned", reason="closer"),
        offered("t1", "E12", 100), moved("t1", "en_route", 140), moved("t1", "on_scene", 260),
    ]
    assert table(measure(events)) == [
        ("verification", 5.0, "", None),
        ("call_processing", 10.0, "fire", "E11"),
        ("turnout", 80.0, "fire", "E11"),
        ("turnout", 40.0, "fire", "E12"),
        ("travel", 120.0, "fire", "E12"),
        ("travel_first_engine", 120.0, "fire", "E12"),
        ("total_response", 260.0, "fire", "E12"),
    ]


def test_the_incident_is_grouped_as_its_record_ends_and_a_split_has_no_received_time() -> None:
    """A reclassified, reprioritised incident reports under its last type and priority;
    an incident split off another gives turnout and travel but nothing from 'received'."""
    base: list[AnyIncidentEvent] = [
        IncidentVerified(at=t(10), by="system", reason="x"),
        IncidentReclassified(at=t(12), category="hazmat", previous="fire", by="desk",
                             reason="a tanker"),
        PriorityChanged(at=t(13), priority=1, previous=2, by="desk", reason="worse"),
        created("t1", "fire", "engine", 13), offered("t1", "E11", 20),
        moved("t1", "en_route", 90), moved("t1", "on_scene", 200),
    ]
    whole = measure([reported(0), *base])
    assert {(m.category, m.priority) for m in whole} == {("hazmat", "P1")}
    split = measure([reported(0, split_from="i0"), *base])
    assert [m.interval for m in split] == ["turnout", "travel", "travel_first_engine"]


def test_a_crew_clock_behind_gives_a_negative_measure_as_it_is() -> None:
    """An en route stamped before the offer is returned negative (the report drops it and
    counts it), and a stream that does not start with its report gives nothing."""
    events: list[AnyIncidentEvent] = [
        reported(0), created("t1", "police", "patrol", 0), offered("t1", "P11", 30),
        moved("t1", "en_route", 25),
    ]
    assert table(measure(events))[-1] == ("turnout", -5.0, "police", "P11")
    assert measure(events[1:]) == []


def test_the_deciders_own_events_measure_as_expected(catalogue: Catalogue) -> None:
    """Through the real decider: a sure gas leak verifies and plans at once (0 s), the gas
    crew is offered at 12, accepts at 20, is en route at 140 and on scene at 400."""
    def run(state: inc.Incident | None, command: inc.AnyIncidentCommand,
            log: list[AnyIncidentEvent]) -> inc.Incident:
        events, after = inc.step(state, command, catalogue)
        log += events
        assert after is not None
        return after

    log: list[AnyIncidentEvent] = []
    state = run(None, inc.ReportIncident(
        at=t(0), incident_id="i9", signal_id="s9", source="sensor", category="gas_leak",
        location=HERE, confidence=0.95), log)
    state = run(state, inc.OfferTask(at=t(12), task_id="t1", unit_id="G11"), log)
    state = run(state, inc.AcceptTask(at=t(20), task_id="t1", unit_id="G11"), log)
    state = run(state, inc.TaskEnRoute(at=t(140), task_id="t1"), log)
    run(state, inc.TaskOnScene(at=t(400), task_id="t1"), log)
    assert table(measure(log)) == [
        ("verification", 0.0, "", None),
        ("call_processing", 12.0, "utility", "G11"),
        ("turnout", 128.0, "utility", "G11"),
        ("travel", 260.0, "utility", "G11"),
        ("total_response", 400.0, "utility", "G11"),
    ]
