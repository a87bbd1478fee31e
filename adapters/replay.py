"""Border (shell): replay real call records through the hotline adapter.

``ecc replay FILE [--speed 60] [--limit N]`` reads Montgomery County 911 or SF
Fire Department CSV (:func:`adapters.hotline.read_csv`), turns each call into a
signal and publishes it on ``<ns>.signal.hotline.<category>``, keeping the
calls' own spacing divided by ``speed`` (0: as fast as the broker takes them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

import structlog
from nats.js import JetStreamContext
from nats.js.api import PubAck

from adapters.hotline import CallRecord, to_signal
from command.subjects import Namespace
from workflows.catalogue import Catalogue

log = structlog.get_logger("ecc.replay")


@dataclass
class ReplayStats:
    published: int = 0
    duplicates: int = 0


async def replay(js: JetStreamContext, ns: Namespace, records: Iterable[CallRecord], *,
                 catalogue: Catalogue, speed: float = 60.0,
                 limit: int | None = None) -> ReplayStats:
    """Publish the records' signals (classified by the catalogue's hotline rules) in
    order; returns what the broker took."""
    stats = ReplayStats()
    start_wall = time.monotonic()
    first_at = None
    pending: list[asyncio.Future[PubAck]] = []
    for n, record in enumerate(records):
        if limit is not None and n >= limit:
            break
        if speed > 0:
            first_at = first_at or record.received_at
            due = (record.received_at - first_at).total_seconds() / speed
            wait = due - (time.monotonic() - start_wall)
            if wait > 0:
                await asyncio.sleep(wait)  # the calls' own rhythm, sped up
        signal = to_signal(record, catalogue.hotline)
        pending.append(await js.publish_async(
            ns.signal(signal.source, signal.category), signal.model_dump_json().encode(),
            headers={"Nats-Msg-Id": f"{signal.source}:{signal.signal_id}"}))
        if len(pending) >= 256:
            await _settle(pending, stats)
    await _settle(pending, stats)
    log.info("replay.done", published=stats.published, duplicates=stats.duplicates)
    return stats


async def _settle(pending: list[asyncio.Future[PubAck]], stats: ReplayStats) -> None:
    for ack in await asyncio.wait_for(asyncio.gather(*pending), 30):
        if ack.duplicate:
            stats.duplicates += 1
        else:
            stats.published += 1
    pending.clear()
