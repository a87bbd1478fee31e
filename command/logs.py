"""Shell: structlog, configured once at the composition root.

Key-value events with stable dotted names (``incident.reported``); JSON lines
when stderr is not a terminal, readable columns when it is.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure(*, json: bool | None = None, level: int = logging.INFO,
              to: TextIO | None = None) -> None:
    """Configure structlog for the process (to stderr, or to ``to``: JSON lines)."""
    if to is not None:
        json = True
    if json is None:
        json = not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info if json else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=to or sys.stderr),
        cache_logger_on_first_use=True,
    )
