"""The device registry and sensor payloads: what the city file and devices may say."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.sensor import (
    Devices,
    SensorRejected,
    parse_reading,
    parse_registry,
    parse_topic,
)
from command.settings import load_city_doc

T0 = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)
KINDS = {"water_level": {"metric": "water_level", "unit": "cm", "category": "flood",
                         "alarm_at": 30, "clear_at": 25, "heartbeat_s": 600}}


def test_the_demo_city_registers_its_devices() -> None:
    registry = parse_registry(load_city_doc())
    assert {"wl-jingguang-tunnel", "gas-erqi-market"} <= set(registry.devices)
    assert registry.kind_of("gas-erqi-market").category == "gas_leak"


@pytest.mark.parametrize(("doc", "says"), [
    ({"sensor_kind": {"w": {**KINDS["water_level"], "clear_at": 35}}}, "hysteresis"),
    ({"sensor_kind": KINDS, "device": [{"id": "d1", "kind": "smoke", "lat": 1, "lon": 1}]},
     "[sensor_kind.smoke]"),
    ({"sensor_kind": KINDS, "device": [{"id": "d1", "kind": "water_level", "lat": 91,
                                        "lon": 1}]}, "[[device]] number 1: lat"),
    ({"sensor_kind": KINDS, "device": [{"id": "d1", "kind": "water_level", "lat": 1, "lon": 1},
                                       {"id": "d1", "kind": "water_level", "lat": 1,
                                        "lon": 1}]}, "appears twice"),
    ({"sensor_kind": {"w": {**KINDS["water_level"], "colour": "red"}}}, "colour"),
])
def test_a_bad_registry_is_refused_naming_the_entry(doc: dict[str, Any], says: str) -> None:
    with pytest.raises(SensorRejected) as refused:
        parse_registry(doc)
    assert says in refused.value.reason


def test_payloads_a_number_or_json_with_a_time() -> None:
    assert parse_reading(b"31.5", T0).value == 31.5 and parse_reading(b"31.5", T0).at == T0
    r = parse_reading(json.dumps({"value": 12, "at": "2026-07-20T16:00:00+08:00"}).encode(), T0)
    assert (r.value, r.at) == (12.0, T0)
    assert parse_reading(b'{"value": 3, "time": 1784534400}', T0).at.year == 2026
    for bad, says in [(b'"31"', "numeric"), (b'{"value": true}', "numeric"),
                      (b'{"value": 1, "at": "yesterday"}', "ISO 8601"),
                      (b'{"value": 1, "at": "2026-07-20T08:00:00"}', "time zone"),
                      (b"NaN", "usable"), (b"1e400", "usable"),
                      (b"[" * 100_000, "limit 4096"), (b"[" * 4000, "JSON")]:
        with pytest.raises(SensorRejected) as refused:
            parse_reading(bad, T0)
        assert says in refused.value.reason, bad[:40]


def test_topics_name_a_device_and_a_metric() -> None:
    assert parse_topic("sensors.wl-1.water_level", "sensors") == ("wl-1", "water_level")
    for bad in ("sensors.wl-1", "sensors.wl-1.water_level.extra", "other.wl-1.water_level",
                "sensors.wl 1.water_level", "sensors.wl-1.Water"):
        with pytest.raises(SensorRejected):
            parse_topic(bad, "sensors")


def test_silence_is_judged_on_the_brokers_clock_and_reported_once() -> None:
    """A device whose own clock is a day behind is not silent while it keeps reporting;
    once it stops, one maintenance signal, and none again until it is heard from."""
    registry = parse_registry({"sensor_kind": KINDS, "device": [
        {"id": "d1", "kind": "water_level", "lat": 34.7, "lon": 113.6}]})
    devices = Devices(registry, started=T0)
    skewed = parse_reading(b'{"value": 5, "at": "2026-07-19T08:00:00+00:00"}', T0)
    devices.read("d1", "water_level", skewed, received_at=T0 + timedelta(minutes=5))
    assert devices.silences(T0 + timedelta(minutes=10)) == []
    [signal] = devices.silences(T0 + timedelta(minutes=20))
    assert signal.category == "maintenance" and signal.source == "sensor"
    assert devices.silences(T0 + timedelta(minutes=30)) == []
    later = parse_reading(b'{"value": 6, "at": "2026-07-19T08:40:00+00:00"}', T0)
    devices.read("d1", "water_level", later, received_at=T0 + timedelta(minutes=40))
    assert devices.silences(T0 + timedelta(minutes=45)) == []


@given(st.binary(max_size=512))
def test_any_bytes_are_a_reading_or_a_reason(data: bytes) -> None:
    try:
        reading = parse_reading(data, T0)
    except SensorRejected as exc:
        assert exc.reason
    else:
        assert reading.at.tzinfo is not None


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.sampled_from(["value", "at", "time", "x"]), inner, max_size=3),
                    max_leaves=10))
def test_any_json_is_a_reading_or_a_reason(value: Any) -> None:
    try:
        parse_reading(json.dumps(value).encode(), T0)
    except SensorRejected as exc:
        assert exc.reason


@given(st.dictionaries(st.text(max_size=10), st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3), max_leaves=8),
    max_size=4))
def test_any_sensor_kind_table_is_a_registry_or_a_reason(table: dict[str, Any]) -> None:
    try:
        parse_registry({"sensor_kind": {"k": table}})
    except SensorRejected as exc:
        assert exc.reason.startswith("city file: [sensor_kind.k]")



def test_a_kind_must_raise_a_type_the_catalogue_knows() -> None:
    doc = {"sensor_kind": {"w": {**KINDS["water_level"], "category": "floood"}}}
    with pytest.raises(SensorRejected) as refused:
        parse_registry(doc, categories=("flood", "fire"))
    assert "'floood' is not an incident type" in refused.value.reason
    assert parse_registry(doc).kinds["w"].category == "floood"  # no catalogue: not checked


def test_an_alarm_that_could_not_be_published_alarms_again_when_redelivered() -> None:
    """The shell marks the device before a reading and undoes it if the publish fails: the
    same reading, delivered again, raises the same alarm (same signal id)."""
    registry = parse_registry({"sensor_kind": {"w": {**KINDS["water_level"], "debounce": 1}},
                               "device": [{"id": "d1", "kind": "w", "lat": 1, "lon": 1}]})
    devices = Devices(registry, started=T0)
    reading = parse_reading(b'{"value": 40, "at": "2026-07-20T08:01:00+00:00"}', T0)
    mark = devices.mark("d1")
    first, _ = devices.read("d1", "water_level", reading, received_at=T0)
    assert first is not None
    devices.undo("d1", mark)  # the broker did not take it
    again, _ = devices.read("d1", "water_level", reading, received_at=T0)
    assert again is not None and again.signal_id == first.signal_id
    once_more, _ = devices.read("d1", "water_level", reading, received_at=T0)
    assert once_more is None  # now it was kept: a repeat is out of order, not an alarm
