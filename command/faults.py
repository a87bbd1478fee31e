"""Shell: fault points for crash tests.

``ECC_FAULT_POINT=outbox.after_publish`` (or ``outbox.before_publish``,
``intake.after_commit``) makes the process ``kill -9`` itself
when it reaches that point: a real crash, with no cleanup and no flush, at a
place a test chose. Unset (the default) it costs one comparison.
"""

from __future__ import annotations

import os
import signal

import structlog

log = structlog.get_logger("ecc.faults")

def reach(point: str, armed: str | None) -> None:
    """Die here, now, if ``point`` is the armed fault point."""
    if armed is not None and armed == point:
        log.warning("faults.kill", point=point, pid=os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)
