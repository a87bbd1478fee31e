"""Shell: the HTTP ingress for platforms that speak HTTP rather than NATS or MQTT.

Starlette on uvicorn, inside ECC's event loop. Each route checks the record at
once (so the platform gets a clear 400 with the reason, and the bad bytes are
dead-lettered), then publishes it on the same ingress subject the NATS door
uses and answers 202 only after the broker has stored it: an acknowledged
record is never lost.

* ``POST /v1/calls``: a hotline call record (JSON, :class:`adapters.hotline.CallRecord`);
* ``POST /v1/video/detections``: a detection from a video analytics platform
  (JSON, :class:`adapters.video.Webhook`);
* ``POST /v1/cap``: a CAP 1.0-1.2 alert (XML);
* ``POST /v1/eido``: a NENA EIDO document (JSON, :mod:`adapters.eido`) from another
  agency's CAD;
* ``GET /healthz`` (liveness), ``GET /readyz`` (readiness) and ``GET /metrics``
  (Prometheus), as on the console gateway: see docs/operations.md.

Every POST needs ``Authorization: Bearer <token>`` of a token with the role
``adapter`` (``ecc token create --role adapter --name "119 platform"``) or
``admin``; revoking the token shuts the platform out at its next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import structlog
import uvicorn
from nats.js import JetStreamContext
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.area import Area
from adapters.cap import MAX_ALERT_BYTES, CapRejected, parse_cap, understand
from adapters.cap_trust import Trust
from adapters.eido import MAX_EIDO_BYTES
from adapters.ingest import parse_call, parse_handoff
from command.bus import Undeliverable, dead_letter_bytes
from command.metrics import Metrics
from command.model import MAX_SIGNAL_BYTES
from command.store import Store
from command.subjects import Namespace

log = structlog.get_logger("ecc.ingress")

ROLES = frozenset({"adapter", "admin"})
CAP_LIMIT = MAX_ALERT_BYTES  # 4 MiB: real national alerts with warning polygons reach ~1 MB
WHAT = {"cap": "alert", "eido": "document"}  # what one body is, in the 413's words


class _TooLarge(Exception):
    def __init__(self, size: int | None) -> None:
        super().__init__(size)
        self.size = size  # None: a streamed body, stopped past the limit


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: ``ecc up`` owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


Check = Callable[[bytes], tuple[str, str]]  # body -> (message id, what was understood)


class Ingress:
    """The HTTP door. ``await ingress.run()``; cancel it to stop."""

    def __init__(self, store: Store, js: JetStreamContext, ns: Namespace, *,
                 host: str = "127.0.0.1", port: int = 0, metrics: Metrics | None = None,
                 readiness: Callable[[], dict[str, Any]] | None = None,
                 cap_trust: Trust | None = None, area: Area | None = None) -> None:
        self.store = store
        self.js = js
        self.ns = ns
        self.host = host
        self.port = port
        self.metrics = metrics if metrics is not None else Metrics()
        self.readiness = readiness
        self.ready = asyncio.Event()
        self.app = Starlette(routes=[
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.scrape, methods=["GET"]),
            Route("/v1/calls", self._door("hotline", MAX_SIGNAL_BYTES, check_call),
                  methods=["POST"]),
            Route("/v1/video/detections", self._door("video", MAX_SIGNAL_BYTES, check_video),
                  methods=["POST"]),
            Route("/v1/cap", self._door("cap", CAP_LIMIT,
                                        lambda body: check_cap(body, cap_trust, area)),
                  methods=["POST"]),
            Route("/v1/eido", self._door("eido", MAX_EIDO_BYTES, check_eido),
                  methods=["POST"]),
        ])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(self, request: Request) -> Response:
        """200 when the service can do its work, else 503 naming what is down."""
        report = self.readiness() if self.readiness is not None else {
            "ready": False, "service": "this ingress runs without a service: nothing to "
                                       "report ready"}
        return JSONResponse(report, status_code=200 if report["ready"] else 503)

    async def scrape(self, request: Request) -> Response:
        body, content_type = self.metrics.render()
        return Response(body, headers={"Content-Type": content_type})

    def _door(self, kind: str, limit: int,
              check: Check) -> Callable[[Request], Awaitable[Response]]:
        async def door(request: Request) -> Response:
            who = await self._principal(request)
            if isinstance(who, Response):
                return who
            try:
                body = await _read(request, limit)
            except _TooLarge as exc:
                what = WHAT.get(kind, "record")
                size = f"{exc.size} bytes" if exc.size is not None else f"over {limit} bytes"
                return _error(413, f"the {what} is {size}; the limit is {limit} bytes")
            try:
                # CPU-bound (a 4 MiB CAP alert: signature, schema, geometry): off the loop
                msg_id, understood = await asyncio.to_thread(check, body)
            except Undeliverable as exc:
                await dead_letter_bytes(self.js, self.ns, body, kind, exc.code, exc.reason,
                                        f"POST {request.url.path} by {who}")
                log.warning("ingress.refused", kind=kind, by=who, reason=exc.reason)
                return _error(400, exc.reason)
            ack = await self.js.publish(self.ns.ingress(kind), body,
                                        headers={"Nats-Msg-Id": f"{kind}:{msg_id}"})
            log.info("ingress.accepted", kind=kind, by=who, id=msg_id, seq=ack.seq,
                     duplicate=ack.duplicate)
            return JSONResponse({"accepted": msg_id, "seq": ack.seq,
                                 "duplicate": bool(ack.duplicate), "understood": understood},
                                status_code=202)
        return door

    async def _principal(self, request: Request) -> str | Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _error(401, "send Authorization: Bearer <token>; an admin creates one "
                               "with: ecc token create --role adapter --name <platform>")
        principal = await self.store.principal(token.strip())
        if principal is None:
            return _error(401, "unknown or revoked token; ask an admin for a new one")
        if principal.role not in ROLES:
            return _error(403, f"a {principal.role} token cannot feed records; use a token "
                               "with the role adapter")
        return principal.name

    async def run(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        server = _QuietServer(uvicorn.Config(self.app, log_config=None, lifespan="off",
                                             access_log=False, timeout_graceful_shutdown=2))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started and not serving.done():
                await asyncio.sleep(0.01)
            self.ready.set()
            log.info("ingress.listening", url=self.url)
            await asyncio.shield(serving)
        finally:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(serving, 5)
            sock.close()


async def _read(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge(None)
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, reason: str) -> Response:
    return JSONResponse({"error": reason}, status_code=status)


def check_call(body: bytes) -> tuple[str, str]:
    record = parse_call(body)
    return f"call-{record.call_id}", f"call {record.call_id} from {record.platform}"


def check_video(body: bytes) -> tuple[str, str]:
    from adapters.video import VideoRejected, parse_webhook
    try:
        d = parse_webhook(body)
    except VideoRejected as exc:
        raise Undeliverable("invalid", exc.reason) from exc
    return (f"{d.platform}-{d.camera}-{d.object_id}-{d.phase}-{d.at.timestamp():.3f}",
            f"{d.label} on camera {d.camera}")


def check_cap(body: bytes, trust: Trust | None = None,
              area: Area | None = None) -> tuple[str, str]:
    """The alert's message id and what ECC will do with it (signature, schema, placement:
    "outside the city's area" when it will be dropped); raises Undeliverable with the
    check's code. The id carries the content digest, so a second copy with other content
    reaches the adapter (which dead-letters it as ``cap_conflict``) instead of being
    dropped by the broker as a duplicate."""
    try:
        alert = parse_cap(body, trust, area)
    except CapRejected as exc:
        raise Undeliverable(exc.code, exc.reason) from exc
    return (f"{alert.sender}-{alert.identifier}-{alert.digest[:16]}",
            "; ".join(line.strip() for line in understand(alert))[:2000])


def check_eido(body: bytes) -> tuple[str, str]:
    signal = parse_handoff(body)
    where = signal.location
    return signal.signal_id, (f"incident {signal.details['incident_uid']} from "
                              f"{signal.details['agency']}: {signal.category} at "
                              f"{where.lat:.4f}, {where.lon:.4f}")[:2000]
