"""The console gateway over a real websocket, fed by the real service."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from command.model import RecordedEvent
from command.store import Store
from command.subjects import Namespace
from consoles.client import open_console, stalled_console, ws_url
from consoles.gateway import (
    SNAPSHOT_FRAGMENT,
    WRITE_LIMIT,
    ConsoleSession,
    Gateway,
    _buffered,
)
from consoles.protocol import (
    CLOSE_BAD_HELLO,
    CLOSE_BUSY,
    CLOSE_UNAUTHORIZED,
    Delta,
    Error,
    Snapshot,
    Welcome,
)
from ecc.app import Service
from tests.helpers import eventually, make_signal, publish_signal, running_gateway


async def recv(console: Any, timeout: float = 10.0) -> Any:
    return await asyncio.wait_for(console.receive(), timeout)


async def test_unknown_token_is_refused_with_a_reason(service: Service) -> None:
    """A wrong token gets an error a person can act on and close code 4401."""
    async with open_console(service.console_url, "not-a-token") as console:
        msg = await recv(console)
        assert isinstance(msg, Error) and msg.code == "unauthorized"
        assert "administrator" in msg.message
        with pytest.raises(ConnectionClosed) as info:
            await recv(console)
    assert info.value.rcvd is not None and info.value.rcvd.code == CLOSE_UNAUTHORIZED


async def test_a_console_must_say_hello_first(service: Service) -> None:
    """Anything but a hello as the first message closes with 4400."""
    async with connect(ws_url(service.console_url)) as ws:
        await ws.send('{"type": "command"}')
        reply = json.loads(await ws.recv())
        assert reply["code"] == "bad_hello"
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == CLOSE_BAD_HELLO


async def test_snapshot_then_ordered_deltas(
    service: Service, store: Store, js: Any, ns: Namespace, token: str
) -> None:
    """A console sees open incidents in its snapshot, then every new one as a delta, in order."""
    await publish_signal(js, ns, make_signal(summary="before"))
    await eventually(lambda: store.pool.fetchval("SELECT count(*) FROM incidents"))
    async with open_console(service.console_url, token) as console:
        welcome = await recv(console)
        assert isinstance(welcome, Welcome) and welcome.role == "dispatcher"
        snap = await recv(console)
        assert isinstance(snap, Snapshot)
        assert [i["summary"] for i in snap.incidents] == ["before"]
        sent = [make_signal(summary=f"call {i}") for i in range(25)]
        for sig in sent:
            await publish_signal(js, ns, sig)
        every = await _until_reported(console, len(sent))
    seqs = [d.seq for d in every]
    assert seqs == sorted(seqs) and seqs[0] > snap.seq and len(set(seqs)) == len(seqs)
    deltas = [d for d in every if d.event.type == "incident.reported"]
    assert [d.event.data["summary"] for d in deltas] == [s.summary for s in sent]
    # the rest is each incident's verify timer, sent because it changes the view
    assert all(d.event.type.startswith("timer.") for d in every if d not in deltas)


async def _until_reported(console: Any, n: int) -> list[Delta]:
    """Deltas until ``n`` incident.reported ones have come (timer events between them)."""
    got: list[Delta] = []
    while sum(d.event.type == "incident.reported" for d in got) < n:
        delta = await recv(console)
        assert isinstance(delta, Delta), delta
        got.append(delta)
    return got


async def test_reconnect_with_since_gets_exactly_what_was_missed(
    service: Service, store: Store, js: Any, ns: Namespace, token: str
) -> None:
    """A console back with its last seq gets what it missed, nothing twice, then live deltas."""
    async with open_console(service.console_url, token) as console:
        await recv(console)
        last = (await recv(console)).seq
    missed = [make_signal(summary=f"while away {i}") for i in range(5)]
    for sig in missed:
        await publish_signal(js, ns, sig)
    await eventually(lambda: _count_is(store, 5))
    async with open_console(service.console_url, token, since=last) as console:
        welcome = await recv(console)
        assert isinstance(welcome, Welcome) and welcome.mode == "resume"
        caught_up = await _until_reported(console, len(missed))
        await publish_signal(js, ns, make_signal(summary="live again"))
        [*_, live] = await _until_reported(console, 1)
    reported = [d for d in caught_up if d.event.type == "incident.reported"]
    assert [d.event.data["summary"] for d in reported] == [s.summary for s in missed]
    seqs = [d.seq for d in caught_up]
    assert seqs == sorted(set(seqs)), "nothing twice, in order"
    assert live.event.data["summary"] == "live again"
    assert live.seq > caught_up[-1].seq


async def _count_is(store: Store, n: int) -> bool:
    return bool(await store.pool.fetchval("SELECT count(*) FROM incidents") == n)


async def test_foreign_origins_are_refused(service: Service, token: str) -> None:
    """A browser page from another origin cannot open the socket (403)."""
    with pytest.raises(InvalidStatus) as info:
        async with connect(ws_url(service.console_url), origin="http://evil.example"):  # type: ignore[arg-type]
            pass
    assert info.value.response.status_code == 403


async def test_the_page_and_health_are_served(service: Service) -> None:
    """GET / serves the console page and /healthz answers ok."""
    def get(path: str) -> tuple[int, str, str]:
        with urllib.request.urlopen(service.console_url.rstrip("/") + path, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()

    status, ctype, body = await asyncio.to_thread(get, "/")
    assert status == 200 and ctype.startswith("text/html") and "<title>ECC" in body
    assert (await asyncio.to_thread(get, "/healthz"))[2] == "ok\n"


def test_a_full_queue_marks_the_session_for_resync() -> None:
    """Offering to a full queue flags the session instead of waiting or growing."""
    session = ConsoleSession(queue_size=2)
    for seq in range(5):
        session.offer(seq, "frame")
    assert session.queue.qsize() == 2 and session.overflowed.is_set()


async def test_a_stalled_console_is_dropped_and_the_others_keep_up(
    store: Store, nc: Any, js: Any, ns: Namespace, token: str
) -> None:
    """One console stops reading: it is told to resync and dropped; a healthy one gets all."""
    gateway = Gateway(store, nc, ns, queue_size=8, send_stall=0.5)
    task = asyncio.create_task(gateway.run())
    try:
        await asyncio.wait_for(gateway.ready.wait(), 10)
        big = "x" * 200_000
        stalled = await stalled_console(gateway.port, token)
        async with open_console(gateway.url, token) as healthy:
            await recv(healthy), await recv(healthy)  # welcome, snapshot
            await eventually(lambda: _true(len(gateway.sessions) == 2))
            for i in range(1, 61):
                event = RecordedEvent(seq=i, event_id=str(uuid.uuid4()), stream_id=f"incident:{i}",
                                      version=1, type="incident.noted", data={"pad": big},
                                      actor="test", recorded_at=datetime.now(UTC))
                await js.publish(ns.event("incident", str(i)), event.model_dump_json().encode())
            got = [(await recv(healthy, 30)).seq for _ in range(60)]
            assert got == list(range(1, 61))
            await eventually(lambda: _true(len(gateway.sessions) == 1), timeout=20)
        stalled.close()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def _true(value: bool) -> bool:
    return value


def test_the_feed_order_tells_new_from_duplicate_from_late() -> None:
    """A seq seen before is a duplicate; one below the head never seen is late (resync)."""
    from consoles.protocol import FeedOrder

    feed = FeedOrder(memory=3)
    assert [feed.observe(s) for s in (1, 2, 2, 5, 4)] == ["new", "new", "duplicate", "new",
                                                          "late"]
    assert feed.head == 5


async def big_snapshot(store: Store, incidents: int = 400, pad: int = 5000) -> int:
    """Fill the open-incidents projection so a snapshot is about incidents * pad bytes."""
    await store.pool.executemany(
        "INSERT INTO incidents (incident_id, is_open, version, last_seq, view) "
        "VALUES ($1, true, 1, $2, $3)",
        [(f"big-{i}", i + 1, {"incident_id": f"big-{i}", "status": "reported",
                              "summary": "x" * pad}) for i in range(incidents)])
    return incidents * pad


async def tokens(store: Store, n: int) -> list[str]:
    out = []
    for i in range(n):
        value = uuid.uuid4().hex
        await store.create_token(value, name=f"console {i}", role="viewer", agency=None)
        out.append(value)
    return out


async def test_stalled_consoles_never_lock_a_new_one_out(
        store: Store, nc: Any, js: Any, ns: Namespace, token: str) -> None:
    """24 consoles that never read their 2 MB snapshot (more than the 16 start slots) hold
    no slot and at most a write limit and a fragment of it each; a new console gets its
    welcome at once, and the stalled ones are dropped when their start time is up."""
    size = await big_snapshot(store)
    viewers = await tokens(store, 3)
    async with running_gateway(store, nc, ns, start_timeout=3.0) as gateway:
        stalled = [await stalled_console(gateway.port, viewers[i % 3]) for i in range(24)]
        await eventually(lambda: _true(len(gateway.sessions) == 24))
        # each has taken what its kernel buffers hold and waits on its socket to drain
        peak = 0
        for _ in range(20):
            peak = max(peak, sum(_buffered(s.ws) for s in gateway.sessions if s.ws))
            await asyncio.sleep(0.02)  # sampling, not waiting for a condition
        bound = WRITE_LIMIT + SNAPSHOT_FRAGMENT + 4096  # a frame header, deflate slack
        assert 0 < peak <= 24 * bound < 24 * size // 4, peak
        began = time.monotonic()
        async with open_console(gateway.url, token, max_size=None) as fresh:
            welcome = await recv(fresh, 5)
            waited = time.monotonic() - began
            snapshot = await recv(fresh, 5)
            assert isinstance(welcome, Welcome) and waited < 3.0, waited
            assert isinstance(snapshot, Snapshot) and len(snapshot.incidents) == 400
            print(f"24 stalled: welcome in {waited * 1000:.0f} ms; gateway buffered at most "
                  f"{peak} bytes for them (snapshot {size} bytes each)")
            await eventually(lambda: _true(len(gateway.sessions) == 1), timeout=10)
        text = gateway.metrics.render()[0].decode()
        assert 'ecc_console_refusals_total{reason="start_stalled"} 24.0' in text
        for writer in stalled:
            writer.close()


async def test_the_per_peer_limit_refuses_with_what_to_do(
        store: Store, nc: Any, js: Any, ns: Namespace) -> None:
    """Past max_per_peer consoles from one address, the next is refused (4429), audited,
    and told which setting raises the limit."""
    viewers = await tokens(store, 2)
    async with running_gateway(store, nc, ns, max_per_peer=3) as gateway:
        consoles = [open_console(gateway.url, viewers[i % 2]) for i in range(3)]
        opened = [await c.__aenter__() for c in consoles]
        try:
            for c in opened:
                assert isinstance(await recv(c), Welcome)
            async with open_console(gateway.url, viewers[0]) as fourth:
                refused = await recv(fourth)
                assert isinstance(refused, Error) and refused.code == "too_many_from_address"
                assert "ECC_CONSOLE_MAX_PER_PEER" in refused.message
                with pytest.raises(ConnectionClosed) as info:
                    await recv(fourth)
            assert info.value.rcvd is not None and info.value.rcvd.code == CLOSE_BUSY
        finally:
            for c in consoles:
                await c.__aexit__(None, None, None)
        await eventually(lambda: _true(not gateway.per_peer))
        row = await store.pool.fetchrow(
            "SELECT outcome, reason, peer FROM audit_log WHERE command = 'console.open' "
            "AND outcome = 'busy'")
        assert row is not None and "from this address" in row["reason"]
        assert row["peer"] == "127.0.0.1"


async def test_repeated_authentication_failures_fold_into_one_row_per_interval(
        store: Store, nc: Any, js: Any, ns: Namespace) -> None:
    """120 hellos with a wrong token from one peer write one audit row at once and one
    'N more' row when the interval ends; every one is logged and counted."""
    async with running_gateway(store, nc, ns, refusal_interval=2.0) as gateway:
        began = time.monotonic()
        limit = asyncio.Semaphore(20)

        async def wrong() -> None:
            async with limit, open_console(gateway.url, "wrong-token") as c:
                msg = await recv(c)
                assert isinstance(msg, Error) and msg.code == "unauthorized"

        with structlog.testing.capture_logs() as logs:
            await asyncio.gather(*(wrong() for _ in range(120)))
        burst = time.monotonic() - began
        refusals = [e for e in logs if e["event"] == "gateway.console_refused"]
        assert len(refusals) == 120 and refusals[0]["reason"] == "unauthorized"
        text = gateway.metrics.render()[0].decode()
        assert 'ecc_console_refusals_total{reason="unauthorized"} 120.0' in text

        async def rows() -> list[Any]:
            return list(await store.pool.fetch(
                "SELECT reason FROM audit_log WHERE outcome = 'unauthorized' ORDER BY id"))

        found = await eventually(lambda: _folded_total(rows, 120), timeout=15)
        # one interval or, on a slow machine, a few: never a row per hello
        assert len(found) <= 2 * (int(burst / 2.0) + 1), (burst, [r["reason"] for r in found])
        assert found[0]["reason"] == "unknown or revoked token"
        assert "more unauthorized refusals from this address" in found[-1]["reason"]


async def _folded_total(rows: Callable[[], Awaitable[list[Any]]], want: int) -> list[Any]:
    found = await rows()
    total = sum(int(r["reason"].split()[0]) if "more" in r["reason"] else 1 for r in found)
    return found if total == want else []
