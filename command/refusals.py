"""Core: repeated refusals from one peer folded into one audit row per interval (pure).

Three hundred bad tokens in a second from one address are one event worth a row, not
three hundred rows: :meth:`Fold.admit` says whether a refusal is written at once (the
first from its key in an interval) or only counted, and :meth:`Fold.due` hands back, once
an interval has passed, what was counted ("N more in the last 10 s") for the shell to
write. Time arrives as an argument (a monotonic clock in seconds); nothing here does I/O.

Memory is bounded: past ``max_keys`` distinct keys in flight, new keys share one overflow
key (:data:`OVERFLOW`), so a flood from many addresses is still counted, in one row.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OVERFLOW", "Fold", "Folded"]

OVERFLOW = "(many peers)"


@dataclass(frozen=True)
class Folded:
    """``count`` refusals from ``key`` that were not written one by one, in the interval
    that began at ``since``; ``sample`` is the last of them (what the row shows)."""

    key: str
    count: int
    since: float
    sample: object


@dataclass
class _Window:
    since: float
    more: int = 0
    sample: object = None


class Fold:
    """Counts refusals per key; see the module docstring for the contract."""

    def __init__(self, interval: float = 10.0, max_keys: int = 10_000) -> None:
        if interval <= 0 or max_keys < 1:
            raise ValueError("interval must be positive and max_keys at least 1")
        self.interval = interval
        self.max_keys = max_keys
        self._open: dict[str, _Window] = {}
        self._ready: list[Folded] = []

    def admit(self, key: str, now: float, sample: object = None) -> bool:
        """True: write this refusal now (the first from ``key`` in its interval). False: it
        is counted and comes back from :meth:`due` once the interval ends."""
        window = self._open.get(key)
        if window is not None and now - window.since >= self.interval:
            ended = self._close(key)  # its interval is over: counted apart, reported by due()
            if ended is not None:
                self._ready.append(ended)
            window = None
        if window is None:
            if len(self._open) >= self.max_keys and key != OVERFLOW:
                return self.admit(OVERFLOW, now, sample)
            self._open[key] = _Window(since=now)
            return True
        window.more += 1
        window.sample = sample
        return False

    def due(self, now: float) -> list[Folded]:
        """What was counted in every interval that has ended by ``now``; each key's next
        refusal is written at once again."""
        ready, self._ready = self._ready, []
        ended = [k for k, w in self._open.items() if now - w.since >= self.interval]
        return ready + [f for k in ended if (f := self._close(k)) is not None]

    def drain(self) -> list[Folded]:
        """Everything still counted (at shutdown), whatever the time."""
        ready, self._ready = self._ready, []
        return ready + [f for k in list(self._open) if (f := self._close(k)) is not None]

    def _close(self, key: str) -> Folded | None:
        window = self._open.pop(key)
        if window.more == 0:
            return None
        return Folded(key, window.more, window.since, window.sample)

    def __len__(self) -> int:
        return len(self._open)
