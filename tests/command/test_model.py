"""The signal border: anything that is not a valid signal is refused with a reason."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from command.model import MAX_SIGNAL_BYTES, SignalRejected, parse_signal
from tests.helpers import make_signal

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def test_a_valid_signal_round_trips() -> None:
    """A signal serialised by its model parses back equal."""
    sig = make_signal()
    assert parse_signal("hotline", "fire", sig.model_dump_json().encode()) == sig


@given(st.binary(max_size=2048))
def test_random_bytes_are_refused_not_crashed_on(data: bytes) -> None:
    """Arbitrary bytes either parse or raise SignalRejected with a code and a reason."""
    try:
        parse_signal("hotline", "fire", data)
    except SignalRejected as exc:
        assert exc.code in {"invalid", "oversized", "subject_mismatch"}
        assert exc.reason


@given(json_values)
def test_random_json_is_refused_with_a_reason(value: object) -> None:
    """JSON that is not a signal object is refused as invalid, naming a field."""
    with pytest.raises(SignalRejected) as info:
        parse_signal("hotline", "fire", json.dumps(value).encode())
    assert info.value.code == "invalid"
    assert info.value.reason


@given(
    field=st.sampled_from(["location.lat", "location.lon", "confidence", "observed_at",
                           "summary", "signal_id", "category"]),
    data=st.data(),
)
def test_each_limit_is_enforced(field: str, data: st.DataObject) -> None:
    """Out-of-range coordinates, confidences, naive times, long texts and bad ids are refused."""
    bad = {
        "location.lat": data.draw(st.floats(min_value=90.0001, max_value=1e9) | st.just(-91.0)),
        "location.lon": data.draw(st.floats(min_value=180.0001, max_value=1e9)),
        "confidence": data.draw(st.floats(min_value=1.0001, max_value=1e6)),
        "observed_at": "2026-07-20T08:30:00",  # no timezone
        "summary": "x" * 2001,
        "signal_id": data.draw(st.sampled_from(["", "a.b", "a b", "x" * 200, "*"])),
        "category": data.draw(st.sampled_from(["", "Fire", "a.b", "x" * 41])),
    }[field]
    doc = json.loads(make_signal().model_dump_json())
    target, key = (doc["location"], field.split(".")[1]) if "." in field else (doc, field)
    target[key] = bad
    with pytest.raises(SignalRejected) as info:
        parse_signal(None, None, json.dumps(doc).encode())
    assert key in info.value.reason or field.split(".")[0] in info.value.reason


def test_oversized_signals_are_refused_before_parsing() -> None:
    """A payload over the limit is refused as oversized, whatever it holds."""
    big = make_signal(details={"blob": "x" * 100}).model_dump_json().encode()
    big = big[:-1] + b"," + b'"pad":"' + b"y" * MAX_SIGNAL_BYTES + b'"}'
    with pytest.raises(SignalRejected) as info:
        parse_signal("hotline", "fire", big)
    assert info.value.code == "oversized"


def test_subject_and_payload_must_agree() -> None:
    """A fire signal published on the flood subject is refused, not misfiled."""
    with pytest.raises(SignalRejected) as info:
        parse_signal("hotline", "flood", make_signal().model_dump_json().encode())
    assert info.value.code == "subject_mismatch"


def test_large_details_are_refused() -> None:
    """details beyond 16 KiB are refused even when the whole signal fits."""
    with pytest.raises(Exception, match="details larger"):
        make_signal(details={"blob": "x" * 20_000})
