"""The hotline adapter: transparent classification, real call records, replay on NATS."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from adapters.hotline import CallRecord, read_csv
from adapters.hotline import classify as _classify
from adapters.hotline import to_signal as _to_signal
from adapters.replay import replay
from command.service import Service
from command.settings import builtin_catalogue
from command.store import Store
from command.subjects import Namespace
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
def test_garbage_call_records_are_refused(data: bytes) -> None:
    """Bytes that are not a call record raise a validation error, nothing else."""
    try:
        CallRecord.model_validate_json(data)
    except ValidationError:
        pass


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
