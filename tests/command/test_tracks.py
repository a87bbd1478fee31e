"""Units' tracks on real NATS and PostgreSQL: stored from POSITIONS, pruned past the
retention, returned by history.period and by an incident's detail."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from command.model import OrderOffered, PositionReport
from command.store import Store, TrackPoint
from command.subjects import Namespace
from command.tracks import TrackWriter
from consoles.client import open_console
from consoles.commands import TRACK_POINTS
from consoles.protocol import Snapshot, Welcome
from ecc.app import Service, ServiceConfig
from tests.command.test_dispatch import CITY, FAST, crew, gas_leak, next_of
from tests.conftest import Servers, running
from tests.helpers import eventually


async def rows(store: Store) -> int:
    return int(await store.pool.fetchval("SELECT count(*) FROM unit_positions"))


async def joined(console: Any) -> None:
    assert isinstance(await asyncio.wait_for(console.receive(), 10), Welcome)
    assert isinstance(await asyncio.wait_for(console.receive(), 10), Snapshot)


async def new_token(store: Store, role: str) -> str:
    value = f"{role}-{uuid.uuid4().hex}"
    await store.create_token(value, name=f"{role} desk", role=role, agency=None)
    return value


@pytest.mark.timeout(60)
async def test_positions_are_stored_as_tracks_and_garbage_is_not(
    service: Service, store: Store, nc: Any, js: Any, ns: Namespace
) -> None:
    """Positions on the bus reach unit_positions (each once, a repeat too); a position
    that is not valid or names another unit is refused, and the writer keeps going."""
    now = datetime.now(UTC)
    for n in range(50):
        unit = f"U{n % 5}"
        report = PositionReport(unit_id=unit, lat=34.7, lon=113.6 + n * 1e-4, speed_mps=9.0,
                                at=now - timedelta(seconds=100 - n))
        await js.publish(ns.unit_position(unit), report.model_dump_json().encode())
        if n == 10:
            await js.publish(ns.unit_position("U9"), b"{not json")
            await js.publish(ns.unit_position("U8"), report.model_dump_json().encode())
    await js.publish(ns.unit_position("U4"), report.model_dump_json().encode())  # a repeat
    assert service.tracks is not None
    last = now - timedelta(seconds=51)  # the last report's time (n = 49)
    tracks = service.tracks

    async def settled() -> bool:
        return sum(tracks.refused.values()) == 2 and bool(await store.pool.fetchval(
            "SELECT count(*) FROM unit_positions WHERE unit_id = 'U4' AND at = $1", last))

    await eventually(settled, timeout=20)
    # POSITIONS keeps one message per unit: a consumer can skip one replaced before it read
    # it, so the stored count is at most 50 and at least each unit's last
    assert 5 <= await rows(store) <= 50
    assert service.tracks.refused == {"invalid": 1, "subject_mismatch": 1}


async def test_tracks_older_than_the_retention_are_pruned_in_batches(
    store: Store, ns: Namespace
) -> None:
    """With a one-hour retention, positions of two hours ago go, a batch at a time;
    the recent ones stay."""
    now = datetime.now(UTC)
    old = [TrackPoint("E1", now - timedelta(hours=2, seconds=s), 34.7, 113.6, None, None)
           for s in range(25)]
    recent = [TrackPoint("E1", now - timedelta(minutes=s), 34.7, 113.6, 90.0, 5.0)
              for s in range(5)]
    await store.put_track_points(old + recent)
    await store.put_track_points(recent)  # a redelivery: stored once
    assert await rows(store) == 30
    writer = TrackWriter(store, ns, retention=3600, prune_batch=10)
    assert await writer.prune() == 25
    assert await rows(store) == 5 and await writer.prune() == 0


async def test_the_store_thins_a_track_to_the_points_asked(store: Store) -> None:
    """3,600 positions in an hour, asked for 100 points: at most 100, in time order, the
    last one kept; another unit's not returned when one unit is asked for."""
    start = datetime(2026, 12, 1, 8, tzinfo=UTC)
    await store.put_track_points(
        [TrackPoint("E1", start + timedelta(seconds=s), 34.7, 113.6 + s * 1e-5, None, None)
         for s in range(3600)] + [TrackPoint("P1", start, 34.7, 113.6, None, None)])
    got = await store.tracks(start, start + timedelta(hours=1), 100, ["E1"])
    assert set(got) == {"E1"}
    track = got["E1"]
    assert 90 <= len(track) <= 100
    assert [p["at"] for p in track] == sorted(p["at"] for p in track)
    assert track[-1]["at"] == (start + timedelta(seconds=3599)).isoformat().replace(
        "+00:00", "Z")
    assert set(await store.tracks(start, start + timedelta(hours=1), 100)) == {"E1", "P1"}


@pytest.mark.timeout(60)
async def test_history_period_returns_the_units_tracks_in_the_period(
    service: Service, store: Store, ns: Namespace
) -> None:
    """Playback gets each unit's track in (from, to), thinned to TRACK_POINTS."""
    end = datetime.now(UTC)
    start = end - timedelta(minutes=30)
    await store.put_track_points(
        [TrackPoint("E7", start + timedelta(seconds=s), 34.7, 113.6 + s * 1e-5, 45.0, 12.0)
         for s in range(0, 1800, 2)]
        + [TrackPoint("E8", start - timedelta(minutes=5), 34.7, 113.6, None, None)])
    viewer = await new_token(store, "viewer")
    async with open_console(service.console_url, viewer) as console:
        await joined(console)
        got = await console.history(start.isoformat(), end.isoformat())
    assert got.ok, got.message
    tracks = got.data["tracks"]
    assert set(tracks) == {"E7"}  # E8 moved before the period only
    assert 0 < len(tracks["E7"]) <= TRACK_POINTS
    assert tracks["E7"][0].keys() == {"at", "lat", "lon", "heading", "speed_mps"}


@pytest.fixture
async def dispatching(servers: Servers, database_url: str, ns: Namespace,
                      js: Any) -> AsyncIterator[Service]:
    async with running(Service(ServiceConfig(
            nats_url=servers.nats_url, database_url=database_url, namespace=ns.prefix,
            catalogue=FAST.model_copy(update={"sla": FAST.sla.model_copy(
                update={"ack_s": 600.0})}), city=CITY, dispatch_interval=0.2))) as svc:
        yield svc


@pytest.mark.timeout(90)
async def test_an_incidents_detail_has_each_assigned_units_track(
    dispatching: Service, store: Store, nc: Any, js: Any, ns: Namespace
) -> None:
    """G1 is offered the gas leak, accepts, drives and reports positions: the incident's
    detail returns G1's track since the offer, in time order."""
    g1 = await crew(nc, ns, "G1")
    await gas_leak(js, ns)
    order = await next_of(g1, OrderOffered)
    await g1.report("acknowledged", task_id=order.task_id)
    await g1.report("en_route", task_id=order.task_id)
    for n in range(5):
        await g1.position(34.752 - n * 0.001, 113.626, speed_mps=11.0)
        await asyncio.sleep(0.01)  # distinct timestamps, not a wait for a condition
    token = await new_token(store, "dispatcher")
    async with open_console(dispatching.console_url, token) as console:
        await joined(console)

        async def track() -> list[dict[str, Any]]:
            detail = await console.detail(order.incident_id)
            assert detail.ok, detail.message
            found = [t for t in detail.data["tracks"] if t["task_id"] == order.task_id]
            return found[0]["points"] if found and len(found[0]["points"]) >= 5 else []

        points = await eventually(track, timeout=20)
    assert [p["lat"] for p in points][-5:] == pytest.approx(
        [34.752 - n * 0.001 for n in range(5)])
    await g1.stop()


async def _true(value: bool) -> bool:
    return value
