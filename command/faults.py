"""Shell: fault points for crash tests.

``ECC_FAULT_POINT=outbox.after_publish`` (or ``outbox.before_publish``,
``intake.after_commit``) makes the process ``kill -9`` itself
when it reaches that point: a real crash, with no cleanup and no flush, at a
place a test chose. ``ECC_FAULT_POINT=stall:intake.before_commit`` makes the
process hold still there instead, for :data:`STALL_S` seconds, every time: a
process frozen by a long GC pause, a swapped-out page or a hung disk, whose
messages the broker hands to another process meanwhile. Unset (the default)
each point costs one comparison.
"""

from __future__ import annotations

import os
import signal
import time

import structlog

log = structlog.get_logger("ecc.faults")

STALL_S = 3.0

def reach(point: str, armed: str | None) -> None:
    """Die here, now, if ``point`` is the armed fault point."""
    if armed is not None and armed == point:
        log.warning("faults.kill", point=point, pid=os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)


def stall(point: str, armed: str | None) -> None:
    """Freeze the whole process here for :data:`STALL_S` seconds if ``stall:<point>`` is
    armed: the event loop too, so nothing (no ack, no progress report) leaves it."""
    if armed is not None and armed == f"stall:{point}":
        log.warning("faults.stall", point=point, seconds=STALL_S, pid=os.getpid())
        time.sleep(STALL_S)
