"""Shell: the field-unit client a crew's device (or the simulator) runs.

It follows the unit's orders on ``<ns>.dispatch.*.<unit>`` from the last one
(so a device that was off when the order went out shows it when it comes back),
and sends the crew's status reports and positions. ``ecc unit --id E12`` puts a
terminal in front of it.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime

import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import api
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

log = structlog.get_logger("ecc.field")

_dispatch: TypeAdapter[OrderOffered | OrderEnded | StatusRejected] = TypeAdapter(DispatchMessage)


class FieldUnit:
    """One crew's connection. ``await start()``, read :meth:`next`, send reports."""

    def __init__(self, nc: NATS, ns: Namespace, unit_id: str, *, queue_size: int = 100) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.ns = ns
        self.unit_id = unit_id
        self.order: OrderOffered | None = None
        self.messages: asyncio.Queue[OrderOffered | OrderEnded | StatusRejected] = \
            asyncio.Queue(maxsize=queue_size)
        self._sub: object | None = None

    async def start(self) -> None:
        # A consumer named for the unit: the unit's own NATS user may create only that,
        # filtered to its own orders (docs/security.md). It starts at the last order, so
        # a device that was off shows the order that is current; the server drops it
        # a minute after the device is gone.
        self._sub = await self.js.subscribe(
            self.ns.dispatch_to(self.unit_id), stream=self.ns.stream("DISPATCH"),
            cb=self._on_message,
            config=api.ConsumerConfig(
                name=f"unit-{self.unit_id}-{uuid.uuid4().hex[:12]}",
                deliver_policy=api.DeliverPolicy.LAST, ack_policy=api.AckPolicy.NONE,
                inactive_threshold=60.0))

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()  # type: ignore[attr-defined]

    async def _on_message(self, msg: Msg) -> None:
        try:
            message = _dispatch.validate_json(msg.data)
        except ValidationError:
            log.warning("field.bad_message", unit_id=self.unit_id, subject=msg.subject)
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


async def terminal(nc: NATS, ns: Namespace, unit_id: str) -> None:
    """The crew's terminal: orders printed as they come, commands typed."""
    unit = FieldUnit(nc, ns, unit_id)
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
