"""What a crew's report means, as plain calls of the pure core."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workflows import incident as inc
from workflows.catalogue import Catalogue
from workflows.dispatching import crew_report
from workflows.geo import Location
from workflows.messages import Rejected
from workflows.unit import MoveUnit, Unit

T = datetime(2026, 7, 20, 9, 0, tzinfo=UTC)


def incident_with_task(catalogue: Catalogue, task_status: str) -> inc.Incident:
    state = inc.fold(inc.decide(None, inc.ReportIncident(
        at=T, incident_id="i1", signal_id="s1", source="sensor", category="fire",
        location=Location(lat=34.7, lon=113.6), confidence=0.95), catalogue))
    assert state is not None
    task = state.task("t1").model_copy(update={"status": task_status, "unit_id": "E1"})
    return state.model_copy(update={"tasks": (task, *state.tasks[1:])})


def unit(status: str, on_task: bool = True) -> Unit:
    return Unit(unit_id="E1", call_sign="Engine 1", agency="fire", capabilities=("engine",),
                status=status, incident_id="i1" if on_task else None,  # type: ignore[arg-type]
                task_id="t1" if on_task else None, updated_at=T)


def kinds(commands: list[object]) -> list[str]:
    return [c.type if not isinstance(c, MoveUnit) else f"move:{c.status}"  # type: ignore[attr-defined]
            for c in commands]


def test_acknowledge_decline_and_moving_off_an_offer(catalogue: Catalogue) -> None:
    """Ack accepts; decline declines with the reason; on scene straight from an offer
    accepts first."""
    offered = incident_with_task(catalogue, "offered")
    assert kinds(crew_report(unit("dispatched"), offered, "acknowledged", at=T)) == [
        "task.accept"]
    [decline] = crew_report(unit("dispatched"), offered, "declined", at=T, reason="flat tyre")
    assert decline.reason == "flat tyre"  # type: ignore[union-attr]
    assert kinds(crew_report(unit("dispatched"), offered, "on_scene", at=T)) == [
        "task.accept", "task.on_scene"]


def test_clear_completes_then_brings_the_unit_back(catalogue: Catalogue) -> None:
    """Clear on scene completes the task and makes the unit available."""
    on_scene = incident_with_task(catalogue, "on_scene")
    assert kinds(crew_report(unit("on_scene"), on_scene, "clear", at=T)) == [
        "task.complete", "move:available"]
    cancelled = incident_with_task(catalogue, "cancelled")
    assert kinds(crew_report(unit("transporting"), cancelled, "clear", at=T)) == [
        "move:at_hospital", "move:returning", "move:available"]


@pytest.mark.parametrize(("status", "task_id", "code"), [
    ("en_route", "t9", "not_your_task"), ("clear", None, "not_on_scene")])
def test_reports_that_do_not_fit_are_refused(catalogue: Catalogue, status: str,
                                             task_id: str | None, code: str) -> None:
    """Another task's id, or clear before arriving: refused with a code and a reason."""
    with pytest.raises(Rejected) as info:
        crew_report(unit("dispatched"), incident_with_task(catalogue, "accepted"),
                    status, at=T, task_id=task_id)  # type: ignore[arg-type]
    assert info.value.code == code and info.value.reason


def test_a_unit_without_a_task_cannot_report_task_progress() -> None:
    """No task: en route is refused; transporting or clear still move the unit."""
    idle = unit("available", on_task=False)
    with pytest.raises(Rejected) as info:
        crew_report(idle, None, "en_route", at=T)
    assert info.value.code == "no_task"
    assert kinds(crew_report(idle, None, "clear", at=T)) == []
    assert kinds(crew_report(idle, None, "out_of_service", at=T)) == ["move:out_of_service"]
