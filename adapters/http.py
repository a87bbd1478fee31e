"""Shell: the HTTP ingress for platforms that speak HTTP rather than NATS or MQTT.

Starlette on uvicorn, inside ECC's event loop. Each route checks the record at
once (so the platform gets a clear 400 with the reason, and the bad bytes are
dead-lettered), then publishes it on the same ingress subject the NATS door
uses and answers 202 only after the broker has stored it: an acknowledged
record is never lost.

* ``POST /v1/calls``: a hotline call record (JSON, :class:`adapters.hotline.CallRecord`);
  one with an address and no coordinates is placed by the city's gazetteer;
* ``GET /v1/places?q=<text>``: the gazetteer's candidates for an address as typed;
* ``POST /v1/video/detections``: a detection from a video analytics platform
  (JSON, :class:`adapters.video.Webhook`);
* ``POST /v1/cap``: a CAP 1.0-1.2 alert (XML);
* ``POST /v1/eido``: a NENA EIDO document (JSON, :mod:`adapters.eido`) from another
  agency's CAD;
* ``GET /healthz`` (liveness), ``GET /readyz`` (readiness) and ``GET /metrics``
  (Prometheus), as on the console gateway: see docs/operations.md.

Every POST needs ``Authorization: Bearer <token>`` of a live token with the role
``adapter`` whose kinds include the door (``ecc token create --role adapter --name
"119 platform" --kinds hotline``), and a body of the door's content type
(:data:`JSON_TYPES` or :data:`XML_TYPES`, a charset parameter is fine). An admin's token
feeds nothing: records come in under the platform's own, revocable name. Revoking a
token, or its expiry, shuts the platform out at its next request.

Every refusal (400, 401, 403, 413, 415) is logged as ``ingress.refused`` with the peer,
door, token name and reason, and counted in ``ecc_ingress_refusals_total{door,status}``;
the authentication failures (401, 403) are written to the audit log too, folded per peer
and status (:class:`command.refusals.Fold`: the first at once, then one row "N more in
the last 10 s").
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
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
from adapters.gazetteer import MAX_QUERY, Gazetteer
from adapters.hotline import Unplaceable, to_signal
from adapters.ingest import parse_call, parse_handoff
from adapters.placement import candidate_json
from command.bus import Undeliverable, dead_letter_bytes
from command.metrics import Metrics
from command.model import MAX_SIGNAL_BYTES
from command.refusals import Fold, Folded
from command.settings import builtin_catalogue
from command.store import Principal, Store
from command.subjects import Namespace
from command.tokens import door_refusal

log = structlog.get_logger("ecc.ingress")

CAP_LIMIT = MAX_ALERT_BYTES  # 4 MiB: real national alerts with warning polygons reach ~1 MB
WHAT = {"cap": "alert", "eido": "document"}  # what one body is, in the 413's words
JSON_TYPES = ("application/json",)  # and any application/<x>+json (RFC 6839)
XML_TYPES = ("application/xml", "text/xml", "application/cap+xml")  # and <x>/<y>+xml
AUDIT_FOLD_S = 10.0


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
                 cap_trust: Trust | None = None, area: Area | None = None,
                 gazetteer: Gazetteer | None = None) -> None:
        self.store = store
        self.js = js
        self.ns = ns
        self.host = host
        self.port = port
        self.metrics = metrics if metrics is not None else Metrics()
        self.readiness = readiness
        self.ready = asyncio.Event()
        self.fold = Fold(AUDIT_FOLD_S)
        self.gazetteer = gazetteer
        self.app = Starlette(routes=[
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.scrape, methods=["GET"]),
            Route("/v1/calls", self._door("hotline", MAX_SIGNAL_BYTES,
                                          lambda body: check_call(body, gazetteer)),
                  methods=["POST"]),
            Route("/v1/places", self.places, methods=["GET"]),
            Route("/v1/video/detections", self._door("video", MAX_SIGNAL_BYTES, check_video),
                  methods=["POST"]),
            Route("/v1/cap", self._door("cap", CAP_LIMIT,
                                        lambda body: check_cap(body, cap_trust, area,
                                                               gazetteer),
                                        XML_TYPES),
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

    async def places(self, request: Request) -> Response:
        """``GET /v1/places?q=<address>``: the gazetteer's candidates for typed text (what
        the call taker picks from), for a token that may post calls."""
        who = await self._principal(request, "hotline")
        if isinstance(who, Response):
            return who
        if self.gazetteer is None:
            return JSONResponse({"error": "this ECC has no gazetteer ([gazetteer] in the city "
                                          "file)", "candidates": []}, status_code=404)
        text = request.query_params.get("q", "")[:MAX_QUERY]
        found = await asyncio.to_thread(self.gazetteer.lookup, text)
        return JSONResponse({"text": found.text, "reason": found.reason,
                             "candidates": [candidate_json(c) for c in found.candidates]})

    async def scrape(self, request: Request) -> Response:
        body, content_type = self.metrics.render()
        return Response(body, headers={"Content-Type": content_type})

    def _door(self, kind: str, limit: int, check: Check,
              types: tuple[str, ...] = JSON_TYPES) -> Callable[[Request], Awaitable[Response]]:
        async def door(request: Request) -> Response:
            who = await self._principal(request, kind)
            if isinstance(who, Response):
                return who
            wrong = content_refusal(request.headers.get("content-type"), types)
            if wrong is not None:
                return await self._refuse(request, kind, 415, wrong, who)
            try:
                body = await _read(request, limit)
            except _TooLarge as exc:
                what = WHAT.get(kind, "record")
                size = f"{exc.size} bytes" if exc.size is not None else f"over {limit} bytes"
                return await self._refuse(
                    request, kind, 413, f"the {what} is {size}; the limit is {limit} bytes",
                    who)
            try:
                # CPU-bound (a 4 MiB CAP alert: signature, schema, geometry): off the loop
                msg_id, understood = await asyncio.to_thread(check, body)
            except Undeliverable as exc:
                await dead_letter_bytes(self.js, self.ns, body, kind, exc.code, exc.reason,
                                        f"POST {request.url.path} by {who.name}")
                return await self._refuse(request, kind, 400, exc.reason, who)
            ack = await self.js.publish(self.ns.ingress(kind), body,
                                        headers={"Nats-Msg-Id": f"{kind}:{msg_id}"})
            log.info("ingress.accepted", kind=kind, by=who.name, id=msg_id, seq=ack.seq,
                     duplicate=ack.duplicate)
            return JSONResponse({"accepted": msg_id, "seq": ack.seq,
                                 "duplicate": bool(ack.duplicate), "understood": understood},
                                status_code=202)
        return door

    async def _principal(self, request: Request, door: str) -> Principal | Response:
        """The live adapter token that may post at ``door``, or the refusal (401, 403)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return await self._refuse(
                request, door, 401, "send Authorization: Bearer <token>; an admin creates "
                                    "one with: ecc token create --role adapter --name "
                                    f"<platform> --kinds {door}")
        principal = await self.store.principal(token.strip())
        if principal is None:
            return await self._refuse(
                request, door, 401, "unknown, revoked or expired token; ask an admin for a "
                                    "new one (ecc token rotate --name <platform>)")
        refused = door_refusal(principal.role, principal.kinds, door)
        if refused is not None:
            return await self._refuse(request, door, 403, refused, principal)
        return principal

    async def _refuse(self, request: Request, door: str, status: int, reason: str,
                      who: Principal | None = None) -> Response:
        """Answer ``status`` with ``reason``; log it, count it, and audit an authentication
        failure (folded per peer and status)."""
        peer = request.client.host if request.client else None
        log.warning("ingress.refused", door=door, status=status, peer=peer,
                    token=who.name if who else None, reason=reason)
        self.metrics.ingress_refusals.labels(door=door, status=str(status)).inc()
        if status in (401, 403):
            outcome = "unauthorized" if status == 401 else "forbidden"
            sample = _Sample(door, request.url.path, status, outcome, reason, who)
            if self.fold.admit(f"{peer}|{outcome}", time.monotonic(), sample):
                await self._audit_refusal(peer, sample, 1)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"error": reason}, status_code=status, headers=headers)

    async def _audit_refusal(self, peer: str | None, sample: _Sample, count: int) -> None:
        who = sample.who
        reason = sample.reason if count == 1 else (
            f"{count} more in the last {self.fold.interval:g} s; the last: {sample.reason}")
        await self.store.audit(
            actor=who.name if who else "(unknown token)", role=who.role if who else "-",
            agency=who.agency if who else None, peer=peer, command=f"ingress.{sample.door}",
            outcome=sample.outcome, reason=reason,
            args={"path": sample.path, "status": sample.status, "refusals": count})

    async def _write_folded(self, folded: list[Folded]) -> None:
        for f in folded:
            assert isinstance(f.sample, _Sample)
            peer = f.key.rpartition("|")[0] if "|" in f.key else f.key  # or the overflow's
            await self._audit_refusal(peer or None, f.sample, f.count)

    async def _flush_folded(self) -> None:
        """Write each peer's folded refusals once its interval is over."""
        while True:
            await asyncio.sleep(1.0)
            await self._write_folded(self.fold.due(time.monotonic()))

    async def run(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        server = _QuietServer(uvicorn.Config(self.app, log_config=None, lifespan="off",
                                             access_log=False, timeout_graceful_shutdown=2))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        flushing = asyncio.create_task(self._flush_folded())
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
            flushing.cancel()
            with contextlib.suppress(BaseException):
                await flushing
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._write_folded(self.fold.drain()), 5)
            sock.close()


@dataclass(frozen=True)
class _Sample:
    """One refusal, as its audit row shows it."""

    door: str
    path: str
    status: int
    outcome: str
    reason: str
    who: Principal | None


def content_refusal(content_type: str | None, accepted: tuple[str, ...]) -> str | None:
    """Why a body declared as ``content_type`` is refused at a door that takes
    ``accepted`` (and their ``+json`` / ``+xml`` kin), in words that say what to send; None
    when it is taken. Parameters (``; charset=utf-8``) are fine."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    suffix = "+xml" if any(a.endswith("xml") for a in accepted) else "+json"
    if media in accepted or (media.endswith(suffix) and "/" in media
                             and media.split("/", 1)[0] in ("application", "text")):
        return None
    said = f"Content-Type {media!r} is not taken here" if media \
        else "the request has no Content-Type"
    return (f"{said}; send the record as {' or '.join(accepted)} (a charset parameter is "
            "fine)")


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


def check_call(body: bytes, gazetteer: Gazetteer | None = None) -> tuple[str, str]:
    """The call's message id and what ECC understood (where an address without
    coordinates is placed, or why it is not); raises Undeliverable (a call with no
    coordinates where there is no gazetteer: ``unplaceable``)."""
    record = parse_call(body)
    said = f"call {record.call_id} from {record.platform}"
    if record.location is None:
        try:
            where = to_signal(record, (), gazetteer).location
        except Unplaceable as exc:
            raise Undeliverable("unplaceable", str(exc)) from exc
        said += (f": location unknown ({where.unknown})" if where.unknown else
                 f": {record.address!r} placed at {where.lat:.5f}, {where.lon:.5f}")
    return f"call-{record.call_id}", said[:2000]


def check_video(body: bytes) -> tuple[str, str]:
    from adapters.video import VideoRejected, parse_webhook
    try:
        d = parse_webhook(body)
    except VideoRejected as exc:
        raise Undeliverable("invalid", exc.reason) from exc
    return (f"{d.platform}-{d.camera}-{d.object_id}-{d.phase}-{d.at.timestamp():.3f}",
            f"{d.label} on camera {d.camera}")


def check_cap(body: bytes, trust: Trust | None = None, area: Area | None = None,
              gazetteer: Gazetteer | None = None) -> tuple[str, str]:
    """The alert's message id and what ECC will do with it (signature, schema, placement:
    "outside the city's area" when it will be dropped); raises Undeliverable with the
    check's code. The id carries the content digest, so a second copy with other content
    reaches the adapter (which dead-letters it as ``cap_conflict``) instead of being
    dropped by the broker as a duplicate."""
    try:
        alert = parse_cap(body, trust, area, gazetteer=gazetteer)
    except CapRejected as exc:
        raise Undeliverable(exc.code, exc.reason) from exc
    return (f"{alert.sender}-{alert.identifier}-{alert.digest[:16]}",
            "; ".join(line.strip() for line in understand(alert))[:2000])


def check_eido(body: bytes) -> tuple[str, str]:
    signal = parse_handoff(body, builtin_catalogue())  # the adapter reads it with its own
    where = signal.location
    return signal.signal_id, (f"incident {signal.details['incident_uid']} from "
                              f"{signal.details['agency']}: {signal.category} at "
                              f"{where.lat:.4f}, {where.lon:.4f}")[:2000]
