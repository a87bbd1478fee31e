# size: one decider: decide() and evolve() share the transition table of every command
"""Core: the incident decider, with the tasks of its response plan.

``decide(state, command, catalogue)`` returns the events a command causes or
raises :class:`Rejected` with a reason a person can read; ``evolve(state,
event)`` folds one event in. ``None`` is the state of an incident not yet
reported. Nothing here reads the clock: ``at`` arrives in each command.

Lifecycle::

    reported -> verified -> dispatching -> responding -> on_scene -> controlled
             -> resolved -> closed            (side exits: cancelled, merged)

``dispatching``, ``responding`` and ``on_scene`` follow from the tasks (a
plan applied; a unit en route; a unit on scene) and are recorded as
``incident.status_changed`` events, never moved backwards automatically.

Tasks live inside the incident (one task = one unit of one capability from
one agency), so "a closed incident has no active task" is one aggregate's
invariant. Units are their own streams (:mod:`workflows.unit`); the shell
appends the unit events that task events imply in the same transaction
(:mod:`workflows.dispatching`).

Timers are events too: ``timer.scheduled`` / ``timer.cancelled`` /
``timer.fired``. The shell keeps the due rows; a fired timer comes back as
:class:`FireTimer`, and a timer no longer active does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from workflows.catalogue import Catalogue
from workflows.incident_messages import (
    ACTIVE,
    ENDED,
    LIVE_TASK,
    MANNED_TASK,
    OPEN,
    PROGRESS,
    AbsorbMerge,
    AcceptTask,
    AddNote,
    AnyIncidentCommand,
    AnyIncidentEvent,
    AttachSignal,
    CancelIncident,
    CancelTask,
    CloseIncident,
    CompleteTask,
    ControlIncident,
    DeclineTask,
    DetachSignal,
    EndWarning,
    Escalate,
    Escalation,
    FireTimer,
    Incident,
    IncidentCommand,
    IncidentEscalated,
    IncidentEvent,
    IncidentLinked,
    IncidentMerged,
    IncidentReclassified,
    IncidentReported,
    IncidentVerified,
    IssueWarning,
    LinkIncident,
    MergeAbsorbed,
    MergeInto,
    MergeReleased,
    MergeUndone,
    NoteAdded,
    OfferTask,
    PriorityChanged,
    PublicWarning,
    ReassignTask,
    Reclassify,
    ReleaseMerge,
    ReopenIncident,
    ReportIncident,
    ResolveIncident,
    SetPriority,
    SignalAttached,
    SignalDetached,
    SignalRef,
    SignalsSplitOff,
    SplitOff,
    Status,
    StatusChanged,
    Task,
    TaskAccepted,
    TaskCancelled,
    TaskCreated,
    TaskEnRoute,
    TaskMoved,
    TaskOffered,
    TaskOnScene,
    TaskReturned,
    TaskStatus,
    TimerCancelled,
    TimerFired,
    TimerKind,
    TimerScheduled,
    UndoMerge,
    VerifyIncident,
    WarningRef,
    WarningText,
    has_ended,
    is_open,
)
from workflows.messages import Command, Rejected

__all__ = [
    "ACTIVE",
    "ALLOWED",
    "ANY",
    "ENDED",
    "LIVE_TASK",
    "MANNED_TASK",
    "OPEN",
    "PROGRESS",
    "TASK_ALLOWED",
    "AbsorbMerge",
    "AcceptTask",
    "AddNote",
    "AnyIncidentCommand",
    "AnyIncidentEvent",
    "AttachSignal",
    "CancelIncident",
    "CancelTask",
    "CloseIncident",
    "CompleteTask",
    "ControlIncident",
    "DeclineTask",
    "DetachSignal",
    "EndWarning",
    "Escalate",
    "Escalation",
    "FireTimer",
    "Incident",
    "IncidentCommand",
    "IncidentEscalated",
    "IncidentEvent",
    "IncidentLinked",
    "IncidentMerged",
    "IncidentReclassified",
    "IncidentReported",
    "IncidentVerified",
    "IssueWarning",
    "LinkIncident",
    "MergeAbsorbed",
    "MergeInto",
    "MergeReleased",
    "MergeUndone",
    "NoteAdded",
    "OfferTask",
    "PriorityChanged",
    "PublicWarning",
    "ReassignTask",
    "Reclassify",
    "Rejected",
    "ReleaseMerge",
    "ReopenIncident",
    "ReportIncident",
    "ResolveIncident",
    "SetPriority",
    "SignalAttached",
    "SignalDetached",
    "SignalRef",
    "SignalsSplitOff",
    "SplitOff",
    "Status",
    "StatusChanged",
    "Task",
    "TaskAccepted",
    "TaskCancelled",
    "TaskCreated",
    "TaskEnRoute",
    "TaskMoved",
    "TaskOffered",
    "TaskOnScene",
    "TaskReturned",
    "TaskStatus",
    "TimerCancelled",
    "TimerFired",
    "TimerKind",
    "TimerScheduled",
    "UndoMerge",
    "VerifyIncident",
    "WarningRef",
    "WarningText",
    "combined_confidence",
    "decide",
    "evolve",
    "fold",
    "has_ended",
    "is_open",
    "retraction",
    "step",
]


# --- the transition table -------------------------------------------------------------

ANY: frozenset[str] = frozenset(Status.__args__)  # type: ignore[attr-defined]

# Which statuses each command may be given in. Checked before any other rule.
ALLOWED: dict[str, frozenset[str]] = {
    "incident.attach_signal": OPEN,
    "incident.detach_signal": OPEN,
    "incident.verify": frozenset({"reported"}),
    "incident.reclassify": OPEN,
    "incident.set_priority": OPEN,
    "incident.escalate": OPEN,
    "incident.add_note": ANY,
    "incident.link": OPEN,
    "incident.merge_into": OPEN,
    "incident.absorb_merge": OPEN,
    "incident.undo_merge": frozenset({"merged"}),
    "incident.release_merge": ANY - {"merged"},
    "incident.split": OPEN,
    "incident.cancel": OPEN - {"controlled"},
    "incident.control": frozenset({"responding", "on_scene"}),
    "incident.resolve": ACTIVE,
    "incident.close": frozenset({"resolved"}),
    "incident.reopen": ENDED,
    "task.offer": ACTIVE,
    "task.accept": ACTIVE,
    "task.decline": ACTIVE,
    "task.en_route": ACTIVE,
    "task.on_scene": ACTIVE,
    "task.complete": ACTIVE,
    "task.cancel": ACTIVE,
    "task.reassign": ACTIVE,
    "timer.fire": ANY,
    "incident.warn": OPEN,
    "incident.end_warning": ANY,
}

# Which task statuses each task command may be given in.
TASK_ALLOWED: dict[str, frozenset[str]] = {
    "task.offer": frozenset({"pending"}),
    "task.accept": frozenset({"offered"}),
    "task.decline": frozenset({"offered"}),
    "task.en_route": frozenset({"accepted"}),
    "task.on_scene": frozenset({"accepted", "en_route"}),
    "task.complete": frozenset({"on_scene"}),
    "task.cancel": LIVE_TASK,
    "task.reassign": frozenset({"offered", "accepted", "en_route"}),
}


# --- decide ---------------------------------------------------------------------------


def decide(
    state: Incident | None, command: AnyIncidentCommand, catalogue: Catalogue
) -> list[AnyIncidentEvent]:
    """The events ``command`` causes on ``state``. Raises :class:`Rejected`."""
    return step(state, command, catalogue)[0]


def step(
    state: Incident | None, command: AnyIncidentCommand, catalogue: Catalogue
) -> tuple[list[AnyIncidentEvent], Incident | None]:
    """``decide`` and the state its events fold to, folded once.

    Raises :class:`Rejected`. With no events, the state comes back unchanged.
    """
    if isinstance(command, ReportIncident):
        if state is not None:
            raise Rejected("already_exists", f"incident {command.incident_id} already exists")
        events = _report(command, catalogue)
        return _with_progress(None, events, command)
    if state is None:
        raise Rejected("unknown_incident", "no such incident; report it first")
    allowed = ALLOWED[command.type]
    if state.status not in allowed:
        raise Rejected("wrong_status", f"cannot {command.type.split('.')[-1].replace('_', ' ')}"
                                       f" an incident that is {state.status}")
    if command.type in TASK_ALLOWED:
        task = state.task(getattr(command, "task_id"))  # noqa: B009 - every task command has it
        if task.status not in TASK_ALLOWED[command.type]:
            raise Rejected("wrong_task_status",
                           f"task {task.task_id} is {task.status}; cannot "
                           f"{command.type.split('.')[-1].replace('_', ' ')} it")
    events = _HANDLERS[type(command)](state, command, catalogue)
    return _with_progress(state, events, command)


def _with_progress(state: Incident | None, events: list[AnyIncidentEvent],
                   cmd: Command) -> tuple[list[AnyIncidentEvent], Incident | None]:
    """Fold once, then add the automatic status step the new state implies (and the
    public warning's end when the incident leaves the live picture)."""
    after = state
    for event in events:
        after = evolve(after, event)
    if after is not None and after.warning_active and not is_open(after):
        end = _warning(after, cmd.at, "Cancel", by="system",
                       reason=f"the incident is {after.status}")
        events, after = [*events, end], evolve(after, end)
    if after is None or after.status not in PROGRESS:
        return events, after
    target = after.status
    if any(t.status == "on_scene" for t in after.tasks):
        target = "on_scene"
    elif any(t.status == "en_route" for t in after.tasks):
        target = "responding"
    elif after.tasks:
        target = "dispatching"
    if PROGRESS.index(target) <= PROGRESS.index(after.status):
        return events, after
    change = StatusChanged(at=cmd.at, status=target, previous=after.status,
                           by="system")
    return [*events, change], evolve(after, change)


def _report(cmd: ReportIncident, cat: Catalogue) -> list[AnyIncidentEvent]:
    priority = cmd.priority or cat.default_priority(cmd.category)
    reported = IncidentReported(
        at=cmd.at, incident_id=cmd.incident_id, signal_id=cmd.signal_id, source=cmd.source,
        category=cmd.category, priority=priority, location=cmd.location, summary=cmd.summary,
        confidence=cmd.confidence, observed_at=cmd.observed_at, split_from=cmd.split_from,
    )
    state = evolve(None, reported)
    events: list[AnyIncidentEvent] = [reported]
    if cmd.confidence >= cat.verification.for_type(cmd.category).auto_confidence:
        events += _verify(state, cmd.at, "system",
                          f"one signal at confidence {cmd.confidence:.2f}", cat)
    else:
        events.append(_schedule(state, "verify", cmd.at + _s(cat.sla.verify_s)))
    return events


def _attach(state: Incident, cmd: AttachSignal, cat: Catalogue) -> list[AnyIncidentEvent]:
    if cmd.signal_id in state.signal_ids:
        return []  # evidence already held: nothing new
    events: list[AnyIncidentEvent] = [SignalAttached(at=cmd.at, signal_id=cmd.signal_id,
                                                     source=cmd.source,
                                                     confidence=cmd.confidence,
                                                     observed_at=cmd.observed_at,
                                                     reason=cmd.reason)]
    after = _fold_from(state, events)
    sources = {s.source for s in after.signals}
    combined = combined_confidence(after.signals)
    raised = _corroborated(state, after, cmd.at, cat)  # before verifying: the plan follows it
    events += raised
    after = _fold_from(after, raised)
    rule = cat.verification.for_type(state.category)
    if state.status == "reported":
        if len(sources) >= rule.auto_sources:
            events += _verify(after, cmd.at, "system",
                              f"{len(sources)} independent sources ({', '.join(sorted(sources))}"
                              f"), combined confidence {combined:.2f}", cat)
        elif combined >= rule.auto_confidence:
            events += _verify(after, cmd.at, "system",
                              f"combined confidence {combined:.2f}", cat)
    return events


def _corroborated(before: Incident, after: Incident, at: datetime,
                  cat: Catalogue) -> list[AnyIncidentEvent]:
    """A priority raise when this signal takes the evidence past a corroboration rule."""
    rules = cat.corroboration
    kinds = (len({s.source for s in before.signals}), len({s.source for s in after.signals}))
    counts = (len(before.signals), len(after.signals))
    why = None
    if rules.raise_at_sources and kinds[0] < rules.raise_at_sources <= kinds[1]:
        why = f"{kinds[1]} kinds of source report it"
    elif rules.raise_at_signals and counts[0] < rules.raise_at_signals <= counts[1]:
        why = f"{counts[1]} signals report it"
    if why is None or after.priority <= 1:
        return []
    raised: list[AnyIncidentEvent] = [PriorityChanged(
        at=at, priority=after.priority - 1, previous=after.priority, by="system",
        reason=f"corroborated: {why}")]
    return _replanned(after, raised, at, cat)


def retraction(state: Incident, signal_ids: set[str], at: datetime, by: str,
               why: str) -> list[AnyIncidentCommand]:
    """What a source taking back some of an incident's signals means for it.

    Where other evidence remains, the signals are detached. Where nothing else stands
    behind the incident and no unit was sent, it is cancelled. Where units are already
    working it, it stays open with a note for the dispatcher: ECC does not stand crews
    down on its own.
    """
    gone = [s.signal_id for s in state.signals if s.signal_id in signal_ids]
    if not gone:
        return []
    why = why[:500]
    if len(gone) < len(state.signals):
        return [DetachSignal(at=at, by=by, signal_id=g, reason=why) for g in gone]
    if not any(t.unit_id for t in state.tasks):
        return [CancelIncident(at=at, by=by, reason=why)]
    return [AddNote(at=at, by=by, text=f"{why}. Nothing else reports this incident, but "
                    "units are assigned: decide whether to stand them down.")]


def combined_confidence(signals: tuple[SignalRef, ...]) -> float:
    """How sure the evidence makes us, counting each kind of source once.

    Within a source kind, the surest signal counts (five callers repeat one
    another); across kinds, the chances of all being wrong multiply, so two
    sources of different kinds beat five of one kind.
    """
    best: dict[str, float] = {}
    for s in signals:
        best[s.source] = max(best.get(s.source, 0.0), s.confidence)
    doubt = 1.0
    for confidence in best.values():
        doubt *= 1.0 - confidence
    return 1.0 - doubt


def _detach(state: Incident, cmd: DetachSignal, cat: Catalogue) -> list[AnyIncidentEvent]:
    if cmd.signal_id not in state.signal_ids:
        raise Rejected("unknown_signal", f"signal {cmd.signal_id} is not on this incident")
    if len(state.signals) == 1:
        raise Rejected("last_signal", "an incident keeps at least one signal; cancel it "
                                      "instead if it should not exist")
    return [SignalDetached(at=cmd.at, signal_id=cmd.signal_id, by=cmd.by, reason=cmd.reason)]


def _verify(state: Incident, at: datetime, by: str, reason: str,
            cat: Catalogue) -> list[AnyIncidentEvent]:
    events: list[AnyIncidentEvent] = [IncidentVerified(at=at, by=by, reason=reason)]
    events += _cancel_timers(state, kinds={"verify"}, at=at)
    return events + _plan(_fold_from(state, events), at, cat)


def _plan(state: Incident, at: datetime, cat: Catalogue) -> list[AnyIncidentEvent]:
    """Tasks the response plan needs that the incident does not have yet."""
    plan = cat.plan_for(state.category, state.priority)
    have: dict[tuple[str, str], int] = {}
    for task in state.tasks:
        if task.status in LIVE_TASK or task.status == "completed":
            key = (task.agency, task.capability)
            have[key] = have.get(key, 0) + 1
    events: list[AnyIncidentEvent] = []
    n = len(state.tasks)
    for spec in plan.tasks:
        for _ in range(spec.count - have.get((spec.agency, spec.capability), 0)):
            n += 1
            task_id = f"t{n}"
            events.append(TaskCreated(at=at, task_id=task_id, agency=spec.agency,
                                      capability=spec.capability))
            events.append(_schedule(state, "task_pending", at + _s(cat.sla.task_pending_s),
                                    task_id, salt=n))
    return events


def _verify_cmd(state: Incident, cmd: VerifyIncident, cat: Catalogue) -> list[AnyIncidentEvent]:
    return _verify(state, cmd.at, cmd.by, "verified by a person", cat)


def _reclassify(state: Incident, cmd: Reclassify, cat: Catalogue) -> list[AnyIncidentEvent]:
    if cmd.category == state.category:
        raise Rejected("no_change", f"incident is already {cmd.category}")
    events: list[AnyIncidentEvent] = [IncidentReclassified(
        at=cmd.at, category=cmd.category, previous=state.category, by=cmd.by, reason=cmd.reason)]
    return _replanned(state, events, cmd.at, cat)


def _set_priority(state: Incident, cmd: SetPriority, cat: Catalogue) -> list[AnyIncidentEvent]:
    if cmd.priority == state.priority:
        raise Rejected("no_change", f"incident is already priority {cmd.priority}")
    events: list[AnyIncidentEvent] = [PriorityChanged(
        at=cmd.at, priority=cmd.priority, previous=state.priority, by=cmd.by, reason=cmd.reason)]
    return _replanned(state, events, cmd.at, cat)


def _replanned(state: Incident, events: list[AnyIncidentEvent], at: datetime,
               cat: Catalogue) -> list[AnyIncidentEvent]:
    """``events`` plus, on an active incident, the tasks the changed plan now needs."""
    if state.status in ACTIVE:
        return events + _plan(_fold_from(state, events), at, cat)
    return events


def _escalate(state: Incident, cmd: Escalate, cat: Catalogue) -> list[AnyIncidentEvent]:
    return [IncidentEscalated(at=cmd.at, rule="manual", reason=cmd.reason, by=cmd.by)]


def _note(state: Incident, cmd: AddNote, cat: Catalogue) -> list[AnyIncidentEvent]:
    return [NoteAdded(at=cmd.at, text=cmd.text, by=cmd.by)]


def _link(state: Incident, cmd: LinkIncident, cat: Catalogue) -> list[AnyIncidentEvent]:
    if cmd.other_id == state.incident_id:
        raise Rejected("self_link", "an incident cannot be linked to itself")
    if cmd.other_id in state.links:
        return []
    return [IncidentLinked(at=cmd.at, other_id=cmd.other_id, by=cmd.by)]


def _merge_into(state: Incident, cmd: MergeInto, cat: Catalogue) -> list[AnyIncidentEvent]:
    if cmd.target_id == state.incident_id:
        raise Rejected("self_merge", "an incident cannot be merged into itself")
    events: list[AnyIncidentEvent] = _cancel_tasks(state, cmd.at, f"merged into {cmd.target_id}")
    events += _cancel_timers(state, kinds=None, at=cmd.at)
    events.append(IncidentMerged(at=cmd.at, into=cmd.target_id, by=cmd.by))
    return events


def _absorb(state: Incident, cmd: AbsorbMerge, cat: Catalogue) -> list[AnyIncidentEvent]:
    if cmd.source_id == state.incident_id:
        raise Rejected("self_merge", "an incident cannot absorb itself")
    new = tuple(s for s in cmd.signals if s.signal_id not in state.signal_ids)
    events: list[AnyIncidentEvent] = [MergeAbsorbed(at=cmd.at, source_id=cmd.source_id,
                                                    signals=new)]
    sources = {s.source for s in state.signals} | {s.source for s in new}
    if state.status == "reported" and \
            len(sources) >= cat.verification.for_type(state.category).auto_sources:
        events += _verify(_fold_from(state, events), cmd.at, "system",
                          f"{len(sources)} independent sources after a merge", cat)
    return events


def _undo_merge(state: Incident, cmd: UndoMerge, cat: Catalogue) -> list[AnyIncidentEvent]:
    assert state.merged_into is not None
    back = "reported" if state.status_before_merge in (None, "reported") else "verified"
    events: list[AnyIncidentEvent] = [MergeUndone(at=cmd.at, target_id=state.merged_into,
                                                  status=back, by=cmd.by)]
    after = _fold_from(state, events)
    if back == "verified":
        events += _plan(after, cmd.at, cat)
    else:
        events.append(_schedule(after, "verify", cmd.at + _s(cat.sla.verify_s)))
    return events


def _release(state: Incident, cmd: ReleaseMerge, cat: Catalogue) -> list[AnyIncidentEvent]:
    if cmd.source_id not in state.merged_from:
        raise Rejected("not_merged", f"{cmd.source_id} was not merged into this incident")
    given_back = tuple(s.signal_id for s in state.signals if s.merged_from == cmd.source_id)
    return [MergeReleased(at=cmd.at, source_id=cmd.source_id, signal_ids=given_back)]


def _split(state: Incident, cmd: SplitOff, cat: Catalogue) -> list[AnyIncidentEvent]:
    unknown = set(cmd.signal_ids) - set(state.signal_ids)
    if unknown:
        raise Rejected("unknown_signal", f"not signals of this incident: {sorted(unknown)}")
    if set(cmd.signal_ids) >= set(state.signal_ids):
        raise Rejected("nothing_left", "a split must leave at least one signal behind")
    return [SignalsSplitOff(at=cmd.at, new_incident_id=cmd.new_incident_id,
                            signal_ids=cmd.signal_ids, by=cmd.by)]


def _cancel(state: Incident, cmd: CancelIncident, cat: Catalogue) -> list[AnyIncidentEvent]:
    events: list[AnyIncidentEvent] = _cancel_tasks(state, cmd.at, "incident cancelled")
    events += _cancel_timers(state, kinds=None, at=cmd.at)
    events.append(StatusChanged(at=cmd.at, status="cancelled", previous=state.status, by=cmd.by,
                                reason=cmd.reason))
    return events


def _control(state: Incident, cmd: ControlIncident, cat: Catalogue) -> list[AnyIncidentEvent]:
    events: list[AnyIncidentEvent] = _cancel_timers(state, kinds={"on_scene"}, at=cmd.at)
    events.append(StatusChanged(at=cmd.at, status="controlled", previous=state.status,
                                by=cmd.by))
    return events


def _resolve(state: Incident, cmd: ResolveIncident, cat: Catalogue) -> list[AnyIncidentEvent]:
    events: list[AnyIncidentEvent] = _cancel_tasks(state, cmd.at, "incident resolved")
    events += _cancel_timers(state, kinds=None, at=cmd.at)
    events.append(StatusChanged(at=cmd.at, status="resolved", previous=state.status, by=cmd.by))
    return events


def _close(state: Incident, cmd: CloseIncident, cat: Catalogue) -> list[AnyIncidentEvent]:
    return [StatusChanged(at=cmd.at, status="closed", previous=state.status, by=cmd.by)]


def _reopen(state: Incident, cmd: ReopenIncident, cat: Catalogue) -> list[AnyIncidentEvent]:
    events: list[AnyIncidentEvent] = [
        NoteAdded(at=cmd.at, text=f"reopened: {cmd.reason}", by=cmd.by),
        StatusChanged(at=cmd.at, status="verified", previous=state.status, by=cmd.by),
    ]
    return events + _plan(_fold_from(state, events), cmd.at, cat)


def _offer(state: Incident, cmd: OfferTask, cat: Catalogue) -> list[AnyIncidentEvent]:
    task = state.task(cmd.task_id)
    if cmd.unit_id in task.passed_over:
        raise Rejected("passed_over", f"unit {cmd.unit_id} already declined or missed task "
                                      f"{task.task_id}; offer another unit")
    if any(t.unit_id == cmd.unit_id and t.status in MANNED_TASK for t in state.tasks):
        raise Rejected("unit_busy", f"unit {cmd.unit_id} is already on this incident")
    events: list[AnyIncidentEvent] = [TaskOffered(at=cmd.at, task_id=task.task_id,
                                                  unit_id=cmd.unit_id, by=cmd.by)]
    events += _cancel_timers(state, kinds={"task_pending"}, at=cmd.at, task_id=task.task_id)
    events.append(_schedule(state, "ack", cmd.at + _s(cat.sla.ack_s), task.task_id))
    clock_running = any("/on_scene/" in t for t in state.timers)
    if not clock_running and not any(t.status in MANNED_TASK or t.status == "completed"
                                     for t in state.tasks):
        # the first unit offered starts the clock for the first unit on scene
        events.append(_schedule(state, "on_scene",
                                cmd.at + _s(cat.sla.on_scene_for(state.category))))
    return events


def _accept(state: Incident, cmd: AcceptTask, cat: Catalogue) -> list[AnyIncidentEvent]:
    task = state.task(cmd.task_id)
    if task.unit_id != cmd.unit_id:
        raise Rejected("not_offered", f"task {task.task_id} was offered to {task.unit_id}, "
                                      f"not {cmd.unit_id}")
    events: list[AnyIncidentEvent] = [TaskAccepted(at=cmd.at, task_id=task.task_id,
                                                   unit_id=cmd.unit_id)]
    return events + _cancel_timers(state, kinds={"ack"}, at=cmd.at, task_id=task.task_id)


def _decline(state: Incident, cmd: DeclineTask, cat: Catalogue) -> list[AnyIncidentEvent]:
    task = state.task(cmd.task_id)
    if task.unit_id != cmd.unit_id:
        raise Rejected("not_offered", f"task {task.task_id} was offered to {task.unit_id}, "
                                      f"not {cmd.unit_id}")
    return _return_task(state, task, cmd.at, "declined", cmd.reason, cat)


def _return_task(state: Incident, task: Task, at: datetime, why: Literal["declined", "ack_timeout"],
                 reason: str, cat: Catalogue) -> list[AnyIncidentEvent]:
    assert task.unit_id is not None
    events: list[AnyIncidentEvent] = [TaskReturned(at=at, task_id=task.task_id,
                                                   unit_id=task.unit_id, why=why, reason=reason)]
    events += _cancel_timers(state, kinds={"ack"}, at=at, task_id=task.task_id)
    events.append(_schedule(state, "task_pending", at + _s(cat.sla.task_pending_s),
                            task.task_id))
    return events


def _reassign(state: Incident, cmd: ReassignTask, cat: Catalogue) -> list[AnyIncidentEvent]:
    task = state.task(cmd.task_id)
    if task.unit_id == cmd.unit_id:
        raise Rejected("no_change", f"task {task.task_id} is already {cmd.unit_id}'s")
    assert task.unit_id is not None
    events: list[AnyIncidentEvent] = [TaskReturned(
        at=cmd.at, task_id=task.task_id, unit_id=task.unit_id, why="reassigned",
        reason=cmd.reason)]
    events += _cancel_timers(state, kinds={"ack"}, at=cmd.at, task_id=task.task_id)
    after = _fold_from(state, events)
    return events + _offer(after, OfferTask(at=cmd.at, by=cmd.by, task_id=task.task_id,
                                            unit_id=cmd.unit_id), cat)


def _move(state: Incident, cmd: TaskEnRoute | TaskOnScene | CompleteTask,
          cat: Catalogue) -> list[AnyIncidentEvent]:
    status: Literal["en_route", "on_scene", "completed"] = {
        "task.en_route": "en_route", "task.on_scene": "on_scene", "task.complete": "completed",
    }[cmd.type]  # type: ignore[assignment]
    events: list[AnyIncidentEvent] = [TaskMoved(at=cmd.at, task_id=cmd.task_id, status=status)]
    if status == "on_scene":
        events += _cancel_timers(state, kinds={"on_scene"}, at=cmd.at)
    return events


def _cancel_task(state: Incident, cmd: CancelTask, cat: Catalogue) -> list[AnyIncidentEvent]:
    task = state.task(cmd.task_id)
    events: list[AnyIncidentEvent] = [TaskCancelled(at=cmd.at, task_id=task.task_id,
                                                    unit_id=task.unit_id, reason=cmd.reason)]
    return events + _cancel_timers(state, kinds={"task_pending", "ack"}, at=cmd.at,
                                   task_id=task.task_id)


def _fire(state: Incident, cmd: FireTimer, cat: Catalogue) -> list[AnyIncidentEvent]:
    if cmd.timer_id not in state.timers:
        return []  # cancelled or already fired: a stale timer does nothing
    kind, task_id = _timer_parts(cmd.timer_id)
    events: list[AnyIncidentEvent] = [TimerFired(at=cmd.at, timer_id=cmd.timer_id)]
    if kind == "verify" and state.status == "reported":
        events.append(IncidentEscalated(
            at=cmd.at, rule="verify_sla", by="system",
            reason=f"not verified within {cat.sla.verify_s:.0f} s"))
    elif kind == "task_pending" and task_id and state.task(task_id).status == "pending":
        task = state.task(task_id)
        events.append(IncidentEscalated(
            at=cmd.at, rule="task_pending_sla", by="system",
            reason=f"task {task_id} ({task.agency} {task.capability}) has no unit after "
                   f"{cat.sla.task_pending_s:.0f} s"))
    elif kind == "ack" and task_id and state.task(task_id).status == "offered":
        task = state.task(task_id)
        after = _fold_from(state, events)
        events += _return_task(after, task, cmd.at, "ack_timeout",
                               f"no acknowledgement in {cat.sla.ack_s:.0f} s", cat)
        events.append(IncidentEscalated(
            at=cmd.at, rule="ack_sla", by="system",
            reason=f"unit {task.unit_id} did not acknowledge task {task_id} in "
                   f"{cat.sla.ack_s:.0f} s; reassign"))
    elif kind == "on_scene" and not any(t.status == "on_scene" for t in state.tasks):
        events.append(IncidentEscalated(
            at=cmd.at, rule="on_scene_sla", by="system",
            reason=f"no unit on scene within {cat.sla.on_scene_for(state.category):.0f} s "
                   f"of dispatch"))
    return events


def _warn(state: Incident, cmd: IssueWarning, cat: Catalogue) -> list[AnyIncidentEvent]:
    return [_warning(state, cmd.at, "Update" if state.warning_active else "Alert", by=cmd.by,
                     cmd=cmd)]


def _end_warning(state: Incident, cmd: EndWarning, cat: Catalogue) -> list[AnyIncidentEvent]:
    if not state.warning_active:
        raise Rejected("no_warning", "this incident has no public warning standing")
    return [_warning(state, cmd.at, "Cancel", by=cmd.by, reason=cmd.reason)]


def _warning(state: Incident, at: datetime, msg_type: Literal["Alert", "Update", "Cancel"], *,
             by: str, cmd: IssueWarning | None = None, reason: str = "") -> PublicWarning:
    """The next warning of the incident; an Update or Cancel carries the last one's text."""
    last = state.warning_text
    text = cmd if cmd is not None else last
    assert text is not None, "an Update or Cancel follows an Alert"
    expires = None
    if cmd is not None and cmd.expires_in_s is not None:
        expires = at + _s(cmd.expires_in_s)
    return PublicWarning(
        at=at, sequence=len(state.warnings) + 1, msg_type=msg_type, category=state.category,
        location=state.location, headline=text.headline, instruction=text.instruction,
        description=text.description, radius_m=text.radius_m, severity=text.severity,
        urgency=text.urgency, expires_at=expires if cmd is not None else None,
        certainty="Likely" if state.status == "reported" else "Observed",
        references=state.warnings if msg_type != "Alert" else (), by=by, reason=reason)


_HANDLERS: dict[type, Callable[..., list[AnyIncidentEvent]]] = {
    AttachSignal: _attach, DetachSignal: _detach, VerifyIncident: _verify_cmd,
    Reclassify: _reclassify,
    SetPriority: _set_priority, Escalate: _escalate, AddNote: _note, LinkIncident: _link,
    MergeInto: _merge_into, AbsorbMerge: _absorb, UndoMerge: _undo_merge,
    ReleaseMerge: _release, SplitOff: _split, CancelIncident: _cancel,
    ControlIncident: _control, ResolveIncident: _resolve, CloseIncident: _close,
    ReopenIncident: _reopen, OfferTask: _offer, AcceptTask: _accept, DeclineTask: _decline,
    TaskEnRoute: _move, TaskOnScene: _move, CompleteTask: _move, CancelTask: _cancel_task,
    FireTimer: _fire, IssueWarning: _warn, EndWarning: _end_warning, ReassignTask: _reassign,
}


# --- helpers ----------------------------------------------------------------------------


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _timer_id(state: Incident, kind: str, task_id: str | None, salt: int = 0) -> str:
    # unique per scheduling: the incident's version and position make it so
    return f"{state.incident_id}/{kind}/{task_id or '-'}/{state.version}.{salt}"


def _timer_parts(timer_id: str) -> tuple[str, str | None]:
    _, kind, task, _ = timer_id.rsplit("/", 3)
    return kind, (None if task == "-" else task)


def _schedule(state: Incident, kind: TimerKind, due: datetime, task_id: str | None = None,
              salt: int = 0) -> TimerScheduled:
    return TimerScheduled(at=due, timer_id=_timer_id(state, kind, task_id, salt), kind=kind,
                          due_at=due, task_id=task_id)


def _cancel_timers(state: Incident, kinds: set[str] | None, at: datetime,
                   task_id: str | None = None) -> list[AnyIncidentEvent]:
    out: list[AnyIncidentEvent] = []
    for timer_id in state.timers:
        kind, task = _timer_parts(timer_id)
        if (kinds is None or kind in kinds) and (task_id is None or task == task_id):
            out.append(TimerCancelled(at=at, timer_id=timer_id))
    return out


def _cancel_tasks(state: Incident, at: datetime, reason: str) -> list[AnyIncidentEvent]:
    return [TaskCancelled(at=at, task_id=t.task_id, unit_id=t.unit_id, reason=reason)
            for t in state.tasks if t.status in LIVE_TASK]


def _fold_from(state: Incident, events: list[AnyIncidentEvent]) -> Incident:
    for event in events:
        state = evolve(state, event)
    return state


# --- evolve -------------------------------------------------------------------------------


def evolve(state: Incident | None, event: AnyIncidentEvent) -> Incident:
    """Fold one event into the incident's state."""
    if isinstance(event, IncidentReported):
        return Incident(
            incident_id=event.incident_id, status="reported", category=event.category,
            priority=event.priority, location=event.location, summary=event.summary,
            signals=(SignalRef(signal_id=event.signal_id, source=event.source,
                               confidence=event.confidence, at=event.at,
                               observed_at=event.observed_at),),
            reported_at=event.at, updated_at=event.at, version=1,
        )
    assert state is not None, f"{event.type} before incident.reported"
    update = _evolve_fields(state, event)
    update["version"] = state.version + 1
    if event.type != "timer.scheduled":  # a timer's `at` is its due time, not now
        update["updated_at"] = max(state.updated_at, event.at)
    return state.model_copy(update=update)


def _evolve_fields(s: Incident, e: AnyIncidentEvent) -> dict[str, object]:
    if isinstance(e, SignalAttached):
        return {"signals": (*s.signals, SignalRef(signal_id=e.signal_id, source=e.source,
                                                  confidence=e.confidence, at=e.at,
                                                  observed_at=e.observed_at))}
    if isinstance(e, SignalDetached):
        return {"signals": tuple(x for x in s.signals if x.signal_id != e.signal_id)}
    if isinstance(e, PublicWarning):
        return {"warnings": (*s.warnings, WarningRef(sequence=e.sequence, at=e.at)),
                "warning_active": e.msg_type != "Cancel",
                "warning_text": None if e.msg_type == "Cancel" else WarningText(
                    headline=e.headline, instruction=e.instruction, description=e.description,
                    radius_m=e.radius_m, severity=e.severity, urgency=e.urgency)}
    if isinstance(e, IncidentVerified):
        return {"status": "verified"}
    if isinstance(e, IncidentReclassified):
        return {"category": e.category}
    if isinstance(e, PriorityChanged):
        return {"priority": e.priority}
    if isinstance(e, IncidentEscalated):
        return {"escalations": (*s.escalations, Escalation(rule=e.rule, reason=e.reason,
                                                           at=e.at, by=e.by))}
    if isinstance(e, NoteAdded):
        return {"notes": s.notes + 1}
    if isinstance(e, IncidentLinked):
        return {"links": (*s.links, e.other_id)}
    if isinstance(e, IncidentMerged):
        return {"status": "merged", "merged_into": e.into, "status_before_merge": s.status}
    if isinstance(e, MergeAbsorbed):
        absorbed = tuple(x.model_copy(update={"merged_from": e.source_id}) for x in e.signals)
        return {"signals": (*s.signals, *absorbed), "merged_from": (*s.merged_from, e.source_id)}
    if isinstance(e, MergeUndone):
        return {"status": e.status, "merged_into": None, "status_before_merge": None}
    if isinstance(e, MergeReleased):
        return {"merged_from": tuple(i for i in s.merged_from if i != e.source_id),
                "signals": tuple(x for x in s.signals if x.signal_id not in e.signal_ids)}
    if isinstance(e, SignalsSplitOff):
        return {"signals": tuple(x for x in s.signals if x.signal_id not in e.signal_ids)}
    if isinstance(e, StatusChanged):
        if e.status in ("cancelled", "closed"):
            return {"status": e.status, "close_reason": e.reason or None}
        return {"status": e.status, "close_reason": None}
    if isinstance(e, TaskCreated):
        return {"tasks": (*s.tasks, Task(task_id=e.task_id, agency=e.agency,
                                         capability=e.capability, status="pending",
                                         created_at=e.at, updated_at=e.at))}
    if isinstance(e, TaskOffered):
        return _task(s, e.task_id, status="offered", unit_id=e.unit_id, updated_at=e.at)
    if isinstance(e, TaskAccepted):
        return _task(s, e.task_id, status="accepted", updated_at=e.at)
    if isinstance(e, TaskReturned):
        task = s.task(e.task_id)
        return _task(s, e.task_id, status="pending", unit_id=None, updated_at=e.at,
                     passed_over=(*task.passed_over, e.unit_id))
    if isinstance(e, TaskMoved):
        return _task(s, e.task_id, status=e.status, updated_at=e.at)
    if isinstance(e, TaskCancelled):
        return _task(s, e.task_id, status="cancelled", updated_at=e.at)
    if isinstance(e, TimerScheduled):
        return {"timers": (*s.timers, e.timer_id)}
    if isinstance(e, TimerCancelled | TimerFired):
        return {"timers": tuple(t for t in s.timers if t != e.timer_id)}
    raise AssertionError(f"no evolve for {e.type}")


def _task(s: Incident, task_id: str, **changes: object) -> dict[str, object]:
    return {"tasks": tuple(t.model_copy(update=changes) if t.task_id == task_id else t
                           for t in s.tasks)}


def fold(events: list[AnyIncidentEvent], state: Incident | None = None) -> Incident | None:
    """Replay ``events`` from ``state``: the live state is the fold of the log."""
    for event in events:
        state = evolve(state, event)
    return state
