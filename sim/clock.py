"""Shell: the simulator's clock, simulated time running ``speed`` times faster than the wall.

Everything the simulator waits for (a crew's turnout, a drive, work on scene)
is in simulated seconds; :class:`SimClock` turns them into wall seconds. The
monotonic clock drives it, so a wall-clock step (NTP, a suspended laptop) does
not make simulated time jump.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime, timedelta


class SimClock:
    """Simulated time: ``start`` at creation, then ``speed`` simulated seconds per wall second.

    ``speed`` 1 is real time, 10 is ten times faster. Raises :class:`ValueError` for a
    ``start`` without a time zone or a ``speed`` that is not a positive finite number.
    """

    def __init__(self, start: datetime, speed: float) -> None:
        if start.tzinfo is None:
            raise ValueError("start must carry a time zone")
        if not math.isfinite(speed) or speed <= 0:
            raise ValueError(f"speed must be a positive number, got {speed!r}")
        self.start = start
        self.speed = float(speed)
        self._origin = time.monotonic()

    def elapsed(self) -> float:
        """Simulated seconds since ``start``."""
        return (time.monotonic() - self._origin) * self.speed

    def now(self) -> datetime:
        """The simulated time: ``start`` plus :meth:`elapsed`."""
        return self.start + timedelta(seconds=self.elapsed())

    async def sleep(self, sim_seconds: float) -> None:
        """Wait ``sim_seconds`` of simulated time (none if it is zero or negative)."""
        await asyncio.sleep(max(0.0, sim_seconds) / self.speed)

    async def sleep_until(self, sim_offset: float) -> None:
        """Wait until :meth:`elapsed` reaches ``sim_offset`` (at once if it has)."""
        await self.sleep(sim_offset - self.elapsed())
