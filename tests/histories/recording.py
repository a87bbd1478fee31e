"""Records the golden histories: ``python -m tests.histories.record`` runs this file (its
name is not ``test_*``, so ``make test`` never collects it: a recorder is not a test).

A short simulated morning against a real service (as tests/sim/test_outcomes.py runs
one), until every incident with units is over; then the service stops and its events and
projections are written beside this file."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.ingest import config_from_city
from command import bus
from command.settings import load_catalogue, load_city, load_city_doc
from command.store import Store
from command.subjects import Namespace
from ecc.app import Service, ServiceConfig
from sim.run import Simulation, scaled
from tests.conftest import Servers, running
from tests.histories import golden

SPEED = 120.0
MORNING = datetime(2026, 7, 20, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
SETTLED = {"resolved", "closed", "reported", "cancelled", "merged"}


@pytest.mark.parametrize(("name", "scenario", "seed", "minutes"),
                         [("normal_morning", "normal", 6, 6), ("rainstorm", "rainstorm", 2, 3)])
async def test_record(name: str, scenario: str, seed: int, minutes: int, servers: Servers,
                      database_url: str, ns: Namespace, js: Any, store: Store,
                      mqtt_url: str) -> None:
    """A simulated run is recorded, and its events fold to the service's own projections."""
    city, doc, catalogue = load_city(), load_city_doc(), load_catalogue()
    adapters = config_from_city(doc, kinds=("hotline", "sensor", "video"),
                                categories=tuple(catalogue.types))
    token = f"desk-{uuid.uuid4().hex}"
    await store.create_token(token, name="simulated desk", role="supervisor", agency=None)
    service = Service(ServiceConfig(nats_url=servers.nats_url, database_url=database_url,
                                    namespace=ns.prefix, city=city, adapters=adapters,
                                    catalogue=scaled(catalogue, SPEED), dispatch_interval=0.5))
    async with running(service):
        nc = await bus.connect(servers.nats_url, name="sim-record")
        sim = Simulation(nc=nc, ns=ns, mqtt_url=mqtt_url, console_url=service.console_url,
                         token=token, city=city, city_doc=doc, scenario=scenario, seed=seed,
                         speed=SPEED, duration_s=minutes * 60.0, start=MORNING)
        runner = asyncio.create_task(sim.run())
        try:
            await asyncio.wait_for(sim.fed.wait(), 120)
            deadline = time.monotonic() + 180
            while True:  # until every incident with units is over
                rows = await store.pool.fetch("SELECT view->>'status' AS s FROM incidents")
                if rows and all(r["s"] in SETTLED for r in rows):
                    break
                assert time.monotonic() < deadline, [r["s"] for r in rows]
                assert not runner.done(), runner.exception()
                await asyncio.sleep(0.5)
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            await nc.close()
    events = await store.read_all(0, limit=100_000)
    live: dict[str, dict[str, Any]] = {"incidents": {}, "units": {}}
    for r in await store.pool.fetch("SELECT incident_id AS id, view FROM incidents"):
        live["incidents"][r["id"]] = dict(r["view"])
    for r in await store.pool.fetch("SELECT unit_id AS id, view FROM units"):
        live["units"][r["id"]] = dict(r["view"])
    live = {k: dict(sorted(v.items())) for k, v in live.items()}
    assert golden.fold(events) == live
    golden.write(name, events, live)
    print(f"recorded {name}: {len(events)} events, {len(live['incidents'])} incidents")
