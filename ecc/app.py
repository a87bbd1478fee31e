"""Shell: the composition root. Every long-lived loop lives in one TaskGroup here.

``Service`` wires the store, the bus, the signal intake, the outbox relay, the
adapters and the console gateway, and runs them until cancelled. It needs
reachable servers; :mod:`ecc.cli.run` decides whether those are embedded or
external. Here, above ``command``, ``adapters`` and ``consoles``, is the one place
that knows all three.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import structlog
from nats.aio.client import Client as NATS

from adapters.http import Ingress
from adapters.ingest import SPECS, AdapterConfig, run_adapters
from command import bus
from command.alerts import DeadLetterAlerts
from command.basemap import MapSite, map_site
from command.city import City
from command.crews import CrewReports
from command.dispatcher import Dispatcher
from command.engine import Engine, Meta, UnitOfWork
from command.intake import SignalIntake
from command.metrics import Metrics, Readiness, Sampler
from command.outbox import OutboxRelay
from command.roads import RoadNetwork
from command.settings import load_catalogue
from command.store import ConcurrencyError, Store
from command.subjects import Namespace
from command.timers import TimerScheduler
from command.tracks import TrackWriter
from consoles.commands import ConsoleCommands
from consoles.gateway import Gateway
from workflows.catalogue import Catalogue
from workflows.messages import Rejected

log = structlog.get_logger("ecc.service")


@dataclass(frozen=True)
class ServiceConfig:
    nats_url: str
    database_url: str
    namespace: str = "ecc"
    console_host: str = "127.0.0.1"
    console_port: int = 0
    console_origins: tuple[str, ...] = ()
    console_hosts: tuple[str, ...] = ()
    console_max_per_peer: int = 32
    fault_point: str | None = None
    # Seconds before an unacknowledged signal is delivered again.
    ack_wait: float = 10.0
    catalogue: Catalogue | None = None
    # units to register at start (those not yet known); None registers nothing
    city: City | None = None
    # the console's map (the city's [map] and its offline layer); None: the city's own,
    # without an offline layer
    map: MapSite | None = None
    dispatch_interval: float = 2.0
    roads: RoadNetwork | None = None
    # the adapters to run in this process (ecc up runs them all); None runs none
    adapters: AdapterConfig | None = None
    # the HTTP ingress (hotline calls, video webhooks, CAP) on this port; None: no HTTP
    ingress_port: int | None = None
    # copies of each JetStream stream: 1 on one nats-server, 3 on a three-node cluster
    stream_replicas: int = 1
    # positions each console is sent at most per second; how long tracks are kept (s)
    console_positions_hz: float = 1.0
    track_retention: float = 7 * 86400.0


class Service:
    """The running system. ``await service.run()``; cancel it to stop."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.catalogue = config.catalogue or load_catalogue()
        self.ns = Namespace(config.namespace)
        self.ready = asyncio.Event()
        self.gateway: Gateway | None = None
        self.relay: OutboxRelay | None = None
        self.engine: Engine | None = None
        self.timers: TimerScheduler | None = None
        self.dispatcher: Dispatcher | None = None
        self.tracks: TrackWriter | None = None
        self.ingress: Ingress | None = None
        # this service's own registry: several services in one process never collide
        self.metrics = Metrics()
        self.health: Readiness | None = None
        self._loops: list[asyncio.Task[Any]] = []

    def readiness(self) -> dict[str, Any]:
        """What ``GET /readyz`` answers: ``{"ready": bool, <check>: "ok" or the problem}``."""
        if self.health is None:
            return {"ready": False, "service": "not running"}
        return self.health.report()

    def _stopped_loops(self) -> list[str]:
        return [task.get_name() for task in self._loops if task.done()]

    @property
    def console_url(self) -> str:
        assert self.gateway is not None, "service is not running"
        return self.gateway.url

    async def run(self) -> None:
        cfg = self.config
        store = await Store.connect(cfg.database_url, self.ns)
        nc: NATS | None = None
        try:
            await store.migrate()
            nc = await bus.connect(cfg.nats_url, name="ecc-serve")
            js = nc.jetstream()
            # the adapters' declarations: their consumers, and the MQTT stream's subjects
            await bus.ensure_streams(js, self.ns, cfg.stream_replicas, adapters=SPECS)
            await bus.ensure_adapter_consumers(js, self.ns, SPECS)
            metrics = self.metrics
            intake = SignalIntake(store, self.ns, self.catalogue, fault_point=cfg.fault_point,
                                  metrics=metrics)
            self.engine = Engine(store, self.catalogue)
            self.timers = TimerScheduler(self.engine)
            # the scheduler keeps its own tally; read at scrape time
            timers = self.timers
            metrics.count_from("ecc_timers_fired", "SLA and acknowledgement timers fired",
                               lambda: timers.fired)
            if cfg.city is not None:
                await register_city(self.engine, cfg.city)
            crews = CrewReports(self.engine, js, self.ns, metrics=metrics)
            self.dispatcher = Dispatcher(self.engine, nc, self.ns,
                                         interval=cfg.dispatch_interval, roads=cfg.roads,
                                         metrics=metrics)
            self.tracks = tracks = TrackWriter(store, self.ns, retention=cfg.track_retention)
            metrics.count_from("ecc_track_positions_stored", "Unit positions stored as tracks",
                               lambda: tracks.stored)
            self.relay = OutboxRelay(store, js, fault_point=cfg.fault_point, metrics=metrics)
            self.gateway = Gateway(store, nc, self.ns, host=cfg.console_host,
                                   port=cfg.console_port, origins=cfg.console_origins,
                                   hosts=cfg.console_hosts,
                                   max_per_peer=cfg.console_max_per_peer,
                                   commands=ConsoleCommands(self.engine, js, self.ns),
                                   sla={"verify_s": self.catalogue.sla.verify_s,
                                        "task_pending_s": self.catalogue.sla.task_pending_s,
                                        "ack_s": self.catalogue.sla.ack_s},
                                   catalogue=self.catalogue,
                                   metrics=metrics, readiness=self.readiness,
                                   positions_hz=cfg.console_positions_hz,
                                   map_site=cfg.map or (map_site(cfg.city) if cfg.city else None))
            self.health = Readiness(cfg.database_url, nc, loops=self._stopped_loops,
                                    metrics=metrics)
            sampler = Sampler(metrics, store, js, self.ns)
            async with asyncio.TaskGroup() as tg:
                def loop(coro: Coroutine[Any, Any, Any], name: str) -> None:
                    """A loop the service needs: readiness fails once it stops."""
                    self._loops.append(tg.create_task(coro, name=name))

                spec = replace(intake.spec(), ack_wait=cfg.ack_wait)
                loop(bus.consume(js, self.ns, spec, intake), "intake")
                loop(self.relay.run(), "outbox")
                loop(self.timers.run(), "timers")
                loop(bus.consume(js, self.ns, crews.spec(), crews), "crews")
                desk_alerts = DeadLetterAlerts(self.engine, self.ns)
                loop(bus.consume(js, self.ns, desk_alerts.spec(), desk_alerts), "alerts")
                loop(self.dispatcher.run(), "dispatcher")
                loop(bus.consume(js, self.ns, tracks.spec(), tracks), "tracks")
                loop(tracks.run_pruner(), "tracks_pruner")
                loop(self.gateway.run(), "gateway")
                tg.create_task(sampler.run(), name="metrics")
                tg.create_task(self.health.run(), name="readiness")
                if cfg.adapters is not None and cfg.adapters.kinds:
                    adapters_ready = asyncio.Event()
                    loop(run_adapters(js, self.ns, cfg.adapters, adapters_ready), "adapters")
                    await adapters_ready.wait()
                if cfg.ingress_port is not None:
                    self.ingress = Ingress(store, js, self.ns, host=cfg.console_host,
                                           port=cfg.ingress_port, metrics=metrics,
                                           readiness=self.readiness,
                                           cap_trust=cfg.adapters.cap_trust
                                           if cfg.adapters is not None else None,
                                           area=cfg.adapters.area
                                           if cfg.adapters is not None else None,
                                           gazetteer=cfg.adapters.gazetteer
                                           if cfg.adapters is not None else None)
                    loop(self.ingress.run(), "ingress")
                    await self.ingress.ready.wait()
                await self.gateway.ready.wait()
                await self.health.check()
                self.ready.set()
                log.info("service.ready", console_url=self.gateway.url, namespace=self.ns.prefix)
        finally:
            self.health = None  # readiness() now says "not running"
            self._loops.clear()
            if nc is not None:
                await nc.close()
            await store.close()
            log.info("service.stopped")


async def register_city(engine: Engine, city: City, chunk: int = 500) -> int:
    """Register the city's units that the store does not know yet; returns how many.

    A few hundred units a transaction: a city of 10,000 units registers in seconds,
    not in one transaction per unit. A chunk a second replica got to first (it started
    at the same moment) is done again one unit at a time, skipping the ones it has."""
    known = await engine.store.unit_ids()
    todo = [c for c in city.registrations(datetime.now(UTC)) if c.unit_id not in known]
    meta = Meta(actor="city file")
    added = 0
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]

        async def register(uow: UnitOfWork, part: list[Any] = part) -> None:
            for command in part:
                await uow.run_unit(command.unit_id, command, meta)

        try:
            await engine.transact(register)
            added += len(part)
        except (Rejected, ConcurrencyError):
            for command in part:
                try:
                    await engine.execute_unit(command.unit_id, command, meta)
                except (Rejected, ConcurrencyError):
                    continue
                added += 1
    if added:
        log.info("service.units_registered", city=city.name, added=added)
    return added
