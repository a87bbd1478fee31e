"""A short simulated day against real NATS, PostgreSQL and MQTT, judged by its outcomes:
the simulator's ground truth against what ECC made of it, as its users would judge it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.ingest import config_from_city
from command import bus
from command.service import Service, ServiceConfig
from command.settings import load_catalogue, load_city, load_city_doc
from command.store import Store
from command.subjects import Namespace
from sim.run import Simulation, scaled
from tests.conftest import Servers, running

SPEED = 120.0
MORNING = datetime(2026, 7, 20, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # the city's day
DONE = {"resolved", "closed"}
QUIET = {"reported", "cancelled"}  # left unverified, or given up on


async def views(store: Store) -> list[dict[str, Any]]:
    return [dict(r["view"]) for r in await store.pool.fetch("SELECT view FROM incidents")]


@pytest.mark.parametrize(("scenario", "seed", "minutes"), [("normal", 6, 30),
                                                            ("normal", 4, 30),
                                                            ("rainstorm", 2, 15)])
async def test_a_simulated_city_ends_as_it_should(
        scenario: str, seed: int, minutes: int, servers: Servers, database_url: str,
        ns: Namespace, js: Any, store: Store, mqtt_url: str) -> None:
    """Half an hour of a normal morning (two seeds: one with false alarms) and a quarter of
    an hour of a rainstorm, at 120x, then until every unit is back:
    each emergency that produced evidence became exactly one incident and no incident
    mixes two; false alarms were left unverified (or cancelled); every P1 got units; no
    unit was double-booked; every real incident was resolved by the end."""
    city, doc, catalogue = load_city(), load_city_doc(), load_catalogue()
    adapters = config_from_city(doc, kinds=("hotline", "sensor", "video"),
                                categories=tuple(catalogue.types))
    token = f"desk-{uuid.uuid4().hex}"
    await store.create_token(token, name="simulated desk", role="supervisor", agency=None)
    service = Service(ServiceConfig(nats_url=servers.nats_url, database_url=database_url,
                                    namespace=ns.prefix, city=city, adapters=adapters,
                                    catalogue=scaled(catalogue, SPEED), dispatch_interval=0.5))
    async with running(service):
        nc = await bus.connect(servers.nats_url, name="sim-test")
        sim = Simulation(nc=nc, ns=ns, mqtt_url=mqtt_url, console_url=service.console_url,
                         token=token, city=city, city_doc=doc, scenario=scenario, seed=seed,
                         speed=SPEED, duration_s=minutes * 60.0, start=MORNING)
        runner = asyncio.create_task(sim.run())
        try:
            await asyncio.wait_for(sim.fed.wait(), 120)
            deadline = time.monotonic() + 240
            while True:  # until every incident with units is over, or the deadline
                found = await views(store)
                working = [v for v in found if v["status"] not in DONE | QUIET | {"merged"}]
                if found and not working:
                    break
                assert time.monotonic() < deadline, (
                    f"still working at the end: {[(v['category'], v['status']) for v in working]}")
                assert not runner.done(), runner.exception()
                await asyncio.sleep(0.5)
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            await nc.close()
        found = await views(store)
    truth = {e.emergency_id: e for e in sim.world.emergencies}
    seen: dict[str, set[str]] = defaultdict(set)  # emergency -> incidents holding its signals
    for view in found:
        if view["status"] == "merged":
            continue
        owners = {o for s in view["signals"] if (o := sim.world.owner(s["signal_id"]))}
        assert len(owners) <= 1, f"incident {view['incident_id']} mixes {owners}"
        for owner in owners:
            seen[owner].add(view["incident_id"])
        if owners and all(truth[o].false_alarm for o in owners):
            # ECC itself never verified a false alarm (a person may have, and sent units)
            by = await store.pool.fetchval(
                "SELECT data->>'by' FROM events WHERE stream_id = $1 AND "
                "type = 'incident.verified'", f"incident:{view['incident_id']}")
            assert by != "system", view
        elif owners:
            if view["status"] not in DONE:
                rows = await store.pool.fetch(
                    "SELECT type, actor, data->>'reason' AS why FROM events WHERE stream_id = $1"
                    " ORDER BY seq", f"incident:{view['incident_id']}")
                raise AssertionError(f"{view['category']} {view['status']} "
                                     f"{truth[next(iter(owners))]}: "
                                     f"{[(r['type'], r['actor'], r['why']) for r in rows]}")
        if view["priority"] == 1:
            assert any(t.get("unit_id") for t in view["tasks"]), view["incident_id"]
    split = {e: i for e, i in seen.items() if len(i) != 1}
    assert not split, f"emergencies in more than one incident: {split}"
    real = [e for e in truth.values() if not e.false_alarm]
    assert len(seen) >= len(real) * 0.8, (len(seen), len(real))  # most left evidence
    assert sim.crews.stats.double_booked == 0
    assert sim.crews.stats.arrived > 0 and sim.crews.stats.cleared > 0
    print(f"simulated day: {len(truth)} emergencies ({sum(e.false_alarm for e in truth.values())}"
          f" false alarms), {len(found)} incidents, crews {sim.crews.stats}, "
          f"desk {sim.desk.stats if sim.desk else None}, published {sim.report.published}")
