"""Shell: the field-unit client a crew's device (or the simulator) runs.

It hears the unit's orders on ``<ns>.dispatch.*.<unit>`` and reads the last one
(so a device that was off when the order went out shows it when it comes back),
and sends the crew's status reports and positions. ``ecc unit --id E12`` puts a
terminal in front of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sys
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

import nats
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError
from pydantic import TypeAdapter, ValidationError

from command.model import (
    CrewStatus,
    DispatchMessage,
    OrderEnded,
    OrderOffered,
    PositionReport,
    StatusRejected,
    StatusReport,
)
from command.subjects import Namespace
from command.tasks import check_cancelled

log = structlog.get_logger("ecc.field")

_dispatch: TypeAdapter[OrderOffered | OrderEnded | StatusRejected] = TypeAdapter(DispatchMessage)


class FieldUnit:
    """One crew's connection. ``await start()``, read :meth:`next`, send reports.

    Orders are heard live on the unit's own subject (a plain subscription), and the
    last one is read with a direct get of the unit's own dispatch subject (``agency``
    names it) at start, within a second of the connection coming back, and every
    ``catch_up_every`` seconds: a device that was off, or in a tunnel when an order
    went out, shows the order that is current as soon as it is back. A crew's device
    creates no JetStream consumer at all (its NATS user may not: docs/security.md).
    Without ``agency`` there is no catch-up, live orders only.
    """

    def __init__(self, nc: NATS, ns: Namespace, unit_id: str, *, agency: str | None = None,
                 queue_size: int = 100, catch_up_every: float = 60.0) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=2.0)
        self.ns = ns
        self.unit_id = unit_id
        self.agency = agency
        self.catch_up_every = catch_up_every
        self.order: OrderOffered | None = None
        self.messages: asyncio.Queue[OrderOffered | OrderEnded | StatusRejected] = \
            asyncio.Queue(maxsize=queue_size)
        self._sub: Any = None
        self._poll: asyncio.Task[None] | None = None
        self._last_seq = 0
        self._seen: deque[bytes] = deque(maxlen=64)  # digests: live and caught up once

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(self.ns.dispatch_to(self.unit_id),
                                            cb=self._on_message)
        await self._catch_up()
        if self.agency is not None:
            self._poll = asyncio.create_task(self._keep_up())

    async def stop(self) -> None:
        if self._poll is not None:
            self._poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll
        if self._sub is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self._sub.unsubscribe()

    async def _keep_up(self) -> None:
        """Read the last order again as soon as the connection is back (the live
        subscription heard nothing while it was away), and now and then regardless: a
        city of 10,000 devices asks the server a few hundred times a second, not
        thousands."""
        reconnects = self.nc.stats["reconnects"]
        last = time.monotonic()
        while True:
            check_cancelled()  # stop() waits for this task: a swallowed cancel must end it
            await asyncio.sleep(min(1.0, self.catch_up_every))
            now = self.nc.stats["reconnects"]
            if now != reconnects or time.monotonic() - last >= self.catch_up_every:
                reconnects, last = now, time.monotonic()
                await self._catch_up()

    async def _catch_up(self) -> None:
        """The last order on the unit's subject, if it is newer than any seen."""
        if self.agency is None:
            return
        try:
            msg = await self.js.get_msg(self.ns.stream("DISPATCH"),
                                        subject=self.ns.dispatch(self.agency, self.unit_id),
                                        direct=True)
        except NotFoundError:
            return
        except (TimeoutError, nats.errors.Error) as exc:  # offline: the next round tries again
            log.info("field.catch_up_failed", unit_id=self.unit_id,
                     error=str(exc) or type(exc).__name__)
            return
        if msg.seq is None or msg.seq <= self._last_seq or msg.data is None:
            return
        self._last_seq = msg.seq
        self._take(msg.data)

    async def _on_message(self, msg: Msg) -> None:
        self._take(msg.data)

    def _take(self, data: bytes) -> None:
        digest = hashlib.blake2b(data, digest_size=16).digest()
        if digest in self._seen:  # heard live and read again by the catch-up
            return
        self._seen.append(digest)
        try:
            message = _dispatch.validate_json(data)
        except ValidationError:
            log.warning("field.bad_message", unit_id=self.unit_id)
            return
        if isinstance(message, OrderOffered):
            self.order = message
        elif isinstance(message, OrderEnded) and self.order and \
                self.order.task_id == message.task_id:
            self.order = None
        if self.messages.full():  # a device that stopped reading keeps the newest
            self.messages.get_nowait()
        self.messages.put_nowait(message)

    async def next(self, timeout: float = 30.0) -> OrderOffered | OrderEnded | StatusRejected:
        return await asyncio.wait_for(self.messages.get(), timeout)

    async def report(self, status: CrewStatus, reason: str = "",
                     task_id: str | None = None) -> None:
        """Send a status report; returns when the broker has it (it will not be lost)."""
        report = StatusReport(unit_id=self.unit_id, status=status, reason=reason,
                              task_id=task_id, at=datetime.now(UTC))
        await self.js.publish(self.ns.unit_status(self.unit_id), report.model_dump_json().encode(),
                              headers={"Nats-Msg-Id": str(uuid.uuid4())})

    async def position(self, lat: float, lon: float, speed_mps: float | None = None) -> None:
        report = PositionReport(unit_id=self.unit_id, lat=lat, lon=lon, speed_mps=speed_mps,
                                at=datetime.now(UTC))
        await self.js.publish(self.ns.unit_position(self.unit_id),
                              report.model_dump_json().encode())


HELP = ("commands: ack | decline [reason] | enroute | onscene | transporting | hospital | "
        "clear | oos | pos LAT LON | quit")
_WORDS: dict[str, CrewStatus] = {
    "ack": "acknowledged", "decline": "declined", "enroute": "en_route", "onscene": "on_scene",
    "transporting": "transporting", "hospital": "at_hospital", "clear": "clear",
    "oos": "out_of_service",
}


def describe(message: OrderOffered | OrderEnded | StatusRejected) -> str:
    """One line a crew can read at a glance."""
    if isinstance(message, OrderOffered):
        loc = message.location
        where = loc.address or f"{loc.lat:.5f}, {loc.lon:.5f}"
        return (f"ORDER P{message.priority} {message.category.upper()} - {message.summary} - "
                f"{where} - task {message.task_id} ({message.capability}); "
                f"acknowledge within {message.ack_within_s:.0f} s")
    if isinstance(message, OrderEnded):
        return f"ORDER ENDED task {message.task_id}: {message.reason}"
    return f"NOT APPLIED ({message.status}): {message.reason}"


async def terminal(nc: NATS, ns: Namespace, unit_id: str, agency: str | None = None) -> None:
    """The crew's terminal: orders printed as they come, commands typed."""
    unit = FieldUnit(nc, ns, unit_id, agency=agency)
    await unit.start()
    print(f"unit {unit_id} on line. {HELP}", flush=True)

    async def show() -> None:
        while True:
            print(describe(await unit.messages.get()), flush=True)

    printer = asyncio.create_task(show())
    try:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                return
            words = line.split()
            if not words:
                continue
            if words[0] == "quit":
                return
            if words[0] == "pos" and len(words) == 3:
                try:
                    await unit.position(float(words[1]), float(words[2]))
                except (ValueError, ValidationError) as exc:
                    print(f"not a position: {exc}", flush=True)
                continue
            status = _WORDS.get(words[0])
            if status is None:
                print(HELP, flush=True)
                continue
            await unit.report(status, reason=" ".join(words[1:]))
            print(f"sent {status}", flush=True)
    finally:
        printer.cancel()
        await unit.stop()
