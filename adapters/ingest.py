"""Shell: the adapters as running consumers, from the outside world's formats to signals.

Each adapter is a durable JetStream consumer (:func:`command.bus.consume`) that
reads one border's raw records, turns them into signals with its pure core and
publishes them on ``<ns>.signal.<source>.<category>`` (``Nats-Msg-Id`` = the
signal's id, so a redelivered record never becomes a second signal):

* hotline: JSON call records on ``<ns>.ingress.hotline`` (:mod:`adapters.hotline`);
* cap: CAP 1.0-1.2 XML on ``<ns>.ingress.cap`` (:mod:`adapters.cap`); a Cancel
  becomes a retraction of the alerts it names;
* sensor: readings from the MQTT listener on ``sensors.<device>.<metric>``
  (:mod:`adapters.sensor`), plus a heartbeat watch for silent devices;
* video: Frigate events from the MQTT listener on ``frigate.events`` and
  webhook detections on ``<ns>.ingress.video`` (:mod:`adapters.video`).

A record that cannot be read is dead-lettered with the reason by the consumer
loop and the adapter keeps going. The HTTP ingress (:mod:`adapters.http`)
publishes into the same ingress subjects, so a record posted over HTTP and one
sent over NATS take one path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import ValidationError

from adapters.cap import Alert, CapRejected, parse_cap
from adapters.hotline import CallRecord, to_signal
from adapters.sensor import Devices, Registry, SensorRejected, parse_reading, parse_topic
from adapters.sensor_rules import Reading
from command.bus import SENSOR_ROOT, ConsumerSpec, Undeliverable, consume
from command.model import MAX_SIGNAL_BYTES, RETRACTION, Retraction, Signal, describe_errors
from command.subjects import Namespace

log = structlog.get_logger("ecc.adapters")

KINDS = ("hotline", "cap", "sensor", "video")


class Publisher:
    """Signals and retractions onto SIGNALS, each once (the broker drops a repeated id)."""

    def __init__(self, js: JetStreamContext, ns: Namespace) -> None:
        self.js = js
        self.ns = ns

    async def signal(self, signal: Signal) -> bool:
        """Publish and wait for the broker's ack; False when it was a duplicate."""
        ack = await self.js.publish(
            self.ns.signal(signal.source, signal.category), signal.model_dump_json().encode(),
            headers={"Nats-Msg-Id": f"{signal.source}:{signal.signal_id}"})
        return not ack.duplicate

    async def retraction(self, retraction: Retraction) -> bool:
        ack = await self.js.publish(
            self.ns.signal(retraction.source, RETRACTION), retraction.model_dump_json().encode(),
            headers={"Nats-Msg-Id": f"{retraction.source}:{retraction.retraction_id}"})
        return not ack.duplicate


def parse_call(data: bytes) -> CallRecord:
    """A hotline platform's call record (JSON); raises Undeliverable with the reason."""
    if len(data) > MAX_SIGNAL_BYTES:
        raise Undeliverable("oversized", f"call record is {len(data)} bytes; "
                                         f"limit {MAX_SIGNAL_BYTES}")
    try:
        return CallRecord.model_validate_json(data)
    except ValidationError as exc:
        raise Undeliverable("invalid", describe_errors(exc)) from exc


class HotlineAdapter:
    """Call records to signals: classified, with the rule and its confidence in the details."""

    source = "hotline"

    def __init__(self, ns: Namespace, publisher: Publisher) -> None:
        self.ns = ns
        self.publisher = publisher

    def spec(self) -> ConsumerSpec:
        return ConsumerSpec(stream=self.ns.stream("INGRESS"), durable="adapter-hotline",
                            subject=self.ns.ingress("hotline"))

    def source_of(self, msg: Msg) -> str:
        return self.source

    def decode(self, msg: Msg) -> CallRecord:
        return parse_call(msg.data)

    async def handle(self, records: list[CallRecord]) -> None:
        for record in records:
            signal = to_signal(record)
            fresh = await self.publisher.signal(signal)
            log.info("hotline.call", call_id=record.call_id, signal_id=signal.signal_id,
                     category=signal.category, rule=signal.details.get("rule"),
                     duplicate=not fresh)


@dataclass(frozen=True)
class Area:
    """Where this command centre acts: a CAP alert about elsewhere is not ours."""

    south: float
    north: float
    west: float
    east: float

    def holds(self, lat: float, lon: float) -> bool:
        return self.south <= lat <= self.north and self.west <= lon <= self.east


class CapAdapter:
    """CAP alerts to signals (Alert, Update) and retractions (Cancel)."""

    source = "cap"

    def __init__(self, ns: Namespace, publisher: Publisher, area: Area | None = None) -> None:
        self.ns = ns
        self.publisher = publisher
        self.area = area

    def spec(self) -> ConsumerSpec:
        return ConsumerSpec(stream=self.ns.stream("INGRESS"), durable="adapter-cap",
                            subject=self.ns.ingress("cap"))

    def source_of(self, msg: Msg) -> str:
        return self.source

    def decode(self, msg: Msg) -> Alert:
        try:
            return parse_cap(msg.data)
        except CapRejected as exc:
            raise Undeliverable("invalid", exc.reason) from exc

    async def handle(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            if not alert.acted_on:
                log.info("cap.not_actual", identifier=alert.identifier, status=alert.status)
                continue
            if alert.retraction is not None:
                await self.publisher.retraction(alert.retraction)
                log.info("cap.cancel", identifier=alert.identifier,
                         refers_to=list(alert.retraction.refers_to))
            for signal in alert.signals:
                where = signal.location
                if self.area is not None and not self.area.holds(where.lat, where.lon):
                    log.info("cap.out_of_area", identifier=alert.identifier,
                             signal_id=signal.signal_id)
                    continue
                await self.publisher.signal(signal)
                log.info("cap.signal", identifier=alert.identifier, signal_id=signal.signal_id,
                         category=signal.category, msg_type=alert.msg_type)


@dataclass(frozen=True)
class SensorReading:
    device: str
    metric: str
    reading: Reading
    received_at: datetime


class SensorAdapter:
    """MQTT readings through each device's rules; alarms and silences become signals."""

    source = "sensor"

    def __init__(self, ns: Namespace, publisher: Publisher, registry: Registry, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 check_every: float = 30.0) -> None:
        self.ns = ns
        self.publisher = publisher
        self.root = ns.mqtt(SENSOR_ROOT)
        self.devices = Devices(registry, started=clock())
        self.clock = clock
        self.check_every = check_every

    def spec(self) -> ConsumerSpec:
        return ConsumerSpec(stream=self.ns.stream("MQTT"), durable="adapter-sensor",
                            subject=f"{self.root}.>")

    def source_of(self, msg: Msg) -> str:
        return self.source

    def decode(self, msg: Msg) -> SensorReading:
        try:
            device, metric = parse_topic(msg.subject, self.root)
            registry = self.devices.registry
            if device not in registry.devices:
                raise SensorRejected(f"device {device!r} is not in the registry; add a "
                                     "[[device]] entry to the city file")
            expected = registry.kind_of(device).metric
            if metric != expected:
                raise SensorRejected(f"device {device!r} reports {expected!r}, not {metric!r}")
            stored = msg.metadata.timestamp
            return SensorReading(device, metric, parse_reading(msg.data, stored), stored)
        except SensorRejected as exc:
            raise Undeliverable("invalid", exc.reason) from exc

    async def handle(self, readings: list[SensorReading]) -> None:
        for r in readings:
            signal, what = self.devices.read(r.device, r.metric, r.reading,
                                             r.received_at)
            if signal is not None:
                await self.publisher.signal(signal)
                log.warning("sensor.alarm", device=r.device, signal_id=signal.signal_id,
                            category=signal.category, value=r.reading.value, rule=what)
            elif what != "ok":
                log.info("sensor.reading", device=r.device, value=r.reading.value, outcome=what)

    async def watch(self) -> None:
        """Every ``check_every`` seconds: a maintenance signal for each newly silent device."""
        while True:
            for signal in self.devices.silences(self.clock()):
                await self.publisher.signal(signal)
                log.warning("sensor.silent", device=signal.details["device"],
                             signal_id=signal.signal_id)
            await asyncio.sleep(self.check_every)


@dataclass(frozen=True)
class AdapterConfig:
    kinds: tuple[str, ...] = KINDS
    registry: Registry | None = None  # sensors: none registered, none read
    video: Any = None  # adapters.video.VideoConfig
    area: Area | None = None
    heartbeat_check_s: float = 30.0


async def run_adapters(js: JetStreamContext, ns: Namespace, config: AdapterConfig,
                       ready: asyncio.Event | None = None) -> None:
    """Run the chosen adapters until cancelled."""
    publisher = Publisher(js, ns)
    async with asyncio.TaskGroup() as tg:
        if "hotline" in config.kinds:
            hotline = HotlineAdapter(ns, publisher)
            tg.create_task(consume(js, ns, hotline.spec(), hotline), name="adapter-hotline")
        if "cap" in config.kinds:
            cap = CapAdapter(ns, publisher, config.area)
            tg.create_task(consume(js, ns, cap.spec(), cap), name="adapter-cap")
        if "sensor" in config.kinds and config.registry is not None:
            sensor = SensorAdapter(ns, publisher, config.registry,
                                   check_every=config.heartbeat_check_s)
            tg.create_task(consume(js, ns, sensor.spec(), sensor), name="adapter-sensor")
            tg.create_task(sensor.watch(), name="adapter-sensor-heartbeat")
        log.info("adapters.started", kinds=list(config.kinds), namespace=ns.prefix)
        if ready is not None:
            ready.set()
