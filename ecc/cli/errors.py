"""Shell: the one error of the command line.

Errors::

    Exception
     └── CliError     a problem the person at the terminal can fix; the message says how
"""

from __future__ import annotations

__all__ = ["CliError"]


class CliError(Exception):
    """A problem the person at the terminal can fix; the message says how."""
