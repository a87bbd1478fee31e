# size: message classes only: the incident's state, commands and events
"""Core: the incident's state, commands and events (the data of the incident decider).

:mod:`workflows.incident` holds the rules that connect them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from workflows.geo import Location
from workflows.messages import (
    Actor,
    Command,
    EntityId,
    Event,
    Frozen,
    Priority,
    Reason,
    Rejected,
    Token,
)

Status = Literal["reported", "verified", "dispatching", "responding", "on_scene", "controlled",
                 "resolved", "closed", "cancelled", "merged"]
TaskStatus = Literal["pending", "offered", "accepted", "en_route", "on_scene", "completed",
                     "cancelled"]
TimerKind = Literal["verify", "task_pending", "ack", "on_scene"]

OPEN: frozenset[str] = frozenset({"reported", "verified", "dispatching", "responding",
                                  "on_scene", "controlled"})
ACTIVE: frozenset[str] = frozenset({"verified", "dispatching", "responding", "on_scene",
                                    "controlled"})
# Over: worked to an end (resolved, closed) or called off; a merged incident lives on in
# the one it was merged into, so it is neither open nor ended.
ENDED: frozenset[str] = frozenset({"resolved", "closed", "cancelled"})
LIVE_TASK: frozenset[str] = frozenset({"pending", "offered", "accepted", "en_route", "on_scene"})
# Tasks with a unit on them.
MANNED_TASK: frozenset[str] = frozenset({"offered", "accepted", "en_route", "on_scene"})
# The automatic progress, in order; a status is only ever moved forward along it.
PROGRESS: tuple[str, ...] = ("verified", "dispatching", "responding", "on_scene")


# --- state ----------------------------------------------------------------------------


class SignalRef(Frozen):
    signal_id: str
    source: str
    confidence: float
    merged_from: str | None = None  # the incident it came from in a merge
    at: datetime | None = None  # when ECC took it in
    observed_at: datetime | None = None  # when the source saw it (fusion's clock)


class WarningRef(Frozen):
    sequence: int
    at: datetime


Severity = Literal["Extreme", "Severe", "Moderate", "Minor"]
Urgency = Literal["Immediate", "Expected", "Future"]


class WarningText(Frozen):
    headline: str
    instruction: str
    description: str = ""
    radius_m: float
    severity: Severity
    urgency: Urgency


class Task(Frozen):
    task_id: str
    agency: str
    capability: str
    status: TaskStatus
    unit_id: str | None = None
    # units that declined or timed out on this task: not offered again
    passed_over: tuple[str, ...] = ()
    created_at: datetime
    updated_at: datetime


class Escalation(Frozen):
    rule: str
    reason: str
    at: datetime
    by: str


class Incident(Frozen):
    """The state of one incident, folded from its events."""

    incident_id: str
    status: Status
    category: str
    priority: int
    location: Location
    summary: str
    signals: tuple[SignalRef, ...]
    tasks: tuple[Task, ...] = ()
    timers: tuple[str, ...] = ()
    escalations: tuple[Escalation, ...] = ()
    links: tuple[str, ...] = ()
    merged_into: str | None = None
    merged_from: tuple[str, ...] = ()
    status_before_merge: str | None = None
    notes: int = 0
    close_reason: str | None = None
    # public warnings issued (CAP out): each one's sequence and time, and whether the
    # last one still stands (a Cancel ends it)
    warnings: tuple[WarningRef, ...] = ()
    warning_active: bool = False
    warning_text: WarningText | None = None  # what the standing warning says
    reported_at: datetime
    updated_at: datetime
    version: int = 0

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.task_id == task_id:
                return task
        raise Rejected("unknown_task", f"incident {self.incident_id} has no task {task_id}")

    @property
    def signal_ids(self) -> tuple[str, ...]:
        return tuple(s.signal_id for s in self.signals)


def is_open(state: Incident) -> bool:
    """Whether the incident belongs on the live picture."""
    return state.status in OPEN


def has_ended(state: Incident) -> bool:
    """Whether the incident is over (resolved, closed or cancelled): what another agency's
    CAD is told as its closure."""
    return state.status in ENDED


# --- commands -------------------------------------------------------------------------


class ReportIncident(Command):
    type: Literal["incident.report"] = "incident.report"
    incident_id: EntityId
    signal_id: str = Field(min_length=1, max_length=128)
    source: Token
    category: Token
    location: Location
    summary: str = Field(default="", max_length=2000)
    confidence: float = Field(default=0.5, ge=0, le=1)
    observed_at: AwareDatetime | None = None
    priority: Priority | None = None
    split_from: str | None = None


class AttachSignal(Command):
    type: Literal["incident.attach_signal"] = "incident.attach_signal"
    signal_id: str = Field(min_length=1, max_length=128)
    source: Token
    confidence: float = Field(default=0.5, ge=0, le=1)
    observed_at: AwareDatetime | None = None
    reason: Reason = ""  # why fusion (or a person) believes it belongs here


class DetachSignal(Command):
    """A signal attached by mistake: take it off this incident."""

    type: Literal["incident.detach_signal"] = "incident.detach_signal"
    signal_id: str = Field(min_length=1, max_length=128)
    reason: Reason = Field(min_length=1)


class VerifyIncident(Command):
    type: Literal["incident.verify"] = "incident.verify"


class Reclassify(Command):
    type: Literal["incident.reclassify"] = "incident.reclassify"
    category: Token
    reason: Reason = ""


class SetPriority(Command):
    type: Literal["incident.set_priority"] = "incident.set_priority"
    priority: Priority
    reason: Reason = Field(min_length=1)


class Escalate(Command):
    type: Literal["incident.escalate"] = "incident.escalate"
    reason: Reason = Field(min_length=1)


class AddNote(Command):
    type: Literal["incident.add_note"] = "incident.add_note"
    text: str = Field(min_length=1, max_length=4000)


class LinkIncident(Command):
    type: Literal["incident.link"] = "incident.link"
    other_id: EntityId


class MergeInto(Command):
    """On the incident that disappears into ``target_id``."""

    type: Literal["incident.merge_into"] = "incident.merge_into"
    target_id: EntityId


class AbsorbMerge(Command):
    """On the target: take the merged incident's signals."""

    type: Literal["incident.absorb_merge"] = "incident.absorb_merge"
    source_id: EntityId
    signals: tuple[SignalRef, ...]


class UndoMerge(Command):
    type: Literal["incident.undo_merge"] = "incident.undo_merge"


class ReleaseMerge(Command):
    """On the target of an undone merge: give the signals back."""

    type: Literal["incident.release_merge"] = "incident.release_merge"
    source_id: EntityId


class SplitOff(Command):
    """Detach signals that belong to another, new incident."""

    type: Literal["incident.split"] = "incident.split"
    new_incident_id: EntityId
    signal_ids: tuple[str, ...] = Field(min_length=1)


class CancelIncident(Command):
    type: Literal["incident.cancel"] = "incident.cancel"
    reason: Reason = Field(min_length=1)


class ControlIncident(Command):
    type: Literal["incident.control"] = "incident.control"


class ResolveIncident(Command):
    type: Literal["incident.resolve"] = "incident.resolve"


class CloseIncident(Command):
    type: Literal["incident.close"] = "incident.close"


class ReopenIncident(Command):
    type: Literal["incident.reopen"] = "incident.reopen"
    reason: Reason = Field(min_length=1)


class IssueWarning(Command):
    """A supervisor marks the incident for public warning (CAP out); again to update it."""

    type: Literal["incident.warn"] = "incident.warn"
    headline: str = Field(min_length=1, max_length=160)
    instruction: str = Field(min_length=1, max_length=2000)
    description: str = Field(default="", max_length=4000)
    radius_m: float = Field(gt=0, le=100_000, allow_inf_nan=False)
    severity: Severity = "Severe"
    urgency: Urgency = "Immediate"
    expires_in_s: float | None = Field(default=None, gt=0, le=7 * 86400, allow_inf_nan=False)


class EndWarning(Command):
    """The public warning no longer stands (a CAP Cancel goes out)."""

    type: Literal["incident.end_warning"] = "incident.end_warning"
    reason: Reason = Field(min_length=1)


class OfferTask(Command):
    type: Literal["task.offer"] = "task.offer"
    task_id: str
    unit_id: EntityId


class AcceptTask(Command):
    type: Literal["task.accept"] = "task.accept"
    task_id: str
    unit_id: EntityId


class DeclineTask(Command):
    type: Literal["task.decline"] = "task.decline"
    task_id: str
    unit_id: EntityId
    reason: Reason = ""


class TaskEnRoute(Command):
    type: Literal["task.en_route"] = "task.en_route"
    task_id: str


class TaskOnScene(Command):
    type: Literal["task.on_scene"] = "task.on_scene"
    task_id: str


class ReassignTask(Command):
    """A dispatcher takes a task from its unit and offers it to another."""

    type: Literal["task.reassign"] = "task.reassign"
    task_id: str
    unit_id: EntityId
    reason: Reason = Field(min_length=1)


class CompleteTask(Command):
    type: Literal["task.complete"] = "task.complete"
    task_id: str


class CancelTask(Command):
    type: Literal["task.cancel"] = "task.cancel"
    task_id: str
    reason: Reason = Field(min_length=1)


class FireTimer(Command):
    type: Literal["timer.fire"] = "timer.fire"
    timer_id: str


IncidentCommand = Annotated[
    ReportIncident | AttachSignal | DetachSignal | VerifyIncident | Reclassify | SetPriority
    | Escalate
    | AddNote | LinkIncident | MergeInto | AbsorbMerge | UndoMerge | ReleaseMerge | SplitOff
    | CancelIncident | ControlIncident | ResolveIncident | CloseIncident | ReopenIncident
    | OfferTask | AcceptTask | DeclineTask | TaskEnRoute | TaskOnScene | CompleteTask
    | CancelTask | FireTimer | IssueWarning | EndWarning | ReassignTask,
    Field(discriminator="type"),
]


# --- events ---------------------------------------------------------------------------


class IncidentReported(Event):
    type: Literal["incident.reported"] = "incident.reported"
    incident_id: str
    signal_id: str
    source: str
    category: str
    priority: Priority
    location: Location
    summary: str
    confidence: float = 0.5
    observed_at: datetime | None = None
    split_from: str | None = None


class SignalAttached(Event):
    type: Literal["incident.signal_attached"] = "incident.signal_attached"
    signal_id: str
    source: str
    confidence: float
    observed_at: datetime | None = None
    reason: str = ""


class SignalDetached(Event):
    type: Literal["incident.signal_detached"] = "incident.signal_detached"
    signal_id: str
    by: Actor
    reason: str


class IncidentVerified(Event):
    type: Literal["incident.verified"] = "incident.verified"
    by: Actor
    reason: str


class IncidentReclassified(Event):
    type: Literal["incident.reclassified"] = "incident.reclassified"
    category: str
    previous: str
    by: Actor
    reason: str


class PriorityChanged(Event):
    type: Literal["incident.priority_changed"] = "incident.priority_changed"
    priority: Priority
    previous: Priority
    by: Actor
    reason: str


class IncidentEscalated(Event):
    type: Literal["incident.escalated"] = "incident.escalated"
    rule: str
    reason: str
    by: Actor


class NoteAdded(Event):
    type: Literal["incident.note_added"] = "incident.note_added"
    text: str
    by: Actor


class IncidentLinked(Event):
    type: Literal["incident.linked"] = "incident.linked"
    other_id: str
    by: Actor


class IncidentMerged(Event):
    type: Literal["incident.merged"] = "incident.merged"
    into: str
    by: Actor


class MergeAbsorbed(Event):
    type: Literal["incident.merge_absorbed"] = "incident.merge_absorbed"
    source_id: str
    signals: tuple[SignalRef, ...]


class MergeUndone(Event):
    type: Literal["incident.merge_undone"] = "incident.merge_undone"
    target_id: str
    status: Status
    by: Actor


class MergeReleased(Event):
    type: Literal["incident.merge_released"] = "incident.merge_released"
    source_id: str
    signal_ids: tuple[str, ...]


class SignalsSplitOff(Event):
    type: Literal["incident.split_off"] = "incident.split_off"
    new_incident_id: str
    signal_ids: tuple[str, ...]
    by: Actor


class StatusChanged(Event):
    type: Literal["incident.status_changed"] = "incident.status_changed"
    status: Status
    previous: Status
    by: Actor
    reason: str = ""


class TaskCreated(Event):
    type: Literal["task.created"] = "task.created"
    task_id: str
    agency: str
    capability: str


class TaskOffered(Event):
    type: Literal["task.offered"] = "task.offered"
    task_id: str
    unit_id: str
    by: Actor


class TaskAccepted(Event):
    type: Literal["task.accepted"] = "task.accepted"
    task_id: str
    unit_id: str


class TaskReturned(Event):
    """The unit declined or did not answer in time: back to pending."""

    type: Literal["task.returned"] = "task.returned"
    task_id: str
    unit_id: str
    why: Literal["declined", "ack_timeout", "reassigned"]
    reason: str = ""


class TaskMoved(Event):
    type: Literal["task.moved"] = "task.moved"
    task_id: str
    status: Literal["en_route", "on_scene", "completed"]


class TaskCancelled(Event):
    type: Literal["task.cancelled"] = "task.cancelled"
    task_id: str
    unit_id: str | None
    reason: str


class PublicWarning(Event):
    """A public warning to send as CAP 1.2: everything the emitter needs is here."""

    type: Literal["incident.public_warning"] = "incident.public_warning"
    sequence: int
    msg_type: Literal["Alert", "Update", "Cancel"]
    category: str
    location: Location
    headline: str
    instruction: str = ""
    description: str = ""
    radius_m: float
    severity: Severity
    urgency: Urgency
    certainty: Literal["Observed", "Likely"]
    expires_at: datetime | None = None
    references: tuple[WarningRef, ...] = ()  # the earlier warnings this one replaces
    by: Actor
    reason: str = ""


class TimerScheduled(Event):
    type: Literal["timer.scheduled"] = "timer.scheduled"
    timer_id: str
    kind: TimerKind
    due_at: datetime
    task_id: str | None = None


class TimerCancelled(Event):
    type: Literal["timer.cancelled"] = "timer.cancelled"
    timer_id: str


class TimerFired(Event):
    type: Literal["timer.fired"] = "timer.fired"
    timer_id: str


IncidentEvent = Annotated[
    IncidentReported | SignalAttached | SignalDetached | IncidentVerified | IncidentReclassified
    | PriorityChanged | IncidentEscalated | NoteAdded | IncidentLinked | IncidentMerged
    | MergeAbsorbed | MergeUndone | MergeReleased | SignalsSplitOff | StatusChanged
    | TaskCreated | TaskOffered | TaskAccepted | TaskReturned | TaskMoved | TaskCancelled
    | TimerScheduled | TimerCancelled | TimerFired | PublicWarning,
    Field(discriminator="type"),
]
AnyIncidentEvent = (
    IncidentReported | SignalAttached | SignalDetached | IncidentVerified | IncidentReclassified
    | PriorityChanged | IncidentEscalated | NoteAdded | IncidentLinked | IncidentMerged
    | MergeAbsorbed | MergeUndone | MergeReleased | SignalsSplitOff | StatusChanged
    | TaskCreated | TaskOffered | TaskAccepted | TaskReturned | TaskMoved | TaskCancelled
    | TimerScheduled | TimerCancelled | TimerFired | PublicWarning
)
AnyIncidentCommand = (
    ReportIncident | AttachSignal | DetachSignal | VerifyIncident | Reclassify | SetPriority
    | Escalate
    | AddNote | LinkIncident | MergeInto | AbsorbMerge | UndoMerge | ReleaseMerge | SplitOff
    | CancelIncident | ControlIncident | ResolveIncident | CloseIncident | ReopenIncident
    | OfferTask | AcceptTask | DeclineTask | TaskEnRoute | TaskOnScene | CompleteTask
    | CancelTask | FireTimer | IssueWarning | EndWarning | ReassignTask
)
