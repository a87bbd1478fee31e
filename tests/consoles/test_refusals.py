"""The refusal fold (core): one audit row per peer, outcome and interval."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consoles.refusals import MANY_PEERS, RefusalFold


def test_the_first_refusal_is_written_and_the_rest_are_counted() -> None:
    """300 refusals from one peer in 1.2 s write one row now and one summary of 299."""
    fold = RefusalFold(interval=10.0)
    rows = [r for i in range(300) for r in fold.observe("10.0.0.9", "unauthorized", i * 0.004)]
    assert [(r.peer, r.count, r.folded) for r in rows] == [("10.0.0.9", 1, False)]
    assert fold.due(5.0) == []
    (summary,) = fold.due(10.0)
    assert summary.folded and summary.count == 299 and summary.outcome == "unauthorized"
    assert summary.reason("ignored").startswith("299 more unauthorized refusals")
    assert len(fold) == 0


def test_a_refusal_after_the_interval_writes_the_summary_and_itself() -> None:
    """The next refusal after an interval flushes the count before its own row."""
    fold = RefusalFold(interval=10.0)
    fold.observe("p", "invalid", 0.0)
    fold.observe("p", "invalid", 1.0)
    rows = fold.observe("p", "invalid", 12.0)
    assert [(r.count, r.folded) for r in rows] == [(1, True), (1, False)]
    assert rows[1].reason("no valid hello") == "no valid hello"


def test_peers_and_outcomes_fold_apart() -> None:
    """Each (peer, outcome) has its own interval: one peer cannot hide another."""
    fold = RefusalFold(interval=10.0)
    assert len(fold.observe("a", "unauthorized", 0.0)) == 1
    assert len(fold.observe("b", "unauthorized", 0.1)) == 1
    assert len(fold.observe("a", "busy", 0.2)) == 1
    assert fold.observe("a", "unauthorized", 0.3) == []


def test_a_flood_from_many_addresses_keeps_the_fold_bounded() -> None:
    """Past max_keys peers, new ones share one key, so memory stays bounded."""
    fold = RefusalFold(interval=10.0, max_keys=3)
    written = [r for i in range(100) for r in fold.observe(f"p{i}", "unauthorized", 0.0)]
    assert len(fold) == 4 and len(written) == 4
    assert written[-1].peer == MANY_PEERS


@given(st.lists(st.tuples(st.sampled_from(["a", "b", None]),
                          st.sampled_from(["unauthorized", "invalid"]),
                          st.floats(min_value=0, max_value=0.5)), max_size=200))
def test_every_refusal_is_written_once_or_counted_once(
        events: list[tuple[str | None, str, float]]) -> None:
    """Whatever the order, the rows written add up to exactly the refusals observed."""
    fold = RefusalFold(interval=1.0)
    now, total = 0.0, 0
    for peer, outcome, step in events:
        now += step
        total += sum(r.count for r in fold.observe(peer, outcome, now))
    total += sum(r.count for r in fold.due(now + 2.0))
    assert total == len(events) and len(fold) == 0
