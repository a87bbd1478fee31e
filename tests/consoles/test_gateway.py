"""The console gateway over a real websocket, fed by the real service."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from command.model import RecordedEvent
from command.service import Service
from command.store import Store
from command.subjects import Namespace
from consoles.client import open_console, ws_url
from consoles.gateway import ConsoleSession, Gateway
from consoles.protocol import CLOSE_BAD_HELLO, CLOSE_UNAUTHORIZED, Delta, Error, Snapshot, Welcome
from tests.helpers import eventually, make_signal, publish_signal, stalled_console


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
        deltas = [await recv(console) for _ in sent]
    assert all(isinstance(d, Delta) for d in deltas)
    seqs = [d.seq for d in deltas]
    assert seqs == sorted(seqs) and seqs[0] > snap.seq and len(set(seqs)) == len(seqs)
    assert [d.event.data["summary"] for d in deltas] == [s.summary for s in sent]
    assert all(d.event.type == "incident.reported" for d in deltas)


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
        caught_up = [await recv(console) for _ in missed]
        await publish_signal(js, ns, make_signal(summary="live again"))
        live = await recv(console)
    assert [d.event.data["summary"] for d in caught_up] == [s.summary for s in missed]
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
