"""Shell: a guard for long-lived loops.

Python 3.11's ``asyncio.wait_for`` (used inside nats-py and asyncpg) can swallow
a cancellation that lands just as the awaited thing completes. A loop that
simply carries on would then never stop, and ``ecc up`` would hang on Ctrl-C.
Every service loop calls :func:`check_cancelled` once per turn: if a
cancellation was requested, it is raised again here.
"""

from __future__ import annotations

import asyncio


def check_cancelled() -> None:
    """Raise CancelledError if the current task has been asked to stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
