"""Refusals folded per peer and interval (pure: no servers, time as an argument)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from command.refusals import OVERFLOW, Fold


def test_the_first_at_once_then_one_row_for_the_rest_of_the_interval() -> None:
    """300 refusals from one peer in 1.2 s: one written at once, one row of 299 after 10 s;
    the next refusal after that is written at once again."""
    fold = Fold(10.0)
    written = [fold.admit("10.0.0.9", i * 0.004, sample=i) for i in range(300)]
    assert written == [True] + [False] * 299
    assert fold.due(5.0) == []
    [row] = fold.due(10.0)
    assert (row.key, row.count, row.since, row.sample) == ("10.0.0.9", 299, 0.0, 299)
    assert fold.due(11.0) == [] and len(fold) == 0
    assert fold.admit("10.0.0.9", 11.0)


def test_peers_are_folded_apart_and_a_quiet_peer_leaves_no_row() -> None:
    """Two peers each get their own first row and count; one refusal alone folds nothing."""
    fold = Fold(10.0)
    assert fold.admit("a", 0) and fold.admit("b", 0) and fold.admit("c", 0)
    assert not fold.admit("a", 1) and not fold.admit("a", 2) and not fold.admit("b", 3)
    assert sorted((f.key, f.count) for f in fold.due(10)) == [("a", 2), ("b", 1)]


def test_a_late_refusal_closes_the_old_interval_and_opens_a_new_one() -> None:
    """A refusal after its peer's interval ended (before the shell flushed) is written at
    once, and the old interval's count still comes back."""
    fold = Fold(10.0)
    fold.admit("a", 0)
    fold.admit("a", 1)
    assert fold.admit("a", 12)
    assert [(f.count, f.since) for f in fold.due(13)] == [(1, 0)]


def test_memory_is_bounded_by_an_overflow_key() -> None:
    """Past max_keys distinct peers, new peers share one overflow key: its first refusal is
    written, the rest counted in one row."""
    fold = Fold(10.0, max_keys=2)
    assert fold.admit("a", 0) and fold.admit("b", 0)
    assert fold.admit("c", 0)  # the overflow's first
    assert not fold.admit("d", 0) and not fold.admit("e", 0)
    assert len(fold) == 3
    assert [(f.key, f.count) for f in fold.drain()] == [(OVERFLOW, 2)]


def test_a_fold_needs_a_positive_interval() -> None:
    """Nonsense settings are refused at once."""
    with pytest.raises(ValueError, match="interval"):
        Fold(0)


@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.floats(0, 1, allow_nan=False)),
                max_size=200),
       st.integers(1, 4))
def test_every_refusal_is_written_or_counted_exactly_once(
        events: list[tuple[str, float]], max_keys: int) -> None:
    """Whatever arrives in whatever order of time: rows written at once plus the counts
    folded equal the refusals, and the fold never holds more than max_keys + 1 keys."""
    fold = Fold(0.05, max_keys=max_keys)
    now, written, folded = 0.0, 0, 0
    for key, step in events:
        now += step * 0.02
        written += fold.admit(key, now)
        folded += sum(f.count for f in fold.due(now))
        assert len(fold) <= max_keys + 1
    folded += sum(f.count for f in fold.drain())
    assert written + folded == len(events) and len(fold) == 0
