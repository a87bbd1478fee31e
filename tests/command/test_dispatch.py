"""Dispatch end to end on real NATS and PostgreSQL: orders, crews, declines, timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from command.city import City
from command.crews import CrewReports
from command.dispatcher import Dispatcher
from command.engine import Engine, Meta
from command.model import OrderEnded, OrderOffered, StatusRejected
from command.settings import load_catalogue, load_city
from command.store import Store
from command.subjects import Namespace
from consoles.field import FieldUnit
from ecc.app import Service, ServiceConfig, register_city
from tests.conftest import Servers, running
from tests.helpers import eventually, make_signal, publish_signal, station
from workflows import incident as inc
from workflows.catalogue import Catalogue
from workflows.geo import Location

FAST_SLA = {"ack_s": 1.0, "task_pending_s": 600.0, "verify_s": 600.0}


def fast_catalogue() -> Catalogue:
    """The built-in catalogue with a one-second ack SLA and the pending and verification
    SLAs out of the way: a typed copy, each value checked to differ from the built-in."""
    built_in = load_catalogue()
    assert all(getattr(built_in.sla, key) != value for key, value in FAST_SLA.items())
    fast = built_in.model_copy(update={"sla": built_in.sla.model_copy(update=FAST_SLA)})
    assert all(getattr(fast.sla, key) == value for key, value in FAST_SLA.items())
    return fast


FAST = fast_catalogue()

# Two gas crews: G1 close to the incident below, G2 across town; a ladder pair for the
# competition test.
CITY = City(name="test town", stations=(
    station("utility-near", "utility", 34.752, 113.626, ("G1", "gas_crew"), district="north"),
    station("utility-far", "utility", 34.70, 113.60, ("G2", "gas_crew"), district="south"),
))
LEAK = Location(lat=34.7466, lon=113.6254, address="Zijingshan Road")


@pytest.fixture
async def dispatching(servers: Servers, database_url: str, ns: Namespace,
                      js: Any) -> AsyncIterator[Service]:
    """The service with the fast catalogue, the test town, and quick dispatch rounds."""
    async with running(Service(ServiceConfig(
            nats_url=servers.nats_url, database_url=database_url, namespace=ns.prefix,
            catalogue=FAST, city=CITY, dispatch_interval=0.2))) as svc:
        yield svc


async def crew(nc: Any, ns: Namespace, unit_id: str) -> FieldUnit:
    # the unit's agency names its orders' subject: the test town's, else the demo city's
    agency = next((s.agency for city in (CITY, load_city()) for s in city.stations
                   for u in s.units if u.id == unit_id), None)
    unit = FieldUnit(nc, ns, unit_id, agency=agency)
    await unit.start()
    return unit


async def next_of(unit: FieldUnit, kind: type, timeout: float = 20) -> Any:
    """The next message of ``kind`` for this crew, skipping others."""
    async def find() -> Any:
        while True:
            message = await unit.next(timeout)
            if isinstance(message, kind):
                return message
    return await asyncio.wait_for(find(), timeout)


async def gas_leak(js: Any, ns: Namespace, north_m: float = 0) -> None:
    """A gas leak by the near crew's station (``north_m`` further north: a separate leak)."""
    where = LEAK.model_copy(update={"lat": LEAK.lat + north_m / 111_195})
    await publish_signal(js, ns, make_signal(category="gas_leak", confidence=0.95,
                                             summary="strong gas smell", location=where))


async def task_of(store: Store, incident_capability: str) -> dict[str, Any]:
    views = [r["view"] for r in await store.pool.fetch("SELECT view FROM incidents")]
    return next(t for v in views for t in v["tasks"] if t["capability"] == incident_capability)


async def test_a_declined_order_goes_to_the_next_best_unit(
    dispatching: Service, store: Store, nc: Any, js: Any, ns: Namespace
) -> None:
    """G1 (nearest) gets the order and declines; the dispatcher offers the task to G2."""
    g1, g2 = await crew(nc, ns, "G1"), await crew(nc, ns, "G2")
    await gas_leak(js, ns)
    order = await next_of(g1, OrderOffered)
    assert (order.capability, order.category, order.priority) == ("gas_crew", "gas_leak", 2)
    await g1.report("declined", reason="crew at another call")
    ended = await next_of(g1, OrderEnded)
    assert ended.task_id == order.task_id
    second = await next_of(g2, OrderOffered)
    assert second.task_id == order.task_id and second.incident_id == order.incident_id
    task = await task_of(store, "gas_crew")
    assert task["unit_id"] == "G2" and task["passed_over"] == ["G1"]


async def test_an_unanswered_order_times_out_and_moves_on(
    dispatching: Service, store: Store, nc: Any, js: Any, ns: Namespace
) -> None:
    """Nobody answers on G1 within the ack SLA (1 s here): the task moves to G2, escalated."""
    g2 = await crew(nc, ns, "G2")
    await gas_leak(js, ns)
    order = await next_of(g2, OrderOffered, timeout=30)
    task = await task_of(store, "gas_crew")
    assert task["unit_id"] == "G2" and task["passed_over"] == ["G1"]
    views = [r["view"] for r in await store.pool.fetch("SELECT view FROM incidents")]
    assert "ack_sla" in [e["rule"] for e in views[0]["escalations"]]
    assert order.ack_within_s == 1


async def test_a_crew_offline_during_dispatch_gets_its_order_on_reconnect(
    dispatching: Service, store: Store, nc: Any, js: Any, ns: Namespace
) -> None:
    """The order went out while G1's device was off; switched on, it shows the order."""
    await gas_leak(js, ns)
    await eventually(lambda: _offered_to(store, "G1"))
    g1 = await crew(nc, ns, "G1")  # the device comes back
    order = await next_of(g1, OrderOffered)
    await g1.report("acknowledged")
    await g1.report("en_route")
    await g1.position(34.749, 113.626)
    await g1.report("on_scene")

    async def on_scene() -> bool:
        return bool((await task_of(store, "gas_crew"))["status"] == "on_scene")

    await eventually(on_scene)
    assert order.task_id == (await task_of(store, "gas_crew"))["task_id"]
    status = await store.pool.fetchval("SELECT status FROM units WHERE unit_id = 'G1'")
    assert status == "on_scene"


async def _offered_to(store: Store, unit_id: str) -> bool:
    return bool(await store.pool.fetchval(
        "SELECT count(*) FROM units WHERE unit_id = $1 AND status = 'dispatched'", unit_id))


async def test_a_report_for_a_task_the_unit_does_not_hold_is_refused_with_a_reason(
    dispatching: Service, store: Store, nc: Any, js: Any, ns: Namespace
) -> None:
    """G2 has no task: its 'on scene' changes nothing and it is told why."""
    g2 = await crew(nc, ns, "G2")
    head = await store.head()
    await g2.report("on_scene")
    refused = await next_of(g2, StatusRejected)
    assert "no task" in refused.reason
    await g2.report("acknowledged", task_id="t9")
    refused = await next_of(g2, StatusRejected)
    assert "not t9" in refused.reason
    assert await store.head() == head


async def test_two_incidents_competing_for_one_ladder(
    store: Store, nc: Any, js: Any, ns: Namespace
) -> None:
    """The P1 fire gets the near ladder although the P2 fire was reported first and is
    nearer to it; the P2 gets the far ladder (the optimiser, not first come)."""
    engine = Engine(store, load_catalogue())
    await register_city(engine, City(name="ladders", stations=(
        station("fire-a", "fire", 34.760, 113.620, ("L1", "ladder"), district="a"),
        station("fire-b", "fire", 34.950, 113.620, ("L2", "ladder"), district="b"),
    )))
    at = datetime.now(UTC)
    for incident_id, priority, lat in (("minor", 2, 34.761), ("major", 1, 34.750)):
        await engine.execute(incident_id, inc.ReportIncident(
            at=at, incident_id=incident_id, signal_id=f"s-{incident_id}", source="hotline",
            category="fire", location=Location(lat=lat, lon=113.62), confidence=0.95,
            priority=priority), Meta(actor="test"))
    offered = await Dispatcher(engine, nc, ns).round()
    ladders = {k.split("/")[0]: v for k, v in offered.items() if v in ("L1", "L2")}
    assert ladders == {"major": "L1", "minor": "L2"}


async def test_the_demo_city_takes_a_gas_leak_to_on_scene(
    servers: Servers, database_url: str, store: Store, nc: Any, js: Any, ns: Namespace
) -> None:
    """Done when: in the demo city a gas leak gets utility, fire and police units offered;
    one declines and is replaced; the crews acknowledge and are tracked to on scene."""
    async with running(Service(ServiceConfig(
            nats_url=servers.nats_url, database_url=database_url, namespace=ns.prefix,
            catalogue=FAST, city=load_city(), dispatch_interval=0.2))):
        await gas_leak(js, ns)

        async def all_offered() -> list[dict[str, Any]] | None:
            views = [r["view"] for r in await store.pool.fetch("SELECT view FROM incidents")]
            tasks = views[0]["tasks"] if views else []
            return tasks if tasks and all(t["unit_id"] for t in tasks) else None

        tasks = await eventually(all_offered, timeout=20)
        assert {t["agency"] for t in tasks} == {"utility", "fire", "police"}
        crews = {t["capability"]: await crew(nc, ns, t["unit_id"]) for t in tasks}
        first_gas = crews["gas_crew"].unit_id
        await crews["gas_crew"].report("declined", reason="blocked road")
        replacement = await eventually(lambda: _unit_of(store, "gas_crew", first_gas),
                                       timeout=20)
        crews["gas_crew"] = await crew(nc, ns, replacement)
        for unit in crews.values():
            await next_of(unit, OrderOffered)
            await unit.report("acknowledged")
            await unit.report("en_route")
            await unit.report("on_scene")

        async def everyone_there() -> bool:
            views = [r["view"] for r in await store.pool.fetch("SELECT view FROM incidents")]
            return views[0]["status"] == "on_scene" and all(
                t["status"] == "on_scene" for t in views[0]["tasks"])

        await eventually(everyone_there, timeout=20)


async def _unit_of(store: Store, capability: str, not_unit: str) -> str | None:
    task = await task_of(store, capability)
    unit = task["unit_id"]
    return unit if unit and unit != not_unit else None


def test_garbage_status_reports_are_refused_with_a_reason() -> None:
    """Anything that is not a status report for the subject's unit is undeliverable."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from command.bus import Undeliverable

    reports = CrewReports(None, None, Namespace("t"))  # type: ignore[arg-type]

    class Fake:
        def __init__(self, data: bytes, subject: str) -> None:
            self.data, self.subject = data, subject

    @settings(max_examples=200)
    @given(st.binary(max_size=300), st.sampled_from(["t.unit.G1.status", "t.unit.x.y.status"]))
    def check(data: bytes, subject: str) -> None:
        try:
            reports.decode(Fake(data, subject))  # type: ignore[arg-type]
        except Undeliverable as exc:
            assert exc.code in {"invalid", "subject_mismatch"} and exc.reason
        else:
            raise AssertionError("random bytes accepted")

    check()


async def test_with_no_unit_free_the_task_is_stacked_and_dispatched_when_one_clears(
    dispatching: Service, store: Store, nc: Any, js: Any, ns: Namespace
) -> None:
    """Three leaks, two gas crews: the third waits, stacked on the crew that clears soonest
    (the one already on scene), and is offered to it when it clears."""
    g1, g2 = await crew(nc, ns, "G1"), await crew(nc, ns, "G2")
    await gas_leak(js, ns)
    first = await next_of(g1, OrderOffered)
    for status in ("acknowledged", "en_route", "on_scene"):
        await g1.report(status)  # type: ignore[arg-type]
    await eventually(lambda: _unit_status_is(store, "G1", "on_scene"))
    await gas_leak(js, ns, north_m=1000)
    second = await next_of(g2, OrderOffered)  # the second leak takes the other crew
    await gas_leak(js, ns, north_m=2000)

    async def stacked() -> Any:
        rows = await store.pool.fetch("SELECT candidates FROM recommendations")
        found = [c for r in rows for c in r["candidates"] if c.get("stacked")]
        return found[0] if found else None

    queued = await eventually(stacked, timeout=20)
    assert queued["unit_id"] == "G1" and queued["status"] == "on_scene"
    await g1.report("clear")
    third = await next_of(g1, OrderOffered)
    assert third.incident_id not in (first.incident_id, second.incident_id)
    assert third.capability == "gas_crew"


async def _unit_status_is(store: Store, unit_id: str, status: str) -> bool:
    return bool(await store.pool.fetchval("SELECT status FROM units WHERE unit_id = $1",
                                          unit_id) == status)


async def test_stale_and_impossible_positions_are_refused_with_a_reason(
    dispatching: Service, nc: Any, js: Any, ns: Namespace
) -> None:
    """A position older than the last, or off the globe, is not used and the crew is told."""
    g1 = await crew(nc, ns, "G1")
    await g1.position(34.75, 113.62)
    assert dispatching.dispatcher is not None

    async def known() -> bool:
        return "G1" in dispatching.dispatcher.positions  # type: ignore[union-attr]

    await eventually(known)
    newest = dispatching.dispatcher.positions["G1"]
    old = newest.model_copy(update={"at": newest.at.replace(year=2020)})
    await js.publish(ns.unit_position("G1"), old.model_dump_json().encode())
    refused = await next_of(g1, StatusRejected)
    assert "older than the last" in refused.reason
    await js.publish(ns.unit_position("G1"), old.model_dump_json().replace(
        '"lat":34.75', '"lat":134.75').encode())
    refused = await next_of(g1, StatusRejected)
    assert "lat" in refused.reason
    future = newest.model_copy(update={"at": newest.at.replace(year=2099)})
    await js.publish(ns.unit_position("G1"), future.model_dump_json().encode())
    refused = await next_of(g1, StatusRejected)
    assert "in the future" in refused.reason
    assert dispatching.dispatcher.positions["G1"] == newest


async def test_a_crew_whose_task_was_cancelled_while_transporting_can_clear(
    dispatching: Service, store: Store, nc: Any, js: Any, ns: Namespace
) -> None:
    """The incident is cancelled while the crew carries on to hospital: 'clear' still
    brings the unit back to available."""
    g1 = await crew(nc, ns, "G1")
    await gas_leak(js, ns)
    order = await next_of(g1, OrderOffered)
    for status in ("acknowledged", "on_scene", "transporting"):
        await g1.report(status)  # type: ignore[arg-type]
    await eventually(lambda: _unit_status_is(store, "G1", "transporting"))
    assert dispatching.engine is not None
    await dispatching.engine.execute(order.incident_id, inc.CancelIncident(
        at=datetime.now(UTC), reason="false alarm after all"), Meta(actor="supervisor"))
    await g1.report("clear")
    await eventually(lambda: _unit_status_is(store, "G1", "available"))
