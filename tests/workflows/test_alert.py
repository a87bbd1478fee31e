"""Desk alerts, pure: the transition table, raising once, closing once, by kind."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workflows.alert import ACTIONS, KINDS, CloseAlert, RaiseAlert, decide, fold
from workflows.messages import Rejected

T = datetime(2026, 7, 20, 8, 30, tzinfo=UTC)


def raised(kind: str = "retraction_held") -> RaiseAlert:
    return RaiseAlert(at=T, alert_id="a1", kind=kind, title="hotline asks to take back 7 "  # type: ignore[arg-type]
                      "signals", data={"signals": 7})


def test_every_kind_can_be_closed_and_a_held_retraction_only_by_a_decision() -> None:
    """Each kind has a way out; a held retraction is confirmed or dismissed, never merely
    acknowledged, and the others are acknowledged."""
    assert set(ACTIONS) == set(KINDS)
    assert all(ACTIONS[k] for k in KINDS)
    assert ACTIONS["retraction_held"] == {"confirmed", "dismissed"}
    assert all(ACTIONS[k] == {"acknowledged"} for k in KINDS if k != "retraction_held")


@pytest.mark.parametrize("kind", KINDS)
def test_raise_then_close_once(kind: str) -> None:
    """An alert is raised once (a second raise is no event), closed with an outcome its
    kind allows, and a closed alert refuses every further close."""
    state = fold(decide(None, raised(kind)))
    assert state is not None and state.status == "open" and state.version == 1
    assert decide(state, raised(kind)) == []
    for outcome in ("acknowledged", "confirmed", "dismissed"):
        command = CloseAlert(at=T, by="supervisor 1", outcome=outcome)  # type: ignore[arg-type]
        if outcome not in ACTIONS[kind]:
            with pytest.raises(Rejected) as refused:
                decide(state, command)
            assert refused.value.code == "not_allowed"
    outcome = sorted(ACTIONS[kind])[0]
    closed = fold(decide(state, CloseAlert(at=T, by="supervisor 1", outcome=outcome)),  # type: ignore[arg-type]
                  state)
    assert closed is not None and closed.status == "closed" and closed.outcome == outcome
    assert closed.closed_by == "supervisor 1" and closed.version == 2
    with pytest.raises(Rejected) as again:
        decide(closed, CloseAlert(at=T, by="supervisor 2", outcome=outcome))  # type: ignore[arg-type]
    assert again.value.code == "closed" and "supervisor 1" in again.value.reason


def test_closing_an_alert_that_was_never_raised_is_refused() -> None:
    """There is nothing to close before the alert exists."""
    with pytest.raises(Rejected) as refused:
        decide(None, CloseAlert(at=T, by="supervisor 1", outcome="acknowledged"))
    assert refused.value.code == "not_found"
