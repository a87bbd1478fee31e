"""Core: the console protocol's messages and the ordering rule.

No sockets here. The gateway (shell) pumps these values over a websocket; a
console client parses them with the same models. See docs/protocol.md.
"""

from __future__ import annotations

import json
from collections import deque
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter

from command.model import RecordedEvent
from workflows.catalogue import Catalogue
from workflows.text import Cleaned

MAX_CLIENT_MESSAGE_BYTES = 64 * 1024
# A console that asks to resume further back than this gets a fresh snapshot.
RESUME_LIMIT = 5000

# Close codes (4000-4999 are the application's).
CLOSE_UNAUTHORIZED = 4401
CLOSE_RESYNC = 4409
CLOSE_BAD_HELLO = 4400
CLOSE_FORBIDDEN = 4403
CLOSE_BUSY = 4429  # too many consoles on one token, or a reconnect storm: retry later


class _Msg(Cleaned):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Hello(_Msg):
    """The first message a console sends: who it is and where it left off."""

    type: Literal["hello"]
    token: str = Field(min_length=1, max_length=200)
    since: int | None = Field(default=None, ge=0)


RequestId = Annotated[str, Field(min_length=1, max_length=64)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z_]{0,30}\.[a-z][a-z_]{0,30}$")]
EntityRef = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_:\-]{0,127}$")]


class CommandRequest(_Msg):
    """A console asks ECC to do something; the answer is a :class:`Result` with the same
    ``request_id``. What each ``name`` takes in ``args`` is in consoles/commands.py."""

    type: Literal["command"]
    request_id: RequestId
    name: Name
    incident_id: EntityRef | None = None
    args: dict[str, Any] = Field(default_factory=dict)


class QueryRequest(_Msg):
    """A console asks to read something the live feed does not carry: ``incident.detail``
    (an incident's timeline, its signals, the recommendations; needs ``incident_id``) or
    ``history.period`` (a period of the past for playback; ``args`` ``from`` and ``to``)."""

    type: Literal["query"]
    request_id: RequestId
    name: Literal["incident.detail", "history.period"]
    incident_id: EntityRef | None = None
    args: dict[str, Any] = Field(default_factory=dict)


ClientMessage = Annotated[Hello | CommandRequest | QueryRequest, Field(discriminator="type")]
client_message: TypeAdapter[Hello | CommandRequest | QueryRequest] = TypeAdapter(ClientMessage)


class TypeInfo(_Msg):
    """One incident type as the console shows it (from the catalogue's ``[[type]]``)."""

    id: str
    label: str
    labels: dict[str, str] = Field(default_factory=dict)  # by language tag
    code: str  # the map's three letters


class KeywordRule(_Msg):
    """One hotline rule, for the call taker's live suggestion (consoles/static/classify.js);
    in ``Welcome.rules`` in the order they are tried."""

    rule: str
    category: str
    priority: int
    confidence: float
    keywords: list[str]


def console_types(catalogue: Catalogue) -> tuple[list[TypeInfo], list[KeywordRule]]:
    """What the console needs of the catalogue: its types and its hotline rules."""
    types = [TypeInfo(id=t.id, label=t.label, labels=dict(t.labels), code=t.map_code)
             for t in catalogue.types.values()]
    rules = [KeywordRule(rule=r.name, category=r.category, priority=r.priority,
                         confidence=r.confidence, keywords=list(r.keywords))
             for r in catalogue.hotline]
    return types, rules


class Welcome(_Msg):
    type: Literal["welcome"] = "welcome"
    name: str
    role: str
    agency: str | None
    mode: Literal["snapshot", "resume"]
    # the commands this console may send (its role and agency): what the UI offers
    commands: list[str] = Field(default_factory=list)
    # the catalogue's SLA clocks in seconds (verify_s, task_pending_s, ack_s), for countdowns
    sla: dict[str, float] | None = None
    # the catalogue's incident types (labels, map codes) and hotline rules, in order
    types: list[TypeInfo] = Field(default_factory=list)
    rules: list[KeywordRule] = Field(default_factory=list)


class Snapshot(_Msg):
    type: Literal["snapshot"] = "snapshot"
    seq: int
    incidents: list[dict[str, Any]]
    units: list[dict[str, Any]] = Field(default_factory=list)
    # open desk alerts (workflows/alert.py), for the supervisors' banner
    alerts: list[dict[str, Any]] = Field(default_factory=list)
    # each unit's last known position, as a ``positions`` message's entries (UnitPosition)
    positions: list[dict[str, Any]] = Field(default_factory=list)


class UnitPosition(_Msg):
    """One unit's latest position in a :class:`Positions` message (command.model's
    PositionReport, as the console needs it)."""

    unit_id: str
    lat: float
    lon: float
    heading: float | None = None
    speed_mps: float | None = None
    at: datetime


class Positions(_Msg):
    """Units that moved since this console's last ``positions`` (consoles/positions.py):
    latest wins per unit, at most one message per interval (``ECC_CONSOLE_POSITIONS_HZ``).
    Not ordered with the deltas and carries no seq: a console replaces what it holds."""

    type: Literal["positions"] = "positions"
    units: list[UnitPosition]


class Delta(_Msg):
    """One event, and the view of its stream after it (consoles/views.py): a console
    replaces its copy with ``view``; null means it has none to hold (remove it)."""

    type: Literal["delta"] = "delta"
    seq: int
    event: RecordedEvent
    view: dict[str, Any] | None = None


class Resync(_Msg):
    type: Literal["resync"] = "resync"
    reason: str


class Error(_Msg):
    type: Literal["error"] = "error"
    code: str
    message: str


class Result(_Msg):
    """The answer to one command or query. ``ok`` false: ``code`` (forbidden, rejected,
    invalid, not_found, error) and ``message``, a sentence a person can act on."""

    type: Literal["result"] = "result"
    request_id: str
    ok: bool
    code: str | None = None
    message: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


ServerMessage = Annotated[
    Welcome | Snapshot | Delta | Positions | Resync | Error | Result, Field(discriminator="type")
]
server_message: TypeAdapter[Welcome | Snapshot | Delta | Positions | Resync | Error | Result] = \
    TypeAdapter(ServerMessage)


def console_visible(event: RecordedEvent) -> bool:
    """Whether an event goes to consoles at all (as a delta with its stream's view).

    Signal evidence carries callers' personal data; it stays out of the live
    feed for every role, and a console reads it with ``incident.detail``, masked
    for roles that do not need it. Timer events are sent: they change the view
    (its ``timers`` and ``version``), and a console that replaces views must hold
    the one the snapshot would give it.
    """
    return event.stream_id.startswith(("incident:", "unit:", "alert:"))


def in_timeline(event: RecordedEvent) -> bool:
    """Whether an event is listed for a person (an incident's timeline, a period's
    playback): what the feed carries but timer bookkeeping, which is the scheduler's
    business (what a timer causes, an escalation, is listed)."""
    return console_visible(event) and not event.type.startswith("timer.")


def delta_frame(event: RecordedEvent, view: dict[str, Any] | None) -> str:
    """The text frame for one event and its stream's view after it, encoded once and
    sent to every console (views hold no caller's personal data: one frame for all)."""
    return json.dumps(
        {"type": "delta", "seq": event.seq, "event": event.model_dump(mode="json"),
         "view": view},
        separators=(",", ":"),
    )


class Ordering:
    """Deltas go out in strictly increasing seq, each at most once.

    ``baseline`` is the seq the console already has (its snapshot's, or the
    last delta's). :meth:`admit` says whether a delta is new to this console.
    """

    def __init__(self, baseline: int) -> None:
        self.baseline = baseline

    def admit(self, seq: int) -> bool:
        if seq <= self.baseline:
            return False
        self.baseline = seq
        return True


class FeedOrder:
    """Classifies the seqs of the live feed: new, a duplicate, or late (out of order).

    The relay publishes in seq order, so "late" means a retry landed behind
    newer events; consoles that already moved past it must resync.
    """

    def __init__(self, memory: int = 10_000) -> None:
        self.head = 0
        self._seen: set[int] = set()
        self._order: deque[int] = deque()
        self._memory = memory

    def observe(self, seq: int) -> Literal["new", "duplicate", "late"]:
        if seq in self._seen:
            return "duplicate"
        self._seen.add(seq)
        self._order.append(seq)
        if len(self._order) > self._memory:
            self._seen.discard(self._order.popleft())
        if seq > self.head:
            self.head = seq
            return "new"
        return "late"
