"""Core: the functional heart of ECC.

Pure deciders (``decide(state, command) -> list[Event]``) and folds
(``evolve(state, event) -> state``). No I/O, no clock, no randomness: time and
ids arrive inside commands, so every function here is a plain call in a test.
"""

from __future__ import annotations

from workflows.geo import Location
from workflows.incident import (
    Incident,
    IncidentCommand,
    IncidentEvent,
    IncidentReported,
    Rejected,
    ReportIncident,
    decide,
    evolve,
    fold,
    is_open,
)

__all__ = [
    "Incident",
    "IncidentCommand",
    "IncidentEvent",
    "IncidentReported",
    "Location",
    "Rejected",
    "ReportIncident",
    "decide",
    "evolve",
    "fold",
    "is_open",
]
