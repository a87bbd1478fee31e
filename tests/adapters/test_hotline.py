"""The hotline adapter: transparent classification, real call records, replay on NATS."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.hotline import CallRecord, read_csv
from adapters.hotline import classify as _classify
from adapters.hotline import to_signal as _to_signal
from adapters.ingest import parse_call
from adapters.replay import replay
from command.bus import Undeliverable
from command.model import MAX_SIGNAL_BYTES
from command.settings import builtin_catalogue
from command.store import Store
from command.subjects import Namespace
from ecc.app import Service
from tests.helpers import eventually, shared_data

RULES = builtin_catalogue().hotline


def classify(text: str):  # type: ignore[no-untyped-def]
    return _classify(text, RULES)


def to_signal(record: CallRecord):  # type: ignore[no-untyped-def]
    return _to_signal(record, RULES)


@pytest.mark.parametrize(("text", "category", "rule"), [
    ("三楼着火了，有浓烟", "fire", "fire"),
    ("路口两车追尾，有人受伤", "traffic", "crash"),
    ("老人在公园晕倒了", "medical", "medical"),
    ("楼道里有燃气味，像是漏气", "gas_leak", "gas"),
    ("隧道积水很深，车过不去", "flood", "flood"),
    ("Fire: GAS-ODOR/LEAK", "gas_leak", "gas"),
    ("EMS: CARDIAC EMERGENCY", "medical", "medical"),
    ("Traffic: VEHICLE ACCIDENT -", "traffic", "crash"),
    ("Traffic: DISABLED VEHICLE", "traffic", "road"),
    ("my cat is on the roof", "other", "none"),
])
def test_rules_in_english_and_chinese(text: str, category: str, rule: str) -> None:
    """Each narrative lands where a call taker would file it, naming the rule that decided."""
    c = classify(text)
    assert (c.category, c.rule) == (category, rule)
    assert c.matched is None or c.matched in text.lower()


@given(st.text(max_size=500))
def test_any_narrative_is_classified(text: str) -> None:
    """Whatever is said, the answer is a known rule (or 'none') with a priority 1-4."""
    c = classify(text)
    assert c.rule in {r.name for r in RULES} | {"none"} and 1 <= c.priority <= 4


@given(st.binary(max_size=400))
def test_any_bytes_as_a_call_record_never_crash_refused_or_read(data: bytes) -> None:
    """Bytes of any kind are read as a call record or refused with a reason, nothing else."""
    try:
        assert isinstance(parse_call(data), CallRecord)
    except Undeliverable as exc:
        assert exc.code in {"invalid", "oversized"} and exc.reason


GOOD_CALL: dict[str, Any] = {
    "call_id": "c-1", "platform": "110", "received_at": "2026-07-20T08:00:00+08:00",
    "narrative": "三楼着火了，有浓烟", "location": {"lat": 34.7466, "lon": 113.6254},
    "caller": {"name": "Li", "phone": "13800000000"}}
# location is not required: a call with only an address is placed by the gazetteer
REQUIRED = ("call_id", "received_at", "narrative")
# JSON values no field of a call record takes: a string field refuses numbers and
# containers, a time refuses containers, a location refuses anything but an object
NOT_A_STRING = st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                         st.booleans(), st.lists(st.integers(), max_size=3),
                         st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
NOT_AN_OBJECT = st.one_of(st.integers(), st.text(max_size=20), st.booleans(),
                          st.lists(st.integers(), max_size=3))
FINITE = {"allow_nan": False, "allow_infinity": False}


@st.composite
def invalid_call_records(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A good call record broken in one way it must be refused for, and the field the
    refusal must name."""
    call = {**GOOD_CALL, "location": dict(GOOD_CALL["location"])}
    kind = draw(st.sampled_from(["missing", "not a string", "not an object", "latitude",
                                 "longitude", "naive time", "long narrative", "bad id",
                                 "extra field", "null"]))
    if kind == "missing":
        field = draw(st.sampled_from(REQUIRED))
        del call[field]
    elif kind == "not a string":
        field = draw(st.sampled_from(["call_id", "platform", "narrative"]))
        call[field] = draw(NOT_A_STRING)
    elif kind == "not an object":
        field = draw(st.sampled_from(["location", "caller"]))
        call[field] = draw(NOT_AN_OBJECT)
    elif kind == "latitude":
        field = "location.lat"
        call["location"]["lat"] = draw(st.floats(min_value=90, exclude_min=True, **FINITE)
                                       | st.floats(max_value=-90, exclude_max=True, **FINITE))
    elif kind == "longitude":
        field = "location.lon"
        call["location"]["lon"] = draw(st.floats(min_value=180, exclude_min=True, **FINITE)
                                       | st.floats(max_value=-180, exclude_max=True,
                                                   **FINITE))
    elif kind == "naive time":
        field = "received_at"
        call[field] = draw(st.datetimes()).isoformat()
    elif kind == "long narrative":
        field = "narrative"
        call[field] = "火" * draw(st.integers(4001, 8000))
    elif kind == "bad id":
        field = "call_id"
        call[field] = draw(st.sampled_from(["", "-c1", " c1", "c 1", "c/1", "c" * 65]))
    elif kind == "extra field":
        field = draw(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
                     .filter(lambda k: k not in CallRecord.model_fields))
        call[field] = draw(st.integers() | st.text(max_size=10))
    else:
        field = draw(st.sampled_from(REQUIRED))
        call[field] = None
    return call, field


def test_the_good_call_record_the_refusals_start_from_is_read() -> None:
    """The record every refusal below breaks is itself read whole, so each refusal is
    for the one thing broken."""
    record = parse_call(json.dumps(GOOD_CALL).encode())
    assert record.call_id == "c-1" and record.caller is not None


@settings(max_examples=200)
@given(invalid_call_records())
def test_invalid_call_records_are_refused(case: tuple[dict[str, Any], str]) -> None:
    """A call record missing a required field, with a wrong type, a place off the globe,
    a naive time, an oversize narrative, a bad id or an unknown field is refused, and the
    reason names the field."""
    call, field = case
    with pytest.raises(Undeliverable) as refused:
        parse_call(json.dumps(call).encode())
    assert refused.value.code == "invalid"
    assert f"{field}: " in refused.value.reason or f"{field}." in refused.value.reason, \
        refused.value.reason


def test_an_oversize_call_record_is_refused_before_it_is_read() -> None:
    """A record over the signal size limit is refused as oversized, naming the limit."""
    body = json.dumps({**GOOD_CALL, "narrative": "x" * MAX_SIGNAL_BYTES}).encode()
    with pytest.raises(Undeliverable) as refused:
        parse_call(body)
    assert refused.value.code == "oversized"
    assert f"limit {MAX_SIGNAL_BYTES}" in refused.value.reason


def test_the_montgomery_county_calls_read_and_classify() -> None:
    """All 3,051 real calls read; EMS, traffic and fire titles land in their categories."""
    records = list(read_csv(shared_data("montco_911_subset",
                                        "911_montco_subset_noheader.csv").read_text()))
    assert len(records) == 3051
    signals = [to_signal(r) for r in records]
    by_title = {r.narrative: s.category for r, s in zip(records, signals, strict=True)}
    assert by_title["EMS: CARDIAC EMERGENCY"] == "medical"
    assert by_title["Fire: GAS-ODOR/LEAK"] == "gas_leak"
    assert by_title["Traffic: VEHICLE ACCIDENT"] == "traffic"
    assert sum(s.category == "other" for s in signals) == 0
    assert all(s.details["rule"] != "none" for s in signals)


async def test_a_replay_of_real_calls_through_the_pipeline(
    service: Service, store: Store, js: Any, ns: Namespace
) -> None:
    """200 real 911 calls replayed as fast as the broker takes them: every call becomes
    evidence, repeats about one event fuse, nothing is lost."""
    records = list(read_csv(shared_data("montco_911_subset",
                                        "911_montco_subset_noheader.csv").read_text()))[:200]
    stats = await replay(js, ns, records, catalogue=builtin_catalogue(), speed=0)
    assert stats.published == 200

    async def all_taken() -> bool:
        return bool(await store.pool.fetchval(
            "SELECT count(*) FROM events WHERE type = 'signal.received'") == 200)

    await eventually(all_taken, timeout=60)
    incidents = await store.pool.fetchval("SELECT count(*) FROM incidents")
    on_incidents = await store.pool.fetchval(
        "SELECT sum(jsonb_array_length(view->'signals')) FROM incidents")
    assert on_incidents == 200 and 0 < incidents <= 200
    again = await replay(js, ns, records[:20], catalogue=builtin_catalogue(), speed=0)
    assert again.duplicates == 20  # the broker drops a replay of the same calls
