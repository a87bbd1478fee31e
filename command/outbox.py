"""Shell: the outbox relay, from committed rows to JetStream.

It publishes outbox rows in id order (commit order) with ``Nats-Msg-Id`` set
to the event id, many in flight at once, then deletes what the broker
acknowledged. A crash between commit and publish leaves the rows to publish
on restart; a crash between publish and delete publishes them again and
JetStream drops the duplicate (within its 10-minute window; consumers dedupe
by event id past it).

One relay publishes at a time (a session advisory lock); others stand by, so
several ``ecc serve`` processes keep the order. LISTEN/NOTIFY wakes it on
commit; a one-second poll covers a lost notification.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from nats.js import JetStreamContext

from command.faults import reach
from command.metrics import Metrics
from command.store import OUTBOX_CHANNEL, Session, Store
from command.tasks import check_cancelled

log = structlog.get_logger("ecc.outbox")

_RELAY_LOCK = 0x0ECC_0003


class OutboxRelay:
    def __init__(
        self,
        store: Store,
        js: JetStreamContext,
        *,
        batch: int = 512,
        publish_timeout: float = 10.0,
        fault_point: str | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.js = js
        self.batch = batch
        self.publish_timeout = publish_timeout
        self.fault_point = fault_point
        self.metrics = metrics if metrics is not None else Metrics()
        self.published = 0

    async def run(self) -> None:
        """Relay until cancelled, reconnecting after failures."""
        delay = 0.1
        while True:
            check_cancelled()
            try:
                await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox.relay_failed", error=str(exc) or type(exc).__name__,
                            retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                delay = 0.1

    async def _run_once(self) -> None:
        wake = asyncio.Event()

        def notified(*_: Any) -> None:
            wake.set()

        async with self.store.session() as session:
            await session.listen(OUTBOX_CHANNEL, notified)
            await session.lead(_RELAY_LOCK)  # another relay leads until then; stand by
            log.info("outbox.relay_leading")
            while True:
                check_cancelled()
                wake.clear()
                if await self.drain_once(session) == 0:
                    try:
                        await asyncio.wait_for(wake.wait(), timeout=1.0)
                    except TimeoutError:
                        pass

    async def drain_once(self, session: Session) -> int:
        """Publish up to one batch; returns how many rows were relayed."""
        rows = await session.outbox_batch(self.batch)
        if not rows:
            return 0
        reach("outbox.before_publish", self.fault_point)
        # Sent in order on one connection, acknowledged concurrently.
        acks = [
            await self.js.publish_async(
                row.subject, row.payload, headers={"Nats-Msg-Id": row.msg_id}
            )
            for row in rows
        ]
        await asyncio.wait_for(asyncio.gather(*acks), timeout=self.publish_timeout)
        reach("outbox.after_publish", self.fault_point)
        await session.outbox_done([row.id for row in rows])
        self.published += len(rows)
        self.metrics.outbox_published.inc(len(rows))
        log.debug("outbox.relayed", count=len(rows), last_id=rows[-1].id)
        return len(rows)
