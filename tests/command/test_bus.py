"""The consumer loop's one decision about a message the database refuses for its content:
dead-lettered at once with the reason, not retried for twenty minutes."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from nats.aio.msg import Msg

from command.bus import ConsumerSpec, consume
from command.store import DataRejected, Store
from command.subjects import Namespace
from tests.helpers import eventually


class _Casting:
    """A handler whose work makes PostgreSQL cast the message's text to an integer: a
    data exception (SQLSTATE 22P02) for anything that is not a number."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.handled: list[int] = []
        self.failures = 0

    def decode(self, msg: Msg) -> str:
        return msg.data.decode()

    def source_of(self, msg: Msg) -> str:
        return "hotline"

    async def handle(self, items: list[str]) -> None:
        try:
            async with self.store.transaction() as tx:
                values = [await tx.conn.fetchval("SELECT $1::text::int", i) for i in items]
        except DataRejected:
            self.failures += 1
            raise
        self.handled += values


async def test_a_data_error_is_dead_lettered_at_the_first_delivery(
        store: Store, js: Any, ns: Namespace) -> None:
    """A batch holding one message PostgreSQL refuses: the others are handled, the bad one
    is dead-lettered with code data_error and the database's reason after one delivery."""
    subject = ns.ingress("hotline")
    for body in (b"1", b"not a number", b"3"):
        await js.publish(subject, body)
    handler = _Casting(store)
    spec = ConsumerSpec(stream=ns.stream("INGRESS"), durable="data-error-test", subject=subject)
    loop = asyncio.create_task(consume(js, ns, spec, handler))
    try:
        async def letter() -> Any:
            try:
                return await js.get_last_msg(ns.stream("DEADLETTER"), ns.deadletter("hotline"))
            except Exception:
                return None

        dead = await eventually(letter, timeout=15)
        await eventually(lambda: asyncio.sleep(0, sorted(handler.handled) == [1, 3]))
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
    assert dead.data == b"not a number"
    assert dead.headers["Ecc-Reason-Code"] == "data_error"
    assert "22P02" in dead.headers["Ecc-Reason"]
    # the batch once, then the bad message alone: never a second delivery of it
    assert handler.failures == 2
