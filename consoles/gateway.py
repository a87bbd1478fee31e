# size: sessions, snapshot and deltas, backpressure and resync share per-socket state
"""Shell: the websocket gateway between the event stream and the consoles.

One ordered JetStream consumer on EVENTS feeds every connected console. A
console connects to ``/ws``, sends ``hello`` with its token (and the last seq
it saw, if any), and gets a snapshot of open incidents (or exactly the deltas
it missed) and then live deltas in seq order.

Gap-free by construction: a session registers for live deltas *before* it
reads the snapshot, and every delta at or below the snapshot's seq is
dropped. Seq order is commit order (see command/store/) and events reach
JetStream only after commit, so nothing falls between the two.

Backpressure: each console has a bounded queue. A console that falls that far
behind is sent ``resync`` and closed (its client reconnects with ``since``);
it never slows the others or grows the gateway's memory.

The start is bounded too: a few start slots guard the store reads of a snapshot
(or of a resume), and the send happens after the slot is given back, in
fragments that wait for the socket to drain (so at most ``write_limit`` plus one
fragment sits in the gateway per console), within ``start_timeout`` seconds. A
console that does not read its snapshot in time is aborted: it never holds a
slot, and its client resumes later with its own ``since``. The snapshot frame is
encoded once per seq and shared by every console that starts at that seq.

Unit positions (``<ns>.unit.*.position``, the POSITIONS stream, read from the last of
each unit) are coalesced by :class:`consoles.positions.PositionFeed`: each console gets
at most one ``positions`` message per ``1 / positions_hz`` seconds with the units that
moved since its last, sent by a task of its own (a stalled socket resyncs that console
alone, as a stalled delta does). A snapshot carries every unit's last known position.

The doors: ``Host`` must be one of the gateway's own names (consoles/hosts.py),
``Host`` and ``Origin`` appear once, and consoles are limited per token and per
peer address. Refusals are logged, counted (``ecc_console_refusals_total``) and
audited, folded per peer and outcome (command/refusals.py, as the ingress does).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import random
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Literal
from urllib.parse import urlsplit

import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import api
from pydantic import ValidationError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from command.basemap import MapSite
from command.metrics import Metrics
from command.model import RecordedEvent
from command.refusals import OVERFLOW, Fold, Folded
from command.settings import builtin_catalogue
from command.store import Principal, Store
from command.subjects import Namespace
from command.tasks import check_cancelled
from consoles.authz import CONSOLE_ROLES, allowed_commands
from consoles.commands import Caller, ConsoleCommands, audit_connection
from consoles.hosts import HostPolicy
from consoles.positions import PositionFeed
from consoles.protocol import (
    CLOSE_BAD_HELLO,
    CLOSE_BUSY,
    CLOSE_FORBIDDEN,
    CLOSE_RESYNC,
    CLOSE_UNAUTHORIZED,
    MAX_CLIENT_MESSAGE_BYTES,
    RESUME_LIMIT,
    CommandRequest,
    Error,
    FeedOrder,
    Hello,
    KeywordRule,
    Ordering,
    QueryRequest,
    Result,
    Resync,
    Snapshot,
    TypeInfo,
    Welcome,
    client_message,
    console_types,
    console_visible,
    delta_frame,
)
from consoles.views import Views, has_view, snapshot_views
from workflows.catalogue import Catalogue
from workflows.text import clean, validate_json

log = structlog.get_logger("ecc.gateway")

HELLO_TIMEOUT = 10.0
# A console whose socket takes longer than this to accept one frame is stalled.
SEND_STALL = 5.0
# The welcome and the whole snapshot (or resume) must be sent within this, or the
# console is aborted: a frozen tab must not keep the gateway's memory or a slot. (2 MB
# of snapshot reach a console on a 2 Mbit/s link in about 8 s.)
START_TIMEOUT = 10.0
# Bytes the gateway buffers for one console before a send waits for the socket to
# drain (websockets' write_limit), and the fragment size of a snapshot.
WRITE_LIMIT = 64 * 1024
SNAPSHOT_FRAGMENT = 64 * 1024
# Consoles open from one peer address (a command centre behind one NAT needs more:
# ECC_CONSOLE_MAX_PER_PEER, docs/consoles.md).
MAX_PER_PEER = 32
# Repeated refusals of one peer and outcome are folded into one audit row per interval.
REFUSAL_INTERVAL = 10.0
# Paths that answer probes whatever the Host (they carry no console data and act on nothing).
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


class ConsoleSession:
    """One connected console: its bounded queue of (seq, frame) deltas."""

    def __init__(self, queue_size: int, ws: ServerConnection | None = None,
                 token: str = "", principal: Principal | None = None,
                 peer: str | None = None) -> None:
        self.queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue(maxsize=queue_size)
        self.overflowed = asyncio.Event()
        self.ws = ws
        self.token = token
        self.principal = principal
        self.peer = peer
        # the position tick this console last got (consoles/positions.py), and the flag
        # the ticker raises when there is a newer one
        self.cursor = 0
        self.moved = asyncio.Event()

    def offer(self, seq: int, frame: str) -> None:
        """Queue a delta without waiting; on overflow, mark the session for resync."""
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait((seq, frame))
        except asyncio.QueueFull:
            self.overflowed.set()


class Gateway:
    def __init__(
        self,
        store: Store,
        nc: NATS,
        ns: Namespace,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        origins: tuple[str, ...] = (),
        hosts: tuple[str, ...] = (),
        queue_size: int = 1024,
        send_stall: float = SEND_STALL,
        commands: ConsoleCommands | None = None,
        max_per_token: int = 8,
        max_per_peer: int = MAX_PER_PEER,
        max_starting: int = 16,
        max_waiting: int = 256,
        revoke_check: float = 2.0,
        start_timeout: float = START_TIMEOUT,
        write_limit: int = WRITE_LIMIT,
        refusal_interval: float = REFUSAL_INTERVAL,
        sla: dict[str, float] | None = None,
        catalogue: Catalogue | None = None,
        metrics: Metrics | None = None,
        readiness: Callable[[], dict[str, Any]] | None = None,
        positions_hz: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        map_site: MapSite | None = None,
    ) -> None:
        self.store = store
        self.nc = nc
        self.ns = ns
        self.host = host
        self.port = port
        self.origins = origins
        self.host_policy = HostPolicy(hosts)
        self.queue_size = queue_size
        self.send_stall = send_stall
        self.sessions: set[ConsoleSession] = set()
        self.commands = commands
        self.max_per_token = max_per_token
        self.max_per_peer = max_per_peer
        self.per_peer: Counter[str] = Counter()  # open websockets by peer address
        self.start_timeout = start_timeout
        self.write_limit = write_limit
        self.refusals = Fold(refusal_interval)
        # (seq, frame) of the last snapshot sent: consoles starting at one seq share it
        self._snapshot: tuple[int, str] | None = None
        self._snapshot_tick = 0  # the position tick of that snapshot
        # A reconnect storm (a thousand consoles after a network cut) queues for a few
        # snapshot slots; past max_waiting, consoles are told to come back in a moment.
        self.starting = asyncio.Semaphore(max_starting)
        self.max_waiting = max_waiting
        self.waiting = 0
        self.revoke_check = revoke_check
        self.sla = sla
        # the types and hotline rules every console shows and suggests with (the built-in
        # catalogue's when none is given)
        self.types, self.rules = console_types(catalogue or builtin_catalogue())
        self.ready = asyncio.Event()
        self.feed = FeedOrder()
        self.views = Views(store)  # the live feed's: each delta's view (consoles/views.py)
        self._page = resources.files("consoles").joinpath("static/index.html").read_bytes()
        self.metrics = metrics if metrics is not None else Metrics()
        self.metrics.console_connections.set_function(lambda: len(self.sessions))
        self.readiness = readiness
        if not positions_hz > 0:
            raise ValueError("positions_hz must be above 0")
        self.positions_interval = 1.0 / positions_hz
        self.positions = PositionFeed()
        self.clock = clock
        feed = self.positions
        self.metrics.count_from("ecc_console_positions_refused",
                                "Unit positions the gateway refused (invalid, subject "
                                "mismatch, future, too many units)",
                                lambda: float(sum(feed.refused.values())))
        # the map's config and layers (/map.json, /map/<layer>.geojson: docs/maps.md), and
        # the tile servers the page may load images from
        self.map_site = map_site
        self._page_csp = _csp(map_site.tile_sources if map_site else ())

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    async def run(self) -> None:
        """Serve until cancelled."""
        js = self.nc.jetstream()
        sub = await js.subscribe(
            self.ns.events,
            stream=self.ns.stream("EVENTS"),
            ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.NEW,
            cb=self._on_event,
        )
        positions = await js.subscribe(
            self.ns.unit_positions,
            stream=self.ns.stream("POSITIONS"),
            ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT,
            cb=self._on_position,
        )
        try:
            async with serve(
                self._session,
                self.host,
                self.port,
                process_request=self._http,
                max_size=MAX_CLIENT_MESSAGE_BYTES,
                write_limit=self.write_limit,
                ping_interval=20,
                ping_timeout=20,
            ) as server:
                self.port = _bound_port(server)
                self.ready.set()
                log.info("gateway.listening", url=self.url)
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(server.serve_forever())
                    tg.create_task(self._watch_tokens())
                    tg.create_task(self._flush_refusals())
                    tg.create_task(self._tick_positions())
        finally:
            for each in (sub, positions):
                with contextlib.suppress(Exception):
                    await each.unsubscribe()

    async def _watch_tokens(self) -> None:
        """Revoking a token, or its end (expiry, or a rotation's grace running out), closes
        the consoles using it within ``revoke_check`` seconds."""
        while True:
            await asyncio.sleep(self.revoke_check)
            live = [s for s in self.sessions if s.ws is not None]
            try:
                gone = await self.store.revoked(list({s.token for s in live}))
            except Exception as exc:  # the database is away: check again next round
                log.warning("gateway.token_check_failed", error=str(exc))
                continue
            for session in live:
                if session.token in gone and session.ws is not None:
                    log.warning("gateway.token_revoked", peer=session.peer)
                    await audit_connection(self.store, session.principal, session.peer,
                                           "console.revoked", "unauthorized",
                                           "token revoked or expired: console closed")
                    with contextlib.suppress(Exception):
                        await _refuse(session.ws, CLOSE_UNAUTHORIZED, "revoked",
                                      "this token was revoked or has ended; ask an "
                                      "administrator for a new one")

    async def _flush_refusals(self) -> None:
        """Write the folded count of each refusal interval that has ended."""
        while True:
            await asyncio.sleep(1.0)
            for folded in self.refusals.due(time.monotonic()):
                await self._write_folded(folded)

    async def _write_folded(self, folded: Folded) -> None:
        """One row for the refusals of an interval after its first."""
        sample: tuple[str | None, str] = folded.sample  # type: ignore[assignment]
        peer, outcome = sample
        if folded.key == OVERFLOW:
            peer = OVERFLOW
        await audit_connection(
            self.store, None, peer, "console.open", outcome,
            f"{folded.count} more {outcome} refusals from this address in the last "
            f"{self.refusals.interval:g} s (folded into one row)")

    async def _refused(self, ws: ServerConnection, bound: Any, reason: str, *,
                       close: int, message: str, outcome: str | None = None,
                       principal: Principal | None = None, why: str = "") -> None:
        """Refuse a console: log it, count it, audit it (folded), tell it what to do, close.

        ``outcome`` None: not audited (a busy waiting room is no failure of the console's).
        """
        bound.warning("gateway.console_refused", reason=reason)
        self.metrics.console_refusals.labels(reason=reason).inc()
        if outcome is not None:
            peer = ws.remote_address[0] if ws.remote_address else None
            if self.refusals.admit(f"{peer}|{outcome}", time.monotonic(), (peer, outcome)):
                await audit_connection(self.store, principal, peer, "console.open",
                                       outcome, why)
        await _refuse(ws, close, reason, message)

    # --- the live feed ------------------------------------------------------

    async def _on_event(self, msg: Msg) -> None:
        try:
            event = RecordedEvent.model_validate_json(msg.data)
        except ValidationError:
            log.error("gateway.bad_event", subject=msg.subject)
            return
        verdict = self.feed.observe(event.seq)
        if verdict == "duplicate" or not has_view(event.stream_id):
            return
        if verdict == "late":
            # Published out of seq order (a relay retry): consoles past it would drop
            # it, so every console resyncs and reads it from the store.
            log.warning("gateway.late_event", seq=event.seq, head=self.feed.head)
            self._resync_all()
            return
        try:
            view = await self.views.after(event)
        except Exception as exc:  # the store is away: no delta goes out without its view
            log.error("gateway.view_failed", seq=event.seq, stream_id=event.stream_id,
                      error=str(exc) or type(exc).__name__)
            self._resync_all()
            return
        if not console_visible(event):
            return
        frame = delta_frame(event, view)
        for session in self.sessions:
            session.offer(event.seq, frame)

    async def _on_position(self, msg: Msg) -> None:
        """A unit's position: held (latest wins) for the next tick; a bad one logged."""
        try:
            outcome = self.positions.take(self.ns.unit_of(msg.subject), msg.data, self.clock())
        except Exception as exc:  # never let one message stop the subscription
            self.positions.refused["error"] += 1
            log.error("gateway.position_failed", subject=msg.subject, error=repr(exc))
            return
        if outcome not in ("ok", "stale"):
            log.warning("gateway.bad_position", subject=msg.subject[:200], reason=outcome)

    async def _tick_positions(self) -> None:
        """Once per interval: close the positions frame and wake the consoles' senders."""
        while True:
            await asyncio.sleep(self.positions_interval)
            if self.positions.tick():
                for session in self.sessions:
                    session.moved.set()

    def _resync_all(self) -> None:
        """Every console resyncs (and reads what it missed from the store)."""
        for session in self.sessions:
            session.overflowed.set()

    # --- HTTP: the page, health, metrics, and the websocket door -------------

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        twice = [n for n in ("Host", "Origin") if len(request.headers.get_all(n)) > 1]
        if twice:
            return self._http_refused(connection, http.HTTPStatus.BAD_REQUEST,
                                      "duplicate_header",
                                      f"send one {twice[0]} header, not several\n",
                                      header=twice[0])
        if path == "/healthz":  # liveness: the event loop answered
            return _response(http.HTTPStatus.OK, b"ok\n", "text/plain")
        if path == "/readyz":
            return self._readyz()
        if path == "/metrics":
            return _response(http.HTTPStatus.OK, *self.metrics.render())
        if not self.host_policy.allows(request.headers.get("Host")):
            return self._http_refused(
                connection, http.HTTPStatus.MISDIRECTED_REQUEST, "host",
                "this gateway does not answer to the name in the Host header: open it by "
                "its own address (e.g. http://127.0.0.1:<port>/), or, if that name is its "
                "public name, add it to ECC_CONSOLE_HOSTS\n",
                host=request.headers.get("Host", "")[:100])
        if path == "/ws":
            if not self._origin_ok(request.headers):
                return self._http_refused(connection, http.HTTPStatus.FORBIDDEN, "origin",
                                          "origin not allowed: open the console from this "
                                          "gateway's page, or add the page's origin to "
                                          "ECC_CONSOLE_ORIGINS\n",
                                          origin=request.headers.get("Origin", "")[:200])
            return None
        if path == "/":
            return _response(http.HTTPStatus.OK, self._page, "text/html; charset=utf-8",
                             csp=self._page_csp)
        if path == "/map.json" or path.startswith("/map/"):
            found = self._map(path)
            if found is not None:
                return _response(http.HTTPStatus.OK, *found)
        if path.startswith("/static/"):
            found = _static(path.removeprefix("/static/"))
            if found is not None:
                return _response(http.HTTPStatus.OK, *found)
        return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")

    def _map(self, path: str) -> tuple[bytes, str] | None:
        """The map's config, or one of its GeoJSON layers (None: the city has no map)."""
        if self.map_site is None:
            return None
        if path == "/map.json":
            return json.dumps(self.map_site.config).encode(), "application/json"
        layer = self.map_site.layers.get(path.removeprefix("/map/").removesuffix(".geojson"))
        return (layer, "application/geo+json") if layer is not None else None

    def _http_refused(self, connection: ServerConnection, status: http.HTTPStatus,
                      reason: str, body: str, **facts: str) -> Response:
        peer = connection.remote_address[0] if connection.remote_address else None
        log.warning("gateway.http_refused", reason=reason, status=status.value, peer=peer,
                    **facts)
        self.metrics.console_refusals.labels(reason=reason).inc()
        return connection.respond(status, body)

    def _readyz(self) -> Response:
        """200 when the service can do its work, else 503 naming what is down."""
        report = self.readiness() if self.readiness is not None else {
            "ready": False, "service": "this gateway runs without a service: nothing to "
                                       "report ready"}
        status = http.HTTPStatus.OK if report["ready"] else http.HTTPStatus.SERVICE_UNAVAILABLE
        return _response(status, json.dumps(report).encode() + b"\n", "application/json")

    def _origin_ok(self, headers: Headers) -> bool:
        origin = headers.get("Origin")
        if origin is None:
            return True  # not a browser; the token still has to be right
        if origin in self.origins:
            return True
        # Same origin: the page this gateway served (Host is already one of its names).
        try:
            return urlsplit(origin).netloc == headers.get("Host")
        except ValueError:  # not a URL at all
            return False

    # --- one console --------------------------------------------------------

    async def _session(self, ws: ServerConnection) -> None:
        _cap_send_buffer(ws)
        peer = ws.remote_address[0] if ws.remote_address else None
        bound = log.bind(peer=peer)
        address = peer or "-"
        self.per_peer[address] += 1
        try:
            await self._console(ws, peer, address, bound)
        finally:
            self.per_peer[address] -= 1
            if self.per_peer[address] <= 0:
                del self.per_peer[address]

    async def _console(self, ws: ServerConnection, peer: str | None, address: str,
                       bound: Any) -> None:
        if self.per_peer[address] > self.max_per_peer:
            await self._refused(
                ws, bound, "too_many_from_address", close=CLOSE_BUSY, outcome="busy",
                why=f"{self.max_per_peer} consoles already open from this address",
                message=f"{self.max_per_peer} consoles are already open from your address; "
                        "close one, or ask the administrator to raise "
                        "ECC_CONSOLE_MAX_PER_PEER (consoles behind one NAT or proxy)")
            return
        try:
            raw = await asyncio.wait_for(ws.recv(), HELLO_TIMEOUT)
            hello = validate_json(client_message, raw)
            if not isinstance(hello, Hello):
                raise ValueError("not a hello")
        except (TimeoutError, ValidationError, ValueError, ConnectionClosed):
            await self._refused(ws, bound, "bad_hello", close=CLOSE_BAD_HELLO,
                                outcome="invalid", why="no valid hello",
                                message='send {"type": "hello", "token": "..."} first')
            return
        principal = await self.store.principal(hello.token)
        if principal is None:
            await self._refused(ws, bound, "unauthorized", close=CLOSE_UNAUTHORIZED,
                                outcome="unauthorized", why="unknown or revoked token",
                                message="unknown or revoked token; ask an administrator for "
                                        "a new one")
            return
        bound = bound.bind(console=principal.name, role=principal.role)
        if principal.role not in CONSOLE_ROLES:
            await self._refused(ws, bound, "forbidden", close=CLOSE_FORBIDDEN,
                                outcome="forbidden", principal=principal,
                                why=f"a {principal.role} token opens no console",
                                message=f"a {principal.role} token cannot open a console; ask "
                                        "an administrator for a console token")
            return
        if sum(1 for s in self.sessions if s.token == hello.token) >= self.max_per_token:
            await self._refused(
                ws, bound, "too_many_consoles", close=CLOSE_BUSY, outcome="busy",
                principal=principal,
                why=f"{self.max_per_token} consoles already open on this token",
                message=f"this token already has {self.max_per_token} consoles open; close "
                        "one, or ask an administrator for a token of your own")
            return
        if self.waiting >= self.max_waiting:
            retry = round(random.uniform(1.0, 5.0), 1)
            await self._refused(ws, bound, "busy", close=CLOSE_BUSY,
                                message=f"many consoles are connecting; retry in {retry} s")
            return
        session = ConsoleSession(self.queue_size, ws, hello.token, principal, peer)
        self.sessions.add(session)  # before the snapshot: see the module docstring
        try:
            self.waiting += 1
            try:
                async with self.starting:  # the store reads only; the send is below
                    ordering, frames, session.cursor = await self._start(hello, principal)
            finally:
                self.waiting -= 1
            try:
                async with asyncio.timeout(self.start_timeout):
                    for frame in frames:
                        await ws.send(frame)
            except TimeoutError:
                self.metrics.console_refusals.labels(reason="start_stalled").inc()
                bound.warning("gateway.console_stalled", phase="start",
                              seconds=self.start_timeout,
                              buffered=_buffered(ws))
                ws.transport.abort()  # it reads nothing: no close handshake to wait for
                return
            del frames
            bound.info("gateway.console_joined", seq=ordering.baseline)
            await audit_connection(self.store, principal, peer, "console.open", "ok",
                                   f"joined at seq {ordering.baseline}")
            caller = Caller(principal, peer)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._send_live(ws, session, ordering))
                tg.create_task(self._send_positions(ws, session))
                tg.create_task(self._receive(ws, caller))
        except* (ConnectionClosed, _Gone):
            pass
        except* _Overflow:
            bound.warning("gateway.console_resync", queue=self.queue_size)
            await _resync(ws)
        finally:
            self.sessions.discard(session)
            bound.info("gateway.console_left")

    async def _start(
        self, hello: Hello, principal: Principal
    ) -> tuple[Ordering, list[str | Iterator[str]], int]:
        """What a new console is sent first (a fragmented frame is an iterator, cut from
        the shared snapshot as it is sent): the welcome and its snapshot, or the deltas
        it missed; the ordering they leave it at, and the position tick (0 on a resume:
        its first ``positions`` then holds every unit)."""
        head = await self.store.head()
        since = hello.since
        if since is not None and since <= head and head - since <= RESUME_LIMIT:
            missed = await self.store.read_all(after=since, limit=RESUME_LIMIT)
            frames: list[str | Iterator[str]] = [_welcome(principal, "resume", self.sla, self.types,
                                                        self.rules)]
            ordering = Ordering(since)
            views = Views(self.store)  # the views as of each missed event, not the live ones
            for event in missed:
                if ordering.admit(event.seq) and has_view(event.stream_id):
                    view = await views.after(event)
                    if console_visible(event):
                        frames.append(delta_frame(event, view))
            return ordering, frames, 0
        cached = self._snapshot
        tick = self.positions.tick_no
        if cached is None or cached[0] != head or self._snapshot_tick != tick:
            # Read after the session registered for live deltas, so the seq it is at
            # (head, or later) leaves no gap; a cached one at the current head neither.
            seq, incidents, units, alerts = await self.store.console_snapshot()
            tick, positions = self.positions.snapshot()
            cached = (seq, Snapshot(seq=seq, incidents=snapshot_views(incidents), units=units,
                                    alerts=alerts, positions=positions).model_dump_json())
            self._snapshot, self._snapshot_tick = cached, tick
        seq, snapshot = cached
        return Ordering(seq), [_welcome(principal, "snapshot", self.sla, self.types, self.rules),
                               _fragments(snapshot, SNAPSHOT_FRAGMENT)], self._snapshot_tick

    async def _send_live(
        self, ws: ServerConnection, session: ConsoleSession, ordering: Ordering
    ) -> None:
        overflow = asyncio.ensure_future(session.overflowed.wait())
        get: asyncio.Future[tuple[int, str]] | None = None
        try:
            while True:
                check_cancelled()
                get = asyncio.ensure_future(session.queue.get())
                done, _ = await asyncio.wait({get, overflow}, return_when=asyncio.FIRST_COMPLETED)
                if overflow in done:
                    raise _Overflow
                seq, frame = get.result()
                if ordering.admit(seq):
                    try:
                        async with asyncio.timeout(self.send_stall):
                            await ws.send(frame)
                    except TimeoutError:
                        raise _Overflow from None
        finally:
            overflow.cancel()
            if get is not None:
                get.cancel()

    async def _send_positions(self, ws: ServerConnection, session: ConsoleSession) -> None:
        """At most one ``positions`` message per tick, with what moved since the last one
        this console got; a socket that does not take it in ``send_stall``: resync."""
        if session.cursor < self.positions.tick_no:
            session.moved.set()  # a resume, or ticks while the snapshot was sent
        while True:
            await session.moved.wait()
            session.moved.clear()
            session.cursor, frame = self.positions.since(session.cursor)
            if frame is None:
                continue
            try:
                async with asyncio.timeout(self.send_stall):
                    await ws.send(frame)
            except TimeoutError:
                raise _Overflow from None

    async def _receive(self, ws: ServerConnection, caller: Caller) -> None:
        """Commands and queries, one at a time, each answered with a result."""
        async for raw in ws:
            try:
                msg = validate_json(client_message, raw)
            except ValidationError as exc:
                refused = _as_refused_command(raw, _first_problem(exc))
                if refused is not None and self.commands is not None:
                    # a command the console can match to its answer: refused and audited
                    # like any other, whatever its frame held
                    await self.commands.refuse(caller, refused, "invalid", refused.args["why"])
                    await ws.send(Result(request_id=refused.request_id, ok=False,
                                         code="invalid", message=refused.args["why"])
                                  .model_dump_json())
                    continue
                await ws.send(Error(code="invalid", message=_first_problem(exc))
                              .model_dump_json())
                continue
            if isinstance(msg, Hello):
                await ws.send(Error(code="invalid", message="already said hello")
                              .model_dump_json())
                continue
            if self.commands is None:
                result = Result(request_id=msg.request_id, ok=False, code="error",
                                message="this gateway takes no commands")
            elif isinstance(msg, CommandRequest):
                result = await self.commands.run(caller, msg)
            else:
                assert isinstance(msg, QueryRequest)
                result = await self.commands.query(caller, msg)
            await ws.send(result.model_dump_json())
        raise _Gone  # the console closed: stop sending to it


class _Overflow(Exception):
    """The console fell behind: resync it."""


class _Gone(Exception):
    """The console closed the connection."""


def _welcome(principal: Principal, mode: Literal["snapshot", "resume"],
             sla: dict[str, float] | None, types: list[TypeInfo],
             rules: list[KeywordRule]) -> str:
    return Welcome(name=principal.name, role=principal.role, agency=principal.agency,
                   mode=mode, commands=allowed_commands(principal.role, principal.agency),
                   sla=sla, types=types, rules=rules).model_dump_json()


def _as_refused_command(raw: str | bytes, why: str) -> CommandRequest | None:
    """A frame that failed validation but names a command and a request id: what it
    asked, as a request the audit log can hold (its args replaced by the reason), so
    that the console gets an answer it can match and the refusal is on record."""
    try:
        frame = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(frame, dict) or frame.get("type") != "command":
        return None
    request_id, name = frame.get("request_id"), frame.get("name")
    if not isinstance(request_id, str) or not isinstance(name, str):
        return None
    name = _NAME_SAFE.sub("_", name)[:64]
    if _NAME.fullmatch(name) is None:
        name = "unknown.command"
    return CommandRequest(type="command", request_id=clean(request_id)[:64] or "-",
                          name=name, args={"why": why})


_NAME_SAFE = re.compile(r"[^a-z_.]")
_NAME = re.compile(r"[a-z][a-z_]{0,30}\.[a-z][a-z_]{0,30}")


def _fragments(frame: str, size: int) -> Iterator[str]:
    """``frame`` in pieces of ``size`` characters, sent as one fragmented message: each
    piece waits for the socket to drain, so a console that does not read never makes
    the gateway buffer the whole snapshot."""
    for at in range(0, len(frame), size):
        yield frame[at:at + size]


def _buffered(ws: ServerConnection) -> int:
    """Bytes the gateway holds for this console (its transport's write buffer)."""
    return ws.transport.get_write_buffer_size() if ws.transport is not None else 0


def _first_problem(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "message"
    return f"{where}: {err['msg']}; see docs/protocol.md (console websocket)"


async def _resync(ws: ServerConnection) -> None:
    """Tell a console it fell behind and drop it; abort if it cannot even take that."""
    try:
        async with asyncio.timeout(1.0):
            await ws.send(Resync(reason="too far behind; reconnect with since").model_dump_json())
            await ws.close(CLOSE_RESYNC, "resync")
    except (TimeoutError, ConnectionClosed):
        ws.transport.abort()


async def _refuse(ws: ServerConnection, code: int, error: str, message: str) -> None:
    with contextlib.suppress(ConnectionClosed):
        await ws.send(Error(code=error, message=message).model_dump_json())
        await ws.close(code, error)


def _csp(img_sources: tuple[str, ...] = ()) -> str:
    """The pages' Content-Security-Policy: only this gateway, and for images the operator's
    tile servers (the city file's [map] tiles) too."""
    img = " ".join(("'self'", "data:", *img_sources))
    return ("default-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; "
            f"script-src 'self' 'unsafe-inline'; img-src {img}")


def _response(status: http.HTTPStatus, body: bytes, content_type: str, *,
              csp: str | None = None) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", csp or _csp()),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".geojson": "application/geo+json", ".json": "application/json",
                ".svg": "image/svg+xml", ".html": "text/html; charset=utf-8",
                ".png": "image/png"}
# the vendored libraries' folders (consoles/static/vendor: make vendor)
STATIC_FOLDERS = ("vendor/leaflet/", "vendor/leaflet/images/")


def _static(name: str) -> tuple[bytes, str] | None:
    """A file of consoles/static by its plain name (no dot files), or of a vendored
    library's folder; None for anything else."""
    folder = max((f for f in STATIC_FOLDERS if name.startswith(f)), key=len, default="")
    rest = name.removeprefix(folder)
    if "/" in rest or "\\" in rest or rest.startswith(".") or ".." in rest:
        return None
    kind = STATIC_TYPES.get(name[name.rfind("."):] if "." in name else "")
    if kind is None:
        return None
    item = resources.files("consoles").joinpath("static", *folder.split("/")[:-1], rest)
    if not item.is_file():
        return None
    return item.read_bytes(), kind


def _bound_port(server: Server) -> int:
    for sock in server.sockets:
        return int(sock.getsockname()[1])
    raise RuntimeError("gateway is not listening")


# The kernel's send buffer for one console. Left to autotune, Linux lets it grow to
# 4 MB: a thousand consoles on thin links could hold 4 GB, and a frozen console would
# swallow minutes of deltas before its queue filled and it was told to resync.
CONSOLE_SNDBUF = 256 * 1024


def _cap_send_buffer(ws: ServerConnection) -> None:
    sock = ws.transport.get_extra_info("socket") if ws.transport is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CONSOLE_SNDBUF)
