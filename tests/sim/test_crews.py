"""Simulated crews: the clock and the pure parts alone, then every unit of the demo city
played over the real field-unit protocol against the real service (NATS, PostgreSQL)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from structlog.testing import capture_logs

from command.city import City
from command.engine import Meta
from command.model import OrderEnded, OrderOffered, PositionReport, StatusRejected, StatusReport
from command.roads import RoadNetwork
from command.settings import load_city, load_city_doc
from command.store import Store
from command.subjects import Namespace
from ecc.app import Service, ServiceConfig
from sim.clock import SimClock
from sim.crews import (
    DECLINE_REASONS,
    DETOUR,
    Crews,
    Hospital,
    Path,
    hospitals_of,
    metres,
    plan,
    predecessors,
    road_path,
    straight,
)
from tests.conftest import Servers, running
from tests.helpers import eventually, make_signal, publish_signal, station
from workflows.geo import Location
from workflows.incident_messages import ResolveIncident

SPEED = 300.0  # a 30-minute fire in 6 s
SQUARE = Location(lat=34.7466, lon=113.6254, address="Erqi Square")
CITY = load_city()
HOSPITALS = hospitals_of(load_city_doc())
HOMES = {u.id: (s.lat, s.lon) for s in CITY.stations for u in s.units}

# --- the clock and the pure parts ------------------------------------------------------


async def test_the_clock_runs_speed_times_faster_than_the_wall() -> None:
    """At 1000x, 0.05 wall seconds are about 50 simulated seconds, and now() follows."""
    start = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)
    clock = SimClock(start, speed=1000)
    wall = time.monotonic()
    await clock.sleep(50)
    assert 0.045 <= time.monotonic() - wall < 0.5
    assert 50 <= clock.elapsed() < 500
    assert start + timedelta(seconds=50) <= clock.now() < start + timedelta(seconds=500)
    await clock.sleep_until(clock.elapsed() - 10)  # the past: at once
    with pytest.raises(ValueError):
        SimClock(datetime(2026, 1, 1), 10)  # a naive start is the error
    with pytest.raises(ValueError):
        SimClock(start, 0)


def test_the_demo_city_has_hospitals_and_bad_entries_are_named() -> None:
    """The three hospitals of the demo city are read; an entry without a name is refused."""
    assert [h.id for h in HOSPITALS] == [
        "zzu-first-affiliated", "henan-provincial-peoples", "zhengzhou-central"]
    with pytest.raises(ValueError, match="#2"):
        hospitals_of({"hospital": [{"id": "a", "name": "A", "lat": 1, "lon": 2},
                                   {"id": "b", "lat": 1, "lon": 2}]})
    assert hospitals_of({}) == []


def test_a_straight_drive_is_longer_by_the_detour_factor_and_interpolates() -> None:
    """Without roads a crew drives the straight line 1.3 times over; halfway is the middle."""
    a, b = (34.70, 113.60), (34.80, 113.60)
    path = straight(a, b)
    assert path.length_m == pytest.approx(metres(a, b) * DETOUR)
    assert path.at(0.5) == pytest.approx((34.75, 113.60))
    assert path.at(0) == a and path.at(1) == b and path.at(2) == b


def test_a_road_drive_follows_the_shortest_path_over_the_nodes() -> None:
    """On a square of four nodes with one slow side, the way from corner 0 to corner 2
    goes round by the fast sides, with a straight leg at each end."""
    lat = np.array([34.70, 34.70, 34.71, 34.71])
    lon = np.array([113.60, 113.61, 113.61, 113.60])
    edges = [(0, 1, 60.0), (1, 2, 60.0), (0, 3, 600.0), (3, 2, 60.0)]
    roads = RoadNetwork(lat, lon, edges)
    a, b = (34.6995, 113.5995), (34.7105, 113.6105)
    path = road_path(roads, a, b, predecessors(roads, 2), 0, 2)
    assert path is not None
    assert path.points == [a, (34.70, 113.60), (34.70, 113.61), (34.71, 113.61), b]
    assert road_path(roads, b, a, predecessors(roads, 0), 2, 0) is None  # one-way: no return


def test_an_orders_draws_repeat_with_the_seed() -> None:
    """The same seed draws the same plan; a health unit transports from a medical call."""
    order = _order("A11", category="medical")
    first = plan(random.Random(5), order, "health", decline_rate=0.05, speed=10)
    assert first == plan(random.Random(5), order, "health", decline_rate=0.05, speed=10)
    assert first.transports and 42 <= first.turnout_s <= 78 and 480 <= first.work_s <= 1200
    assert first.answer_s <= 0.5 * order.ack_within_s * 10
    declined = plan(random.Random(5), order, "health", decline_rate=1.0, speed=10)
    assert declined.decline in DECLINE_REASONS
    assert not plan(random.Random(5), order, "fire", decline_rate=0, speed=10).transports


# --- crews on the protocol alone (no service) -------------------------------------------

ONE = City(name="one engine", stations=(
    station("fire-one", "fire", 34.750, 113.610, ("E1", "engine"), district="one"),
))


def _order(unit_id: str, category: str = "fire", incident_id: str | None = None,
           where: Location = SQUARE) -> OrderOffered:
    return OrderOffered(order_id=str(uuid.uuid4()), unit_id=unit_id,
                        incident_id=incident_id or str(uuid.uuid4()), task_id="t1",
                        capability="engine", category=category, priority=2, summary="test",
                        location=where, offered_at=datetime.now(UTC), ack_within_s=30.0)


async def _send(js: Any, ns: Namespace, message: OrderOffered | OrderEnded | StatusRejected,
                agency: str = "fire") -> None:
    """What the service's outbox would publish to the crew."""
    await js.publish(ns.dispatch(agency, message.unit_id), message.model_dump_json().encode())


@asynccontextmanager
async def playing(crews: Crews) -> AsyncIterator[Crews]:
    """Run the crews for the block; they follow their orders on entry."""
    task = asyncio.create_task(crews.run())
    try:
        ready = asyncio.ensure_future(crews.ready.wait())
        await asyncio.wait({ready, task}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        assert crews.ready.is_set(), "the crews did not start"
        yield crews
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=10)
        assert task.done(), "the crews did not stop"


class Wire:
    """What the crews send, as seen on core NATS: status reports and positions per unit."""

    def __init__(self) -> None:
        self.reports: dict[str, list[StatusReport]] = defaultdict(list)
        self.positions: dict[str, list[PositionReport]] = defaultdict(list)

    async def listen(self, nc: Any, ns: Namespace) -> None:
        async def on_status(msg: Any) -> None:
            report = StatusReport.model_validate_json(msg.data)
            self.reports[report.unit_id].append(report)

        async def on_position(msg: Any) -> None:
            report = PositionReport.model_validate_json(msg.data)
            self.positions[report.unit_id].append(report)

        await nc.subscribe(ns.unit_statuses, cb=on_status)
        await nc.subscribe(ns.unit_positions, cb=on_position)
        await nc.flush()

    def statuses(self, unit_id: str) -> list[str]:
        return [r.status for r in self.reports[unit_id]]


async def test_a_second_offer_mid_task_is_counted_as_double_booking(
        nc: Any, js: Any, ns: Namespace) -> None:
    """The crew works an order; an offer for another incident that comes before the first
    ended is a fault, counted and logged; an order.ended stops the crew and it drives home
    without reporting clear (it never reached the scene); a status.rejected is logged."""
    wire = Wire()
    await wire.listen(nc, ns)
    with capture_logs() as logs:
        crews = Crews(nc, ns, ONE, HOSPITALS, SimClock(datetime.now(UTC), 200), decline_rate=0)
        async with playing(crews):
            first = _order("E1")
            await _send(js, ns, first)
            await eventually(lambda: _async(wire.positions["E1"]))  # driving
            second = _order("E1", where=Location(lat=34.80, lon=113.70))
            await _send(js, ns, second)
            await eventually(lambda: _async(crews.stats.double_booked == 1))
            await eventually(lambda: _async(wire.statuses("E1").count("en_route") == 2))
            await _send(js, ns, OrderEnded(order_id=str(uuid.uuid4()), unit_id="E1",
                                           incident_id=second.incident_id, task_id="t1",
                                           reason="incident cancelled", at=datetime.now(UTC)))
            await _send(js, ns, StatusRejected(unit_id="E1", status="en_route",
                                               reason="E1 has no task to report en_route on",
                                               at=datetime.now(UTC)))

            async def home() -> bool:
                last = wire.positions["E1"][-1]
                return metres((last.lat, last.lon), HOMES_ONE) < 1 and last.speed_mps == 0

            await eventually(home, timeout=15)
    assert wire.statuses("E1") == ["acknowledged", "en_route", "acknowledged", "en_route"]
    assert all(r.task_id == "t1" for r in wire.reports["E1"])
    assert crews.stats.offers == 2 and crews.stats.arrived == 0
    events = {e["event"] for e in logs}
    assert {"crews.double_booked", "crews.order_ended", "crews.status_rejected"} <= events
    booked = next(e for e in logs if e["event"] == "crews.double_booked")
    assert (booked["unit_id"], booked["incident_id"]) == ("E1", first.incident_id)


HOMES_ONE = (34.750, 113.610)


async def _async(value: Any) -> Any:
    return value


# --- crews against the real service -----------------------------------------------------


@asynccontextmanager
async def city_service(servers: Servers, database_url: str, ns: Namespace,
                       city: City = CITY) -> AsyncIterator[Service]:
    async with running(Service(ServiceConfig(
            nats_url=servers.nats_url, database_url=database_url, namespace=ns.prefix,
            city=city, dispatch_interval=0.2))) as svc:
        yield svc


async def incident_of(store: Store, category: str) -> dict[str, Any] | None:
    rows = await store.pool.fetch("SELECT view FROM incidents")
    return next((dict(r["view"]) for r in rows if r["view"]["category"] == category), None)


async def unit_history(store: Store, unit_id: str) -> list[str]:
    """The unit's statuses as its events tell them."""
    rows = await store.pool.fetch(
        "SELECT type, data FROM events WHERE stream_id = $1 ORDER BY version", f"unit:{unit_id}")
    names = {"unit.dispatched": "dispatched", "unit.released": "released"}
    return [names.get(r["type"]) or r["data"]["status"] for r in rows
            if r["type"] != "unit.registered"]


async def all_home_and_available(store: Store, wire: Wire, units: list[str]) -> bool:
    rows = await store.pool.fetch("SELECT unit_id, status FROM units WHERE unit_id = ANY($1)",
                                  units)
    if {r["status"] for r in rows} != {"available"}:
        return False
    last = {u: wire.positions[u][-1] for u in units if wire.positions[u]}
    return len(last) == len(units) and all(
        metres((p.lat, p.lon), HOMES[u]) < 1 and p.speed_mps == 0 for u, p in last.items())


async def test_crews_take_a_fire_from_offer_to_clear_and_drive_home(
        servers: Servers, database_url: str, store: Store, nc: Any, js: Any,
        ns: Namespace) -> None:
    """A sure fire on Erqi Square: every offered crew acknowledges, drives there reporting
    positions, is on scene, clears (its task completed, the unit available) and drives
    back to its station; nobody is double-booked."""
    wire = Wire()
    await wire.listen(nc, ns)
    crews = Crews(nc, ns, CITY, HOSPITALS, SimClock(datetime.now(UTC), SPEED), decline_rate=0)
    async with city_service(servers, database_url, ns), playing(crews):
        await publish_signal(js, ns, make_signal(category="fire", confidence=0.95,
                                                 location=SQUARE))

        async def all_completed() -> list[dict[str, Any]] | None:
            view = await incident_of(store, "fire")
            tasks = view["tasks"] if view else []
            return tasks if tasks and all(t["status"] == "completed" for t in tasks) else None

        tasks = await eventually(all_completed, timeout=30)
        units = [t["unit_id"] for t in tasks]
        assert len(units) == 5 and {t["capability"] for t in tasks} == {
            "engine", "ladder", "als", "cordon"}
        await eventually(lambda: all_home_and_available(store, wire, units), timeout=15)
    for unit in units:
        assert await unit_history(store, unit) == [
            "dispatched", "en_route", "on_scene", "returning", "available"], unit
        assert wire.statuses(unit) == ["acknowledged", "en_route", "on_scene", "clear"]
        there = [p for p in wire.positions[unit] if metres((p.lat, p.lon),
                                                           (SQUARE.lat, SQUARE.lon)) < 1]
        assert there and len(wire.positions[unit]) >= 4, unit  # driving there and back
    stats = crews.stats
    assert (stats.offers, stats.acknowledged, stats.arrived, stats.cleared) == (5, 5, 5, 5)
    assert (stats.declined, stats.transported, stats.double_booked) == (0, 0, 0)


async def test_an_ambulance_takes_a_medical_patient_to_the_nearest_hospital(
        servers: Servers, database_url: str, store: Store, nc: Any, js: Any,
        ns: Namespace) -> None:
    """A P1 medical call: the ALS crew goes on scene, transports to the nearest hospital,
    hands over, clears and drives home; the engine sent with it just clears."""
    wire = Wire()
    await wire.listen(nc, ns)
    crews = Crews(nc, ns, CITY, HOSPITALS, SimClock(datetime.now(UTC), SPEED), decline_rate=0)
    async with city_service(servers, database_url, ns), playing(crews):
        await publish_signal(js, ns, make_signal(category="medical", confidence=0.95,
                                                 priority=1, location=SQUARE,
                                                 summary="man collapsed, not breathing"))

        async def als_unit() -> str | None:
            view = await incident_of(store, "medical")
            task = next((t for t in view["tasks"] if t["capability"] == "als"), None) \
                if view else None
            return task["unit_id"] if task and task["status"] == "completed" else None

        ambulance = await eventually(als_unit, timeout=30)
        await eventually(lambda: all_home_and_available(store, wire, [ambulance]), timeout=15)
    assert await unit_history(store, ambulance) == [
        "dispatched", "en_route", "on_scene", "transporting", "at_hospital", "returning",
        "available"]
    assert wire.statuses(ambulance) == ["acknowledged", "en_route", "on_scene", "transporting",
                                        "at_hospital", "clear"]
    nearest = min(HOSPITALS, key=lambda h: metres((SQUARE.lat, SQUARE.lon), (h.lat, h.lon)))
    assert any(metres((p.lat, p.lon), (nearest.lat, nearest.lon)) < 1
               for p in wire.positions[ambulance])
    assert crews.stats.transported == 1 and crews.stats.double_booked == 0


async def test_a_crew_that_declines_passes_the_task_to_the_next_unit(
        servers: Servers, database_url: str, store: Store, nc: Any, js: Any,
        ns: Namespace) -> None:
    """With decline_rate 1 every crew declines with a reason; the dispatcher passes the
    task over to the next-best unit, which is offered it (and declines too)."""
    crews = Crews(nc, ns, CITY, HOSPITALS, SimClock(datetime.now(UTC), SPEED), decline_rate=1)
    async with city_service(servers, database_url, ns), playing(crews):
        await publish_signal(js, ns, make_signal(category="fire", confidence=0.95,
                                                 location=SQUARE))

        async def passed_on() -> dict[str, Any] | None:
            view = await incident_of(store, "fire")
            return next((t for t in view["tasks"] if t["passed_over"] and t["unit_id"]),
                        None) if view else None

        task = await eventually(passed_on, timeout=20)
        assert task["unit_id"] not in task["passed_over"]
    returned = [r["data"] for r in await store.pool.fetch(
        "SELECT data FROM events WHERE type = 'task.returned'")]
    assert returned and all(r["why"] == "declined" and r["reason"] in DECLINE_REASONS
                            for r in returned), returned
    assert crews.stats.declined >= 2 and crews.stats.acknowledged == 0


async def test_crews_on_scene_when_the_incident_is_resolved_clear_and_go_home(
        servers: Servers, database_url: str, store: Store, nc: Any, js: Any,
        ns: Namespace) -> None:
    """A dispatcher resolves the fire while the first crew works on scene: the crews on
    scene are told the task completed, report clear and drive home; those still driving
    there turn round; every unit ends available at its station."""
    wire = Wire()
    await wire.listen(nc, ns)
    crews = Crews(nc, ns, CITY, HOSPITALS, SimClock(datetime.now(UTC), SPEED), decline_rate=0)
    async with city_service(servers, database_url, ns) as svc, playing(crews):
        await publish_signal(js, ns, make_signal(category="fire", confidence=0.95,
                                                 location=SQUARE))

        async def someone_on_scene() -> dict[str, Any] | None:
            view = await incident_of(store, "fire")
            return view if view and any(t["status"] == "on_scene" for t in view["tasks"]) \
                else None

        view = await eventually(someone_on_scene, timeout=20)
        assert svc.engine is not None
        await svc.engine.execute(view["incident_id"], ResolveIncident(at=datetime.now(UTC),
                                                                      by="test dispatcher"),
                                 Meta(actor="test"))
        units = [t["unit_id"] for t in view["tasks"]]
        await eventually(lambda: all_home_and_available(store, wire, units), timeout=20)
    on_scene = [u for u in units if "on_scene" in wire.statuses(u)]
    assert on_scene
    for unit in on_scene:
        assert wire.statuses(unit)[-1] == "clear"
        assert (await unit_history(store, unit))[-2:] == ["returning", "available"]
    assert crews.stats.cleared == 0 and crews.stats.double_booked == 0


def test_hospital_is_a_plain_value() -> None:
    """Hospitals are frozen values, comparable and hashable."""
    h = Hospital(id="x", name="X", lat=1.0, lon=2.0)
    assert h == Hospital(id="x", name="X", lat=1.0, lon=2.0) and hash(h)
    assert isinstance(Path([(1.0, 2.0)]).at(0.5), tuple)


def test_shifts_by_the_local_hour() -> None:
    from sim.crews import on_shift

    assert [h for h in range(24) if on_shift("day", h)] == list(range(8, 20))
    assert not any(on_shift("day", h) == on_shift("night", h) for h in range(24))
    assert all(on_shift("24h", h) for h in range(24))


async def test_day_shift_crews_go_off_duty_at_night_and_come_back_in_the_morning(
        servers: Servers, database_url: str, store: Store, nc: Any, js: Any,
        ns: Namespace) -> None:
    """From 19:58 in Zhengzhou at 3000x: the day-shift patrol P12 goes off duty at 20:00
    (the dispatcher cannot send it), P11 (round the clock) stays available, and at 08:00
    P12 is available again."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Asia/Shanghai")
    clock = SimClock(datetime(2026, 7, 20, 19, 58, tzinfo=zone), 3000.0)

    async def status(unit_id: str) -> str:
        return str(await store.pool.fetchval("SELECT status FROM units WHERE unit_id = $1",
                                             unit_id))

    async with city_service(servers, database_url, ns):
        crews = Crews(nc, ns, CITY, hospitals_of(load_city_doc()), clock, seed=3,
                      decline_rate=0.0)
        async with playing(crews):
            await eventually(lambda: _is(status("P12"), "off_duty"), timeout=20)
            assert await status("P11") == "available"
            assert crews.stats.off_duty == sum(
                u.shift == "day" for s in CITY.stations for u in s.units)
            await eventually(lambda: _is(status("P12"), "available"), timeout=40)
            assert clock.now().astimezone(zone).hour >= 8


async def _is(value: Any, want: str) -> bool:
    return bool(await value == want)


async def test_a_cancel_swallowed_by_wait_for_still_stops_a_loop_that_checks() -> None:
    """The CI failure 'the crews did not stop': on Python 3.11 a cancel that lands as the
    awaited reply does is swallowed by wait_for (nats-py's publish), and a loop went on."""
    from command.tasks import check_cancelled

    reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            check_cancelled()
            rounds += 1
            await asyncio.wait_for(reply, 5)  # the ack and the cancel arrive together
            await asyncio.sleep(0)

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)  # the loop is waiting for its reply
    reply.set_result("ack")
    task.cancel()
    await asyncio.wait({task}, timeout=2)
    assert task.done() and task.cancelled(), "the loop ran on after its cancel"
    assert rounds == 1
