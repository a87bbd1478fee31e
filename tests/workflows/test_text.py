"""The one text normalisation: what PostgreSQL cannot store becomes U+FFFD, nothing else
changes."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from command.model import Signal
from workflows.text import REPLACEMENT, clean, clean_data, needs_cleaning

ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=200)


def test_nul_and_lone_surrogates_become_the_replacement_character() -> None:
    """NUL and each lone surrogate are replaced one for one; an emoji (a pair in UTF-16)
    and control characters are kept."""
    assert clean("a\x00b") == f"a{REPLACEMENT}b"
    assert clean("x\ud800y\udfff") == f"x{REPLACEMENT}y{REPLACEMENT}"
    assert clean("fire 🔥\t\x07\n") == "fire 🔥\t\x07\n"
    plain = "nothing to do"
    assert clean(plain) is plain


@given(ANY_TEXT)
def test_cleaned_text_is_storable_and_keeps_its_length(text: str) -> None:
    """Any string cleaned encodes as UTF-8 without NUL, has the same length, and keeps
    every character that was storable."""
    out = clean(text)
    assert not needs_cleaning(out)
    assert b"\x00" not in out.encode("utf-8")
    assert len(out) == len(text)
    assert all(a == b or b == REPLACEMENT for a, b in zip(text, out, strict=True))


@given(st.recursive(ANY_TEXT | st.integers() | st.none(),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(ANY_TEXT, inner, max_size=3), max_leaves=12))
def test_clean_data_reaches_every_string_keys_included(value: object) -> None:
    """No string anywhere in a cleaned JSON-like value, key or value, needs cleaning."""
    text = json.dumps(clean_data(value), ensure_ascii=False)
    assert "\x00" not in text
    text.encode("utf-8")  # raises on a lone surrogate


def test_a_signal_built_from_json_with_a_nul_is_clean() -> None:
    """The wire models clean their input: a NUL sent in a signal's summary or details
    never reaches a model's field."""
    raw = json.dumps({"signal_id": "s1", "source": "hotline", "category": "fire",
                      "location": {"lat": 34.7, "lon": 113.6},
                      "observed_at": "2026-07-20T08:30:00+00:00",
                      "summary": "three\x00floors", "details": {"k\x00": ["v\x00"]}})
    signal = Signal.model_validate_json(raw)
    assert signal.summary == f"three{REPLACEMENT}floors"
    assert signal.details == {f"k{REPLACEMENT}": [f"v{REPLACEMENT}"]}
