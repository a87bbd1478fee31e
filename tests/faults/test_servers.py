"""The servers ECC stands on die under load: nats-server killed, PostgreSQL stopped."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from adapters.ingest import SPECS
from command import bus
from command.pgroles import PG_SERVICE
from command.runtime import EmbeddedNats, EmbeddedPostgres, free_port
from command.store import Store, migrate
from command.subjects import Namespace
from tests.conftest import Servers
from tests.faults.harness import (
    Console,
    History,
    Publisher,
    ServiceProcess,
    check,
    console_token,
    fast_catalogue,
    service_env,
    settled,
    tasks,
)


@pytest.mark.timeout(180)
async def test_kill_9_of_nats_server_under_load_everyone_recovers_on_their_own(
    database_url: str, store: Store, ns: Namespace, tmp_path: Path
) -> None:
    """Proves: nats-server killed with SIGKILL three times while signals arrive at
    20/s, and started again on the same port and store a second later, loses nothing
    it acknowledged (JetStream fsyncs before it acks): the publisher, the service's
    consumers, its outbox relay and its console feed all reconnect by themselves (the
    service process is never restarted), every acknowledged signal is recorded once
    and both consoles receive every event once, in order."""
    nats_srv = EmbeddedNats(tmp_path / "broker", namespace=ns.prefix, adapters=SPECS)
    await nats_srv.start()
    token = await console_token(store)
    port = free_port()
    service = ServiceProcess(service_env(nats_srv.url, database_url, ns, port,
                                         fast_catalogue(tmp_path)), port, tmp_path / "ecc.log")
    history = History()
    stop = asyncio.Event()
    nc = None
    try:
        service.start()
        await service.serving()
        nc = await bus.connect(nats_srv.url, name="fault-publisher")
        url = f"http://127.0.0.1:{port}/"
        consoles = [Console(f"console-{i}", url, token, history) for i in (1, 2)]
        async with tasks(Publisher(nc.jetstream(), ns, history, rate=20).run(stop),
                         *(c.run() for c in consoles)):
            await asyncio.gather(*(asyncio.wait_for(c.connected.wait(), 10) for c in consoles))
            for n in range(3):
                await asyncio.sleep(1.5)
                acked = len(history.acked)
                nats_srv.kill()
                history.faults.append(f"nats-server kill -9 #{n + 1} after {acked} acked")
                await asyncio.sleep(1.0)
                await nats_srv.start()
            await asyncio.sleep(2.0)
            stop.set()
            snapshot = await settled(database_url, history, consoles)
            counts = await check(database_url, history, snapshot)
        assert service.proc is not None and service.proc.poll() is None, \
            "the service died with the broker; it must ride it out"
        reconnects = nc.stats["reconnects"]
    finally:
        if nc is not None:
            await nc.close()
        await service.stop()
        await nats_srv.stop()
    assert service.starts == 1
    assert counts["signals"] > 100
    # the publisher lived through every outage (its publishes waited or were retried)
    assert reconnects == 3


async def _postgres(tmp_path: Path) -> tuple[EmbeddedPostgres, str]:
    pg = EmbeddedPostgres(tmp_path / "db")
    await pg.start()
    import asyncpg

    conn = await asyncpg.connect(pg.owner_url)  # as `ecc up` does: the owner migrates
    try:
        await migrate(conn, service_role=PG_SERVICE)
    finally:
        await conn.close()
    return pg, pg.url


@pytest.mark.timeout(180)
async def test_postgres_stopped_under_load_the_service_holds_still_and_resumes(
    servers: Servers, js: Any, ns: Namespace, tmp_path: Path
) -> None:
    """Proves: with PostgreSQL stopped for 6 s while signals arrive at 20/s, the service
    stops taking signals off the broker (the intake's ack floor does not move: the
    broker keeps them), says so (``/readyz`` answers 503 naming postgres), does not
    die, and once PostgreSQL is back resumes by itself: every acknowledged signal is
    recorded once and the console receives every event once, in order."""
    pg, db_url = await _postgres(tmp_path)
    store = await Store.connect(db_url, ns)
    try:
        token = await console_token(store)
    finally:
        await store.close()
    port = free_port()
    service = ServiceProcess(service_env(servers.nats_url, db_url, ns, port,
                                         fast_catalogue(tmp_path)), port, tmp_path / "ecc.log")
    history = History()
    stop = asyncio.Event()
    try:
        service.start()
        await service.serving()
        console = Console("console", f"http://127.0.0.1:{port}/", token, history)
        async with tasks(Publisher(js, ns, history, rate=20).run(stop), console.run()):
            await asyncio.wait_for(console.connected.wait(), 10)
            await asyncio.sleep(2.0)
            assert await service.status("/readyz") == 200
            await pg.stop()
            history.faults.append("postgres stopped")
            t0 = time.monotonic()
            while await service.status("/readyz") != 503:
                assert time.monotonic() - t0 < 5, "still ready 5 s after PostgreSQL stopped"
                await asyncio.sleep(0.1)
            body = await asyncio.to_thread(_get_json, port, "/readyz")
            assert body["ready"] is False and body["postgres"] != "ok", body
            floor = (await js.consumer_info(ns.stream("SIGNALS"), "intake")).ack_floor.stream_seq
            await asyncio.sleep(4.0)
            info = await js.consumer_info(ns.stream("SIGNALS"), "intake")
            assert info.ack_floor.stream_seq == floor, "signals acked while the database was away"
            assert info.num_pending + info.num_ack_pending > 0  # they wait at the broker
            assert service.proc is not None and service.proc.poll() is None
            await pg.start()
            history.faults.append("postgres started")
            t0 = time.monotonic()
            while await service.status("/readyz") != 200:
                assert time.monotonic() - t0 < 15, "not ready 15 s after PostgreSQL came back"
                await asyncio.sleep(0.1)
            await asyncio.sleep(2.0)
            stop.set()
            snapshot = await settled(db_url, history, [console])
            counts = await check(db_url, history, snapshot)
    finally:
        await service.stop()
        await pg.stop()
    assert service.starts == 1
    assert counts["signals"] > 100


def _get_json(port: int, path: str) -> Any:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())
