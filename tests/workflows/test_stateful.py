"""Incidents, tasks and units together, driven by hypothesis through random command runs.

The little "world" here applies a command exactly as the shell's unit of work
does (decide on the incident, the unit commands its events imply, all or
nothing), with no I/O. The invariants are the promises ECC makes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from command.settings import load_catalogue
from workflows import incident as inc
from workflows import unit as un
from workflows.dispatching import unit_commands
from workflows.geo import Location
from workflows.messages import Rejected

CATALOGUE = load_catalogue()
UNITS = {"E1": ("fire", ("engine",)), "E2": ("fire", ("engine", "rescue")),
         "L1": ("fire", ("ladder",)), "A1": ("health", ("als", "bls")),
         "P1": ("police", ("cordon", "patrol", "traffic")), "G1": ("utility", ("gas_crew",))}
CATEGORIES = ["fire", "medical", "gas_leak", "traffic", "flood", "other"]


class World(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)
        self.incidents: dict[str, inc.Incident] = {}
        self.units: dict[str, un.Unit] = {}
        self.logs: dict[str, list[Any]] = {}
        self.n = 0

    def now(self) -> datetime:
        self.clock += timedelta(seconds=7)
        return self.clock

    @initialize()
    def register_units(self) -> None:
        for unit_id, (agency, caps) in UNITS.items():
            events = un.decide(None, un.RegisterUnit(at=self.clock, unit_id=unit_id,
                                                     call_sign=unit_id, agency=agency,
                                                     capabilities=caps))
            self.logs[f"unit:{unit_id}"] = list(events)
            self.units[unit_id] = un.fold(events)  # type: ignore[assignment]

    def apply(self, incident_id: str, command: Any) -> None:
        """Decide, follow up on units, commit all or nothing; only Rejected may come out."""
        before = self.incidents.get(incident_id)
        try:
            events, after = inc.step(before, command, CATALOGUE)
            # step folds once for speed: it must equal the plain fold of its events
            assert after == (inc.fold(events, before) if events else before)
            staged_units: dict[str, tuple[un.Unit, list[Any]]] = {}
            for unit_id, unit_command in unit_commands(before, events):
                state, pending = staged_units.get(unit_id, (self.units[unit_id], []))
                unit_events = un.decide(state, unit_command)
                staged_units[unit_id] = (un.fold(unit_events, state), pending + unit_events)  # type: ignore[arg-type]
        except Rejected as exc:
            assert exc.reason and exc.code
            return
        if not events:
            return
        self.incidents[incident_id] = inc.fold(events, before)  # type: ignore[assignment]
        self.logs.setdefault(f"incident:{incident_id}", []).extend(events)
        for unit_id, (state, unit_events) in staged_units.items():
            self.units[unit_id] = state
            self.logs[f"unit:{unit_id}"].extend(unit_events)

    def pick(self, data: st.DataObject) -> str | None:
        if not self.incidents:
            return None
        return data.draw(st.sampled_from(sorted(self.incidents)))

    # --- rules ----------------------------------------------------------------------

    @rule(category=st.sampled_from(CATEGORIES), confidence=st.floats(0, 1),
          priority=st.none() | st.integers(1, 4))
    def report(self, category: str, confidence: float, priority: int | None) -> None:
        self.n += 1
        self.apply(f"i{self.n}", inc.ReportIncident(
            at=self.now(), incident_id=f"i{self.n}", signal_id=f"s{self.n}", source="sensor",
            category=category, location=Location(lat=34.7, lon=113.6), confidence=confidence,
            priority=priority))

    @rule(data=st.data(), source=st.sampled_from(["hotline", "camera", "sensor"]))
    def attach(self, data: st.DataObject, source: str) -> None:
        if (iid := self.pick(data)) is not None:
            self.n += 1
            self.apply(iid, inc.AttachSignal(at=self.now(), signal_id=f"s{self.n}",
                                             source=source))

    @rule(data=st.data(), kind=st.sampled_from([
        "verify", "control", "resolve", "close", "cancel", "reopen", "escalate", "priority",
        "merge", "undo_merge", "reclassify"]))
    def incident_command(self, data: st.DataObject, kind: str) -> None:
        if (iid := self.pick(data)) is None:
            return
        at = self.now()
        command = {
            "verify": lambda: inc.VerifyIncident(at=at),
            "control": lambda: inc.ControlIncident(at=at),
            "resolve": lambda: inc.ResolveIncident(at=at),
            "close": lambda: inc.CloseIncident(at=at),
            "cancel": lambda: inc.CancelIncident(at=at, reason="false alarm"),
            "reopen": lambda: inc.ReopenIncident(at=at, reason="flare-up"),
            "escalate": lambda: inc.Escalate(at=at, reason="why not"),
            "priority": lambda: inc.SetPriority(at=at, priority=data.draw(st.integers(1, 4)),
                                                reason="evidence"),
            "merge": lambda: inc.MergeInto(at=at, target_id="i0"),
            "undo_merge": lambda: inc.UndoMerge(at=at),
            "reclassify": lambda: inc.Reclassify(at=at, category=data.draw(
                st.sampled_from(CATEGORIES))),
        }[kind]()
        self.apply(iid, command)

    @rule(data=st.data(), kind=st.sampled_from(["offer", "accept", "decline", "en_route",
                                                "on_scene", "complete", "cancel"]))
    def task_command(self, data: st.DataObject, kind: str) -> None:
        wanted = {"offer": {"pending"}, "accept": {"offered"}, "decline": {"offered"},
                  "en_route": {"accepted"}, "on_scene": {"accepted", "en_route"},
                  "complete": {"on_scene"}, "cancel": set(inc.LIVE_TASK)}[kind]
        candidates = [(iid, t) for iid, s in sorted(self.incidents.items()) for t in s.tasks
                      if t.status in wanted]
        if not candidates:
            return
        iid, task = data.draw(st.sampled_from(candidates))
        able = sorted(u for u, (_, caps) in UNITS.items() if task.capability in caps)
        # mostly a unit that could do it (busy or not), sometimes any unit at all
        unit_id = task.unit_id or data.draw(st.sampled_from(able or sorted(UNITS))
                                            | st.sampled_from(sorted(UNITS)))
        at = self.now()
        command = {
            "offer": lambda: inc.OfferTask(at=at, task_id=task.task_id, unit_id=unit_id),
            "accept": lambda: inc.AcceptTask(at=at, task_id=task.task_id, unit_id=unit_id),
            "decline": lambda: inc.DeclineTask(at=at, task_id=task.task_id, unit_id=unit_id),
            "en_route": lambda: inc.TaskEnRoute(at=at, task_id=task.task_id),
            "on_scene": lambda: inc.TaskOnScene(at=at, task_id=task.task_id),
            "complete": lambda: inc.CompleteTask(at=at, task_id=task.task_id),
            "cancel": lambda: inc.CancelTask(at=at, task_id=task.task_id, reason="not needed"),
        }[kind]()
        self.apply(iid, command)

    @rule(data=st.data())
    def crew_moves_on(self, data: st.DataObject) -> None:
        """The crew on some task takes its next step, as crews mostly do."""
        manned = [(iid, t) for iid, s in sorted(self.incidents.items()) for t in s.tasks
                  if t.status in inc.MANNED_TASK]
        if not manned:
            return
        iid, task = data.draw(st.sampled_from(manned))
        at = self.now()
        assert task.unit_id is not None
        command = {
            "offered": inc.AcceptTask(at=at, task_id=task.task_id, unit_id=task.unit_id),
            "accepted": inc.TaskEnRoute(at=at, task_id=task.task_id),
            "en_route": inc.TaskOnScene(at=at, task_id=task.task_id),
            "on_scene": inc.CompleteTask(at=at, task_id=task.task_id),
        }[task.status]
        self.apply(iid, command)

    @rule(data=st.data())
    def crew_back_in_service(self, data: st.DataObject) -> None:
        """A returning crew reports available again."""
        returning = sorted(u for u, s in self.units.items() if s.status == "returning")
        if returning:
            unit_id = data.draw(st.sampled_from(returning))
            events = un.decide(self.units[unit_id], un.MoveUnit(at=self.now(),
                                                                status="available"))
            self.units[unit_id] = un.fold(events, self.units[unit_id])  # type: ignore[assignment]
            self.logs[f"unit:{unit_id}"].extend(events)

    @rule(data=st.data())
    def fire_a_timer(self, data: st.DataObject) -> None:
        if (iid := self.pick(data)) is None or not self.incidents[iid].timers:
            return
        timer_id = data.draw(st.sampled_from(self.incidents[iid].timers))
        self.apply(iid, inc.FireTimer(at=self.now(), timer_id=timer_id))

    # --- invariants -------------------------------------------------------------------

    @invariant()
    def a_unit_is_on_at_most_one_active_task(self) -> None:
        holders: dict[str, list[tuple[str, str]]] = {}
        for iid, state in self.incidents.items():
            for task in state.tasks:
                if task.status in inc.MANNED_TASK:
                    assert task.unit_id is not None
                    holders.setdefault(task.unit_id, []).append((iid, task.task_id))
        for unit_id, held in holders.items():
            assert len(held) == 1, f"{unit_id} on {held}"
            unit = self.units[unit_id]
            assert (unit.incident_id, unit.task_id) == held[0], (unit_id, unit, held)

    @invariant()
    def an_ended_incident_has_no_live_task(self) -> None:
        for state in self.incidents.values():
            if state.status in ("closed", "cancelled", "merged", "resolved"):
                assert not [t for t in state.tasks if t.status in inc.LIVE_TASK], state.status
                assert state.timers == ()

    @invariant()
    def folding_the_log_gives_the_live_state(self) -> None:
        for iid, state in self.incidents.items():
            assert inc.fold(self.logs[f"incident:{iid}"]) == state
        for unit_id, unit in self.units.items():
            assert un.fold(self.logs[f"unit:{unit_id}"]) == unit


World.TestCase.settings = settings(max_examples=80, stateful_step_count=50, deadline=None)
TestWorld = World.TestCase
