"""Shell: the composition root. Every long-lived loop lives in one TaskGroup here.

``Service`` wires the store, the bus, the signal intake, the outbox relay and
the console gateway, and runs them until cancelled. It needs reachable servers;
:mod:`command.cli` decides whether those are embedded or external.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import structlog
from nats.aio.client import Client as NATS

from adapters.http import Ingress
from adapters.ingest import AdapterConfig, run_adapters
from command import bus
from command.city import City
from command.crews import CrewReports
from command.dispatcher import Dispatcher
from command.engine import Engine, Meta
from command.intake import SignalIntake
from command.outbox import OutboxRelay
from command.roads import RoadNetwork
from command.settings import load_catalogue
from command.store import Store
from command.subjects import Namespace
from command.timers import TimerScheduler
from consoles.commands import ConsoleCommands
from consoles.gateway import Gateway
from workflows.catalogue import Catalogue

log = structlog.get_logger("ecc.service")


@dataclass(frozen=True)
class ServiceConfig:
    nats_url: str
    database_url: str
    namespace: str = "ecc"
    console_host: str = "127.0.0.1"
    console_port: int = 0
    console_origins: tuple[str, ...] = ()
    fault_point: str | None = None
    # Seconds before an unacknowledged signal is delivered again.
    ack_wait: float = 30.0
    catalogue: Catalogue | None = None
    # units to register at start (those not yet known); None registers nothing
    city: City | None = None
    dispatch_interval: float = 2.0
    roads: RoadNetwork | None = None
    # the adapters to run in this process (ecc up runs them all); None runs none
    adapters: AdapterConfig | None = None
    # the HTTP ingress (hotline calls, video webhooks, CAP) on this port; None: no HTTP
    ingress_port: int | None = None


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
        self.ingress: Ingress | None = None

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
            await bus.ensure_streams(js, self.ns)
            intake = SignalIntake(store, self.ns, self.catalogue, fault_point=cfg.fault_point)
            self.engine = Engine(store, self.catalogue)
            self.timers = TimerScheduler(self.engine)
            if cfg.city is not None:
                await register_city(self.engine, cfg.city)
            crews = CrewReports(self.engine, js, self.ns)
            self.dispatcher = Dispatcher(self.engine, nc, self.ns,
                                         interval=cfg.dispatch_interval, roads=cfg.roads)
            self.relay = OutboxRelay(store, js, fault_point=cfg.fault_point)
            self.gateway = Gateway(store, nc, self.ns, host=cfg.console_host,
                                   port=cfg.console_port, origins=cfg.console_origins,
                                   commands=ConsoleCommands(self.engine, js, self.ns),
                                   sla={"verify_s": self.catalogue.sla.verify_s,
                                        "task_pending_s": self.catalogue.sla.task_pending_s,
                                        "ack_s": self.catalogue.sla.ack_s})
            async with asyncio.TaskGroup() as tg:
                spec = replace(intake.spec(), ack_wait=cfg.ack_wait)
                tg.create_task(bus.consume(js, self.ns, spec, intake), name="intake")
                tg.create_task(self.relay.run(), name="outbox")
                tg.create_task(self.timers.run(), name="timers")
                tg.create_task(bus.consume(js, self.ns, crews.spec(), crews), name="crews")
                tg.create_task(self.dispatcher.run(), name="dispatcher")
                tg.create_task(self.gateway.run(), name="gateway")
                if cfg.adapters is not None:
                    adapters_ready = asyncio.Event()
                    tg.create_task(run_adapters(js, self.ns, cfg.adapters, adapters_ready),
                                   name="adapters")
                    await adapters_ready.wait()
                if cfg.ingress_port is not None:
                    self.ingress = Ingress(store, js, self.ns, host=cfg.console_host,
                                           port=cfg.ingress_port)
                    tg.create_task(self.ingress.run(), name="ingress")
                    await self.ingress.ready.wait()
                await self.gateway.ready.wait()
                self.ready.set()
                log.info("service.ready", console_url=self.gateway.url, namespace=self.ns.prefix)
        finally:
            if nc is not None:
                await nc.close()
            await store.close()
            log.info("service.stopped")


async def register_city(engine: Engine, city: City) -> int:
    """Register the city's units that the store does not know yet; returns how many."""
    known = {r["unit_id"] for r in await engine.store.pool.fetch("SELECT unit_id FROM units")}
    added = 0
    for command in city.registrations(datetime.now(UTC)):
        if command.unit_id not in known:
            await engine.execute_unit(command.unit_id, command, Meta(actor="city file"))
            added += 1
    if added:
        log.info("service.units_registered", city=city.name, added=added)
    return added
