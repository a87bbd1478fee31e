"""Shell: the adapters as running consumers, from the outside world's formats to signals.

Each adapter is a durable JetStream consumer (:func:`command.bus.consume`) that
reads one border's raw records, turns them into signals with its pure core and
publishes them on ``<ns>.signal.<source>.<category>`` (``Nats-Msg-Id`` = the
signal's id, so a redelivered record never becomes a second signal):

* hotline: JSON call records on ``<ns>.ingress.hotline`` (:mod:`adapters.hotline`);
* cap: CAP 1.0-1.2 XML on ``<ns>.ingress.cap`` (:mod:`adapters.cap`), its
  signature and schema checked against the sender's policy (:mod:`adapters.cap_trust`,
  the city file's ``[[cap_sender]]``), its areas placed in the city's ``[area]``; a
  Cancel becomes a retraction of the sender's own alerts it names; a second copy of
  an alert with other content is dead-lettered as ``cap_conflict`` (the first copy's
  digest is kept in ``CAPSEEN``, :class:`CapCopies`);
* sensor: readings from the MQTT listener on ``sensors.<device>.<metric>``
  (:mod:`adapters.sensor`), plus a heartbeat watch for silent devices;
* cap out: ``incident.public_warning`` events from EVENTS become CAP 1.2 alerts
  (:mod:`adapters.cap_out`, checked against the OASIS schema) on
  ``<ns>.warning.cap.<incident>``, for public warning systems to pick up;
* video: Frigate events from the MQTT listener (its topic root is the video
  adapter's, :data:`adapters.video.FRIGATE_ROOT`) and
  webhook detections on ``<ns>.ingress.video`` (:mod:`adapters.video`);
* eido: NENA EIDO documents (JSON) from another agency's CAD on
  ``<ns>.ingress.eido`` (:mod:`adapters.eido`), each a signal of source ``eido``.

A record that cannot be read is dead-lettered with the reason by the consumer
loop and the adapter keeps going. The HTTP ingress (:mod:`adapters.http`)
publishes into the same ingress subjects, so a record posted over HTTP and one
sent over NATS take one path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import ValidationError

from adapters import cap_out
from adapters.area import Area
from adapters.cap_feed import SPEC as CAP
from adapters.cap_feed import CapAdapter, area_of, trust_of
from adapters.cap_trust import Trust
from adapters.eido import SPEC as EIDO
from adapters.eido import EidoRejected, parse_eido
from adapters.eido import to_signal as eido_signal
from adapters.gazetteer import Gazetteer
from adapters.gazetteer_load import gazetteer_of
from adapters.hotline import SPEC as HOTLINE
from adapters.hotline import CallRecord, Unplaceable, to_signal
from adapters.sensor import (
    SENSOR_ROOT,
    Devices,
    Registry,
    SensorRejected,
    parse_reading,
    parse_registry,
    parse_topic,
)
from adapters.sensor import SPEC as SENSOR
from adapters.sensor_rules import Reading
from adapters.video import SPEC as VIDEO
from adapters.video import (
    Detection,
    Tracking,
    VideoConfig,
    VideoRejected,
    observe,
    parse_frigate,
    parse_video_config,
    parse_webhook,
)
from command.bus import ConsumerSpec, Undeliverable, consume, feed_consumer
from command.model import (
    MAX_SIGNAL_BYTES,
    RETRACTION,
    RecordedEvent,
    Retraction,
    Signal,
    describe_errors,
)
from command.settings import load_catalogue
from command.specs import AdapterSpec
from command.subjects import Namespace
from workflows.catalogue import Catalogue
from workflows.incident import PublicWarning as PublicWarningEvent
from workflows.text import validate_json

log = structlog.get_logger("ecc.adapters")

# Each adapter's one declaration on the bus (command/specs.py), in its own module: the
# wiring hands these to the service (the consumers it creates, the MQTT stream), to
# command.natsauth (the grants) and to deploy/nats-auth.conf's generator.
SPECS: tuple[AdapterSpec, ...] = (HOTLINE, CAP, SENSOR, VIDEO,
                                  EIDO)
KINDS = tuple(spec.kind for spec in SPECS)


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

    async def signals(self, signals: list[Signal]) -> list[bool]:
        """Publish a batch with every ack awaited together (one round trip, not one each);
        each True where it was new."""
        pending = [await self.js.publish_async(
            self.ns.signal(s.source, s.category), s.model_dump_json().encode(),
            headers={"Nats-Msg-Id": f"{s.source}:{s.signal_id}"}) for s in signals]
        return [not ack.duplicate for ack in await asyncio.gather(*pending)]

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
        return validate_json(CallRecord, data)
    except ValidationError as exc:
        raise Undeliverable("invalid", describe_errors(exc)) from exc


class HotlineAdapter:
    """Call records to signals: classified, with the rule and its confidence in the details."""

    source = "hotline"

    def __init__(self, ns: Namespace, publisher: Publisher, catalogue: Catalogue,
                 gazetteer: Gazetteer | None = None) -> None:
        self.ns = ns
        self.publisher = publisher
        self.rules = catalogue.hotline
        self.gazetteer = gazetteer

    def spec(self) -> ConsumerSpec:
        return feed_consumer(HOTLINE.feed("adapter-hotline"), self.ns)

    def source_of(self, msg: Msg) -> str:
        return self.source

    def decode(self, msg: Msg) -> Signal:
        record = parse_call(msg.data)
        try:
            return to_signal(record, self.rules, self.gazetteer)
        except Unplaceable as exc:
            raise Undeliverable("unplaceable", str(exc)) from exc

    async def handle(self, signals: list[Signal]) -> None:
        for signal, fresh in zip(signals, await self.publisher.signals(signals), strict=True):
            placement = signal.details.get("placement") or {}
            log.info("hotline.call", signal_id=signal.signal_id,
                     category=signal.category, rule=signal.details.get("rule"),
                     placed=placement.get("matched"), unknown=signal.location.unknown,
                     duplicate=not fresh)


def parse_handoff(data: bytes, catalogue: Catalogue,
                  gazetteer: Gazetteer | None = None) -> Signal:
    """The signal an EIDO document becomes; raises Undeliverable with the reason (naming
    the field) for a document ECC cannot take in or cannot place (one with only a civic
    address is placed by ``gazetteer``; without one it is refused)."""
    try:
        return eido_signal(parse_eido(data), catalogue, gazetteer)
    except EidoRejected as exc:
        code = "oversized" if exc.reason.startswith("$: the document is") else "invalid"
        raise Undeliverable(code, exc.reason) from exc


class EidoAdapter:
    """EIDO documents from other agencies' CADs to signals: one per document version,
    and a later version joins the incident an earlier one raised (``refers_to``)."""

    source = "eido"

    def __init__(self, ns: Namespace, publisher: Publisher, catalogue: Catalogue,
                 gazetteer: Gazetteer | None = None) -> None:
        self.ns = ns
        self.publisher = publisher
        self.catalogue = catalogue
        self.gazetteer = gazetteer

    def spec(self) -> ConsumerSpec:
        return feed_consumer(EIDO.feed("adapter-eido"), self.ns)

    def source_of(self, msg: Msg) -> str:
        return self.source

    def decode(self, msg: Msg) -> Signal:
        return parse_handoff(msg.data, self.catalogue, self.gazetteer)

    async def handle(self, signals: list[Signal]) -> None:
        for signal, fresh in zip(signals, await self.publisher.signals(signals), strict=True):
            log.info("eido.handoff", signal_id=signal.signal_id, category=signal.category,
                     agency=signal.details.get("agency"),
                     incident_uid=signal.details.get("incident_uid"), duplicate=not fresh)


def warning_of(event: RecordedEvent, sender: str,
               catalogue: Catalogue) -> cap_out.PublicWarning:
    """The CAP message an ``incident.public_warning`` event asks for."""
    w = PublicWarningEvent.model_validate(event.data)
    incident_id = event.stream_id.partition(":")[2]
    where = w.location
    return cap_out.PublicWarning(
        incident_id=incident_id, sequence=w.sequence, msg_type=w.msg_type, sent=w.at,
        sender=sender, category=w.category,
        event=catalogue.types[w.category].label if w.category in catalogue.types
        else w.category.replace("_", " ").capitalize(),
        urgency=w.urgency, severity=w.severity, certainty=w.certainty, headline=w.headline,
        description=w.description if w.msg_type != "Cancel" else f"Ended: {w.reason}",
        instruction=w.instruction if w.msg_type != "Cancel" else "The warning has ended.",
        area_desc=where.address or "", lat=where.lat, lon=where.lon, radius_m=w.radius_m,
        expires=w.expires_at,
        references=tuple((sender, cap_out.identifier(incident_id, r.sequence), r.at)
                         for r in w.references))


class CapOutAdapter:
    """Public warnings ECC decided on, out as CAP 1.2 (one message per warning event)."""

    source = "cap_out"

    def __init__(self, js: JetStreamContext, ns: Namespace, sender: str,
                 catalogue: Catalogue) -> None:
        self.js = js
        self.ns = ns
        self.sender = sender
        self.catalogue = catalogue

    def spec(self) -> ConsumerSpec:
        return feed_consumer(CAP.feed("adapter-cap-out"), self.ns)

    def source_of(self, msg: Msg) -> str:
        return self.source

    def decode(self, msg: Msg) -> RecordedEvent | None:
        if b'"incident.public_warning"' not in msg.data:
            return None  # most events are not warnings: skip without parsing them
        try:
            event = RecordedEvent.model_validate_json(msg.data)
        except ValidationError as exc:
            raise Undeliverable("invalid", describe_errors(exc)) from exc
        return event if event.type == "incident.public_warning" else None

    async def handle(self, events: list[RecordedEvent | None]) -> None:
        for event in events:
            if event is None:
                continue
            warning = warning_of(event, self.sender, self.catalogue)
            xml = cap_out.emit(warning, self.catalogue.cap)
            ident = cap_out.identifier(warning.incident_id, warning.sequence)
            await self.js.publish(self.ns.warning(warning.incident_id), xml,
                                  headers={"Nats-Msg-Id": ident,
                                           "Content-Type": "application/cap+xml"})
            log.warning("cap_out.sent", incident_id=warning.incident_id, identifier=ident,
                        msg_type=warning.msg_type)


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
        return feed_consumer(SENSOR.feed("adapter-sensor"), self.ns)

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
            mark = self.devices.mark(r.device)
            signal, what = self.devices.read(r.device, r.metric, r.reading,
                                             r.received_at)
            if signal is not None:
                try:
                    await self.publisher.signal(signal)
                except BaseException:
                    self.devices.undo(r.device, mark)  # redelivered, it alarms again
                    raise
                log.warning("sensor.alarm", device=r.device, signal_id=signal.signal_id,
                            category=signal.category, value=r.reading.value, rule=what)
            elif what != "ok":
                log.info("sensor.reading", device=r.device, value=r.reading.value, outcome=what)

    async def watch(self) -> None:
        """Every ``check_every`` seconds: a maintenance signal for each newly silent device."""
        while True:
            for signal in self.devices.silences(self.clock()):
                try:
                    await self.publisher.signal(signal)
                except Exception as exc:  # the broker is away: try again next round
                    self.devices.silent.discard(signal.details["device"])
                    log.warning("sensor.silent_unsent", device=signal.details["device"],
                                error=str(exc))
                    continue
                log.warning("sensor.silent", device=signal.details["device"],
                             signal_id=signal.signal_id)
            await asyncio.sleep(self.check_every)


class VideoAdapter:
    """Detections from Frigate (MQTT) and webhooks: one tracked object, one signal.

    Two consumers (Frigate's MQTT events, the webhook ingress) share one tracking
    state, so an object is reported once whichever door it came through.
    """

    source = "video"

    def __init__(self, ns: Namespace, publisher: Publisher, config: VideoConfig) -> None:
        self.ns = ns
        self.publisher = publisher
        self.config = config
        self.tracking = Tracking()
        self.frigate = VIDEO.feed("adapter-video-frigate").subject_in(ns)

    def specs(self) -> list[ConsumerSpec]:
        return [feed_consumer(feed, self.ns) for feed in VIDEO.feeds]

    def source_of(self, msg: Msg) -> str:
        return self.source

    def decode(self, msg: Msg) -> Detection:
        try:
            d = parse_frigate(msg.data) if msg.subject == self.frigate else \
                parse_webhook(msg.data)
            observe(self.config, Tracking(), d)  # an unknown camera that matters: refused
            return d
        except VideoRejected as exc:
            raise Undeliverable("invalid", exc.reason) from exc

    async def handle(self, detections: list[Detection]) -> None:
        for d in detections:
            tracking, signal, why = observe(self.config, self.tracking, d)
            if signal is None:
                self.tracking = tracking
                log.debug("video.detection", camera=d.camera, object_id=d.object_id,
                          label=d.label, outcome=why)
                continue
            await self.publisher.signal(signal)
            self.tracking = tracking  # only once published: a failure retries the object
            log.warning("video.signal", camera=d.camera, object_id=d.object_id, label=d.label,
                        signal_id=signal.signal_id, category=signal.category, score=d.score)


@dataclass(frozen=True)
class AdapterConfig:
    kinds: tuple[str, ...] = KINDS
    registry: Registry | None = None  # sensors: none registered, none read
    video: VideoConfig | None = None  # cameras: none registered, none placed
    area: Area | None = None
    cap_trust: Trust | None = None  # the [[cap_sender]] rules: none, the default for all
    # the city's places ([gazetteer]): addresses without coordinates, CAP geocodes, EIDO
    # civic addresses are placed with it; None: they are not (dead letters, unplaced areas)
    gazetteer: Gazetteer | None = None
    heartbeat_check_s: float = 30.0
    cap_sender: str = "ecc@localhost"  # <sender> of the CAP alerts ECC emits
    # the incident types: labels, hotline rules, CAP and EIDO mappings (the built-in one
    # when none is given; `ecc` passes the one it serves)
    catalogue: Catalogue = field(default_factory=load_catalogue)


def config_from_city(doc: dict[str, Any], *, kinds: tuple[str, ...] = KINDS,
                     catalogue: Catalogue | None = None, sender: str = "ecc@localhost",
                     origin: str = "city file",
                     categories: tuple[str, ...] | None = None,
                     base: Path | None = None) -> AdapterConfig:
    """The adapters' settings from a parsed city file: its devices and sensor kinds, its
    cameras, its area for CAP's scope (``[area] polygon``, else the stations' bounds and
    30 km around them) and its CAP senders' rules (``[[cap_sender]]``, trust anchors
    read relative to ``base``, the city file's folder).

    Raises ValueError (SensorRejected, VideoRejected) naming the entry at fault.
    """
    return AdapterConfig(kinds=kinds, registry=parse_registry(doc, origin, categories),
                         video=parse_video_config(doc, origin, categories=categories),
                         area=area_of(doc, origin),
                         cap_trust=trust_of(doc, origin, base if base is not None else Path(".")),
                         gazetteer=gazetteer_of(doc, base if base is not None else Path("."),
                                                origin),
                         cap_sender=sender, catalogue=catalogue or load_catalogue())


async def run_adapters(js: JetStreamContext, ns: Namespace, config: AdapterConfig,
                       ready: asyncio.Event | None = None) -> None:
    """Run the chosen adapters until cancelled."""
    publisher = Publisher(js, ns)
    async with asyncio.TaskGroup() as tg:
        if "hotline" in config.kinds:
            hotline = HotlineAdapter(ns, publisher, config.catalogue, config.gazetteer)
            tg.create_task(consume(js, ns, hotline.spec(), hotline), name="adapter-hotline")
        if "cap" in config.kinds:
            cap = CapAdapter(ns, publisher, config.area, config.cap_trust,
                             catalogue=config.catalogue,
                             gazetteer=config.gazetteer)
            tg.create_task(consume(js, ns, cap.spec(), cap), name="adapter-cap")
            out = CapOutAdapter(js, ns, config.cap_sender, config.catalogue)
            tg.create_task(consume(js, ns, out.spec(), out), name="adapter-cap-out")
        if "sensor" in config.kinds and config.registry is not None:
            sensor = SensorAdapter(ns, publisher, config.registry,
                                   check_every=config.heartbeat_check_s)
            tg.create_task(consume(js, ns, sensor.spec(), sensor), name="adapter-sensor")
            tg.create_task(sensor.watch(), name="adapter-sensor-heartbeat")
        if "video" in config.kinds and config.video is not None:
            video = VideoAdapter(ns, publisher, config.video)
            for spec in video.specs():
                tg.create_task(consume(js, ns, spec, video), name=spec.durable)
        if "eido" in config.kinds:
            handoffs = EidoAdapter(ns, publisher, config.catalogue, config.gazetteer)
            tg.create_task(consume(js, ns, handoffs.spec(), handoffs), name="adapter-eido")
        log.info("adapters.started", kinds=list(config.kinds), namespace=ns.prefix)
        if ready is not None:
            ready.set()
