# size: tests of workflows/incident.py, with its hypothesis state machine
"""The incident decider: every transition and every rejection, as plain calls."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from workflows import incident as inc
from workflows.catalogue import Catalogue
from workflows.geo import Location
from workflows.incident import (
    ALLOWED,
    TASK_ALLOWED,
    Incident,
    Rejected,
    decide,
    evolve,
    fold,
)

T0 = datetime(2026, 7, 20, 8, 30, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def report(**overrides: Any) -> inc.ReportIncident:
    fields: dict[str, Any] = {"incident_id": "i1", "signal_id": "s1", "source": "sensor",
                              "category": "fire", "location": Location(lat=34.75, lon=113.62),
                              "summary": "smoke", "confidence": 0.6, "at": T0}
    fields.update(overrides)
    return inc.ReportIncident(**fields)


def run(state: Incident | None, command: Any, cat: Catalogue) -> tuple[Incident, list[Any]]:
    events = decide(state, command, cat)
    after = fold(events, state)
    assert after is not None
    return after, events


def types(events: list[Any]) -> list[str]:
    return [e.type for e in events]


@pytest.fixture
def reported(catalogue: Catalogue) -> Incident:
    return run(None, report(), catalogue)[0]


@pytest.fixture
def dispatching(catalogue: Catalogue, reported: Incident) -> Incident:
    return run(reported, inc.VerifyIncident(at=at(10), by="desk 3"), catalogue)[0]


def offered(cat: Catalogue, state: Incident, task: str = "t1", unit: str = "E1",
            t: float = 20) -> Incident:
    return run(state, inc.OfferTask(at=at(t), task_id=task, unit_id=unit), cat)[0]


# --- report, attach, verify -------------------------------------------------------------


def test_report_schedules_the_verify_sla(catalogue: Catalogue) -> None:
    """A low-confidence report waits for verification, with its SLA timer running."""
    state, events = run(None, report(), catalogue)
    assert types(events) == ["incident.reported", "timer.scheduled"]
    assert state.status == "reported" and state.priority == 2
    assert events[1].kind == "verify" and events[1].due_at == at(60)


def test_a_sure_signal_is_verified_and_planned_at_once(catalogue: Catalogue) -> None:
    """Confidence at or above the catalogue's bar verifies and applies the plan."""
    state, events = run(None, report(confidence=0.95), catalogue)
    assert state.status == "dispatching"
    assert [(t.agency, t.capability) for t in state.tasks] == [
        ("fire", "engine"), ("fire", "engine"), ("fire", "ladder"), ("health", "als"),
        ("police", "cordon")]
    assert "timer.scheduled" in types(events)


def test_a_sensor_and_a_call_reach_dispatching_with_the_fire_plan(
    catalogue: Catalogue, reported: Incident
) -> None:
    """Two independent sources verify a fire: fire, health and police tasks are created."""
    state, events = run(reported, inc.AttachSignal(at=at(5), signal_id="call-1",
                                                   source="hotline"), catalogue)
    assert state.status == "dispatching"
    assert {t.agency for t in state.tasks} == {"fire", "health", "police"}
    assert "incident.verified" in types(events) and state.timers
    assert not any("/verify/" in t for t in state.timers)  # the verify SLA is cancelled


def test_attaching_a_signal_already_held_changes_nothing(
    catalogue: Catalogue, reported: Incident
) -> None:
    """The same evidence twice is not news."""
    assert decide(reported, inc.AttachSignal(at=at(1), signal_id="s1", source="sensor"),
                  catalogue) == []


def test_two_kinds_of_source_beat_five_of_one(catalogue: Catalogue) -> None:
    """Combined confidence counts each kind of source once: five callers at 0.6 stay 0.6,
    a caller and a camera at 0.6 make 0.84."""
    five = tuple(inc.SignalRef(signal_id=f"c{i}", source="hotline", confidence=0.6)
                 for i in range(5))
    two = (five[0], inc.SignalRef(signal_id="cam", source="camera", confidence=0.6))
    assert inc.combined_confidence(five) == pytest.approx(0.6)
    assert inc.combined_confidence(two) == pytest.approx(0.84)
    assert inc.combined_confidence(two) > inc.combined_confidence(five)


def test_a_wrongly_attached_signal_can_be_detached(catalogue: Catalogue,
                                                   reported: Incident) -> None:
    """Detach takes a signal off with who and why; the last signal cannot be detached."""
    s = run(reported, inc.AttachSignal(at=at(1), signal_id="s2", source="sensor",
                                       reason="120 m away"), catalogue)[0]
    s, events = run(s, inc.DetachSignal(at=at(2), signal_id="s2", reason="other building",
                                        by="d 4"), catalogue)
    assert s.signal_ids == ("s1",) and events[0].by == "d 4"
    with pytest.raises(Rejected) as info:
        decide(s, inc.DetachSignal(at=at(3), signal_id="s1", reason="x"), catalogue)
    assert info.value.code == "last_signal"


def test_a_second_signal_from_the_same_source_does_not_verify(
    catalogue: Catalogue, reported: Incident
) -> None:
    """Two sensors of one kind are one source: still waiting for a person."""
    state, _ = run(reported, inc.AttachSignal(at=at(1), signal_id="s2", source="sensor"),
                   catalogue)
    assert state.status == "reported" and len(state.signals) == 2


def test_reporting_an_existing_incident_is_rejected(catalogue: Catalogue,
                                                    reported: Incident) -> None:
    """An incident is reported once."""
    with pytest.raises(Rejected) as info:
        decide(reported, report(), catalogue)
    assert info.value.code == "already_exists"


def test_commands_on_an_unknown_incident_are_rejected(catalogue: Catalogue) -> None:
    """Anything but a report needs an incident."""
    with pytest.raises(Rejected, match="report it first"):
        decide(None, inc.VerifyIncident(at=T0), catalogue)


# --- the table, exhaustively ------------------------------------------------------------


def every_status(catalogue: Catalogue) -> dict[str, Incident]:
    """One incident in each status, reached through real commands."""
    out: dict[str, Incident] = {}
    s = run(None, report(), catalogue)[0]
    out["reported"] = s
    out["verified"] = s.model_copy(update={"status": "verified"})
    s = run(s, inc.VerifyIncident(at=at(1)), catalogue)[0]
    out["dispatching"] = s
    s = offered(catalogue, s)
    s = run(s, inc.AcceptTask(at=at(21), task_id="t1", unit_id="E1"), catalogue)[0]
    s = run(s, inc.TaskEnRoute(at=at(22), task_id="t1"), catalogue)[0]
    out["responding"] = s
    s = run(s, inc.TaskOnScene(at=at(30), task_id="t1"), catalogue)[0]
    out["on_scene"] = s
    s = run(s, inc.ControlIncident(at=at(40)), catalogue)[0]
    out["controlled"] = s
    s = run(s, inc.ResolveIncident(at=at(50)), catalogue)[0]
    out["resolved"] = s
    out["closed"] = run(s, inc.CloseIncident(at=at(60)), catalogue)[0]
    out["cancelled"] = run(out["reported"], inc.CancelIncident(at=at(2), reason="false alarm"),
                           catalogue)[0]
    out["merged"] = run(out["reported"], inc.MergeInto(at=at(2), target_id="i2"), catalogue)[0]
    return out


def sample_commands() -> list[Any]:
    a = at(100)
    return [
        inc.AttachSignal(at=a, signal_id="x", source="camera"), inc.VerifyIncident(at=a),
        inc.DetachSignal(at=a, signal_id="s1", reason="wrong event"),
        inc.Reclassify(at=a, category="hazmat"), inc.SetPriority(at=a, priority=1, reason="r"),
        inc.Escalate(at=a, reason="r"), inc.AddNote(at=a, text="n"),
        inc.LinkIncident(at=a, other_id="i9"), inc.MergeInto(at=a, target_id="i9"),
        inc.AbsorbMerge(at=a, source_id="i9", signals=()), inc.UndoMerge(at=a),
        inc.ReleaseMerge(at=a, source_id="i9"),
        inc.SplitOff(at=a, new_incident_id="i8", signal_ids=("s1",)),
        inc.CancelIncident(at=a, reason="r"), inc.ControlIncident(at=a),
        inc.ResolveIncident(at=a), inc.CloseIncident(at=a), inc.ReopenIncident(at=a, reason="r"),
        inc.OfferTask(at=a, task_id="t2", unit_id="E9"),
        inc.AcceptTask(at=a, task_id="t1", unit_id="E1"),
        inc.DeclineTask(at=a, task_id="t1", unit_id="E1"),
        inc.TaskEnRoute(at=a, task_id="t1"), inc.TaskOnScene(at=a, task_id="t1"),
        inc.CompleteTask(at=a, task_id="t1"), inc.CancelTask(at=a, task_id="t1", reason="r"),
        inc.FireTimer(at=a, timer_id="i1/verify/-/1.0"),
        inc.IssueWarning(at=a, headline="Gas leak", instruction="Stay away", radius_m=300),
        inc.EndWarning(at=a, reason="over"),
        inc.ReassignTask(at=a, task_id="t1", unit_id="E7", reason="closer unit"),
    ]


def test_the_table_covers_every_command() -> None:
    """Every command type has a row in the transition table; task commands in both."""
    assert {c.type for c in sample_commands()} | {"incident.report"} == set(ALLOWED) | {
        "incident.report"}
    assert set(TASK_ALLOWED) <= set(ALLOWED)


def test_every_command_in_every_status_decides_or_refuses_with_a_reason(
    catalogue: Catalogue,
) -> None:
    """Commands outside their statuses are refused (wrong_status); none ever crashes."""
    for status, state in every_status(catalogue).items():
        assert state.status == status
        for command in sample_commands():
            try:
                events = decide(state, command, catalogue)
            except Rejected as exc:
                assert exc.reason
                if status not in ALLOWED[command.type]:
                    assert exc.code == "wrong_status", (status, command.type)
                continue
            assert status in ALLOWED[command.type], (status, command.type)
            fold(events, state)  # and the events fold


def test_every_status_can_reach_closed() -> None:
    """The lifecycle has no dead end: from any status some path leads to closed."""
    edges = {
        "reported": {"verified", "cancelled", "merged", "dispatching"},
        "verified": {"dispatching", "resolved", "cancelled", "merged"},
        "dispatching": {"responding", "on_scene", "resolved", "cancelled", "merged"},
        "responding": {"on_scene", "controlled", "resolved", "cancelled", "merged"},
        "on_scene": {"controlled", "resolved", "cancelled", "merged"},
        "controlled": {"resolved", "merged"},
        "resolved": {"closed", "verified"},
        "closed": {"verified"},
        "cancelled": {"verified"},
        "merged": {"reported", "verified"},
    }
    # the edges must agree with the table of allowed commands
    assert "resolved" in edges["controlled"] and "controlled" in ALLOWED["incident.resolve"]
    assert ALLOWED["incident.close"] == {"resolved"}
    for start in edges:
        seen, todo = {start}, deque([start])
        while todo:
            for nxt in edges[todo.popleft()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        assert "closed" in seen, start


# --- tasks -------------------------------------------------------------------------------


def test_offer_accept_move_and_complete_a_task(catalogue: Catalogue,
                                               dispatching: Incident) -> None:
    """A task walks pending -> offered -> accepted -> en route -> on scene -> completed,
    and the incident follows: responding, then on scene."""
    s = offered(catalogue, dispatching)
    assert s.task("t1").status == "offered" and s.task("t1").unit_id == "E1"
    assert any("/ack/t1/" in t for t in s.timers) and any("/on_scene/" in t for t in s.timers)
    s = run(s, inc.AcceptTask(at=at(25), task_id="t1", unit_id="E1"), catalogue)[0]
    assert not any("/ack/t1/" in t for t in s.timers)
    s = run(s, inc.TaskEnRoute(at=at(26), task_id="t1"), catalogue)[0]
    assert s.status == "responding"
    s = run(s, inc.TaskOnScene(at=at(200), task_id="t1"), catalogue)[0]
    assert s.status == "on_scene" and not any("/on_scene/" in t for t in s.timers)
    s = run(s, inc.CompleteTask(at=at(900), task_id="t1"), catalogue)[0]
    assert s.task("t1").status == "completed" and s.status == "on_scene"


def test_one_on_scene_clock_per_incident(catalogue: Catalogue, dispatching: Incident) -> None:
    """Offered, declined and offered again: still one on-scene SLA timer, the first one."""
    s = offered(catalogue, dispatching)
    first = [t for t in s.timers if "/on_scene/" in t]
    s = run(s, inc.DeclineTask(at=at(21), task_id="t1", unit_id="E1"), catalogue)[0]
    s = offered(catalogue, s, unit="E2", t=22)
    assert [t for t in s.timers if "/on_scene/" in t] == first and len(first) == 1


def test_decline_returns_the_task_and_remembers_the_unit(catalogue: Catalogue,
                                                         dispatching: Incident) -> None:
    """A declined task is pending again; the unit that declined is not offered it again."""
    s = offered(catalogue, dispatching)
    s, events = run(s, inc.DeclineTask(at=at(21), task_id="t1", unit_id="E1",
                                       reason="low fuel"), catalogue)
    assert s.task("t1").status == "pending" and s.task("t1").passed_over == ("E1",)
    assert "timer.scheduled" in types(events)  # the pending SLA runs again
    with pytest.raises(Rejected) as info:
        decide(s, inc.OfferTask(at=at(22), task_id="t1", unit_id="E1"), catalogue)
    assert info.value.code == "passed_over"


@pytest.mark.parametrize(("command", "code"), [
    (inc.AcceptTask(at=T0, task_id="t1", unit_id="E2"), "not_offered"),
    (inc.DeclineTask(at=T0, task_id="t1", unit_id="E2"), "not_offered"),
    (inc.CompleteTask(at=T0, task_id="t1"), "wrong_task_status"),
    (inc.OfferTask(at=T0, task_id="t1", unit_id="E2"), "wrong_task_status"),
    (inc.OfferTask(at=T0, task_id="t2", unit_id="E1"), "unit_busy"),
    (inc.TaskEnRoute(at=T0, task_id="t99"), "unknown_task"),
])
def test_task_rejections(catalogue: Catalogue, dispatching: Incident, command: Any,
                         code: str) -> None:
    """Task commands out of turn are refused with a code and a reason."""
    s = offered(catalogue, dispatching)
    with pytest.raises(Rejected) as info:
        decide(s, command, catalogue)
    assert info.value.code == code and info.value.reason


def test_cancel_cancels_live_tasks_and_timers(catalogue: Catalogue,
                                              dispatching: Incident) -> None:
    """A cancelled incident keeps no live task and no timer."""
    s = offered(catalogue, dispatching)
    s, events = run(s, inc.CancelIncident(at=at(30), reason="false alarm", by="sup"), catalogue)
    assert s.status == "cancelled" and not inc.is_open(s) and s.close_reason == "false alarm"
    assert all(t.status == "cancelled" for t in s.tasks) and s.timers == ()
    cancelled = [e for e in events if e.type == "task.cancelled"]
    assert [e.unit_id for e in cancelled if e.unit_id] == ["E1"]


def test_resolve_then_close_then_reopen(catalogue: Catalogue, dispatching: Incident) -> None:
    """Resolve ends the tasks; close needs resolved; reopen plans again."""
    with pytest.raises(Rejected):
        decide(dispatching, inc.CloseIncident(at=at(40)), catalogue)
    s = run(dispatching, inc.ResolveIncident(at=at(40)), catalogue)[0]
    assert all(t.status == "cancelled" for t in s.tasks) and s.timers == ()
    s = run(s, inc.CloseIncident(at=at(50)), catalogue)[0]
    assert s.status == "closed"
    s = run(s, inc.ReopenIncident(at=at(60), reason="flare-up", by="sup"), catalogue)[0]
    assert s.status == "dispatching" and sum(t.status == "pending" for t in s.tasks) == 5


def test_priority_raise_adds_the_tasks_the_bigger_plan_needs(catalogue: Catalogue) -> None:
    """A P4 fire raised to P1 gets the P1 plan's missing units, recorded with who and why."""
    s = run(None, report(priority=4, confidence=0.95), catalogue)[0]
    assert len(s.tasks) == 1
    s, events = run(s, inc.SetPriority(at=at(5), priority=1, reason="people trapped",
                                       by="supervisor 1"), catalogue)
    assert s.priority == 1 and len(s.tasks) == 5
    change = events[0]
    assert (change.previous, change.by, change.reason) == (4, "supervisor 1", "people trapped")
    with pytest.raises(Rejected, match="already priority 1"):
        decide(s, inc.SetPriority(at=at(6), priority=1, reason="x"), catalogue)


def test_reclassify_adds_the_new_types_tasks(catalogue: Catalogue, dispatching: Incident) -> None:
    """A fire that turns out to be a gas leak gains the utility gas crew."""
    s = run(dispatching, inc.Reclassify(at=at(20), category="gas_leak", reason="smell"),
            catalogue)[0]
    assert ("utility", "gas_crew") in {(t.agency, t.capability) for t in s.tasks}


def test_merge_and_undo(catalogue: Catalogue, reported: Incident) -> None:
    """A merged incident leaves the picture and comes back on undo; the target takes its
    signals and gives them back."""
    s = run(reported, inc.MergeInto(at=at(5), target_id="i2", by="d"), catalogue)[0]
    assert s.status == "merged" and s.merged_into == "i2" and not inc.is_open(s)
    s = run(s, inc.UndoMerge(at=at(6), by="d"), catalogue)[0]
    assert s.status == "reported" and s.merged_into is None
    target = run(None, report(incident_id="i2", signal_id="s9"), catalogue)[0]
    target = run(target, inc.AbsorbMerge(at=at(5), source_id="i1", signals=reported.signals),
                 catalogue)[0]
    assert target.merged_from == ("i1",) and target.signal_ids == ("s9", "s1")
    target = run(target, inc.ReleaseMerge(at=at(6), source_id="i1"), catalogue)[0]
    assert target.merged_from == () and target.signal_ids == ("s9",)
    with pytest.raises(Rejected, match="was not merged"):
        decide(target, inc.ReleaseMerge(at=at(7), source_id="i1"), catalogue)
    with pytest.raises(Rejected, match="itself"):
        decide(reported, inc.MergeInto(at=at(5), target_id="i1"), catalogue)


def test_split_must_leave_a_signal(catalogue: Catalogue, reported: Incident) -> None:
    """Splitting off every signal, or one the incident lacks, is refused."""
    with pytest.raises(Rejected, match="at least one"):
        decide(reported, inc.SplitOff(at=at(1), new_incident_id="i3", signal_ids=("s1",)),
               catalogue)
    with pytest.raises(Rejected, match="not signals"):
        decide(reported, inc.SplitOff(at=at(1), new_incident_id="i3", signal_ids=("zz",)),
               catalogue)
    s = run(reported, inc.AttachSignal(at=at(1), signal_id="s2", source="sensor"), catalogue)[0]
    s = run(s, inc.SplitOff(at=at(2), new_incident_id="i3", signal_ids=("s2",)), catalogue)[0]
    assert s.signal_ids == ("s1",)


def test_link_note_escalate(catalogue: Catalogue, reported: Incident) -> None:
    """Links, notes and manual escalations are recorded with who; self-links are refused."""
    s = run(reported, inc.LinkIncident(at=at(1), other_id="i7"), catalogue)[0]
    assert s.links == ("i7",)
    assert decide(s, inc.LinkIncident(at=at(1), other_id="i7"), catalogue) == []
    with pytest.raises(Rejected):
        decide(s, inc.LinkIncident(at=at(1), other_id="i1"), catalogue)
    s = run(s, inc.AddNote(at=at(2), text="caller is deaf; text only", by="ct 2"), catalogue)[0]
    s = run(s, inc.Escalate(at=at(3), reason="school nearby", by="d 1"), catalogue)[0]
    assert s.notes == 1 and s.escalations[-1].rule == "manual" and s.escalations[-1].by == "d 1"


# --- timers ------------------------------------------------------------------------------


def timer(state: Incident, kind: str) -> str:
    return next(t for t in state.timers if f"/{kind}/" in t)


def test_verify_sla_escalates_an_unverified_incident(catalogue: Catalogue,
                                                     reported: Incident) -> None:
    """Unverified at 60 s: an escalation for supervisors, itself an event."""
    s, events = run(reported, inc.FireTimer(at=at(60), timer_id=timer(reported, "verify")),
                    catalogue)
    assert types(events) == ["timer.fired", "incident.escalated"]
    assert s.escalations[-1].rule == "verify_sla" and s.timers == ()


def test_ack_timeout_returns_the_task_and_escalates(catalogue: Catalogue,
                                                    dispatching: Incident) -> None:
    """A unit silent for 30 s loses the task (reassign) and supervisors are told."""
    s = offered(catalogue, dispatching)
    s, events = run(s, inc.FireTimer(at=at(50), timer_id=timer(s, "ack")), catalogue)
    assert "task.returned" in types(events) and "incident.escalated" in types(events)
    assert s.task("t1").status == "pending" and s.task("t1").passed_over == ("E1",)
    assert s.escalations[-1].rule == "ack_sla"


def test_pending_and_on_scene_slas_escalate(catalogue: Catalogue,
                                            dispatching: Incident) -> None:
    """A task with no unit, and no unit on scene in time, both escalate."""
    s, _ = run(dispatching, inc.FireTimer(at=at(40), timer_id=timer(dispatching,
                                                                           "task_pending")),
                    catalogue)
    assert s.escalations[-1].rule == "task_pending_sla"
    s = offered(catalogue, s, task="t2", unit="E2", t=41)
    s, _ = run(s, inc.FireTimer(at=at(400), timer_id=timer(s, "on_scene")), catalogue)
    assert s.escalations[-1].rule == "on_scene_sla"


def test_a_cancelled_or_fired_timer_does_nothing(catalogue: Catalogue,
                                                 reported: Incident) -> None:
    """A timer the incident no longer holds fires into nothing."""
    verify = timer(reported, "verify")
    s = run(reported, inc.VerifyIncident(at=at(5)), catalogue)[0]
    assert decide(s, inc.FireTimer(at=at(60), timer_id=verify), catalogue) == []


def test_a_timer_for_a_task_that_moved_on_only_records_the_firing(
    catalogue: Catalogue, dispatching: Incident
) -> None:
    """The ack SLA after the unit accepted is not an escalation."""
    s = offered(catalogue, dispatching)
    ack = timer(s, "ack")
    s = run(s, inc.AcceptTask(at=at(21), task_id="t1", unit_id="E1"), catalogue)[0]
    assert decide(s, inc.FireTimer(at=at(50), timer_id=ack), catalogue) == []


def test_events_round_trip_through_json(catalogue: Catalogue, dispatching: Incident) -> None:
    """What the store keeps (JSON) folds to the same state as the live events."""
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(inc.IncidentEvent)
    events = decide(None, report(confidence=0.95), catalogue)
    live = fold(events)
    replayed = fold([adapter.validate_json(e.model_dump_json()) for e in events])
    assert live == replayed and live is not None and evolve(None, events[0]).version == 1


# --- public warnings (CAP out) ------------------------------------------------------------

def test_a_public_warning_is_issued_updated_and_ends_with_the_incident(
        catalogue: Catalogue, dispatching: Incident) -> None:
    """Alert, then Update naming the Alert, then an automatic Cancel naming both when the
    incident is cancelled; each carries what the emitter needs (place, text, radius)."""
    warn = inc.IssueWarning(at=at(30), by="supervisor 1", headline="Gas leak on Jingsan Road",
                            instruction="Keep windows shut; do not use flames", radius_m=400,
                            expires_in_s=3600)
    state, events = run(dispatching, warn, catalogue)
    [alert] = events
    assert isinstance(alert, inc.PublicWarning)
    assert (alert.msg_type, alert.sequence, alert.references) == ("Alert", 1, ())
    assert alert.location == dispatching.location and alert.category == "fire"
    assert alert.certainty == "Observed" and alert.expires_at == at(3630)
    state, [update] = run(state, warn.model_copy(update={"radius_m": 800, "at": at(60)}),
                          catalogue)
    assert isinstance(update, inc.PublicWarning)
    assert (update.msg_type, update.sequence, update.radius_m) == ("Update", 2, 800)
    assert [r.sequence for r in update.references] == [1]
    state, events = run(state, inc.CancelIncident(at=at(90), reason="false alarm"), catalogue)
    [end] = [e for e in events if isinstance(e, inc.PublicWarning)]
    assert end.msg_type == "Cancel" and [r.sequence for r in end.references] == [1, 2]
    assert end.headline == "Gas leak on Jingsan Road" and "cancelled" in end.reason
    assert not state.warning_active
    with pytest.raises(Rejected) as refused:
        decide(state, inc.EndWarning(at=at(95), reason="again"), catalogue)
    assert refused.value.code == "no_warning"


def test_an_unverified_incident_warns_as_likely(catalogue: Catalogue,
                                                reported: Incident) -> None:
    _, [alert] = run(reported, inc.IssueWarning(at=at(5), headline="Smoke", instruction="Avoid",
                                                radius_m=200), catalogue)
    assert isinstance(alert, inc.PublicWarning) and alert.certainty == "Likely"


# --- per-type verification and corroboration ---------------------------------------------

def test_verification_thresholds_are_per_type(catalogue: Catalogue) -> None:
    """One medical call at 0.7 verifies (calls for an ambulance are acted on as they come);
    one fire call at 0.7 waits for corroboration; a water gauge at 0.8 verifies a flood."""
    medical, _ = run(None, report(category="medical", source="hotline", confidence=0.7),
                     catalogue)
    fire, _ = run(None, report(category="fire", source="hotline", confidence=0.7), catalogue)
    flood, _ = run(None, report(category="flood", confidence=0.8), catalogue)
    assert (medical.status, fire.status, flood.status) == ("dispatching", "reported",
                                                           "dispatching")


def test_corroboration_raises_the_priority_once_per_rule(catalogue: Catalogue) -> None:
    """A fire reported by a detector (P2) then confirmed by a camera and callers: the third
    kind of source raises it to P1, with the reason; the fifth signal would raise it
    again but P1 is the top. A P3 crime raised by five calls goes to P2, once."""
    state, _ = run(None, report(priority=2), catalogue)
    state, _ = run(state, inc.AttachSignal(at=at(5), signal_id="v1", source="video",
                                           confidence=0.8), catalogue)
    assert state.priority == 2
    state, events = run(state, inc.AttachSignal(at=at(9), signal_id="c1", source="hotline",
                                                confidence=0.7), catalogue)
    [raised] = [e for e in events if isinstance(e, inc.PriorityChanged)]
    assert (raised.previous, raised.priority) == (2, 1)
    assert raised.reason == "corroborated: 3 kinds of source report it"
    assert state.priority == 1
    plan = catalogue.plan_for("fire", 1)
    assert len(state.tasks) == sum(spec.count for spec in plan.tasks)  # the P1 plan's tasks
    crime, _ = run(None, report(category="crime", source="hotline", priority=3), catalogue)
    for n in range(2, 8):
        crime, events = run(crime, inc.AttachSignal(at=at(n), signal_id=f"c{n}",
                                                    source="hotline", confidence=0.6),
                            catalogue)
        changed = [e for e in events if isinstance(e, inc.PriorityChanged)]
        assert len(changed) == (1 if n == 5 else 0), n
    assert crime.priority == 2


def test_reassign_takes_the_task_from_one_unit_and_offers_it_to_another(
        catalogue: Catalogue, dispatching: Incident) -> None:
    state = offered(catalogue, dispatching)
    state, events = run(state, inc.ReassignTask(at=at(30), task_id="t1", unit_id="E2",
                                                reason="E2 is closer"), catalogue)
    assert types(events)[:1] == ["task.returned"] and "task.offered" in types(events)
    assert state.task("t1").unit_id == "E2" and state.task("t1").status == "offered"
    assert "E1" in state.task("t1").passed_over
    with pytest.raises(Rejected) as same:
        decide(state, inc.ReassignTask(at=at(31), task_id="t1", unit_id="E2", reason="r"),
               catalogue)
    assert same.value.code == "no_change"


def test_a_retraction_detaches_cancels_or_leaves_a_note(catalogue: Catalogue,
                                                        reported: Incident) -> None:
    """Other evidence left: detach; nothing left and no unit: cancel; units at work: a note."""
    two, _ = run(reported, inc.AttachSignal(at=at(5), signal_id="c1", source="hotline"),
                 catalogue)
    assert types(inc.retraction(two, {"s1"}, at(9), "signal:cap", "withdrawn")) == [
        "incident.detach_signal"]
    assert types(inc.retraction(reported, {"s1"}, at(9), "signal:cap", "withdrawn")) == [
        "incident.cancel"]
    working = offered(catalogue, run(reported, inc.VerifyIncident(at=at(10)), catalogue)[0])
    [note] = inc.retraction(working, {"s1"}, at(30), "signal:cap", "withdrawn")
    assert isinstance(note, inc.AddNote) and "stand them down" in note.text
    assert inc.retraction(reported, {"other"}, at(9), "signal:cap", "withdrawn") == []


def test_an_incident_is_open_ended_or_merged_and_only_an_ended_one_reopens() -> None:
    """The status sets of the core partition the statuses: open, ended (resolved, closed,
    cancelled: what another CAD hears as a closure), or merged; reopening takes an ended
    one only."""
    from workflows.incident import ALLOWED, ENDED, OPEN
    from workflows.incident_messages import Status

    every = set(Status.__args__)  # type: ignore[attr-defined]
    assert ENDED == {"resolved", "closed", "cancelled"}
    assert not OPEN & ENDED and every == OPEN | ENDED | {"merged"}
    assert ALLOWED["incident.reopen"] == ENDED
