"""Unit positions reach consoles coalesced: the pure feed, then the gateway over real
NATS and websockets."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from command.model import PositionReport
from command.store import Store
from command.subjects import Namespace
from consoles.client import open_console, stalled_console
from consoles.positions import PositionFeed
from consoles.protocol import Positions, Snapshot, Welcome, server_message
from tests.helpers import eventually, running_gateway

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def report(unit: str, n: int, at: datetime = T0) -> PositionReport:
    return PositionReport(unit_id=unit, lat=34.7 + n * 1e-4, lon=113.6 + n * 1e-4,
                          speed_mps=10.0, heading=float(n % 360), at=at + timedelta(seconds=n))


def units_of(frame: str | None) -> dict[str, dict[str, Any]]:
    assert frame is not None
    msg = server_message.validate_json(frame)
    assert isinstance(msg, Positions)
    return {u.unit_id: json.loads(u.model_dump_json()) for u in msg.units}


# --- the feed (core) -------------------------------------------------------------------

def test_a_tick_carries_each_moved_unit_once_with_its_latest_position() -> None:
    """1,000 units reporting three times between two ticks: one frame, each unit once,
    at its third position."""
    feed = PositionFeed()
    for n in range(3):
        for u in range(1000):
            assert feed.put(report(f"U{u}", n)) == "ok"
    assert feed.tick() and not feed.tick()  # nothing moved since
    tick, frame = feed.since(0)
    got = units_of(frame)
    assert tick == 1 and len(got) == 1000
    assert got["U7"]["lat"] == pytest.approx(34.7 + 2e-4)
    assert feed.since(1) == (1, None)


def test_an_older_position_never_replaces_a_newer_one() -> None:
    """Latest wins by the time the position was taken, not by arrival."""
    feed = PositionFeed()
    assert feed.put(report("E1", 5)) == "ok"
    assert feed.put(report("E1", 4)) == "stale"
    assert feed.put(report("E1", 5)) == "stale"
    feed.tick()
    assert units_of(feed.since(0)[1])["E1"]["heading"] == 5.0


def test_a_console_behind_gets_one_frame_with_what_changed_since_its_cursor() -> None:
    """Up to date: the shared frame; behind: one frame merging the ticks it missed."""
    feed = PositionFeed()
    feed.put(report("A", 1))
    feed.tick()
    feed.put(report("B", 1))
    feed.tick()
    feed.put(report("A", 2))
    feed.tick()
    shared = feed.since(2)
    assert shared[0] == 3 and set(units_of(shared[1])) == {"A"}
    assert shared[1] is feed.since(2)[1]  # encoded once
    behind = feed.since(1)
    assert set(units_of(behind[1])) == {"A", "B"}
    assert units_of(behind[1])["A"]["heading"] == 2.0


def test_the_snapshot_holds_every_unit_and_the_tick_it_is_at() -> None:
    """A fresh console's positions: all units, the not yet ticked too."""
    feed = PositionFeed()
    feed.put(report("A", 1))
    feed.tick()
    feed.put(report("B", 1))
    tick, entries = feed.snapshot()
    assert tick == 1 and [e["unit_id"] for e in entries] == ["A", "B"]
    feed.tick()
    assert set(units_of(feed.since(tick)[1])) == {"B"}


def test_refusals_are_counted_by_reason() -> None:
    """Not valid, another unit than the subject's, from the future, or too many units."""
    feed = PositionFeed(max_units=1)
    good = report("A", 1).model_dump_json()
    assert feed.take("A", b"{nope", T0) == "invalid"
    assert feed.take("B", good, T0 + timedelta(hours=1)) == "subject_mismatch"
    assert feed.take("A", good, T0 - timedelta(hours=1)) == "future"
    assert feed.take("A", good, T0 + timedelta(hours=1)) == "ok"
    assert feed.take("C", report("C", 1).model_dump_json(), T0 + timedelta(hours=1)) \
        == "too_many_units"
    assert feed.refused == {"invalid": 1, "subject_mismatch": 1, "future": 1,
                            "too_many_units": 1}


_json = st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=20)
                     | st.integers(), lambda c: st.lists(c, max_size=4)
                     | st.dictionaries(st.text(max_size=10), c, max_size=5), max_leaves=12)
_fields = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["unit.position", "unit.status", "x"]),
    "unit_id": st.sampled_from(["E1", "", "a" * 50, "E 1"]) | st.text(max_size=8),
    "lat": st.floats() | st.integers(-1000, 1000) | st.text(max_size=3),
    "lon": st.floats() | st.integers(-1000, 1000),
    "speed_mps": st.floats() | st.none(), "heading": st.floats() | st.none(),
    "at": st.sampled_from(["2026-12-01T08:00:00Z", "2026-12-01T08:00:00", "yesterday", ""]),
    "extra": _json})


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.binary(max_size=200) | _json.map(json.dumps) | _fields.map(json.dumps),
       unit=st.none() | st.sampled_from(["E1", "x"]))
def test_garbage_never_breaks_the_feed(data: bytes | str, unit: str | None) -> None:
    """Whatever bytes arrive, take() answers with an outcome and the feed stays whole."""
    feed = PositionFeed()
    feed.put(report("E1", 0, T0 - timedelta(days=1)))
    outcome = feed.take(unit, data, T0)
    assert outcome in {"ok", "stale", "invalid", "subject_mismatch", "future"}
    feed.tick()
    assert "E1" in units_of(feed.since(0)[1])


# --- the gateway (shell) ---------------------------------------------------------------

async def publish_round(nc: Any, ns: Namespace, units: int, n: int, at: datetime) -> None:
    for u in range(units):
        await nc.publish(ns.unit_position(f"U{u}"), report(f"U{u}", n, at).model_dump_json()
                         .encode())
    await nc.flush()


async def start(console: Any) -> Snapshot:
    welcome = await asyncio.wait_for(console.receive(), 10)
    assert isinstance(welcome, Welcome)
    snap = await asyncio.wait_for(console.receive(), 10)
    assert isinstance(snap, Snapshot)
    return snap


@pytest.mark.timeout(60)
async def test_a_thousand_units_reach_a_console_as_about_one_message_per_interval(
    store: Store, nc: Any, js: Any, ns: Namespace, token: str
) -> None:
    """1,000 units report five times, as fast as NATS takes it: the console gets at most
    one positions message per interval (2 Hz here), and ends with each unit's latest."""
    now = datetime.now(UTC) - timedelta(seconds=30)
    async with running_gateway(store, nc, ns, positions_hz=2.0) as gateway, \
            open_console(gateway.url, token, positions=True) as console:
        await start(console)
        began = time.monotonic()
        for n in range(5):
            await publish_round(nc, ns, 1000, n, now)
        messages: list[Positions] = []
        latest: dict[str, Any] = {}
        while len(latest) < 1000 or any(p.heading != 4.0 for p in latest.values()):
            msg = await asyncio.wait_for(console.receive(), 10)
            assert isinstance(msg, Positions)
            messages.append(msg)
            for unit in msg.units:
                assert unit.unit_id not in {u.unit_id for u in msg.units if u is not unit}
                latest[unit.unit_id] = unit
        elapsed = time.monotonic() - began
        assert len(messages) <= elapsed * 2 + 2, (len(messages), elapsed)
        assert latest["U999"].lat == pytest.approx(34.7 + 4e-4)


@pytest.mark.timeout(60)
async def test_a_fresh_consoles_snapshot_has_the_units_where_they_are(
    store: Store, nc: Any, js: Any, ns: Namespace, token: str
) -> None:
    """Positions published before the gateway started (kept in POSITIONS, latest per
    unit) are in the snapshot of the first console."""
    now = datetime.now(UTC) - timedelta(seconds=30)
    for n in range(2):
        await publish_round(nc, ns, 20, n, now)

    async def stored() -> bool:
        return int((await js.stream_info(ns.stream("POSITIONS"))).state.messages) == 20

    await eventually(stored)
    async with running_gateway(store, nc, ns) as gateway:
        await eventually(lambda: _true(len(gateway.positions) == 20))
        async with open_console(gateway.url, token, positions=True) as console:
            snap = await start(console)
    got = {p["unit_id"]: p for p in snap.positions}
    assert len(got) == 20 and got["U3"]["heading"] == 1.0


@pytest.mark.timeout(90)
async def test_a_stalled_console_does_not_delay_another(
    store: Store, nc: Any, js: Any, ns: Namespace, token: str
) -> None:
    """One console stops reading while 1,000 units move: the other still gets every
    tick's positions in time, and the stalled one is dropped."""
    now = datetime.now(UTC) - timedelta(seconds=60)
    async with running_gateway(store, nc, ns, positions_hz=5.0, send_stall=0.5) as gateway:
        stalled = await stalled_console(gateway.port, token)
        try:
            async with open_console(gateway.url, token, positions=True) as healthy:
                await start(healthy)
                await eventually(lambda: _true(len(gateway.sessions) == 2))
                for n in range(20):
                    began = time.monotonic()
                    await publish_round(nc, ns, 1000, n, now)
                    while True:  # this round's last unit reaches the healthy console
                        msg = await asyncio.wait_for(healthy.receive(), 5)
                        assert isinstance(msg, Positions)
                        if any(u.unit_id == "U999" and u.heading == float(n)
                               for u in msg.units):
                            break
                    assert time.monotonic() - began < 3.0
                await eventually(lambda: _true(len(gateway.sessions) == 1), timeout=20)
        finally:
            stalled.close()


@pytest.mark.timeout(60)
async def test_garbage_positions_are_refused_with_a_log_and_the_gateway_keeps_going(
    store: Store, nc: Any, js: Any, ns: Namespace, token: str
) -> None:
    """Not JSON, wrong fields, another unit's id, a time far ahead: each logged and
    counted; a good position after them still reaches the console."""
    now = datetime.now(UTC)
    # each on a subject of its own: POSITIONS keeps one message per unit, so a second on
    # one subject could replace the first before the gateway reads it
    garbage = [b"\xff\xfe", b"{}", b"[1,2]", b'{"type":"unit.position","unit_id":"G3"}',
               report("E2", 0, now).model_dump_json().encode(),  # on G4's subject
               report("G5", 0, now + timedelta(days=1)).model_dump_json().encode(),
               json.dumps({"type": "unit.position", "unit_id": "G6", "lat": 1e9, "lon": 0,
                           "at": now.isoformat()}).encode()]
    async with running_gateway(store, nc, ns, positions_hz=4.0) as gateway, \
            open_console(gateway.url, token, positions=True) as console:
        await start(console)
        with structlog.testing.capture_logs() as logs:
            for n, data in enumerate(garbage):
                await nc.publish(ns.unit_position(f"G{n}"), data)
            await nc.publish(ns.unit_position("E1"),
                             report("E1", 0, now - timedelta(seconds=5)).model_dump_json()
                             .encode())
            await nc.flush()
            msg = await asyncio.wait_for(console.receive(), 10)
        assert isinstance(msg, Positions) and [u.unit_id for u in msg.units] == ["E1"]
        refused = [e for e in logs if e["event"] == "gateway.bad_position"]
        assert len(refused) == len(garbage)
        assert sum(gateway.positions.refused.values()) == len(garbage)
        assert b"ecc_console_positions_refused_total 7.0" in gateway.metrics.render()[0]


async def _true(value: bool) -> bool:
    return value
