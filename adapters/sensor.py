"""Border (core part): the device registry and sensor readings over MQTT.

Devices publish to nats-server's own MQTT listener on ``sensors/<device>/<metric>``
(nats-server maps it to the NATS subject ``sensors.<device>.<metric>``); the
payload is a bare number (``31.5``) or JSON ``{"value": 31.5, "at": "<ISO 8601>"}``
(``"time"`` in Unix seconds also accepted). A reading without a time takes the
time the broker stored it.

The registry comes from the city file: a ``[sensor_kind.<kind>]`` table per
kind of device (the rules as data: thresholds, hysteresis, debounce, rate of
change, valid range, heartbeat, the category an alarm raises) and a
``[[device]]`` entry per device (id, kind, place). :class:`Devices` folds
readings through :func:`adapters.sensor_rules.step` and says which signals to
publish: an alarm raises an emergency signal of the kind's category; a device
silent past its heartbeat raises one ``maintenance`` signal, not an emergency.
Pure: time comes in the readings and in ``now`` arguments.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

from adapters.sensor_rules import Reading, SensorRules, SensorState, heartbeat, step
from command.model import Signal
from command.specs import AdapterSpec, Feed
from workflows.geo import Location
from workflows.text import Cleaned

MAX_READING_BYTES = 4096
# The MQTT topic root devices publish under: sensors/<device>/<metric>.
SENSOR_ROOT = "sensors"
# On the bus (command/specs.py): what devices published over MQTT; no ingress door.
SPEC = AdapterSpec(
    kind="sensor", feeds=(Feed("MQTT", "adapter-sensor", ">", mqtt_root=SENSOR_ROOT),),
    door=False, about="Readings that devices published over MQTT (ECC_MQTT, sensors.>).")
_DEVICE = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$"
_TOKEN = r"^[a-z][a-z0-9_]{0,39}$"


class SensorRejected(ValueError):
    """A reading or a registry entry ECC cannot use; ``reason`` says what to fix."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Frozen(Cleaned):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SensorKind(_Frozen):
    """The rules for one kind of device, as data in the city file."""

    metric: str = Field(pattern=_TOKEN)
    unit: str = Field(default="", max_length=20)
    category: str = Field(pattern=_TOKEN)  # what an alarm raises: flood, gas_leak, fire...
    alarm_at: float
    clear_at: float
    rising: bool = True
    debounce: int = Field(default=2, ge=1, le=100)
    rise_per_min: float | None = Field(default=None, gt=0)
    valid_min: float = -1e6
    valid_max: float = 1e6
    sentinels: tuple[float, ...] = (-99999.992, -9999.0)
    heartbeat_s: float = Field(default=3600, gt=0)
    confidence: float = Field(default=0.8, ge=0, le=1)
    label: str = Field(default="", max_length=80)

    def rules(self) -> SensorRules:
        return SensorRules(alarm_at=self.alarm_at, clear_at=self.clear_at, rising=self.rising,
                           debounce=self.debounce, valid_min=self.valid_min,
                           valid_max=self.valid_max, sentinels=self.sentinels,
                           heartbeat=timedelta(seconds=self.heartbeat_s),
                           rise_per_min=self.rise_per_min)


class Device(_Frozen):
    id: str = Field(pattern=_DEVICE)
    kind: str = Field(pattern=_TOKEN)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: str | None = Field(default=None, max_length=500)


@dataclass(frozen=True)
class Registry:
    kinds: dict[str, SensorKind]
    devices: dict[str, Device]

    def kind_of(self, device_id: str) -> SensorKind:
        return self.kinds[self.devices[device_id].kind]


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                     for e in exc.errors(include_url=False)[:5])


def parse_registry(doc: dict[str, Any], origin: str = "city file",
                   categories: tuple[str, ...] | None = None) -> Registry:
    """The ``[sensor_kind.*]`` tables and ``[[device]]`` entries of a parsed city file;
    with ``categories`` (the catalogue's types), each kind's category is checked."""
    kinds: dict[str, SensorKind] = {}
    for name, raw in (doc.get("sensor_kind") or {}).items():
        if not re.match(_TOKEN, str(name)):
            raise SensorRejected(f"{origin}: [sensor_kind.{name}]: a kind is a lower-case token")
        try:
            kind = SensorKind.model_validate(raw)
            kind.rules()  # hysteresis checked here
        except (ValidationError, ValueError) as exc:
            why = _problems(exc) if isinstance(exc, ValidationError) else str(exc)
            raise SensorRejected(f"{origin}: [sensor_kind.{name}]: {why}") from exc
        if categories is not None and kind.category not in categories:
            raise SensorRejected(f"{origin}: [sensor_kind.{name}]: category "
                                 f"{kind.category!r} is not an incident type of the "
                                 f"catalogue ({', '.join(categories)})")
        kinds[name] = kind
    devices: dict[str, Device] = {}
    for i, raw in enumerate(doc.get("device") or []):
        try:
            device = Device.model_validate(raw)
        except ValidationError as exc:
            raise SensorRejected(f"{origin}: [[device]] number {i + 1}: "
                                 f"{_problems(exc)}") from exc
        if device.id in devices:
            raise SensorRejected(f"{origin}: device {device.id!r} appears twice")
        if device.kind not in kinds:
            raise SensorRejected(f"{origin}: device {device.id!r} is of kind {device.kind!r}, "
                                 f"which has no [sensor_kind.{device.kind}] table")
        devices[device.id] = device
    return Registry(kinds, devices)


def parse_topic(subject: str, root: str) -> tuple[str, str]:
    """``(device, metric)`` of ``<root>.<device>.<metric>``; raises SensorRejected."""
    prefix = root + "."
    rest = subject[len(prefix):] if subject.startswith(prefix) else ""
    parts = rest.split(".")
    if len(parts) != 2 or not re.match(_DEVICE, parts[0]) or not re.match(_TOKEN, parts[1]):
        raise SensorRejected(f"topic {subject.replace('.', '/')!r} is not "
                             f"{root.replace('.', '/')}/<device>/<metric>")
    return parts[0], parts[1]


def parse_reading(data: bytes, stored_at: datetime) -> Reading:
    """A payload: a bare number, or JSON {"value": n, "at": ISO | "time": unix seconds}."""
    if len(data) > MAX_READING_BYTES:
        raise SensorRejected(f"reading is {len(data)} bytes; limit {MAX_READING_BYTES}")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SensorRejected(f"not a number or JSON: {str(exc)[:200]}") from exc
    at = stored_at
    if isinstance(doc, dict):
        value = doc.get("value")
        if "at" in doc:
            try:
                at = datetime.fromisoformat(str(doc["at"]))
            except ValueError as exc:
                raise SensorRejected(f"\"at\" is not an ISO 8601 time: {exc}") from exc
            if at.tzinfo is None:
                raise SensorRejected("\"at\" needs a time zone (e.g. +08:00 or Z)")
        elif "time" in doc:
            t = doc["time"]
            if isinstance(t, bool) or not isinstance(t, int | float) or \
                    not math.isfinite(t) or not 0 < t < 4e9:
                raise SensorRejected("\"time\" must be Unix seconds")
            at = datetime.fromtimestamp(t, UTC)
    else:
        value = doc
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SensorRejected("the reading needs a numeric value")
    if not math.isfinite(value) or abs(value) > 1e12:  # the rules reject sentinels
        raise SensorRejected(f"value {value} is not a usable number")
    return Reading(float(value), at)


@dataclass
class Devices:
    """Each device's rule state, and what readings and silences mean."""

    registry: Registry
    started: datetime
    states: dict[str, SensorState] = field(default_factory=dict)
    silent: set[str] = field(default_factory=set)  # devices already reported silent
    # when each device was last heard with a usable reading, by the broker's clock (a
    # device's own clock may be wrong; silence is judged on ours)
    heard: dict[str, datetime] = field(default_factory=dict)

    def read(self, device_id: str, metric: str, reading: Reading,
             received_at: datetime) -> tuple[Signal | None, str]:
        """The signal to publish for one reading (or None) and what happened, for the log.

        Raises :class:`SensorRejected` for a device or metric the registry does not know.
        """
        device = self.registry.devices.get(device_id)
        if device is None:
            raise SensorRejected(f"device {device_id!r} is not in the registry; add a "
                                 "[[device]] entry to the city file")
        kind = self.registry.kinds[device.kind]
        if metric != kind.metric:
            raise SensorRejected(f"device {device_id!r} ({device.kind}) reports "
                                 f"{kind.metric!r}, not {metric!r}")
        state, decisions = step(kind.rules(), self.states.get(device_id, SensorState()),
                                reading)
        self.states[device_id] = state
        if state.last_at == reading.at:  # a usable reading: the device is alive
            self.heard[device_id] = max(received_at, self.heard.get(device_id, received_at))
            self.silent.discard(device_id)
        for d in decisions:
            if d.kind == "rejected":
                return None, f"rejected: {d.reason}"
            if d.kind == "clear":
                return None, f"clear: {d.reason}"
            return _alarm(device, kind, d.value, d.at, d.reason), f"alarm: {d.reason}"
        return None, "ok"

    def mark(self, device_id: str) -> tuple[SensorState | None, datetime | None, bool]:
        """What :meth:`undo` needs to put one device back as it was."""
        return (self.states.get(device_id), self.heard.get(device_id),
                device_id in self.silent)

    def undo(self, device_id: str, mark: tuple[SensorState | None, datetime | None, bool]
             ) -> None:
        """Forget a reading whose alarm could not be published, so its redelivery alarms."""
        state, heard, silent = mark
        if state is None:
            self.states.pop(device_id, None)
        else:
            self.states[device_id] = state
        if heard is None:
            self.heard.pop(device_id, None)
        else:
            self.heard[device_id] = heard
        if silent:
            self.silent.add(device_id)
        else:
            self.silent.discard(device_id)

    def silences(self, now: datetime) -> list[Signal]:
        """A maintenance signal for each device newly silent past its heartbeat."""
        out = []
        for device in self.registry.devices.values():
            if device.id in self.silent:
                continue
            kind = self.registry.kinds[device.kind]
            since = self.heard.get(device.id, self.started)
            why = heartbeat(kind.rules(), SensorState(last_at=since), now)
            if why is None:
                continue
            self.silent.add(device.id)
            out.append(Signal(
                signal_id=f"sensor-{device.id}-silent-{since:%Y%m%dT%H%M%S}",
                source="sensor", category="maintenance", location=_place(device),
                observed_at=now, confidence=0.9,
                summary=f"{kind.label or device.kind} {device.id} {why}: check the device",
                details={"device": device.id, "kind": device.kind, "rule": "heartbeat",
                         "reason": why}))
        return out


def _place(device: Device) -> Location:
    return Location(lat=device.lat, lon=device.lon, address=device.address)


def _alarm(device: Device, kind: SensorKind, value: float, at: datetime,
           reason: str) -> Signal:
    what = kind.label or kind.metric.replace("_", " ")
    return Signal(
        signal_id=f"sensor-{device.id}-{kind.metric}-{at.astimezone(UTC):%Y%m%dT%H%M%S%f}",
        source="sensor", category=kind.category, location=_place(device), observed_at=at,
        confidence=kind.confidence,
        summary=f"{what} {value:g} {kind.unit} at {device.address or device.id}".strip(),
        details={"device": device.id, "kind": device.kind, "metric": kind.metric,
                 "value": value, "unit": kind.unit, "rule": reason})
