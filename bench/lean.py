"""The console side of bench.fanout and bench.positions: lean websocket consoles, and a
bare broadcast server.

A :class:`LeanConsole` is websockets' sans-I/O client protocol on an asyncio
Protocol: the handshake, ``hello``, then counting the deltas whose summary
carries the benchmark's marker (``fanout <phase> <monotonic publish time>``),
with no task or future per message, so a client process costs as little as a
websocket client can. One process runs many (:func:`client`); :func:`raw_server`
is the baseline's server. Both are children of bench.fanout, configured by one
JSON line on stdin and reporting JSON lines on stdout. :class:`PositionConsole` (run
by :func:`position_client`, a child of bench.positions) counts the unit entries of
``positions`` messages instead, between a ``start`` and a ``stop`` line on stdin:

    python -m bench.lean --client | --raw-server | --positions
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from consoles.client import ws_url

MARKER = b"fanout "
PHASES = ("burst", "paced")
TIMEOUT = 600.0  # seconds for one phase to reach every console


@dataclass
class Tally:
    """What one client process saw, per phase."""

    expect: dict[str, int]
    consoles: int
    latencies: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PHASES})
    first_pub: dict[str, float] = field(default_factory=dict)
    last_arrival: dict[str, float] = field(default_factory=dict)
    complete: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PHASES, 0))
    done: dict[str, asyncio.Event] = field(
        default_factory=lambda: {p: asyncio.Event() for p in PHASES})
    frames: int = 0
    resyncs: int = 0
    closed: int = 0
    sample: str | None = None

    def delivered(self, phase: str, published: float, now: float) -> None:
        self.latencies[phase].append(round((now - published) * 1000, 2))
        self.first_pub[phase] = min(self.first_pub.get(phase, published), published)
        self.last_arrival[phase] = max(self.last_arrival.get(phase, now), now)

    def console_done(self, phase: str) -> None:
        self.complete[phase] += 1
        if self.complete[phase] == self.consoles:
            self.done[phase].set()


class LeanConsole(asyncio.Protocol):
    """One console: the websocket handshake, ``hello``, then counting marked deltas."""

    # the arrival clock: monotonic, as the fanout marker's publish time is
    clock = staticmethod(time.monotonic)

    def __init__(self, url: str, token: str, tally: Any, deflate: bool) -> None:
        self.ws = ClientProtocol(parse_uri(ws_url(url)), max_size=None,
                                 extensions=enable_client_permessage_deflate(None)
                                 if deflate else None)
        self.token = token
        self.tally = tally
        self.counts = dict.fromkeys(PHASES, 0)
        self.joined: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.in_feed = False
        self.partial = bytearray()  # the frames so far of a fragmented message

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = self.clock()
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if event.status_code != 101:
                    self._fail(f"handshake {event.status_code}")
                else:
                    self.ws.send_text(json.dumps({"type": "hello", "token": self.token})
                                      .encode())
            elif isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.CONT):
                # a message the gateway fragments (a large snapshot) is reassembled
                self.partial += event.data
                if event.fin:
                    data, self.partial = bytes(self.partial), bytearray()
                    self._text(data, now)
        self._flush()

    def _text(self, data: bytes, now: float) -> None:
        tally = self.tally
        tally.frames += 1
        if not self.in_feed:
            msg = json.loads(data)
            if msg["type"] == "snapshot":
                self.in_feed = True
                self._fail("ok")
            elif msg["type"] == "error":
                self._fail(msg["code"])
            return
        if MARKER in data:
            event = json.loads(data)["event"]
            if event["type"] != "incident.reported":
                return
            _, phase, published = event["data"]["summary"].split()
            tally.delivered(phase, float(published), now)
            if tally.sample is None:
                tally.sample = data.decode()
            self.counts[phase] += 1
            if self.counts[phase] == tally.expect[phase]:
                tally.console_done(phase)
        elif data.startswith(b'{"type":"resync"'):
            tally.resyncs += 1

    def _fail(self, outcome: str) -> None:
        if not self.joined.done():
            self.joined.set_result(outcome)

    def _flush(self) -> None:
        assert self.transport is not None
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("closed")
        if self.in_feed:
            self.tally.closed += 1

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def _open(url: str, token: str, tally: Any, deflate: bool,
                gate: asyncio.Semaphore, kind: type[LeanConsole] = LeanConsole) -> LeanConsole:
    """Connect one console, retrying while the gateway says it is busy."""
    host, port = url.split("//", 1)[1].rstrip("/").split(":")
    loop = asyncio.get_running_loop()
    for _ in range(60):
        async with gate:
            _, console = await loop.create_connection(
                lambda: kind(url, token, tally, deflate), host, int(port))
            outcome = await asyncio.wait_for(console.joined, 60)
        if outcome == "ok":
            return console
        console.close()
        if outcome not in ("busy", "closed"):
            raise RuntimeError(f"console refused: {outcome}")
        await asyncio.sleep(random.uniform(0.2, 1.0))
    raise RuntimeError("a console never got in")


async def client(cfg: dict[str, Any]) -> None:
    """One process of consoles: join, then report each phase as a JSON line on stdout."""
    phases = [p for p in PHASES if cfg["expect"].get(p)]
    tally = Tally(expect=cfg["expect"], consoles=len(cfg["tokens"]))
    gate = asyncio.Semaphore(cfg.get("concurrency", 8))
    start = time.monotonic()
    consoles = await asyncio.gather(*(_open(cfg["url"], token, tally, cfg["deflate"], gate)
                                      for token in cfg["tokens"]))
    print(json.dumps({"joined": len(consoles), "seconds": round(time.monotonic() - start, 2)}),
          flush=True)
    for phase in phases:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tally.done[phase].wait(), cfg.get("timeout", TIMEOUT))
        print(json.dumps({
            "phase": phase, "complete": tally.complete[phase], "consoles": tally.consoles,
            "deliveries": len(tally.latencies[phase]),
            "first_pub": tally.first_pub.get(phase), "last": tally.last_arrival.get(phase),
            "latencies": tally.latencies[phase], "frames": tally.frames,
            "resyncs": tally.resyncs, "closed": tally.closed, "sample": tally.sample,
        }), flush=True)
    for console in consoles:
        console.close()


@dataclass
class PositionTally:
    """What one client process saw of ``positions`` messages while measuring: each unit
    entry's latency from its ``at`` to its arrival (wall clock), in 0.1 ms bins."""

    consoles: int
    measuring: bool = False
    updates: int = 0
    messages: int = 0
    max_units: int = 0  # the most unit entries in one message
    bins: Counter[int] = field(default_factory=Counter)  # latency in 0.1 ms -> entries
    first: float | None = None
    last: float | None = None
    frames: int = 0
    resyncs: int = 0
    closed: int = 0
    # ``at`` text -> its POSIX time: every console gets the same entries, so each is
    # parsed about once, not once per console
    _at: dict[str, float] = field(default_factory=dict)

    def positions(self, data: bytes, now: float) -> None:
        if not self.measuring:
            return
        units = json.loads(data)["units"]
        self.messages += 1
        self.updates += len(units)
        self.max_units = max(self.max_units, len(units))
        if self.first is None:
            self.first = now
        self.last = now
        cache, bins = self._at, self.bins
        if len(cache) > 50_000:
            cache.clear()
        for unit in units:
            text = unit["at"]
            at = cache.get(text)
            if at is None:
                at = cache[text] = datetime.fromisoformat(text).timestamp()
            bins[round((now - at) * 10_000)] += 1

    def reset(self) -> None:
        self.updates = self.messages = self.max_units = 0
        self.bins.clear()
        self.first = self.last = None
        self.measuring = True

    def report(self) -> dict[str, Any]:
        return {"consoles": self.consoles, "updates": self.updates, "messages": self.messages,
                "max_units_per_message": self.max_units, "first": self.first,
                "last": self.last, "bins": dict(self.bins), "frames": self.frames,
                "resyncs": self.resyncs, "closed": self.closed}


class PositionConsole(LeanConsole):
    """One console counting the unit entries of the ``positions`` messages it gets."""

    clock = staticmethod(time.time)  # a report's ``at`` is wall-clock UTC

    def _text(self, data: bytes, now: float) -> None:
        if not self.in_feed:
            super()._text(data, now)
            return
        self.tally.frames += 1
        if data.startswith(b'{"type":"positions"'):
            self.tally.positions(data, now)
        elif data.startswith(b'{"type":"resync"'):
            self.tally.resyncs += 1


async def position_client(cfg: dict[str, Any]) -> None:
    """One process of position consoles: join (report a line), then on each ``start``
    line on stdin start counting afresh, on each ``stop`` report what was counted."""
    tally = PositionTally(consoles=len(cfg["tokens"]))
    gate = asyncio.Semaphore(cfg.get("concurrency", 8))
    start = time.monotonic()
    consoles = await asyncio.gather(*(
        _open(cfg["url"], token, tally, cfg["deflate"], gate, PositionConsole)
        for token in cfg["tokens"]))
    print(json.dumps({"joined": len(consoles), "seconds": round(time.monotonic() - start, 2)}),
          flush=True)
    while line := (await asyncio.to_thread(sys.stdin.readline)).strip():
        if line == "start":
            tally.reset()
            print(json.dumps({"started": time.time()}), flush=True)
        elif line == "stop":
            tally.measuring = False
            print(json.dumps(tally.report()), flush=True)
    for console in consoles:
        console.close()


async def raw_server(cfg: dict[str, Any]) -> None:
    """Take ``cfg["consoles"]`` consoles, then broadcast ``cfg["burst"]`` frames shaped
    like ``cfg["sample"]`` to all of them, as fast as websockets can; then wait for EOF."""
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    conns: set[ServerConnection] = set()
    everyone = asyncio.Event()
    sample = cfg["sample"]
    old = json.loads(sample)["event"]["data"]["summary"]

    async def session(ws: ServerConnection) -> None:
        await ws.recv()  # hello
        await ws.send(json.dumps({"type": "welcome"}))
        await ws.send(json.dumps({"type": "snapshot", "seq": 0, "incidents": [], "units": []}))
        conns.add(ws)
        if len(conns) >= cfg["consoles"]:
            everyone.set()
        await ws.wait_closed()

    async with serve(session, "127.0.0.1", cfg["port"], ping_interval=20, ping_timeout=20):
        print(json.dumps({"listening": cfg["port"]}), flush=True)
        await everyone.wait()
        await asyncio.sleep(0.5)
        for _ in range(cfg["burst"]):
            broadcast(conns, sample.replace(old, f"fanout burst {time.monotonic():.6f}"))
            await asyncio.sleep(0)  # let the loop write and read between frames
        await asyncio.to_thread(sys.stdin.read)  # until the benchmark is done with us


def main() -> None:
    roles = {"--client": client, "--raw-server": raw_server, "--positions": position_client}
    if len(sys.argv) != 2 or sys.argv[1] not in roles:
        sys.exit(__doc__)
    cfg = json.loads(sys.stdin.readline())
    asyncio.run(roles[sys.argv[1]](cfg))


if __name__ == "__main__":
    main()
