"""Sensor rules: hysteresis, debounce, sentinels and heartbeats, on real Chicago data."""

from __future__ import annotations

import csv
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.sensor_rules import Reading, SensorRules, SensorState, heartbeat, step
from tests.helpers import shared_data

T0 = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)
WATER = SensorRules(alarm_at=30.0, clear_at=25.0, debounce=2)


def run(rules: SensorRules, values: list[float]) -> list[str]:
    state, out = SensorState(), []
    for i, v in enumerate(values):
        state, decisions = step(rules, state, Reading(v, T0 + timedelta(minutes=i)))
        out += [d.kind for d in decisions]
    return out


def test_a_value_hovering_at_the_threshold_raises_one_alarm() -> None:
    """Water flapping between 29 and 31 cm for an hour: one alarm, no clear."""
    assert run(WATER, [29, 31] * 30 + [31, 31]) == ["alarm"]


def test_alarm_then_clear_below_the_lower_level() -> None:
    """Alarm at 30 (after two readings), clear only below 25."""
    assert run(WATER, [10, 31, 32, 28, 26, 24.9, 31, 33]) == ["alarm", "clear", "alarm"]


def test_one_spike_is_not_an_emergency() -> None:
    """A single reading past the threshold is debounced away."""
    assert run(WATER, [10, 45, 10, 10]) == []


def test_water_rising_fast_alarms_before_the_level() -> None:
    """A flash flood: 4 -> 12 -> 22 cm a minute apart is 10 cm/min, past a 5 cm/min limit,
    so the alarm comes at 22 cm, before the 30 cm level; a slow rise does not."""
    fast = SensorRules(alarm_at=30.0, clear_at=25.0, debounce=2, rise_per_min=5.0)
    assert run(fast, [4, 12, 22, 29, 31, 33]) == ["alarm"]
    state, first = SensorState(), []
    for i, v in enumerate([4.0, 12.0, 22.0]):
        state, decisions = step(fast, state, Reading(v, T0 + timedelta(minutes=i)))
        first += decisions
    assert [d.kind for d in first] == ["alarm"] and first[0].value == 12.0
    assert "per minute" in first[0].reason
    assert run(fast, [float(v) for v in range(0, 40, 2)]) == ["alarm"]  # 2/min: the level
    assert run(WATER, [4, 12, 22, 24]) == []  # no rate rule: no alarm below the level


def test_sentinels_and_impossible_values_are_rejected_not_alarmed_on() -> None:
    """-99999.992 (Chicago's sentinel), NaN and out-of-range values are rejected."""
    rules = SensorRules(alarm_at=30, clear_at=25, valid_min=-50, valid_max=500)
    assert run(rules, [-99999.992, float("nan"), 9999, 31, 31]) == [
        "rejected", "rejected", "rejected", "alarm"]


def test_out_of_order_readings_are_rejected() -> None:
    """A reading older than the last is refused; the state does not move."""
    state, _ = step(WATER, SensorState(), Reading(10, T0))
    after, decisions = step(WATER, state, Reading(40, T0 - timedelta(minutes=5)))
    assert after == state and decisions[0].kind == "rejected"


def test_a_silent_device_needs_maintenance() -> None:
    """Past its heartbeat interval a device is reported silent, not alarmed."""
    state, _ = step(WATER, SensorState(), Reading(10, T0))
    assert heartbeat(WATER, state, T0 + timedelta(hours=1)) is None
    assert "silent since" in (heartbeat(WATER, state, T0 + timedelta(hours=3)) or "")


def test_rules_without_hysteresis_are_refused() -> None:
    """clear_at on the wrong side of alarm_at would flap: refused at definition."""
    with pytest.raises(ValueError, match="hysteresis"):
        SensorRules(alarm_at=30, clear_at=35)


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=60))
def test_alarms_and_clears_alternate_whatever_the_readings(values: list[float]) -> None:
    """Any reading sequence: decisions alternate alarm, clear, alarm... and nothing raises."""
    kinds = [k for k in run(WATER, values) if k != "rejected"]
    assert all(a != b for a, b in itertools.pairwise(kinds))
    assert not kinds or kinds[0] == "alarm"


def test_the_chicago_beach_sensors_give_a_few_wave_alarms_not_thousands() -> None:
    """Real hourly wave heights at six beaches, replayed per beach in time order (the
    export is not sorted): the sentinel rows (-99999.992) are rejected, and hours of
    high water fold into a few alarms, each cleared below the lower level."""
    rules = SensorRules(alarm_at=0.5, clear_at=0.3, debounce=2, valid_min=0, valid_max=10)
    rows = []
    for row in csv.DictReader(shared_data(
            "chicago_beach_sensors", "Beach_Water_Quality_-_Automated_Sensors.csv").open()):
        if row["Wave Height"]:
            at = datetime.strptime(row["Measurement Timestamp"], "%m/%d/%Y %I:%M:%S %p")
            rows.append((row["Beach Name"], at.replace(tzinfo=UTC), float(row["Wave Height"])))
    rows.sort()
    states: dict[str, SensorState] = {}
    counts = {"alarm": 0, "clear": 0, "rejected": 0}
    for beach, at, value in rows:
        states[beach], decisions = step(rules, states.get(beach, SensorState()),
                                        Reading(value, at))
        for d in decisions:
            counts[d.kind] += 1
    high = sum(0.5 <= v <= 10 for _, _, v in rows)
    print(f"Chicago waves: {len(rows)} readings, {high} at or past 0.5 m, {counts}")
    sentinels = sum(v < 0 for _, _, v in rows)
    assert counts["rejected"] >= sentinels > 0
    assert 0 < counts["alarm"] < high / 3  # runs of high water are one alarm each
    assert counts["alarm"] - len(states) <= counts["clear"] <= counts["alarm"]
