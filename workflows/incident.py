"""Core: the incident decider.

``decide(state, command)`` returns the events a command causes, or raises
:class:`Rejected` with a reason a person can read; ``evolve(state, event)``
folds one event into the state. ``None`` is the state of an incident that does
not exist yet. Nothing here reads the clock: ``at`` arrives in each command.

The foundation knows one command (report) and one event (reported); the full
lifecycle (verify, dispatch, resolve, close, merge...) grows here as data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from workflows.geo import Location

Status = Literal["reported"]
# Statuses after which an incident no longer shows on the live picture.
CLOSED_STATUSES: frozenset[str] = frozenset({"closed", "cancelled", "merged"})

Category = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Priority = Annotated[int, Field(ge=1, le=4)]

# Priority an incident starts with when nothing better is known: 1 is life at
# risk now, 4 is routine. A call taker or the response plan refines it.
DEFAULT_PRIORITY: dict[str, int] = {
    "fire": 2,
    "medical": 2,
    "hazmat": 2,
    "gas_leak": 2,
    "traffic": 3,
    "flood": 3,
    "crime": 3,
}
FALLBACK_PRIORITY = 3


class Rejected(Exception):
    """The decider refused a command; ``reason`` is meant for a person."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- commands ---------------------------------------------------------------


class ReportIncident(_Message):
    """A new incident, raised from its first signal."""

    type: Literal["incident.report"] = "incident.report"
    incident_id: str = Field(min_length=1, max_length=64)
    signal_id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=40)
    category: Category
    location: Location
    summary: str = Field(default="", max_length=2000)
    at: AwareDatetime


IncidentCommand = ReportIncident


# --- events -----------------------------------------------------------------


class IncidentReported(_Message):
    type: Literal["incident.reported"] = "incident.reported"
    incident_id: str
    signal_id: str
    source: str
    category: Category
    priority: Priority
    location: Location
    summary: str
    at: AwareDatetime


IncidentEvent = Annotated[IncidentReported, Field(discriminator="type")]


# --- state ------------------------------------------------------------------


class Incident(_Message):
    """The state of one incident, folded from its events."""

    incident_id: str
    status: Status
    category: Category
    priority: Priority
    location: Location
    summary: str
    signal_ids: tuple[str, ...]
    reported_at: datetime
    updated_at: datetime


def decide(state: Incident | None, command: IncidentCommand) -> list[IncidentReported]:
    """Return the events ``command`` causes on ``state``.

    Raises :class:`Rejected` when the command does not apply (for example,
    reporting an incident that already exists).
    """
    if state is not None:
        raise Rejected("already_exists", f"incident {command.incident_id} already exists")
    return [
        IncidentReported(
            incident_id=command.incident_id,
            signal_id=command.signal_id,
            source=command.source,
            category=command.category,
            priority=DEFAULT_PRIORITY.get(command.category, FALLBACK_PRIORITY),
            location=command.location,
            summary=command.summary,
            at=command.at,
        )
    ]


def evolve(state: Incident | None, event: IncidentReported) -> Incident:
    """Fold one event into the incident's state."""
    return Incident(
        incident_id=event.incident_id,
        status="reported",
        category=event.category,
        priority=event.priority,
        location=event.location,
        summary=event.summary,
        signal_ids=(event.signal_id,),
        reported_at=event.at,
        updated_at=event.at,
    )


def fold(events: list[IncidentReported], state: Incident | None = None) -> Incident | None:
    """Replay ``events`` from ``state``: the live state is the fold of the log."""
    for event in events:
        state = evolve(state, event)
    return state


def is_open(state: Incident) -> bool:
    """Whether the incident belongs on the live picture."""
    return state.status not in CLOSED_STATUSES
