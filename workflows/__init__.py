"""Core: the functional heart of ECC.

Pure deciders (``decide(state, command, ...) -> list[Event]``) and folds
(``evolve(state, event) -> state``) for incidents (with their tasks) and
units, the response-plan catalogue, and the process between them. No I/O, no
clock, no randomness: time and ids arrive inside commands.
"""

from __future__ import annotations

from workflows.catalogue import Catalogue, CatalogueError, parse_catalogue
from workflows.geo import Location
from workflows.incident import (
    Incident,
    IncidentCommand,
    IncidentEvent,
    IncidentReported,
    ReportIncident,
    Task,
    decide,
    evolve,
    fold,
    is_open,
)
from workflows.messages import Rejected
from workflows.unit import Unit, UnitCommand, UnitEvent

__all__ = [
    "Catalogue",
    "CatalogueError",
    "Incident",
    "IncidentCommand",
    "IncidentEvent",
    "IncidentReported",
    "Location",
    "Rejected",
    "ReportIncident",
    "Task",
    "Unit",
    "UnitCommand",
    "UnitEvent",
    "decide",
    "evolve",
    "fold",
    "is_open",
    "parse_catalogue",
]
