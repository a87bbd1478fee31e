"""The same signal, delivered more than once, by every road a duplicate takes."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from command.runtime import free_port
from command.store import Store
from command.subjects import Namespace
from tests.conftest import Servers
from tests.faults.harness import (
    History,
    Publisher,
    ServiceProcess,
    check,
    fast_catalogue,
    service_env,
    settled,
    zhengzhou_signal,
)
from tests.helpers import eventually


@pytest.mark.timeout(120)
async def test_republished_signals_with_and_without_ids_and_past_the_dedupe_window(
    servers: Servers, database_url: str, store: Store, js: Any, ns: Namespace, tmp_path: Path
) -> None:
    """Proves: an adapter that sends a signal again is harmless whichever way the copy
    arrives: with the same message id inside the broker's dedupe window (the broker
    drops it), without a message id (the broker stores both; the intake's inbox drops
    the second), and with the same id after the window has passed (stored again; the
    inbox drops it). Each signal is in the event store exactly once."""
    port = free_port()
    service = ServiceProcess(service_env(servers.nats_url, database_url, ns, port,
                                         fast_catalogue(tmp_path), city=False),
                             port, tmp_path / "ecc.log")
    history = History()
    publisher = Publisher(js, ns, history, rate=1)
    rng = random.Random(7)
    service.start()
    try:
        await service.serving()
        # a dedupe window of one second, so "after the window" is a short wait (set after
        # the service brought its streams up to date, before the first id is stored)
        info = await js.stream_info(ns.stream("SIGNALS"))
        info.config.duplicate_window = 1.0
        await js.update_stream(info.config)
        signals = [zhengzhou_signal(rng) for _ in range(30)]
        for sig in signals:
            await publisher.publish(sig)  # with its id
        data = {s.signal_id: s.model_dump_json().encode() for s in signals}
        subject = ns.signal("hotline", "fire")
        for sig in signals[:10]:  # same id, inside the window: the broker drops it
            ack = await js.publish(subject, data[sig.signal_id],
                                   headers={"Nats-Msg-Id": sig.signal_id})
            assert ack.duplicate, "the broker stored a copy inside its dedupe window"
        for sig in signals[10:20]:  # no id at all: the broker cannot tell
            ack = await js.publish(subject, data[sig.signal_id])
            assert not ack.duplicate
        # the broker forgets ids a window after it saw them, on its next sweep
        await asyncio.sleep(2.5)
        for sig in signals[20:]:  # same id, after the window
            ack = await js.publish(subject, data[sig.signal_id],
                                   headers={"Nats-Msg-Id": sig.signal_id})
            assert not ack.duplicate, "the broker still knew the id after its window"
        snapshot = await settled(database_url, history, [])
        await check(database_url, history, snapshot)

        async def all_handled() -> bool:
            ci = await js.consumer_info(ns.stream("SIGNALS"), "intake")
            return bool(ci.num_pending == 0 and ci.num_ack_pending == 0)

        await eventually(all_handled, timeout=20)
        duplicates = await store.pool.fetchval(
            "SELECT count(*) FROM inbox WHERE consumer = 'intake'")
        assert duplicates == 30  # one inbox row per signal: the copies were refused
    finally:
        await service.stop()
    assert "intake.duplicate" in service.log_path.read_text()


@pytest.mark.timeout(120)
async def test_withheld_acks_redeliver_to_a_second_process_while_the_first_holds_its_rows(
    servers: Servers, database_url: str, store: Store, js: Any, ns: Namespace, tmp_path: Path
) -> None:
    """Proves: when one service process freezes for 3 s inside its transaction (its
    inbox rows written, not committed, no ack sent) and the broker, after the 1 s
    ack wait, hands the same signals to a second process, the second waits on the
    first's rows and then refuses them as seen: every signal is recorded exactly once,
    however the two interleave."""
    catalogue = fast_catalogue(tmp_path)
    frozen_port, healthy_port = free_port(), free_port()
    frozen = ServiceProcess(service_env(servers.nats_url, database_url, ns, frozen_port,
                                        catalogue, ack_wait=1.0, city=False),
                            frozen_port, tmp_path / "frozen.log")
    healthy = ServiceProcess(service_env(servers.nats_url, database_url, ns, healthy_port,
                                         catalogue, ack_wait=1.0, city=False),
                             healthy_port, tmp_path / "healthy.log")
    history = History()
    publisher = Publisher(js, ns, history, rate=1)
    rng = random.Random(8)
    frozen.start(fault_point="stall:intake.before_commit")
    healthy.start()
    try:
        await asyncio.gather(frozen.serving(), healthy.serving())
        for _ in range(60):
            await publisher.publish(zhengzhou_signal(rng))
            await asyncio.sleep(0.02)
        snapshot = await settled(database_url, history, [], timeout=60)
        await check(database_url, history, snapshot)
        ci = await js.consumer_info(ns.stream("SIGNALS"), "intake")
        assert ci.num_redelivered > 0 or ci.delivered.consumer_seq > 60, \
            "nothing was redelivered: the fault did not bite"
    finally:
        await asyncio.gather(frozen.stop(), healthy.stop())
    assert "faults.stall" in frozen.log_path.read_text()
    assert "intake.duplicate" in (frozen.log_path.read_text() + healthy.log_path.read_text())
