"""Core: desk alerts, what the supervisors must see that belongs to no incident.

An alert is raised by the system, never by a console: a message ECC acknowledged and
then could not use (dead-lettered for its content), a CAP alert whose second copy
differs from the first, a retraction that would take back more signals than one
source may take back on its own. Each waits on the supervisors' console until one of
them closes it; what closing may mean depends on the kind::

    open --acknowledge--> closed            every kind: "I have seen it"
    open --confirm------> closed            retraction_held: apply the retraction
    open --dismiss------> closed            retraction_held: keep the signals

A closed alert is closed for good (a new problem raises a new alert). Pure:
``decide(state, command) -> list[event]`` and ``evolve(state, event) -> state``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from workflows.messages import Actor, Command, EntityId, Event, Frozen, Reason, Rejected

__all__ = [
    "ACTIONS",
    "KINDS",
    "Alert",
    "AlertClosed",
    "AlertCommand",
    "AlertEvent",
    "AlertKind",
    "AlertRaised",
    "AnyAlertCommand",
    "AnyAlertEvent",
    "CloseAlert",
    "RaiseAlert",
    "decide",
    "evolve",
    "fold",
]

AlertKind = Literal["data_error", "gave_up", "cap_conflict", "retraction_held", "dead_letter"]
KINDS: tuple[str, ...] = ("data_error", "gave_up", "cap_conflict", "retraction_held",
                          "dead_letter")
Outcome = Literal["acknowledged", "confirmed", "dismissed"]

# What closing an open alert of each kind may mean: the transition table, as data.
ACTIONS: dict[str, frozenset[str]] = {
    "retraction_held": frozenset({"confirmed", "dismissed"}),
    **{kind: frozenset({"acknowledged"}) for kind in KINDS if kind != "retraction_held"},
}


class Alert(Frozen):
    alert_id: EntityId
    kind: AlertKind
    title: str = Field(max_length=300)
    detail: str = Field(default="", max_length=4000)
    # what the alert is about, for the one who acts on it (a held retraction's
    # content, a dead letter's subject and stream sequence)
    data: dict[str, Any] = Field(default_factory=dict)
    raised_at: datetime
    status: Literal["open", "closed"] = "open"
    outcome: Outcome | None = None
    closed_by: str | None = None
    closed_at: datetime | None = None
    reason: str = ""
    version: int = 0


# --- commands ------------------------------------------------------------------------


class RaiseAlert(Command):
    type: Literal["alert.raise"] = "alert.raise"
    alert_id: EntityId
    kind: AlertKind
    title: str = Field(min_length=1, max_length=300)
    detail: str = Field(default="", max_length=4000)
    data: dict[str, Any] = Field(default_factory=dict)


class CloseAlert(Command):
    """A supervisor closes an alert: ``outcome`` must be one its kind allows."""

    type: Literal["alert.close"] = "alert.close"
    outcome: Outcome
    reason: Reason = ""


AnyAlertCommand = Annotated[RaiseAlert | CloseAlert, Field(discriminator="type")]
AlertCommand = RaiseAlert | CloseAlert


# --- events --------------------------------------------------------------------------


class AlertRaised(Event):
    type: Literal["alert.raised"] = "alert.raised"
    by: Actor = "system"
    alert_id: EntityId
    kind: AlertKind
    title: str
    detail: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class AlertClosed(Event):
    type: Literal["alert.closed"] = "alert.closed"
    by: Actor
    alert_id: EntityId
    outcome: Outcome
    reason: str = ""


AnyAlertEvent = Annotated[AlertRaised | AlertClosed, Field(discriminator="type")]
AlertEvent = AlertRaised | AlertClosed


def decide(state: Alert | None, command: AlertCommand) -> list[AlertEvent]:
    """The events ``command`` means for the alert; raises Rejected with a reason."""
    if isinstance(command, RaiseAlert):
        if state is not None:
            return []  # raised already (a redelivered dead letter): nothing new
        return [AlertRaised(at=command.at, by=command.by, alert_id=command.alert_id,
                            kind=command.kind, title=command.title, detail=command.detail,
                            data=command.data)]
    if state is None:
        raise Rejected("not_found", "there is no such alert")
    if state.status == "closed":
        raise Rejected("closed", f"this alert was already {state.outcome} by "
                                 f"{state.closed_by}")
    allowed = ACTIONS[state.kind]
    if command.outcome not in allowed:
        raise Rejected("not_allowed", f"a {state.kind.replace('_', ' ')} alert is "
                                      f"{' or '.join(sorted(allowed))}, not {command.outcome}")
    return [AlertClosed(at=command.at, by=command.by, alert_id=state.alert_id,
                        outcome=command.outcome, reason=command.reason)]


def evolve(state: Alert | None, event: AlertEvent) -> Alert:
    """The alert after ``event``."""
    if isinstance(event, AlertRaised):
        return Alert(alert_id=event.alert_id, kind=event.kind, title=event.title,
                     detail=event.detail, data=event.data, raised_at=event.at, version=1)
    assert state is not None, "an alert is raised before it is closed"
    return state.model_copy(update={
        "status": "closed", "outcome": event.outcome, "closed_by": event.by,
        "closed_at": event.at, "reason": event.reason, "version": state.version + 1})


def fold(events: list[AlertEvent], state: Alert | None = None) -> Alert | None:
    for event in events:
        state = evolve(state, event)
    return state

