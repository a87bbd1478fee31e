"""What a token is good for and for how long (pure: no servers)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from command.tokens import (
    DOORS,
    MAX_TTL,
    TokenError,
    default_ttl,
    door_refusal,
    parse_duration,
    parse_kinds,
)


def test_a_shift_for_desks_and_ninety_days_for_adapters_and_crews() -> None:
    """Console roles get 12 h; adapters and field units 90 days; an unknown role a shift."""
    for role in ("viewer", "call_taker", "dispatcher", "supervisor", "admin", "nobody"):
        assert default_ttl(role) == timedelta(hours=12)
    assert default_ttl("adapter") == default_ttl("field_unit") == timedelta(days=90)


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("10m", 600), ("8h", 28800),
                                               ("30d", 2592000), ("2w", 1209600),
                                               (" 12h ", 43200)])
def test_durations(text: str, seconds: int) -> None:
    """The forms `--ttl` and `--grace` take."""
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "8", "h", "8 hours", "-1h", "1.5h", "0h", "367d", "8H"])
def test_bad_durations_say_what_to_write(text: str) -> None:
    """Anything else is refused with the forms that work (or the year's bound)."""
    with pytest.raises(TokenError, match="--ttl"):
        parse_duration(text)


def test_a_zero_grace_is_allowed_where_asked() -> None:
    """`--grace 0s` ends the old tokens at once."""
    assert parse_duration("0s", what="--grace", allow_zero=True) == timedelta(0)


@given(st.text(max_size=40))
def test_garbage_durations_raise_only_token_error(text: str) -> None:
    """Any text is a duration within a year, or a TokenError: never another exception."""
    try:
        value = parse_duration(text)
    except TokenError as exc:
        assert "--ttl" in str(exc)
    else:
        assert timedelta(0) < value <= MAX_TTL


def test_kinds_are_required_for_adapters_and_refused_for_others() -> None:
    """An adapter must name its doors (known ones, deduplicated, in door order); any other
    role may not."""
    assert parse_kinds("cap, hotline,cap", "adapter") == ("hotline", "cap")
    assert parse_kinds(None, "dispatcher") is None
    with pytest.raises(TokenError, match="needs --kinds"):
        parse_kinds(None, "adapter")
    with pytest.raises(TokenError, match="unknown kind 'sensor'"):
        parse_kinds("hotline,sensor", "adapter")
    with pytest.raises(TokenError, match="for adapter tokens"):
        parse_kinds("hotline", "viewer")


@given(st.text(max_size=60))
def test_garbage_kinds_give_known_doors_or_a_token_error(text: str) -> None:
    """Whatever is written after --kinds, the result names only real doors."""
    try:
        kinds = parse_kinds(text, "adapter")
    except TokenError:
        return
    assert kinds and set(kinds) <= set(DOORS)


@pytest.mark.parametrize("door", DOORS)
def test_every_door_cell(door: str) -> None:
    """An adapter posts at its own doors only; admin and console roles at none; the refusal
    names what the token may send and how to get the door."""
    assert door_refusal("adapter", (door,), door) is None
    other = next(d for d in DOORS if d != door)
    refused = door_refusal("adapter", (other,), door)
    assert refused is not None and f"may send {other}, not {door}" in refused
    assert "may send nothing" in (door_refusal("adapter", (), door) or "")
    for role in ("admin", "dispatcher", "viewer", "field_unit"):
        said = door_refusal(role, DOORS, door)
        assert said is not None and "--role adapter" in said
