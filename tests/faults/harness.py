"""The fault suite's parts: real `ecc serve` processes, a publisher that behaves like
an adapter, consoles that reconnect like the web console, and the checker.

Every fault test records a :class:`History` (signal sent, broker acknowledged,
console received) while it breaks things, then lets the system settle and hands
the history and the event store to :func:`check`, which asserts the promises:

* every signal the broker acknowledged is in the event store exactly once;
* every committed event a console may see reached every live console exactly
  once and in seq order (across its reconnects);
* no unit was ever dispatched to a second task before it was released;
* no timer was lost or fired twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import nats.errors
import nats.js.errors
from websockets.exceptions import WebSocketException

from command.model import RecordedEvent, Signal
from command.store import _init_connection as init_connection
from command.store import _recorded as recorded
from command.subjects import Namespace
from consoles.client import open_console
from consoles.protocol import Delta, Resync, Snapshot, Welcome, console_visible
from workflows.geo import Location

ROOT = Path(__file__).resolve().parents[2]
CITY = ROOT / "sim" / "data" / "zhengzhou.toml"

# Short clocks so timers fire many times inside a test: every incident is due for
# verification after 4 s, every offer nobody acknowledges is taken back after 4 s.
CATALOGUE_SLA = {"verify_s": "4", "task_pending_s": "5", "ack_s": "4"}


def fast_catalogue(folder: Path) -> Path:
    """The built-in catalogue with second-scale SLA clocks, written to ``folder``."""
    text = (ROOT / "workflows" / "data" / "catalogue.toml").read_text()
    lines = []
    in_sla = False
    for line in text.splitlines():
        if line.startswith("["):
            in_sla = line.strip() == "[sla]"
        key = line.split("=")[0].strip()
        if in_sla and key in CATALOGUE_SLA:
            line = f"{key} = {CATALOGUE_SLA[key]}"
        lines.append(line)
    path = folder / "catalogue.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


# --- the service as a real process ----------------------------------------------


class ServiceProcess:
    """One `ecc serve` child process: start, wait until it serves, kill -9, restart."""

    def __init__(self, env: dict[str, str], console_port: int, log_path: Path) -> None:
        self.env = env
        self.console_port = console_port
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, fault_point: str | None = None) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = dict(self.env)
        if fault_point:
            env["ECC_FAULT_POINT"] = fault_point
        self.starts += 1
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "ecc.cli", "serve"],
                                         env=env, stdout=log, stderr=log, cwd=ROOT)

    def _get(self, path: str) -> int:
        url = f"http://127.0.0.1:{self.console_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0

    async def status(self, path: str = "/healthz") -> int:
        return await asyncio.to_thread(self._get, path)

    async def serving(self, timeout: float = 30.0) -> float:
        """Wait until the console port answers; returns the seconds it took."""
        t0 = time.monotonic()
        while await self.status() != 200:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"ecc serve exited with {self.proc.returncode}; "
                                     f"see {self.log_path}")
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"ecc serve not serving within {timeout} s; "
                                     f"see {self.log_path}")
            await asyncio.sleep(0.05)
        return time.monotonic() - t0

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    async def exited(self, timeout: float) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(asyncio.to_thread(self.proc.wait), timeout)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(asyncio.to_thread(self.proc.wait), 30)
            except TimeoutError:
                self.proc.kill()
                raise AssertionError("ecc serve did not stop within 30 s of SIGTERM") from None


TOKEN = "fault-console-token"


async def console_token(store: Any) -> str:
    """The token the fault tests' consoles use: a supervisor, who sees everything."""
    await store.create_token(TOKEN, name="fault console", role="supervisor", agency=None)
    return TOKEN


def service_env(nats_url: str, database_url: str, ns: Namespace, console_port: int,
                catalogue: Path, *, ack_wait: float = 2.0, city: bool = True) -> dict[str, str]:
    env = {**os.environ, "NATS_URL": nats_url, "DATABASE_URL": database_url,
           "ECC_NAMESPACE": ns.prefix, "ECC_CONSOLE_PORT": str(console_port),
           "ECC_ACK_WAIT": str(ack_wait), "ECC_CATALOGUE": str(catalogue),
           "ECC_ADAPTERS": "", "ECC_INGRESS_PORT": "0", "ECC_LOG_LEVEL": "info"}
    env.pop("ECC_FAULT_POINT", None)
    if city:
        env["ECC_CITY"] = str(CITY)
    return env


# --- the history ------------------------------------------------------------------


@dataclass
class History:
    """What the test did and saw, in the order it happened."""

    sent: list[str] = field(default_factory=list)
    acked: dict[str, int] = field(default_factory=dict)  # signal id -> stream seq
    publish_errors: Counter[str] = field(default_factory=Counter)
    # console name -> the delta seqs it received, in arrival order
    received: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    baselines: dict[str, int] = field(default_factory=dict)
    reconnects: Counter[str] = field(default_factory=Counter)
    faults: list[str] = field(default_factory=list)


def zhengzhou_signal(rng: random.Random, *, category: str = "fire",
                     sure: bool = False) -> Signal:
    """A hotline signal somewhere in central Zhengzhou: most are events of their own,
    some land near an earlier one and fuse (the same fire, called in twice). A ``sure``
    one verifies itself, so ECC offers its tasks to units without a person."""
    return Signal(
        signal_id=f"f-{uuid.uuid4().hex[:16]}", source="hotline", category=category,
        location=Location(lat=34.70 + rng.random() * 0.12, lon=113.56 + rng.random() * 0.16),
        observed_at=datetime.now(UTC), summary="smoke seen from the street",
        confidence=0.95 if sure else 0.7,
    )


class Publisher:
    """Publishes signals at a steady rate, as an adapter does: each with its id as the
    broker's message id, retried (same id) until the broker acknowledges it."""

    def __init__(self, js: Any, ns: Namespace, history: History, *, rate: float,
                 sure_every: int = 8, seed: int = 1, attempt_timeout: float = 2.0) -> None:
        self.js, self.ns, self.history = js, ns, history
        self.rate = rate
        self.sure_every = sure_every
        self.rng = random.Random(seed)
        self.attempt_timeout = attempt_timeout

    async def publish(self, sig: Signal) -> None:
        data = sig.model_dump_json().encode()
        subject = self.ns.signal(sig.source, sig.category)
        self.history.sent.append(sig.signal_id)
        while True:
            try:
                ack = await self.js.publish(subject, data, timeout=self.attempt_timeout,
                                            headers={"Nats-Msg-Id": sig.signal_id})
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
                self.history.publish_errors[type(exc).__name__] += 1
                await asyncio.sleep(0.1)
                continue
            self.history.acked[sig.signal_id] = ack.seq
            return

    async def run(self, stop: asyncio.Event) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        n = 0
        while not stop.is_set():
            n += 1
            await self.publish(zhengzhou_signal(self.rng, sure=n % self.sure_every == 0))
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))


class Console:
    """A console that stays open like the web console does: on a lost connection or a
    resync it reconnects with ``since`` = the last seq it holds. Records every delta."""

    def __init__(self, name: str, url: str, token: str, history: History) -> None:
        self.name, self.url, self.token, self.history = name, url, token, history
        self.last: int | None = None
        self.connected = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                async with open_console(self.url, self.token, since=self.last,
                                        open_timeout=2) as console:
                    while True:
                        msg = await console.receive()
                        if isinstance(msg, Welcome):
                            if msg.mode == "resume":
                                self.connected.set()
                        elif isinstance(msg, Snapshot):
                            if self.last is not None:
                                raise AssertionError(
                                    f"{self.name}: resume from {self.last} answered with a "
                                    "snapshot: events in between were never delivered")
                            self.history.baselines[self.name] = msg.seq
                            self.last = msg.seq
                            self.connected.set()
                        elif isinstance(msg, Delta):
                            self.history.received[self.name].append(msg.seq)
                            self.last = max(self.last or 0, msg.seq)
                        elif isinstance(msg, Resync):
                            break
            except (WebSocketException, OSError, TimeoutError, EOFError):
                pass
            self.connected.clear()
            self.history.reconnects[self.name] += 1
            await asyncio.sleep(0.1)


# --- the checker ------------------------------------------------------------------


@dataclass
class Store:
    """The event store, the timer table and the clock, read in one snapshot: a timer
    that fires between two separate reads would look lost."""

    events: list[RecordedEvent]
    timers: set[str]
    now: datetime
    outbox: int
    overdue: int  # timers due more than 2 s ago and not fired yet


async def read_store(database_url: str) -> Store:
    conn = await asyncpg.connect(database_url)
    try:
        await init_connection(conn)  # jsonb as the service's pool reads it
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch("SELECT * FROM events ORDER BY seq")
            timers = {r["timer_id"] for r in await conn.fetch("SELECT timer_id FROM timers")}
            outbox = await conn.fetchval("SELECT count(*) FROM outbox")
            now = await conn.fetchval("SELECT now()")
            overdue = await conn.fetchval(
                "SELECT count(*) FROM timers WHERE due_at < now() - interval '2 seconds'")
    finally:
        await conn.close()
    return Store([recorded(r) for r in rows], timers, now, outbox, overdue)


async def settled(database_url: str, history: History, consoles: list[Console],
                  timeout: float = 60.0) -> Store:
    """Wait until every acknowledged signal is recorded, the outbox is empty and each
    console has caught up with the store; returns the store as it then was."""
    deadline = time.monotonic() + timeout
    while True:
        store = await read_store(database_url)
        recorded = _recorded_signals(store.events)
        head = max((e.seq for e in store.events if console_visible(e)), default=0)
        behind = [c.name for c in consoles if (c.last or 0) < head]
        missing = set(history.acked) - set(recorded)
        if not missing and store.outbox == 0 and not behind and store.overdue == 0:
            return store
        if time.monotonic() > deadline:
            raise AssertionError(f"not settled within {timeout} s: {len(missing)} acknowledged "
                                 f"signals unrecorded, outbox {store.outbox}, consoles behind "
                                 f"{behind} (head {head}), {store.overdue} timers overdue")
        await asyncio.sleep(0.25)


def _recorded_signals(log: list[RecordedEvent]) -> Counter[str]:
    return Counter(e.data["signal_id"] for e in log
                   if e.type in ("incident.reported", "incident.signal_attached"))


async def check(database_url: str, history: History, store: Store) -> dict[str, int]:
    """Assert every promise of the module docstring; returns what was counted."""
    log = store.events
    # 1. every acknowledged signal exactly once
    recorded = _recorded_signals(log)
    lost = [s for s in history.acked if recorded[s] == 0]
    twice = {s: n for s, n in recorded.items() if n > 1}
    assert not lost, f"{len(lost)} acknowledged signals are not in the event store: {lost[:5]}"
    assert not twice, f"signals recorded more than once: {list(twice.items())[:5]}"
    unknown = set(recorded) - set(history.sent)
    assert not unknown, f"signals in the store nobody sent: {list(unknown)[:5]}"

    # 2. every console: each visible event after its baseline, once, in order
    visible = [e.seq for e in log if console_visible(e)]
    # Timers and the dispatcher go on after the load stops: what a console received
    # after the log was read is not judged against it.
    head = log[-1].seq if log else 0
    for name, everything in history.received.items():
        seqs = [s for s in everything if s <= head]
        base = history.baselines[name]
        expected = [s for s in visible if s > base]
        dupes = [s for s, n in Counter(seqs).items() if n > 1]
        assert not dupes, f"{name} received seqs twice: {dupes[:5]}"
        out_of_order = [(a, b) for a, b in itertools.pairwise(seqs) if b <= a]
        assert not out_of_order, f"{name} received out of order: {out_of_order[:5]}"
        missed = sorted(set(expected) - set(seqs))
        assert not missed, f"{name} never received {len(missed)} events: {missed[:5]}"
        extra = sorted(set(seqs) - set(expected))
        assert not extra, f"{name} received events that are not committed: {extra[:5]}"

    # 3. no unit on two tasks: fold each unit's stream
    holding: dict[str, tuple[str, str]] = {}
    double: list[str] = []
    dispatched = 0
    for e in log:
        if e.type == "unit.dispatched":
            dispatched += 1
            if e.stream_id in holding:
                double.append(f"{e.stream_id} seq {e.seq}: on {holding[e.stream_id]}, "
                              f"sent to {(e.data['incident_id'], e.data['task_id'])}")
            holding[e.stream_id] = (e.data["incident_id"], e.data["task_id"])
        elif e.type == "unit.released":
            holding.pop(e.stream_id, None)
    assert not double, f"units on two tasks: {double[:5]}"
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT t->>'unit_id' AS unit, count(*) AS n FROM incidents, "
            "jsonb_array_elements(view->'tasks') AS t WHERE t->>'status' IN "
            "('offered','accepted','en_route','on_scene') GROUP BY 1 HAVING count(*) > 1")
    finally:
        await conn.close()
    assert not rows, f"units holding two live tasks now: {[dict(r) for r in rows]}"

    # 4. timers: each scheduled timer fired at most once; none lost
    pending, now = store.timers, store.now
    open_timers: dict[str, datetime] = {}
    fired: Counter[str] = Counter()
    fired_twice: list[str] = []
    late: list[float] = []  # seconds from due to fired
    for e in log:
        if e.type == "timer.scheduled":
            open_timers[e.data["timer_id"]] = datetime.fromisoformat(e.data["due_at"])
        elif e.type == "timer.cancelled":
            open_timers.pop(e.data["timer_id"], None)
        elif e.type == "timer.fired":
            tid = e.data["timer_id"]
            fired[tid] += 1
            if tid not in open_timers:
                fired_twice.append(f"{tid} at seq {e.seq}")
            else:
                late.append((e.recorded_at - open_timers[tid]).total_seconds())
            open_timers.pop(tid, None)
    assert not fired_twice, f"timers fired while not scheduled (twice?): {fired_twice[:5]}"
    # settled() waited until no timer in the table was overdue: one that the log has as
    # scheduled and never fired or cancelled must still be in the table, and not due.
    lost_timers = [t for t in open_timers if t not in pending]
    assert not lost_timers, f"timers lost (neither fired nor pending): {lost_timers[:5]}"
    overdue = [t for t, due in open_timers.items() if (now - due).total_seconds() > 2]
    assert not overdue, f"timers overdue and not fired: {overdue[:5]}"

    return {"signals": len(history.acked), "events": len(log), "dispatched": dispatched,
            "timers_fired": sum(fired.values()),
            "timer_late_max_s": int(max(late, default=0)),
            "deliveries": sum(len(v) for v in history.received.values())}


@contextlib.asynccontextmanager
async def tasks(*coros: Any) -> Any:
    """Run background coroutines for the block; cancel them after it."""
    running = [asyncio.create_task(c) for c in coros]
    try:
        yield running
    finally:
        for t in running:
            t.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for t in running:
            if not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
