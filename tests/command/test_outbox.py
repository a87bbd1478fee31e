"""The outbox relay survives a real kill -9 on either side of the publish."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest

from command.outbox import OutboxRelay
from command.store import Append, NewEvent, Store
from command.subjects import Namespace
from tests.conftest import Servers


async def commit_event(store: Store, stream_id: str) -> str:
    event_id = uuid.uuid4()
    async with store.transaction() as tx:
        await tx.append([Append(stream_id, 0, [NewEvent("incident.reported", {"x": 1}, "test",
                                                          event_id)])])
    return str(event_id)


async def messages(js: Any, ns: Namespace) -> int:
    return int((await js.stream_info(ns.stream("EVENTS"))).state.messages)


@pytest.mark.slow
@pytest.mark.parametrize(("fault", "published_before_crash"),
                         [("outbox.before_publish", 0), ("outbox.after_publish", 1)])
async def test_relay_killed_around_publish_publishes_exactly_once(
    servers: Servers, database_url: str, store: Store, js: Any, ns: Namespace,
    fault: str, published_before_crash: int,
) -> None:
    """kill -9 before or after the publish: after restart the event is on EVENTS exactly once."""
    event_id = await commit_event(store, "incident:one")
    env = {**os.environ, "NATS_URL": servers.nats_url, "DATABASE_URL": database_url,
           "ECC_NAMESPACE": ns.prefix, "ECC_CONSOLE_PORT": "0", "ECC_FAULT_POINT": fault}
    proc = subprocess.Popen([sys.executable, "-m", "ecc.cli", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        code = await asyncio.wait_for(asyncio.to_thread(proc.wait), 30)
    finally:
        proc.kill()
    assert code == -9
    assert await store.pool.fetchval("SELECT count(*) FROM outbox") == 1  # not yet deleted
    assert await messages(js, ns) == published_before_crash

    relay = OutboxRelay(store, js)
    async with store.session() as session:
        assert await relay.drain_once(session) == 1
    assert await messages(js, ns) == 1  # the broker dropped the re-publish by Nats-Msg-Id
    msg = await js.get_last_msg(ns.stream("EVENTS"), ns.event("incident", "one"))
    assert msg.headers["Nats-Msg-Id"] == event_id
    assert await store.pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_relay_publishes_in_commit_order(store: Store, js: Any, ns: Namespace) -> None:
    """Events reach EVENTS in the order of their global seq."""
    for i in range(30):
        await commit_event(store, f"incident:o{i}")
    async with store.session() as session:
        assert await OutboxRelay(store, js, batch=7).drain_once(session) == 7
        while await OutboxRelay(store, js, batch=7).drain_once(session):
            pass
    seqs = []
    for i in range(1, 31):
        msg = await js.get_msg(ns.stream("EVENTS"), seq=i)
        seqs.append(int(msg.data.split(b'"seq":')[1].split(b",")[0]))
    assert seqs == sorted(seqs) and len(set(seqs)) == 30
