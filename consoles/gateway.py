"""Shell: the websocket gateway between the event stream and the consoles.

One ordered JetStream consumer on EVENTS feeds every connected console. A
console connects to ``/ws``, sends ``hello`` with its token (and the last seq
it saw, if any), and gets a snapshot of open incidents (or exactly the deltas
it missed) and then live deltas in seq order.

Gap-free by construction: a session registers for live deltas *before* it
reads the snapshot, and every delta at or below the snapshot's seq is
dropped. Seq order is commit order (see command/store.py) and events reach
JetStream only after commit, so nothing falls between the two.

Backpressure: each console has a bounded queue. A console that falls that far
behind is sent ``resync`` and closed (its client reconnects with ``since``);
it never slows the others or grows the gateway's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import random
import socket
from collections.abc import Callable
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

from command.metrics import Metrics
from command.model import RecordedEvent
from command.store import Principal, Store
from command.subjects import Namespace
from command.tasks import check_cancelled
from consoles.authz import CONSOLE_ROLES, allowed_commands
from consoles.commands import Caller, ConsoleCommands, audit_connection
from consoles.protocol import (
    CLOSE_BAD_HELLO,
    CLOSE_BUSY,
    CLOSE_FORBIDDEN,
    CLOSE_RESYNC,
    CLOSE_UNAUTHORIZED,
    MAX_CLIENT_MESSAGE_BYTES,
    RESUME_LIMIT,
    CommandRequest,
    Delta,
    Error,
    FeedOrder,
    Hello,
    Ordering,
    QueryRequest,
    Result,
    Resync,
    Snapshot,
    Welcome,
    client_message,
    console_visible,
    delta_frame,
)

log = structlog.get_logger("ecc.gateway")

HELLO_TIMEOUT = 10.0
# A console whose socket takes longer than this to accept one frame is stalled.
SEND_STALL = 5.0


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
        queue_size: int = 1024,
        send_stall: float = SEND_STALL,
        commands: ConsoleCommands | None = None,
        max_per_token: int = 8,
        max_starting: int = 16,
        max_waiting: int = 256,
        revoke_check: float = 2.0,
        sla: dict[str, float] | None = None,
        metrics: Metrics | None = None,
        readiness: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.store = store
        self.nc = nc
        self.ns = ns
        self.host = host
        self.port = port
        self.origins = origins
        self.queue_size = queue_size
        self.send_stall = send_stall
        self.sessions: set[ConsoleSession] = set()
        self.commands = commands
        self.max_per_token = max_per_token
        # A reconnect storm (a thousand consoles after a network cut) queues for a few
        # snapshot slots; past max_waiting, consoles are told to come back in a moment.
        self.starting = asyncio.Semaphore(max_starting)
        self.max_waiting = max_waiting
        self.waiting = 0
        self.revoke_check = revoke_check
        self.sla = sla
        self.ready = asyncio.Event()
        self.feed = FeedOrder()
        self._page = resources.files("consoles").joinpath("static/index.html").read_bytes()
        self.metrics = metrics if metrics is not None else Metrics()
        self.metrics.console_connections.set_function(lambda: len(self.sessions))
        self.readiness = readiness

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
        try:
            async with serve(
                self._session,
                self.host,
                self.port,
                process_request=self._http,
                max_size=MAX_CLIENT_MESSAGE_BYTES,
                ping_interval=20,
                ping_timeout=20,
            ) as server:
                self.port = _bound_port(server)
                self.ready.set()
                log.info("gateway.listening", url=self.url)
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(server.serve_forever())
                    tg.create_task(self._watch_tokens())
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

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

    # --- the live feed ------------------------------------------------------

    async def _on_event(self, msg: Msg) -> None:
        try:
            event = RecordedEvent.model_validate_json(msg.data)
        except ValidationError:
            log.error("gateway.bad_event", subject=msg.subject)
            return
        verdict = self.feed.observe(event.seq)
        if verdict == "duplicate" or not console_visible(event):
            return
        if verdict == "late":
            # Published out of seq order (a relay retry): consoles past it would drop
            # it, so every console resyncs and reads it from the store.
            log.warning("gateway.late_event", seq=event.seq, head=self.feed.head)
            for session in self.sessions:
                session.overflowed.set()
            return
        frame = delta_frame(event)
        for session in self.sessions:
            session.offer(event.seq, frame)

    # --- HTTP: the page, health, metrics, and the websocket door -------------

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/ws":
            if not self._origin_ok(request.headers):
                log.warning("gateway.origin_refused", origin=request.headers.get("Origin"))
                return connection.respond(http.HTTPStatus.FORBIDDEN, "origin not allowed\n")
            return None
        if path == "/":
            return _response(http.HTTPStatus.OK, self._page, "text/html; charset=utf-8")
        if path.startswith("/static/"):
            found = _static(path.removeprefix("/static/"))
            if found is not None:
                return _response(http.HTTPStatus.OK, *found)
        if path == "/healthz":  # liveness: the event loop answered
            return _response(http.HTTPStatus.OK, b"ok\n", "text/plain")
        if path == "/readyz":
            return self._readyz()
        if path == "/metrics":
            return _response(http.HTTPStatus.OK, *self.metrics.render())
        return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")

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
        # Same origin: the page this gateway served.
        return urlsplit(origin).netloc == headers.get("Host")

    # --- one console --------------------------------------------------------

    async def _session(self, ws: ServerConnection) -> None:
        _cap_send_buffer(ws)
        peer = ws.remote_address[0] if ws.remote_address else None
        bound = log.bind(peer=peer)
        try:
            raw = await asyncio.wait_for(ws.recv(), HELLO_TIMEOUT)
            hello = client_message.validate_json(raw)
            if not isinstance(hello, Hello):
                raise ValueError("not a hello")
        except (TimeoutError, ValidationError, ValueError, ConnectionClosed):
            await _refuse(ws, CLOSE_BAD_HELLO, "bad_hello",
                          'send {"type": "hello", "token": "..."} first')
            return
        principal = await self.store.principal(hello.token)
        if principal is None:
            bound.warning("gateway.unauthorized")
            await audit_connection(self.store, None, peer, "console.open", "unauthorized",
                                   "unknown or revoked token")
            await _refuse(ws, CLOSE_UNAUTHORIZED, "unauthorized",
                          "unknown or revoked token; ask an administrator for a new one")
            return
        bound = bound.bind(console=principal.name, role=principal.role)
        if principal.role not in CONSOLE_ROLES:
            bound.warning("gateway.forbidden_role")
            await audit_connection(self.store, principal, peer, "console.open", "forbidden",
                                   f"a {principal.role} token opens no console")
            await _refuse(ws, CLOSE_FORBIDDEN, "forbidden",
                          f"a {principal.role} token cannot open a console; ask an "
                          "administrator for a console token")
            return
        if sum(1 for s in self.sessions if s.token == hello.token) >= self.max_per_token:
            bound.warning("gateway.too_many_consoles", limit=self.max_per_token)
            await audit_connection(self.store, principal, peer, "console.open", "busy",
                                   f"{self.max_per_token} consoles already open on this token")
            await _refuse(ws, CLOSE_BUSY, "too_many_consoles",
                          f"this token already has {self.max_per_token} consoles open; close "
                          "one, or ask an administrator for a token of your own")
            return
        if self.waiting >= self.max_waiting:
            retry = round(random.uniform(1.0, 5.0), 1)
            bound.info("gateway.busy", waiting=self.waiting)
            await _refuse(ws, CLOSE_BUSY, "busy", f"many consoles are connecting; "
                                                  f"retry in {retry} s")
            return
        session = ConsoleSession(self.queue_size, ws, hello.token, principal, peer)
        self.sessions.add(session)  # before the snapshot: see the module docstring
        try:
            self.waiting += 1
            try:
                async with self.starting:
                    ordering = await self._start(ws, hello, principal)
            finally:
                self.waiting -= 1
            bound.info("gateway.console_joined", seq=ordering.baseline)
            await audit_connection(self.store, principal, peer, "console.open", "ok",
                                   f"joined at seq {ordering.baseline}")
            caller = Caller(principal, peer)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._send_live(ws, session, ordering))
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
        self, ws: ServerConnection, hello: Hello, principal: Principal
    ) -> Ordering:
        head = await self.store.head()
        since = hello.since
        if since is not None and since <= head and head - since <= RESUME_LIMIT:
            missed = await self.store.read_all(after=since, limit=RESUME_LIMIT)
            await ws.send(_welcome(principal, "resume", self.sla))
            ordering = Ordering(since)
            for event in missed:
                if ordering.admit(event.seq) and console_visible(event):
                    await ws.send(Delta(seq=event.seq, event=event).model_dump_json())
            return ordering
        seq, incidents, units = await self.store.snapshot()
        await ws.send(_welcome(principal, "snapshot", self.sla))
        await ws.send(Snapshot(seq=seq, incidents=incidents, units=units).model_dump_json())
        return Ordering(seq)

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

    async def _receive(self, ws: ServerConnection, caller: Caller) -> None:
        """Commands and queries, one at a time, each answered with a result."""
        async for raw in ws:
            try:
                msg = client_message.validate_json(raw)
            except ValidationError as exc:
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
             sla: dict[str, float] | None) -> str:
    return Welcome(name=principal.name, role=principal.role, agency=principal.agency,
                   mode=mode, commands=allowed_commands(principal.role, principal.agency),
                   sla=sla).model_dump_json()


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


def _response(status: http.HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy",
             "default-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; "
             "script-src 'self' 'unsafe-inline'"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".geojson": "application/geo+json", ".json": "application/json",
                ".svg": "image/svg+xml", ".html": "text/html; charset=utf-8"}


def _static(name: str) -> tuple[bytes, str] | None:
    """A file of consoles/static by its plain name (no folders, no dot files), or None."""
    if "/" in name or "\\" in name or name.startswith(".") or ".." in name:
        return None
    kind = STATIC_TYPES.get(name[name.rfind("."):] if "." in name else "")
    if kind is None:
        return None
    item = resources.files("consoles").joinpath("static", name)
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
