"""Border (core part): sensor readings to alarms, with the rules as data.

A :class:`SensorRules` machine per device and metric takes readings one at a
time (``step(state, reading) -> (state, decisions)``, pure, time inside the
reading) and decides:

* reject: sentinel or impossible values (the Chicago beach sensors report
  -99999.992), readings out of time order, or older than the last;
* alarm: the value at or past ``alarm_at`` for ``debounce`` readings in a row
  (one spike is not an emergency);
* alarm: rising faster than ``rise_per_min`` (a flash flood fills an underpass
  before it crosses the level threshold);
* clear: back past ``clear_at`` (hysteresis: alarm at 30 cm water, clear below
  25 cm, so a value hovering at the threshold raises one alarm, not hundreds);
* stale: :func:`heartbeat` says a device silent past its interval needs
  maintenance (not an emergency).

The device registry is :mod:`adapters.sensor`; the shell that reads the
MQTT-mapped NATS subjects and publishes signals is :mod:`adapters.ingest`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal


@dataclass(frozen=True)
class SensorRules:
    alarm_at: float
    clear_at: float
    rising: bool = True  # alarm when the value goes up past alarm_at (water, gas); or down
    debounce: int = 2  # readings in a row past the threshold before an alarm
    valid_min: float = -1e6
    valid_max: float = 1e6
    sentinels: tuple[float, ...] = (-99999.992, -9999.0, -200.0)
    heartbeat: timedelta = timedelta(hours=2)
    # alarm when the value moves towards alarm_at faster than this per minute (None: off)
    rise_per_min: float | None = None

    def __post_init__(self) -> None:
        ok = self.clear_at < self.alarm_at if self.rising else self.clear_at > self.alarm_at
        if not ok:
            raise ValueError("clear_at must be on the safe side of alarm_at (hysteresis)")


@dataclass(frozen=True)
class Reading:
    value: float
    at: datetime


@dataclass(frozen=True)
class SensorState:
    alarmed: bool = False
    streak: int = 0  # readings in a row past alarm_at while not alarmed
    last_at: datetime | None = None
    last_value: float | None = None


@dataclass(frozen=True)
class Decision:
    kind: Literal["alarm", "clear", "rejected"]
    reason: str
    value: float
    at: datetime


def _past(rules: SensorRules, value: float, level: float) -> bool:
    return value >= level if rules.rising else value <= level


def step(rules: SensorRules, state: SensorState,
         reading: Reading) -> tuple[SensorState, list[Decision]]:
    """Fold one reading; returns the new state and what it decided (often nothing)."""
    v = reading.value
    if not math.isfinite(v) or any(abs(v - s) < 1e-6 for s in rules.sentinels):
        return state, [Decision("rejected", f"sentinel or impossible value {v}", v, reading.at)]
    if not rules.valid_min <= v <= rules.valid_max:
        return state, [Decision("rejected", f"{v} outside {rules.valid_min}..{rules.valid_max}",
                                v, reading.at)]
    if state.last_at is not None and reading.at <= state.last_at:
        return state, [Decision("rejected", f"reading at {reading.at.isoformat()} is not after "
                                            f"the last ({state.last_at.isoformat()})",
                                v, reading.at)]
    rise = _rise(rules, state, reading)
    fast = rules.rise_per_min is not None and rise is not None and rise >= rules.rise_per_min
    state = replace(state, last_at=reading.at, last_value=v)
    if state.alarmed:
        if _past(rules, v, rules.clear_at) or v == rules.clear_at or fast:
            return state, []
        return replace(state, alarmed=False, streak=0), [
            Decision("clear", f"{v} back past {rules.clear_at}", v, reading.at)]
    if _past(rules, v, rules.alarm_at):
        streak = state.streak + 1
        if streak >= rules.debounce:
            return replace(state, alarmed=True, streak=0), [
                Decision("alarm", f"{v} past {rules.alarm_at} for {streak} readings", v,
                         reading.at)]
        return replace(state, streak=streak), []
    if fast:
        return replace(state, alarmed=True, streak=0), [
            Decision("alarm", f"{v} moving {rise:.1f} per minute towards {rules.alarm_at} "
                              f"(limit {rules.rise_per_min}/min)", v, reading.at)]
    return replace(state, streak=0), []


def _rise(rules: SensorRules, state: SensorState, reading: Reading) -> float | None:
    """How fast the value moves towards ``alarm_at``, per minute, since the last reading."""
    if state.last_value is None or state.last_at is None:
        return None
    minutes = max((reading.at - state.last_at).total_seconds() / 60, 1 / 60)
    change = reading.value - state.last_value
    return (change if rules.rising else -change) / minutes


def heartbeat(rules: SensorRules, state: SensorState, now: datetime) -> str | None:
    """Why the device needs maintenance (silent too long), or None."""
    if state.last_at is not None and now - state.last_at > rules.heartbeat:
        return f"silent since {state.last_at.isoformat()} (interval {rules.heartbeat})"
    return None
