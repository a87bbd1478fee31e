"""Benchmark: the incident core's decide+evolve steps per second, beside the same
incident lifecycle written with python-statemachine, measured in one run.

One lifecycle is nine commands: report, verify (the fire plan: five tasks and
their timers), offer, accept, en route, on scene, control, resolve, close.
ECC's core decides each (checking the transition table, planning, scheduling
timers) and folds the events; the python-statemachine version only moves the
incident's status through the same transitions, with no tasks or timers.

    python -m bench.workflow [--rounds 2000] [--quick] [--metrics FILE]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from statemachine import State, StateMachine

from bench.metric import Metric, against, common_args, report
from command.settings import load_catalogue
from workflows import incident as inc
from workflows.geo import Location

T0 = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)
CATALOGUE = load_catalogue()
LOCATION = Location(lat=34.75, lon=113.62)


def commands(n: int) -> list[Any]:
    at = [T0 + timedelta(seconds=s) for s in range(9)]
    return [
        inc.ReportIncident(at=at[0], incident_id=f"i{n}", signal_id=f"s{n}", source="sensor",
                           category="fire", location=LOCATION, confidence=0.6),
        inc.VerifyIncident(at=at[1], by="desk"),
        inc.OfferTask(at=at[2], task_id="t1", unit_id="E1"),
        inc.AcceptTask(at=at[3], task_id="t1", unit_id="E1"),
        inc.TaskEnRoute(at=at[4], task_id="t1"),
        inc.TaskOnScene(at=at[5], task_id="t1"),
        inc.ControlIncident(at=at[6]),
        inc.ResolveIncident(at=at[7]),
        inc.CloseIncident(at=at[8]),
    ]


def run_ecc(rounds: int) -> tuple[float, int]:
    scripts = [commands(n) for n in range(rounds)]  # built outside the clock
    steps = 0
    start = time.perf_counter()
    for script in scripts:
        state = None
        for command in script:
            _, state = inc.step(state, command, CATALOGUE)
            steps += 1
        assert state is not None and state.status == "closed"
    return time.perf_counter() - start, steps


class IncidentMachine(StateMachine):  # type: ignore[misc]
    """The incident statuses and the same transitions, in python-statemachine."""

    reported = State(initial=True)
    verified = State()
    dispatching = State()
    responding = State()
    on_scene = State()
    controlled = State()
    resolved = State()
    closed = State(final=True)

    verify = reported.to(verified)
    plan = verified.to(dispatching)
    offer = dispatching.to.itself(internal=True)
    accept = dispatching.to.itself(internal=True)
    en_route = dispatching.to(responding)
    arrive = responding.to(on_scene)
    control = on_scene.to(controlled)
    resolve = controlled.to(resolved)
    close = resolved.to(closed)


SCRIPT = ["verify", "plan", "offer", "accept", "en_route", "arrive", "control", "resolve",
          "close"]


def run_psm(rounds: int) -> tuple[float, int]:
    steps = 0
    start = time.perf_counter()
    for _ in range(rounds):
        machine = IncidentMachine()  # the report; "plan" is automatic in ECC, a send here
        for event in SCRIPT:
            machine.send(event)
        steps += 9  # the same nine steps as ECC's lifecycle
        assert machine.closed.is_active
    return time.perf_counter() - start, steps


def run(rounds: int) -> dict[str, Any]:
    """Both lifecycles, ``rounds`` times each, after a warm-up; the detailed figures."""
    run_ecc(50), run_psm(50)  # warm-up
    ecc_s, ecc_steps = run_ecc(rounds)
    psm_s, psm_steps = run_psm(rounds)
    return {
        "benchmark": "workflow",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "rounds": rounds,
        "ecc_steps_per_s": round(ecc_steps / ecc_s),
        "python_statemachine_steps_per_s": round(psm_steps / psm_s),
        "ratio_ecc_over_psm": round((ecc_steps / ecc_s) / (psm_steps / psm_s), 2),
        "note": "ECC steps also plan tasks and schedule timers; the python-statemachine "
                "machine moves the status only",
    }


def metrics(result: dict[str, Any]) -> list[Metric]:
    base = Metric("workflow.python_statemachine_steps_per_s",
                  result["python_statemachine_steps_per_s"], "steps/s")
    return [against(Metric("workflow.steps_per_s", result["ecc_steps_per_s"], "steps/s"), base),
            base]


def measure(quick: bool = False, rounds: int | None = None) -> list[Metric]:
    return metrics(run(rounds or (200 if quick else 2000)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="lifecycles per side (default 2000; "
                                                   "200 with --quick)")
    common_args(parser)
    args = parser.parse_args()
    result = run(args.rounds or (200 if args.quick else 2000))
    print(f"incident core: {result['ecc_steps_per_s']} decide+evolve steps/s; "
          f"python-statemachine: {result['python_statemachine_steps_per_s']} steps/s; "
          f"ratio {result['ratio_ecc_over_psm']}x")
    report("workflow", result, metrics(result), args)


if __name__ == "__main__":
    main()
