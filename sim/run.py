"""Shell: the simulator running against a live ECC, from the outside only.

:func:`simulate` plays a :mod:`sim.world` plan in (scaled) time: sensor readings
and Frigate events go to the nats-server's MQTT listener with a real MQTT
client, calls go to the hotline ingress; :class:`sim.crews.Crews` plays every
field unit over the field-unit protocol; :class:`sim.desk.Desk` plays the
command-centre staff over the console websocket. Nothing here reads the
database or calls the service's code: the simulator sees ECC as its users do.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import structlog
from nats.aio.client import Client as NATS
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.live import Live
from rich.text import Text

from command import natsauth
from command.city import City
from command.roads import RoadNetwork
from command.subjects import Namespace
from sim.clock import SimClock
from sim.crews import Crews, hospitals_of
from sim.desk import Desk
from sim.world import Emission, Plan, plan
from workflows.catalogue import Catalogue

log = structlog.get_logger("ecc.sim")


def scaled(catalogue: Catalogue, speed: float) -> Catalogue:
    """The catalogue with its SLA clocks run ``speed`` times faster, so the service's
    timers keep pace with a sped-up city (a 60 s verify SLA is 60 simulated seconds)."""
    sla = catalogue.sla
    return catalogue.model_copy(update={"sla": sla.model_copy(update={
        "verify_s": sla.verify_s / speed, "task_pending_s": sla.task_pending_s / speed,
        "ack_s": sla.ack_s / speed,
        "on_scene_s": {k: v / speed for k, v in sla.on_scene_s.items()}})})


@dataclass
class SimReport:
    scenario: str
    seed: int
    speed: float
    emergencies: int = 0
    false_alarms: int = 0
    published: dict[str, int] = field(default_factory=lambda: {"sensor": 0, "frigate": 0,
                                                               "call": 0})
    crews: Any = None
    desk: Any = None


class MqttRefused(RuntimeError):
    """The MQTT listener did not take the connection (wrong or missing credentials)."""


class Mqtt:
    """A device-side MQTT client (paho, its own network thread); QoS 1 publishes.

    ``url`` is ``mqtt://[user:password@]host:port``: nats-server's listener wants the
    ``devices`` credentials (``ecc nats-url devices``); ``mqtts://`` is MQTT over TLS,
    checked against the system's CAs (or ``SSL_CERT_FILE``). Blocks until the broker has
    accepted the connection (construct it in a thread); raises :class:`MqttRefused`
    if it refuses, or does not answer within ``timeout`` seconds.
    """

    def __init__(self, url: str, prefix: str, timeout: float = 10.0) -> None:
        where = urlparse(url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"ecc-sim-{uuid.uuid4().hex[:8]}")
        user, password = natsauth.credentials(url)
        if user is not None:
            self.client.username_pw_set(user, password)
        answered = threading.Event()
        outcome: list[Any] = []

        def on_connect(client: Any, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
            outcome.append(reason)
            answered.set()

        self.client.on_connect = on_connect
        if where.scheme == "mqtts":
            self.client.tls_set()
        self.client.connect(where.hostname or "127.0.0.1",
                            where.port or (8883 if where.scheme == "mqtts" else 1883))
        self.client.loop_start()
        if not answered.wait(timeout) or outcome[0].is_failure:
            self.client.loop_stop()
            why = outcome[0] if outcome else f"no answer within {timeout} s"
            raise MqttRefused(f"MQTT listener {natsauth.redact(url)} refused the connection: "
                              f"{why}")
        self.prefix = prefix
        self.lock = threading.Lock()

    def publish(self, topic: str, payload: bytes) -> None:
        with self.lock:
            self.client.publish(self.prefix + topic, payload, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def feed(plan_: Plan, clock: SimClock, nc: NATS, ns: Namespace, mqtt_url: str,
               report: SimReport) -> None:
    """Publish each emission at its time."""
    js = nc.jetstream()
    device_side = await asyncio.to_thread(Mqtt, mqtt_url,
                                          "" if ns.prefix == "ecc" else f"{ns.prefix}/")
    try:
        for e in plan_.emissions:
            await clock.sleep_until(e.at)
            await _emit(e, device_side, js, ns)
            report.published[e.kind] += 1
    finally:
        await asyncio.to_thread(device_side.close)


async def _emit(e: Emission, device_side: Mqtt, js: Any, ns: Namespace) -> None:
    if e.kind == "call":
        await js.publish(ns.ingress("hotline"), e.payload)
    else:
        device_side.publish(e.topic, e.payload)


class Simulation:
    """One simulated city run: its plan (the ground truth, for tests to judge by), the
    field units, the desk, and what was published. ``await run()``; cancel to stop."""

    def __init__(self, *, nc: NATS, ns: Namespace, mqtt_url: str, console_url: str,
                 token: str, city: City, city_doc: dict[str, Any], scenario: str = "normal",
                 seed: int = 1, speed: float = 1.0, duration_s: float = 3600.0,
                 roads: RoadNetwork | None = None, start: datetime | None = None,
                 desk: bool = True, opening: bool = False) -> None:
        begin = start or datetime.now(UTC)
        self.nc, self.ns, self.mqtt_url = nc, ns, mqtt_url
        self.console_url, self.token = console_url, token
        self.world = plan(city_doc, scenario, seed=seed, duration_s=duration_s, start=begin,
                          opening=opening)
        self.clock = SimClock(begin, speed)
        self.report = SimReport(scenario, seed, speed, emergencies=len(self.world.emergencies),
                                false_alarms=sum(e.false_alarm for e in self.world.emergencies))
        self.crews = Crews(nc, ns, city, hospitals_of(city_doc), self.clock, seed=seed,
                           roads=roads)
        self.desk = Desk(console_url, token, self.clock, seed=seed) if desk else None
        self.report.crews = self.crews.stats
        self.report.desk = self.desk.stats if self.desk else None
        self.fed = asyncio.Event()  # every emission published

    async def run(self, status: bool = False, viewer_token: str | None = None) -> None:
        log.info("sim.start", scenario=self.report.scenario, seed=self.report.seed,
                 speed=self.report.speed, emergencies=self.report.emergencies,
                 emissions=len(self.world.emissions))
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._feed(), name="sim-feed")
            tg.create_task(self.crews.run(), name="sim-crews")
            if self.desk is not None:
                tg.create_task(self.desk.run(), name="sim-desk")
            if status and self.desk is not None:
                tg.create_task(_status(self.report, self.clock, self.desk, self.console_url,
                                       viewer_token or self.token))

    async def _feed(self) -> None:
        await feed(self.world, self.clock, self.nc, self.ns, self.mqtt_url, self.report)
        self.fed.set()
        log.info("sim.fed", published=self.report.published)


async def simulate(*, status: bool = False, viewer_token: str | None = None,
                   **kwargs: Any) -> SimReport:
    """Run a :class:`Simulation` until cancelled (its crews and desk never stop); the
    status line shows the console URL with ``viewer_token`` (the person's, not the desk's)."""
    sim = Simulation(**kwargs)
    await sim.run(status=status, viewer_token=viewer_token)
    return sim.report


async def _status(report: SimReport, clock: SimClock, desk: Desk, console_url: str,
                  token: str) -> None:
    """A terminal status line: what the simulated city is doing, and where to watch it."""
    console = Console(stderr=True)
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        while True:
            c = report.crews
            line = Text.assemble(
                ("ECC demo ", "bold"), f"{report.scenario} x{report.speed:g}  ",
                f"sim {clock.now():%H:%M:%S}  ",
                f"signals out {sum(report.published.values())} "
                f"(sensor {report.published['sensor']}, camera {report.published['frigate']}, "
                f"calls {report.published['call']})  ",
                f"incidents watched {len(desk.seen_at)}  ",
                f"units: offered {c.offers} arrived {c.arrived} cleared {c.cleared}  ",
                (f"console {console_url}#token={token}", "cyan"))
            live.update(line)
            await asyncio.sleep(0.5)
