"""Core: unit positions coalesced for the consoles (AVL), latest wins per unit.

No sockets and no clock here. The gateway (shell) hands every position it reads from
``<ns>.unit.*.position`` to :meth:`PositionFeed.take` with the time it read it, calls
:meth:`PositionFeed.tick` once per interval (``ECC_CONSOLE_POSITIONS_HZ``), and asks
:meth:`PositionFeed.since` what each console has not seen yet.

The rule that keeps a thousand moving units from flooding a console: between two ticks a
unit's newer positions replace each other (only the latest is kept), and each tick closes
one frame, ``{"type":"positions","units":[...]}``, with the units that changed in it,
encoded once and shared by every console that is up to date. A console that fell behind
(its socket was slow for a while) is not sent the frames it missed: it is sent one frame,
built for it, with the latest position of every unit that changed since its cursor. So a
console gets at most one ``positions`` message per tick, and never more than one entry
per unit in it.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from command.model import PositionReport
from workflows.text import validate_json

# A position stamped further than this ahead of the gateway's clock is refused (a device
# with a wrong clock would hold its unit's marker for ever): as the dispatcher does.
FUTURE_SKEW = timedelta(seconds=60)
# Units the feed holds at most: a publisher inventing unit ids cannot grow the gateway.
MAX_UNITS = 50_000


def position_entry(report: PositionReport) -> dict[str, Any]:
    """One unit's entry in a ``positions`` message (and in a snapshot's ``positions``)."""
    return {"unit_id": report.unit_id, "lat": report.lat, "lon": report.lon,
            "heading": report.heading, "speed_mps": report.speed_mps,
            "at": report.at.isoformat().replace("+00:00", "Z")}


def positions_frame(encoded: list[str]) -> str:
    """The text frame of a ``positions`` message from its units' encoded entries."""
    return '{"type":"positions","units":[' + ",".join(encoded) + "]}"


class PositionFeed:
    """The latest position of each unit, and the frames of its changes, tick by tick.

    ``take`` says what became of a position: ``"ok"``, ``"stale"`` (not newer than the
    one held: dropped quietly, latest wins), or a refusal: ``"invalid"``,
    ``"subject_mismatch"``, ``"future"``, ``"too_many_units"``. Refusals are counted in
    ``refused`` by reason; the caller logs them.
    """

    def __init__(self, *, max_units: int = MAX_UNITS, skew: timedelta = FUTURE_SKEW) -> None:
        self.max_units = max_units
        self.skew = skew
        self.tick_no = 0
        self.refused: Counter[str] = Counter()
        self.taken = 0
        self._at: dict[str, datetime] = {}  # unit -> time of the position held
        self._encoded: dict[str, str] = {}  # unit -> its entry, encoded
        self._changed: dict[str, int] = {}  # unit -> the tick its position last changed in
        self._dirty: set[str] = set()  # units changed since the last tick
        self._frame: str | None = None  # the frame of tick ``tick_no``

    def __len__(self) -> int:
        return len(self._at)

    def take(self, unit: str | None, data: bytes | str, now: datetime) -> str:
        """Take one message of ``<ns>.unit.<unit>.position`` (``unit`` from its subject)."""
        try:
            report = validate_json(PositionReport, data)
        except (ValidationError, ValueError, UnicodeError):
            return self._refuse("invalid")
        if unit != report.unit_id:
            return self._refuse("subject_mismatch")
        if report.at > now + self.skew:
            return self._refuse("future")
        return self.put(report)

    def put(self, report: PositionReport) -> str:
        """Hold ``report`` if it is newer than the unit's position held (a valid report)."""
        held = self._at.get(report.unit_id)
        if held is not None and report.at <= held:
            return "stale"
        if held is None and len(self._at) >= self.max_units:
            return self._refuse("too_many_units")
        self._at[report.unit_id] = report.at
        self._encoded[report.unit_id] = json.dumps(position_entry(report),
                                                   separators=(",", ":"))
        self._dirty.add(report.unit_id)
        self.taken += 1
        return "ok"

    def _refuse(self, reason: str) -> str:
        self.refused[reason] += 1
        return reason

    def tick(self) -> bool:
        """Close the interval: True if a unit moved in it (a new frame, ``tick_no`` + 1)."""
        if not self._dirty:
            return False
        self.tick_no += 1
        units = sorted(self._dirty)
        self._dirty.clear()
        for unit in units:
            self._changed[unit] = self.tick_no
        self._frame = positions_frame([self._encoded[u] for u in units])
        return True

    def since(self, cursor: int) -> tuple[int, str | None]:
        """What a console whose last frame was tick ``cursor`` is sent now: the tick it is
        then at, and the frame (None: nothing new). Up to date: the shared frame."""
        if cursor >= self.tick_no:
            return self.tick_no, None
        if cursor == self.tick_no - 1 and self._frame is not None:
            return self.tick_no, self._frame
        units = sorted(u for u, t in self._changed.items() if t > cursor)
        return self.tick_no, positions_frame([self._encoded[u] for u in units])

    def snapshot(self) -> tuple[int, list[dict[str, Any]]]:
        """Every unit's latest position (those not yet in a frame too), and the tick a
        console holding them is at. Sorted by unit id."""
        return self.tick_no, [json.loads(self._encoded[u]) for u in sorted(self._encoded)]
