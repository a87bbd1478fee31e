"""Core: the wire models that cross NATS and the websocket.

Messages are frozen pydantic models with limits on every size and range, so
validation happens once, at the edge. :func:`parse_signal` is the single door
for signal bytes: it returns a :class:`Signal` or raises
:class:`SignalRejected` with a reason, never anything else.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from workflows import upcast as upcasters
from workflows.geo import Location
from workflows.text import Cleaned, validate_json

MAX_SIGNAL_BYTES = 64 * 1024
MAX_DETAILS_BYTES = 16 * 1024

Token = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
# Ids are opaque but safe to put in a subject, a log line and a URL.
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_:\-]{0,127}$")]


class Frozen(Cleaned):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Reporter(Frozen):
    """Who reported it. Personal data: shown only to roles that need it."""

    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)


class Signal(Frozen):
    """One observation from one source; evidence, never deleted."""

    signal_id: Id
    source: Token
    category: Token
    location: Location
    observed_at: AwareDatetime
    summary: str = Field(default="", max_length=2000)
    confidence: float = Field(default=0.5, ge=0.0, le=1.0, allow_inf_nan=False)
    # the source's own judgement of urgency (a call taker's classifier); None: the type's
    priority: int | None = Field(default=None, ge=1, le=4)
    details: dict[str, Any] = Field(default_factory=dict)
    reporter: Reporter | None = None
    # The record this signal is one part of, when one record makes several signals (a
    # CAP alert's ``<sender>-<identifier>``: one signal per area). A reference to the
    # record reaches each of its parts.
    origin: Id | None = None
    # Earlier signals of the same source this one updates (a CAP Update names the
    # alert it replaces): it joins the open incident holding one of them, wherever
    # fusion would have put it. A reference names a signal id or an origin, exactly.
    refers_to: tuple[Id, ...] = Field(default=(), max_length=16)

    @field_validator("details")
    @classmethod
    def _details_small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value, default=str)) > MAX_DETAILS_BYTES:
            raise ValueError(f"details larger than {MAX_DETAILS_BYTES} bytes")
        return value


class SignalRejected(Exception):
    """Signal bytes that can never become a signal; ``code`` is machine-readable."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# The category token of ``<ns>.signal.<source>.retraction``: not a signal but a
# :class:`Retraction` of earlier ones.
RETRACTION = "retraction"


class Retraction(Frozen):
    """A source takes back signals it sent (a CAP Cancel): evidence it no longer stands by.

    ``refers_to`` names signal ids of the same source, or records they came from (their
    ``origin``), exactly. One that would take back more signals than the catalogue's
    ``[retractions] confirm_above`` waits for a supervisor (docs/fusion.md)."""

    retraction_id: Id
    source: Token
    refers_to: tuple[Id, ...] = Field(min_length=1, max_length=16)
    reason: str = Field(min_length=1, max_length=500)
    at: AwareDatetime


def matches(reference: str, signal_id: str, origin: str | None = None) -> bool:
    """Whether ``reference`` names this signal: its id, or the record it is part of,
    exactly (never a prefix: ``call`` names no ``call-…``)."""
    return reference in (signal_id, origin)


def parse_retraction(subject_source: str | None, data: bytes) -> Retraction:
    """Validate retraction bytes from ``<ns>.signal.<source>.retraction``."""
    if len(data) > MAX_SIGNAL_BYTES:
        raise SignalRejected("oversized",
                             f"retraction is {len(data)} bytes; limit {MAX_SIGNAL_BYTES}")
    try:
        retraction = validate_json(Retraction, data)
    except ValidationError as exc:
        raise SignalRejected("invalid", describe_errors(exc)) from exc
    if subject_source is not None and retraction.source != subject_source:
        raise SignalRejected("subject_mismatch", f"subject source {subject_source!r} != "
                                                 f"payload {retraction.source!r}")
    return retraction


def parse_signal(subject_source: str | None, subject_category: str | None, data: bytes) -> Signal:
    """Validate signal bytes that arrived on ``ecc.signal.<source>.<category>``.

    The subject's source and category must agree with the payload, so a
    consumer filtering by subject sees what it expects. Raises
    :class:`SignalRejected` for anything that is not a valid signal.
    """
    if len(data) > MAX_SIGNAL_BYTES:
        raise SignalRejected("oversized", f"signal is {len(data)} bytes; limit {MAX_SIGNAL_BYTES}")
    try:
        signal = validate_json(Signal, data)
    except ValidationError as exc:
        raise SignalRejected("invalid", describe_errors(exc)) from exc
    if subject_source is not None and signal.source != subject_source:
        raise SignalRejected(
            "subject_mismatch", f"subject source {subject_source!r} != payload {signal.source!r}"
        )
    if subject_category is not None and signal.category != subject_category:
        raise SignalRejected(
            "subject_mismatch",
            f"subject category {subject_category!r} != payload {signal.category!r}",
        )
    return signal


def describe_errors(exc: ValidationError) -> str:
    """One line per problem, naming the field: what an integrator needs to fix it."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:10]:
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


class RecordedEvent(Frozen):
    """An event as stored and as published on EVENTS: the envelope consoles see.

    Whatever it is read from (a row, the bus, a recorded history), ``data`` comes out at
    today's schema: an envelope at an older ``schema_version`` (or with none: version 1)
    is brought up to date by :mod:`workflows.upcast` before it is validated, and says so
    (``schema_version`` is then today's). An upcast that cannot be made raises
    :class:`pydantic.ValidationError` like any other invalid input.
    """

    seq: int
    event_id: str
    stream_id: str
    version: int
    type: str
    data: dict[str, Any]
    causation_id: str | None = None
    correlation_id: str | None = None
    actor: str
    recorded_at: datetime
    schema_version: int = Field(default=1, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _upcast(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict):
            return raw
        version = raw.get("schema_version", 1)
        if not isinstance(version, int) or not isinstance(raw.get("type"), str):
            return raw  # the field validators say what is wrong
        try:
            type, data = upcasters.EVENTS.upcast_typed(raw["type"], raw["data"], version)
        except upcasters.UpcastError as exc:
            raise ValueError(str(exc)) from exc
        if version == upcasters.EVENTS.current(type) and type == raw["type"]:
            return raw
        return {**raw, "type": type, "data": data,
                "schema_version": upcasters.EVENTS.current(type)}


class SignalAck(Frozen):
    """What `ecc signal send` prints: where the broker put the signal."""

    type: Literal["signal.accepted"] = "signal.accepted"
    signal_id: str
    stream: str
    seq: int
    duplicate: bool


# --- the field-unit protocol (docs/protocol.md) ---------------------------------------

UnitId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}$")]
CrewStatus = Literal["acknowledged", "declined", "en_route", "on_scene", "transporting",
                     "at_hospital", "clear", "out_of_service", "off_duty"]


class OrderOffered(Frozen):
    """On ``<ns>.dispatch.<agency>.<unit>``: go to this task; acknowledge or decline."""

    type: Literal["order.offered"] = "order.offered"
    order_id: str
    unit_id: str
    incident_id: str
    task_id: str
    capability: str
    category: str
    priority: int
    summary: str
    location: Location
    offered_at: datetime
    ack_within_s: float


class OrderEnded(Frozen):
    """The order no longer stands: cancelled, reassigned, or the task is done."""

    type: Literal["order.ended"] = "order.ended"
    order_id: str
    unit_id: str
    incident_id: str
    task_id: str
    reason: str
    at: datetime


class StatusRejected(Frozen):
    """A crew's report that could not be applied, and why; nothing changed."""

    type: Literal["status.rejected"] = "status.rejected"
    unit_id: str
    status: str
    reason: str
    at: datetime


DispatchMessage = Annotated[OrderOffered | OrderEnded | StatusRejected,
                            Field(discriminator="type")]


class StatusReport(Frozen):
    """On ``<ns>.unit.<unit>.status``, from a crew."""

    type: Literal["unit.status"] = "unit.status"
    unit_id: UnitId
    status: CrewStatus
    task_id: str | None = Field(default=None, max_length=64)
    reason: str = Field(default="", max_length=500)
    at: AwareDatetime


class PositionReport(Frozen):
    """On ``<ns>.unit.<unit>.position``: latest wins."""

    type: Literal["unit.position"] = "unit.position"
    unit_id: UnitId
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    speed_mps: float | None = Field(default=None, ge=0, le=120, allow_inf_nan=False)
    heading: float | None = Field(default=None, ge=0, lt=360, allow_inf_nan=False)
    at: AwareDatetime
