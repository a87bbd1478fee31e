"""Shell: the NATS JetStream bus. Streams, consumers, dead letters, publishing.

Streams (names from :class:`command.subjects.Namespace`):

=============  ===================  =====================================================
stream         subjects             why
=============  ===================  =====================================================
SIGNALS        ``<ns>.signal.>``     durability boundary for adapters: file, 7 days
EVENTS         ``<ns>.event.>``      transport of committed events; Postgres can rebuild it
DISPATCH       ``<ns>.dispatch.>``   durability boundary for orders to units: file, 7 days
UNITS          ``<ns>.unit.*.status`` durability boundary for crews' status reports: 7 days
POSITIONS      ``<ns>.unit.*.position`` last known position per unit (one per subject)
DEADLETTER     ``<ns>.deadletter.>`` what could not be accepted, with the reason: 30 days
INGRESS        ``<ns>.ingress.>``    raw calls, webhooks and CAP alerts for the adapters: 7 days
CAPSEEN        ``<ns>.capseen.<key>`` the digest of each CAP alert's first copy: 30 days
MQTT           the adapters' MQTT    what devices and camera platforms publish over MQTT,
               feeds                 as the adapters' specs name it: 1 day
WARNINGS       ``<ns>.warning.>``    CAP 1.2 public warnings ECC emitted: 30 days
=============  ===================  =====================================================

All are file-backed on a server with ``sync_interval: always``. The dedupe
window is 10 minutes; effects are exactly-once through the inbox table, not
through the window.

:func:`consume` is the one place that acks. A handler's ``decode`` raises
:class:`Undeliverable` for what can never be handled (dead-letter, then ack);
its ``handle`` commits a batch and returns (ack each, after the commit) or
raises (each message is retried alone: nak with backoff, dead-lettered once
deliveries run out, so a poison message never blocks the stream and is never
silently lost). An error whose ``permanent`` attribute is true (the database
refused the content: :class:`command.store.DataRejected`) is dead-lettered at
once with the code ``data_error``.

The adapters' consumers and the MQTT stream's subjects come from the adapters'
declarations (:class:`command.specs.AdapterSpec`), which the caller passes in.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import nats
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from command import natsauth
from command.specs import AdapterSpec, Feed
from command.subjects import Namespace
from command.tasks import check_cancelled

log = structlog.get_logger("ecc.bus")

T = TypeVar("T")

DAY = 24 * 3600.0
DUPLICATE_WINDOW = 600.0
# The server's max_payload: the largest message any stream takes. INGRESS and DEADLETTER
# hold whole CAP alerts (up to adapters.cap.MAX_ALERT_BYTES, 4 MiB: real national alerts
# with warning polygons reach ~1 MB) and their dead letters; every other stream keeps
# 1 MiB (and a signal its own MAX_SIGNAL_BYTES, far below it).
MAX_MSG_BYTES = 5 * 1024 * 1024
STREAM_MSG_BYTES = 1024 * 1024


class Undeliverable(Exception):
    """A message that can never be handled: dead-letter it with ``reason``."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# Every stream's short name, in the order stream_configs makes them.
STREAM_NAMES = ("SIGNALS", "EVENTS", "DISPATCH", "UNITS", "POSITIONS", "DEADLETTER", "INGRESS",
                "CAPSEEN", "MQTT", "WARNINGS")


def stream_configs(ns: Namespace, replicas: int = 1, *,
                   adapters: Sequence[AdapterSpec]) -> list[api.StreamConfig]:
    """Every stream's configuration; the MQTT stream keeps what the ``adapters``' MQTT
    feeds read (the sensor adapter's ``sensors.>``, the video adapter's events)."""
    mqtt = [feed.subject_in(ns) for spec in adapters for feed in spec.feeds
            if feed.stream == "MQTT"]

    def cfg(name: str, subject: str | list[str], max_age: float, description: str,
            per_subject: int | None = None, direct: bool = False,
            max_msg_size: int = STREAM_MSG_BYTES) -> api.StreamConfig:
        return api.StreamConfig(
            name=ns.stream(name),
            description=description,
            subjects=[subject] if isinstance(subject, str) else subject,
            storage=api.StorageType.FILE,
            retention=api.RetentionPolicy.LIMITS,
            # If byte or count limits are ever set, a full stream must refuse new
            # messages (the publisher gets an error and keeps its copy) rather than
            # silently drop old, unhandled ones. Today only max_age limits them.
            discard=api.DiscardPolicy.NEW,
            max_age=max_age,
            max_msg_size=max_msg_size,
            duplicate_window=DUPLICATE_WINDOW,
            num_replicas=replicas,
            max_msgs_per_subject=-1 if per_subject is None else per_subject,
            # crews' devices read their last order with a direct get (no consumer)
            allow_direct=direct,
        )

    return [
        cfg("SIGNALS", ns.signals, 7 * DAY, "Signals from adapters (durability boundary)"),
        cfg("EVENTS", ns.events, 1 * DAY, "Committed events from the event store"),
        cfg("DISPATCH", ns.dispatches, 7 * DAY, "Orders to field units (durability boundary)",
            direct=True),
        cfg("UNITS", ns.unit_statuses, 7 * DAY, "Status reports from crews (durability boundary)"),
        # latest wins: one position per unit is all anyone needs
        cfg("POSITIONS", ns.unit_positions, 1 * DAY, "Last known position of each unit",
            per_subject=1),
        cfg("DEADLETTER", ns.deadletters, 30 * DAY, "Messages that could not be accepted",
            max_msg_size=MAX_MSG_BYTES),
        cfg("INGRESS", ns.ingresses, 7 * DAY,
            "Raw hotline calls, video webhooks and CAP alerts (durability boundary)",
            max_msg_size=MAX_MSG_BYTES),
        # the first copy of each CAP alert (sender, identifier, sent) the cap adapter took,
        # by its content digest: a second copy with other content is a conflict
        cfg("CAPSEEN", f"{ns.prefix}.capseen.>", 30 * DAY,
            "Content digest of the first copy of each CAP alert", per_subject=1),
        # what devices and camera platforms publish over MQTT, kept for the adapters
        # (only what their feeds read: a camera platform's other topics are not kept)
        cfg("MQTT", mqtt, 1 * DAY, "Sensor readings and Frigate events from the MQTT listener"),
        cfg("WARNINGS", ns.warnings, 30 * DAY, "Public warnings ECC emitted (CAP 1.2)"),
    ]


async def ensure_streams(js: JetStreamContext, ns: Namespace, replicas: int = 1, *,
                         adapters: Sequence[AdapterSpec]) -> None:
    """Create the streams, or bring their settings up to date."""
    for config in stream_configs(ns, replicas, adapters=adapters):
        try:
            await js.stream_info(config.name or "")
        except NotFoundError:
            await js.add_stream(config)
            log.info("bus.stream_created", stream=config.name)
        else:
            await js.update_stream(config)


async def delete_streams(js: JetStreamContext, ns: Namespace) -> None:
    for name in STREAM_NAMES:
        try:
            await js.delete_stream(ns.stream(name))
        except NotFoundError:
            pass


async def connect(url: str, name: str, *, inbox_prefix: str | None = None) -> NATS:
    """A connection that reconnects for ever and logs what happens to it.

    ``url`` may carry a user and password (``nats://adapter-sensor:…@host:4222``);
    logs show it without the password. A component other than the service passes
    its own ``inbox_prefix`` (:func:`command.natsauth.inbox_prefix`): its grant lets it
    read replies there only. A refused user or password raises ``nats.errors.Error``.
    """
    shown = natsauth.redact(url)

    async def on_error(exc: Exception) -> None:
        log.warning("bus.error", error=str(exc) or type(exc).__name__)

    async def on_disconnect() -> None:
        if not nc.is_closed:  # a close we asked for is not news
            log.warning("bus.disconnected", url=shown)

    async def on_reconnect() -> None:
        log.info("bus.reconnected", url=shown)

    nc = NATS()
    await nc.connect(
        # a cluster: several URLs, comma-separated; the client fails over between them
        servers=[u.strip() for u in url.split(",") if u.strip()],
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,  # type: ignore[arg-type] # typed int, takes seconds
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        inbox_prefix=inbox_prefix or "_INBOX",  # nats-py's default
    )
    return nc


def _one_line(text: str, limit: int = 1000) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


async def dead_letter(
    js: JetStreamContext, ns: Namespace, msg: Msg, source: str, code: str, reason: str
) -> None:
    """Publish ``msg``'s original bytes to ``<ns>.deadletter.<source>`` with the reason.

    Waits for the broker's ack, so the caller may ack the original after it.
    """
    headers = {
        "Ecc-Reason-Code": code,
        "Ecc-Reason": _one_line(reason),
        "Ecc-Original-Subject": msg.subject,
    }
    meta = msg.metadata if msg.reply else None
    if meta is not None:
        headers["Ecc-Original-Stream"] = meta.stream
        headers["Ecc-Original-Seq"] = str(meta.sequence.stream)
        # One dead letter per original message, even if we crash and retry.
        headers["Nats-Msg-Id"] = f"dl-{meta.stream}-{meta.sequence.stream}"
    await js.publish(ns.deadletter(source), msg.data, headers=headers)


async def dead_letter_bytes(js: JetStreamContext, ns: Namespace, data: bytes, source: str,
                            code: str, reason: str, origin: str) -> None:
    """Dead-letter bytes that came from outside NATS (an HTTP request): ``origin`` says where."""
    await js.publish(ns.deadletter(source), data, headers={
        "Ecc-Reason-Code": code, "Ecc-Reason": _one_line(reason),
        "Ecc-Original-Subject": _one_line(origin, 200)})


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer. Limits are explicit; see docs/protocol.md."""

    stream: str
    durable: str
    subject: str
    batch: int = 64
    max_ack_pending: int = 1024
    max_deliver: int = 50  # failed deliveries before a message is dead-lettered
    ack_wait: float = 10.0


def consumer_config(spec: ConsumerSpec) -> api.ConsumerConfig:
    """The durable pull consumer of ``spec``, as :func:`consume` binds it."""
    return api.ConsumerConfig(
        durable_name=spec.durable,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=spec.ack_wait,
        # The broker redelivers for ever; ECC gives up on a message itself, and only
        # when handling it fails for a reason of its own (never while the database is
        # away: an emergency call waits out an outage of any length).
        max_deliver=-1,
        max_ack_pending=spec.max_ack_pending,
        deliver_policy=api.DeliverPolicy.ALL,
        filter_subject=spec.subject,
    )


def feed_consumer(feed: Feed, ns: Namespace) -> ConsumerSpec:
    """The durable pull consumer an adapter's ``feed`` is, in namespace ``ns``: what the
    service creates and the adapter binds to."""
    return ConsumerSpec(stream=ns.stream(feed.stream), durable=feed.durable,
                        subject=feed.subject_in(ns))


async def ensure_adapter_consumers(js: JetStreamContext, ns: Namespace,
                                   adapters: Sequence[AdapterSpec]) -> None:
    """Create every adapter's durable pull consumer that does not exist yet. Only the
    service may create consumers: an adapter's NATS user binds to these and pulls, and
    so can never make a push consumer (docs/security.md)."""
    for adapter in adapters:
        for feed in adapter.feeds:
            spec = feed_consumer(feed, ns)
            try:
                await js.consumer_info(spec.stream, spec.durable)
            except NotFoundError:
                await js.add_consumer(spec.stream, consumer_config(spec))
                log.info("bus.consumer_created", stream=spec.stream, durable=spec.durable)


class BatchHandler(Protocol[T]):
    """What a consumer loop drives. ``decode`` is pure and per message; ``handle``
    commits a whole batch in one transaction (one fsync for many messages)."""

    def decode(self, msg: Msg) -> T:
        """The message's value, or raise :class:`Undeliverable`."""
        ...

    async def handle(self, items: list[T]) -> None:
        """Commit the effects of ``items`` together; raise to have them retried."""
        ...

    def source_of(self, msg: Msg) -> str:
        """The source token to dead-letter ``msg`` under."""
        ...


def _backoff(delivered: int) -> float:
    return float(min(30.0, 0.25 * 2 ** min(delivered, 8)))


async def consume(
    js: JetStreamContext,
    ns: Namespace,
    spec: ConsumerSpec,
    handler: BatchHandler[Any],
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Pull batches from ``spec`` and settle each message. Runs until cancelled or ``stop``."""
    config = consumer_config(spec)

    async def subscribe() -> Any:
        """Bind to the durable consumer (creating it if missing), retrying while the
        broker cannot answer: one restarting, or a cluster electing a leader."""
        while True:
            try:
                return await js.pull_subscribe(spec.subject, durable=spec.durable,
                                               stream=spec.stream, config=config)
            except (TimeoutError, nats.errors.Error) as exc:
                if isinstance(exc, nats.errors.ConnectionClosedError):
                    raise
                log.warning("bus.subscribe_failed", stream=spec.stream, durable=spec.durable,
                            error=str(exc) or type(exc).__name__)
                await asyncio.sleep(1.0)

    sub = await subscribe()
    log.info("bus.consumer_started", stream=spec.stream, durable=spec.durable)
    failures = 0
    try:
        while stop is None or not stop.is_set():
            check_cancelled()
            try:
                msgs = await sub.fetch(spec.batch, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                failures = 0
                continue
            except nats.errors.ConnectionClosedError:
                return
            except nats.errors.Error as exc:
                # No responders, service unavailable: the broker is restarting or the
                # cluster is electing the consumer's leader. Nothing was taken; wait and
                # ask again. After a run of failures, bind afresh (the consumer may have
                # been lost with a single-copy stream's node).
                failures += 1
                log.warning("bus.fetch_failed", stream=spec.stream, durable=spec.durable,
                            failures=failures, error=str(exc) or type(exc).__name__)
                await asyncio.sleep(0.5)
                if failures % 10 == 0:
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()
                    sub = await subscribe()
                continue
            failures = 0
            try:
                await _settle(js, ns, spec, msgs, handler)
            except nats.errors.Error as exc:
                # A dead letter or an ack the broker did not take: the messages not
                # acked come back after ack_wait, and the inbox absorbs any repeat.
                log.warning("bus.settle_failed", stream=spec.stream, durable=spec.durable,
                            error=str(exc) or type(exc).__name__)
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def _settle(
    js: JetStreamContext,
    ns: Namespace,
    spec: ConsumerSpec,
    msgs: list[Msg],
    handler: BatchHandler[Any],
) -> None:
    """The one place that decides ack, nak or dead-letter.

    Undecodable messages are dead-lettered and acked at once. The rest are
    handled as one batch and acked after its commit; if the batch fails, each
    message is retried alone, so one poison message cannot hold back the others.
    """
    decoded: list[tuple[Msg, Any]] = []
    for msg in msgs:
        try:
            decoded.append((msg, handler.decode(msg)))
        except Undeliverable as exc:
            await dead_letter(js, ns, msg, handler.source_of(msg), exc.code, exc.reason)
            await msg.term()
            log.warning("bus.dead_lettered", subject=msg.subject, code=exc.code,
                        reason=exc.reason)
    if not decoded:
        return
    # Tell the broker the batch is being worked on, so a slow batch (a busy database)
    # is not handed to another process while this one is still on it; a process that
    # dies stops telling, and its batch comes back within ack_wait.
    working = asyncio.create_task(  # noqa: RUF006 - held here, cancelled below
        _working([m for m, _ in decoded], spec.ack_wait / 3))
    try:
        await _handle(js, ns, spec, decoded, handler)
    finally:
        working.cancel()


async def _working(msgs: list[Msg], every: float) -> None:
    while True:
        await asyncio.sleep(every)
        for msg in msgs:
            with contextlib.suppress(Exception):
                await msg.in_progress()


async def _handle(
    js: JetStreamContext,
    ns: Namespace,
    spec: ConsumerSpec,
    decoded: list[tuple[Msg, Any]],
    handler: BatchHandler[Any],
) -> None:
    try:
        await handler.handle([item for _, item in decoded])
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if len(decoded) == 1 or getattr(exc, "retryable", False):
            # A transient failure (the database is away) is not any one message's
            # fault: retry them all later rather than hammering it one by one.
            for msg, _ in decoded:
                await _failed(js, ns, spec, msg, handler)
            return
        for msg, item in decoded:  # isolate the one that fails
            try:
                await handler.handle([item])
            except asyncio.CancelledError:
                raise
            except Exception:
                await _failed(js, ns, spec, msg, handler)
            else:
                await msg.ack()
    else:
        for msg, _ in decoded:
            await msg.ack()


async def _failed(
    js: JetStreamContext, ns: Namespace, spec: ConsumerSpec, msg: Msg, handler: BatchHandler[Any]
) -> None:
    """Nak with backoff, or dead-letter once deliveries run out. Call inside ``except``."""
    exc = sys.exc_info()[1]
    assert exc is not None
    delivered = msg.metadata.num_delivered
    if getattr(exc, "permanent", False):
        # It will fail the same way on every delivery (the database refused the content):
        # dead-letter it now, with the reason, rather than retry it for twenty minutes
        # while a caller waits. The supervisors hear of it from the dead letter (alerts).
        reason = f"{type(exc).__name__}: {exc}"
        await dead_letter(js, ns, msg, handler.source_of(msg), "data_error", reason)
        await msg.term()
        log.error("bus.data_error", subject=msg.subject, delivered=delivered, error=str(exc))
        return
    if delivered >= spec.max_deliver and not getattr(exc, "retryable", False):
        reason = f"gave up after {delivered} deliveries: {type(exc).__name__}: {exc}"
        await dead_letter(js, ns, msg, handler.source_of(msg), "gave_up", reason)
        await msg.term()
        log.error("bus.gave_up", subject=msg.subject, delivered=delivered, error=str(exc))
        return
    delay = _backoff(delivered)
    if getattr(exc, "retryable", False):
        log.warning("bus.retry", subject=msg.subject, delivered=delivered, delay=delay,
                    error=str(exc))
    else:
        log.exception("bus.handler_failed", subject=msg.subject, delivered=delivered)
    await msg.nak(delay=delay)
