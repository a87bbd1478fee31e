"""The unit decider: one task at a time, capabilities, and the crew's status moves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workflows.messages import Rejected
from workflows.unit import (
    MOVES,
    DispatchUnit,
    MoveUnit,
    RegisterUnit,
    ReleaseUnit,
    Unit,
    decide,
    fold,
    on_task,
)

T = datetime(2026, 7, 20, 9, 0, tzinfo=UTC)


def unit(**kw: object) -> Unit:
    fields: dict[str, object] = {"at": T, "unit_id": "E1", "call_sign": "Engine 1",
                                 "agency": "fire", "capabilities": ("engine",)}
    fields.update(kw)
    state = fold(decide(None, RegisterUnit(**fields)))  # type: ignore[arg-type]
    assert state is not None
    return state


def step(state: Unit, command: object) -> Unit:
    after = fold(decide(state, command), state)  # type: ignore[arg-type]
    assert after is not None
    return after


def test_dispatch_puts_an_available_unit_on_one_task() -> None:
    """Dispatched, the unit carries its incident and task; a second dispatch is refused."""
    s = step(unit(), DispatchUnit(at=T, incident_id="i1", task_id="t1", capability="engine"))
    assert (s.status, s.incident_id, s.task_id) == ("dispatched", "i1", "t1") and on_task(s)
    with pytest.raises(Rejected) as info:
        decide(s, DispatchUnit(at=T, incident_id="i2", task_id="t1", capability="engine"))
    assert info.value.code == "unit_unavailable" and "i1" in info.value.reason


def test_a_unit_without_the_capability_is_refused() -> None:
    """An engine is not an ambulance."""
    with pytest.raises(Rejected) as info:
        decide(unit(), DispatchUnit(at=T, incident_id="i1", task_id="t1", capability="als"))
    assert info.value.code == "wrong_capability"


@pytest.mark.parametrize(("status", "after"), [("dispatched", "available"),
                                               ("en_route", "available"),
                                               ("on_scene", "returning")])
def test_release_frees_or_returns_the_unit(status: str, after: str) -> None:
    """A task ending before arrival frees the unit; after arrival it starts returning."""
    s = step(unit(), DispatchUnit(at=T, incident_id="i1", task_id="t1", capability="engine"))
    if status != "dispatched":
        s = step(s, MoveUnit(at=T, status=status))  # type: ignore[arg-type]
    s = step(s, ReleaseUnit(at=T, incident_id="i1", task_id="t1"))
    assert s.status == after and s.incident_id is None


def test_release_of_another_task_does_nothing() -> None:
    """A stale release (the unit moved on) changes nothing."""
    s = step(unit(), DispatchUnit(at=T, incident_id="i1", task_id="t1", capability="engine"))
    assert decide(s, ReleaseUnit(at=T, incident_id="i1", task_id="t9")) == []


def test_every_move_in_the_table_and_no_other() -> None:
    """Each status allows exactly the moves its row lists."""
    statuses = list(MOVES)
    for start in statuses:
        state = unit().model_copy(update={"status": start})
        for target in statuses:
            command = MoveUnit(at=T, status=target)  # type: ignore[arg-type]
            if target in MOVES[start]:
                assert step(state, command).status == target
            else:
                with pytest.raises(Rejected):
                    decide(state, command)


def test_registration_is_once() -> None:
    """A unit id is registered once; other commands need a registered unit."""
    with pytest.raises(Rejected):
        decide(unit(), RegisterUnit(at=T, unit_id="E1", call_sign="x", agency="fire",
                                    capabilities=("engine",)))
    with pytest.raises(Rejected):
        decide(None, MoveUnit(at=T, status="off_duty"))


def test_a_unit_of_another_agency_is_refused() -> None:
    """A police car with a cordon capability is not sent to a fire agency's cordon task."""
    s = unit(agency="police", capabilities=("cordon",), unit_id="P1")
    with pytest.raises(Rejected) as info:
        decide(s, DispatchUnit(at=T, incident_id="i", task_id="t", capability="cordon",
                               agency="fire"))
    assert info.value.code == "wrong_agency"


def test_unit_ids_must_fit_a_subject() -> None:
    """An id with a colon or a dot would break the dispatch subject: refused at the door."""
    from pydantic import ValidationError

    for bad in ("E:1", "E.1", "x" * 41, ""):
        with pytest.raises(ValidationError):
            RegisterUnit(at=T, unit_id=bad, call_sign="x", agency="fire", capabilities=("engine",))
