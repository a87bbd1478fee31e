"""Subjects and stream names come from one namespace."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from command.subjects import Namespace


def test_default_wire_names() -> None:
    """The default namespace gives the subjects documented in docs/protocol.md."""
    ns = Namespace()
    assert ns.signal("hotline", "fire") == "ecc.signal.hotline.fire"
    assert ns.event("incident", "abc") == "ecc.event.incident.abc"
    assert ns.dispatch("fire", "E12") == "ecc.dispatch.fire.E12"
    assert ns.deadletter("hotline") == "ecc.deadletter.hotline"
    assert ns.stream("SIGNALS") == "ECC_SIGNALS"


def test_bad_tokens_are_refused() -> None:
    """A token with a dot or a wildcard would change the subject's meaning: refused."""
    ns = Namespace()
    for bad in ("a.b", "*", ">", "", "A"):
        with pytest.raises(ValueError):
            ns.signal(bad, "fire")


@given(st.text(max_size=80))
def test_parse_signal_subject_never_raises(subject: str) -> None:
    """Any subject string parses to usable tokens or None, never an exception."""
    source, category = Namespace().parse_signal_subject(subject)
    for token in (source, category):
        assert token is None or Namespace().signal(token, token)


def test_unusable_source_dead_letters_to_unknown() -> None:
    """A dead letter for a source we cannot name goes to <ns>.deadletter.unknown."""
    assert Namespace("x").deadletter("Bad.Source") == "x.deadletter.unknown"
