"""Core: folding repeated refusals into one audit row per peer, outcome and interval.

A peer that hammers the gateway with bad hellos must not turn the audit log into
its own write amplifier (300 unauthenticated hellos in 1.2 s used to write 300
rows), nor hide in it: the first refusal of a (peer, outcome) is written at
once, the ones after it in the same interval are only counted, and the count is
written as one row ("N more in the last 10 s") when the interval has ended --
at the next refusal after it, or when the shell calls :meth:`RefusalFold.due`.

No clock and no I/O here: the shell passes ``now`` (monotonic seconds) in and
writes the rows this returns.
"""

from __future__ import annotations

from dataclasses import dataclass

# Past this many (peer, outcome) pairs in one interval (an address-spraying flood),
# further peers share one key, so the fold's memory stays bounded.
MAX_KEYS = 10_000
MANY_PEERS = "(many peers)"


@dataclass(frozen=True)
class Row:
    """One audit row to write: the refusal itself, or (``folded``) the ``count`` refusals
    of one interval after the first."""

    peer: str | None
    outcome: str
    count: int
    interval: float
    folded: bool = False

    def reason(self, first: str) -> str:
        """The row's reason: ``first`` for the refusal itself, else the count."""
        if not self.folded:
            return first
        return (f"{self.count} more {self.outcome} refusals from this address in the last "
                f"{self.interval:g} s (folded into one row)")


@dataclass
class _Window:
    began: float
    more: int = 0


class RefusalFold:
    """Which refusals to write now, per (peer, outcome) and ``interval`` seconds.

    After calling :meth:`observe` or :meth:`due`, write every row returned, in
    order; the fold keeps no record of what was written.
    """

    def __init__(self, interval: float = 10.0, max_keys: int = MAX_KEYS) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.max_keys = max_keys
        self._open: dict[tuple[str | None, str], _Window] = {}

    def observe(self, peer: str | None, outcome: str, now: float) -> list[Row]:
        """One refusal: the rows to write now (none while it is folded)."""
        key = (peer, outcome)
        if key not in self._open and len(self._open) >= self.max_keys:
            key = (MANY_PEERS, outcome)
        rows: list[Row] = []
        window = self._open.get(key)
        if window is not None and now - window.began < self.interval:
            window.more += 1
            return rows
        if window is not None and window.more:
            rows.append(self._summary(key, window))
        self._open[key] = _Window(began=now)
        rows.append(Row(key[0], outcome, 1, self.interval))
        return rows

    def due(self, now: float) -> list[Row]:
        """The summaries of intervals that have ended by ``now``; those keys are forgotten."""
        rows: list[Row] = []
        for key, window in list(self._open.items()):
            if now - window.began >= self.interval:
                del self._open[key]
                if window.more:
                    rows.append(self._summary(key, window))
        return rows

    def __len__(self) -> int:
        return len(self._open)

    def _summary(self, key: tuple[str | None, str], window: _Window) -> Row:
        return Row(key[0], key[1], window.more, self.interval, folded=True)
