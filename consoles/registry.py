"""Core: every console command in one row, the one place a command is defined.

A row names the command (as the console sends it), the model of its ``args``, the
roles that may send it with their scope, whether it acts on an incident, and, for a
command that is one core command on one incident, how to build that command. The
authorisation table (:data:`TABLE`, asked by :mod:`consoles.authz`), the argument table
(:data:`ARGS`) and the list a welcome offers are derived from these rows. A command
whose work spans incidents or leaves the core (merge, link, split, call taking, a desk
alert) has ``build=None``: its work is a shell function in :mod:`consoles.commands`
(``SPECIAL``), and a test checks that every such row has one.

Adding a console command: a row here (and its args model), its special work if it has
one, and its button in ``consoles/static/detail.js``.

Pure: models and tables, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from workflows import incident as inc
from workflows.actions import incident_actions, task_actions
from workflows.text import Cleaned

Role = Literal["viewer", "call_taker", "dispatcher", "supervisor", "admin", "field_unit",
               "adapter"]
Scope = Literal["any", "agency", "incident"]

_ALL: dict[Role, Scope] = {"dispatcher": "any", "supervisor": "any", "admin": "any"}
_DESK: dict[Role, Scope] = {"call_taker": "any", **_ALL}
_SENIOR: dict[Role, Scope] = {"supervisor": "any", "admin": "any"}
_TASKS: dict[Role, Scope] = {"dispatcher": "agency", "supervisor": "any", "admin": "any"}
# incident-wide changes: a dispatcher on incidents its agency works on
_WIDE: dict[Role, Scope] = {"dispatcher": "incident", "supervisor": "any", "admin": "any"}

Text = Field(min_length=1, max_length=2000)


class Args(Cleaned):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NoArgs(Args):
    pass


class Reason(Args):
    reason: str = Text


class TakeCall(Args):
    narrative: str = Field(min_length=1, max_length=4000)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000, allow_inf_nan=False)
    address: str | None = Field(default=None, max_length=500)
    caller_name: str | None = Field(default=None, max_length=200)
    caller_phone: str | None = Field(default=None, max_length=40)


class Reclassify(Args):
    category: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    reason: str = Field(default="", max_length=2000)


class SetPriority(Args):
    priority: int = Field(ge=1, le=4)
    reason: str = Text


class Note(Args):
    text: str = Field(min_length=1, max_length=4000)


class Detach(Args):
    signal_id: str = Field(min_length=1, max_length=128)
    reason: str = Text


class Link(Args):
    other_id: str = Field(min_length=1, max_length=128)


class Merge(Args):
    into: str = Field(min_length=1, max_length=128)


class Split(Args):
    signal_ids: tuple[str, ...] = Field(min_length=1, max_length=100)


class Warn(Args):
    headline: str = Field(min_length=1, max_length=160)
    instruction: str = Text
    description: str = Field(default="", max_length=4000)
    radius_m: float = Field(gt=0, le=100_000, allow_inf_nan=False)
    severity: Literal["Extreme", "Severe", "Moderate", "Minor"] = "Severe"
    urgency: Literal["Immediate", "Expected", "Future"] = "Immediate"
    expires_in_s: float | None = Field(default=None, gt=0, le=7 * 86400, allow_inf_nan=False)


class Dispatch(Args):
    task_id: str = Field(min_length=1, max_length=64)
    unit_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}$")


class Reassign(Dispatch):
    reason: str = Text


class CancelTask(Args):
    task_id: str = Field(min_length=1, max_length=64)
    reason: str = Text


class CloseAlertArgs(Args):
    alert_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_:\-]{0,127}$")
    outcome: Literal["acknowledged", "confirmed", "dismissed"] = "acknowledged"
    reason: str = Field(default="", max_length=2000)



Build = Callable[[Any, datetime, str], inc.AnyIncidentCommand]


@dataclass(frozen=True)
class Spec:
    """One console command: see the module docstring."""

    name: str
    args: type[Args]
    roles: Mapping[Role, Scope]
    build: Build | None = None  # None: special work in consoles.commands
    incident: bool = True  # needs incident_id
    # the core command type it comes to (workflows.incident.ALLOWED): which incident
    # states offer it (:func:`view_actions`); None for a command about no incident
    core: str | None = None

    def __post_init__(self) -> None:
        if self.incident and self.core is None:  # most console names are the core's
            object.__setattr__(self, "core", self.name)


REGISTRY: tuple[Spec, ...] = (
    # taking calls: the call taker's job, and anyone's at a desk in a surge
    Spec("call.take", TakeCall, _DESK, incident=False),
    Spec("incident.add_note", Note, _DESK,
         lambda a, at, by: inc.AddNote(at=at, by=by, text=a.text)),
    Spec("incident.verify", NoArgs, _DESK,
         lambda a, at, by: inc.VerifyIncident(at=at, by=by)),
    # shaping the picture (escalating is asking for help: anyone's at a desk)
    Spec("incident.reclassify", Reclassify, _WIDE,
         lambda a, at, by: inc.Reclassify(at=at, by=by, category=a.category, reason=a.reason)),
    Spec("incident.set_priority", SetPriority, _WIDE,
         lambda a, at, by: inc.SetPriority(at=at, by=by, priority=a.priority,
                                           reason=a.reason)),
    Spec("incident.escalate", Reason, {"call_taker": "any", **_ALL},
         lambda a, at, by: inc.Escalate(at=at, by=by, reason=a.reason)),
    Spec("incident.detach_signal", Detach, _WIDE,
         lambda a, at, by: inc.DetachSignal(at=at, by=by, signal_id=a.signal_id,
                                            reason=a.reason)),
    Spec("incident.link", Link, _WIDE),
    Spec("incident.merge", Merge, _WIDE, core="incident.merge_into"),
    Spec("incident.undo_merge", NoArgs, _WIDE),
    Spec("incident.split", Split, _WIDE),
    # units: a dispatcher bound to an agency sends only that agency's units
    Spec("task.dispatch", Dispatch, _TASKS, core="task.offer", build=
         lambda a, at, by: inc.OfferTask(at=at, by=by, task_id=a.task_id, unit_id=a.unit_id)),
    Spec("task.reassign", Reassign, _TASKS,
         lambda a, at, by: inc.ReassignTask(at=at, by=by, task_id=a.task_id,
                                            unit_id=a.unit_id, reason=a.reason)),
    Spec("task.cancel", CancelTask, _TASKS,
         lambda a, at, by: inc.CancelTask(at=at, by=by, task_id=a.task_id, reason=a.reason)),
    # ending an incident
    Spec("incident.control", NoArgs, _WIDE,
         lambda a, at, by: inc.ControlIncident(at=at, by=by)),
    Spec("incident.resolve", NoArgs, _WIDE,
         lambda a, at, by: inc.ResolveIncident(at=at, by=by)),
    Spec("incident.cancel", Reason, _WIDE,
         lambda a, at, by: inc.CancelIncident(at=at, by=by, reason=a.reason)),
    Spec("incident.close", NoArgs, _SENIOR,
         lambda a, at, by: inc.CloseIncident(at=at, by=by)),
    Spec("incident.reopen", Reason, _SENIOR,
         lambda a, at, by: inc.ReopenIncident(at=at, by=by, reason=a.reason)),
    # speaking to the public
    Spec("incident.warn", Warn, _SENIOR,
         lambda a, at, by: inc.IssueWarning(at=at, by=by, headline=a.headline,
                                            instruction=a.instruction,
                                            description=a.description, radius_m=a.radius_m,
                                            severity=a.severity, urgency=a.urgency,
                                            expires_in_s=a.expires_in_s)),
    Spec("incident.end_warning", Reason, _SENIOR,
         lambda a, at, by: inc.EndWarning(at=at, by=by, reason=a.reason)),
    # the desk's alerts (a held retraction, an acknowledged input that was lost)
    Spec("alert.close", CloseAlertArgs, _SENIOR, incident=False),
)

SPECS: dict[str, Spec] = {s.name: s for s in REGISTRY}
TABLE: dict[str, Mapping[Role, Scope]] = {s.name: s.roles for s in REGISTRY}
ARGS: dict[str, type[Args]] = {s.name: s.args for s in REGISTRY}
COMMANDS: tuple[str, ...] = tuple(SPECS)
# Commands about no incident: they need no incident_id.
DESK_WIDE: frozenset[str] = frozenset(s.name for s in REGISTRY if not s.incident)
SPECIAL: frozenset[str] = frozenset(s.name for s in REGISTRY if s.build is None)


def view_actions(state: inc.Incident) -> tuple[list[str], dict[str, list[str]]]:
    """The console commands ``state`` takes now, in :data:`REGISTRY` order: the incident-wide
    ones, and for each task the task commands (by ``task_id``). Whatever the role: the
    gateway sends each console the commands its role may send (``welcome.commands``)."""
    wide = incident_actions(state)
    actions = [s.name for s in REGISTRY if s.incident and s.core in wide]
    tasks: dict[str, list[str]] = {}
    for task in state.tasks:
        ok = task_actions(state, task)
        tasks[task.task_id] = [s.name for s in REGISTRY if s.incident and s.core in ok]
    return actions, tasks
