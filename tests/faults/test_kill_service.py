"""kill -9 of the ECC service under load, again and again, and what must survive it."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path
from typing import Any

import pytest

from command.runtime import free_port
from command.store import Store
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

# `make soak` sets ECC_SOAK_KILLS (200) for the long run; make test runs 10 (+ 3 x 2 below)
RANDOM_KILLS = int(os.environ.get("ECC_SOAK_KILLS", "10"))
# Points inside one signal's or one event's path where the service can die: after
# its transaction committed and before the broker heard the ack; before the relay
# published an event; after the broker stored it and before the outbox row went.
NAMED_KILLS = ("intake.after_commit", "outbox.before_publish", "outbox.after_publish")


@pytest.mark.timeout(240 + 6 * RANDOM_KILLS)
async def test_kill_9_of_the_service_at_16_points_under_load_loses_and_doubles_nothing(
    servers: Servers, database_url: str, store: Store, js: Any, ns: Namespace, tmp_path: Path
) -> None:
    """Proves: with signals arriving at 25/s, units being offered tasks and SLA timers
    firing every few seconds, `ecc serve` killed with SIGKILL at 20 random moments
    (203 in `make soak`) and 3 times at named points between a commit and its ack or
    publish, then restarted each time, still records every signal the broker acknowledged
    exactly once, delivers every committed event to both live consoles once and in
    order (they reconnect with ``since`` across each outage), never has a unit on two
    tasks, and neither loses a timer nor fires one twice."""
    token = await console_token(store)
    port = free_port()
    service = ServiceProcess(
        service_env(servers.nats_url, database_url, ns, port, fast_catalogue(tmp_path)),
        port, tmp_path / "ecc.log")
    history = History()
    rng = random.Random(20261122)
    stop = asyncio.Event()
    service.start()
    await service.serving()
    url = f"http://127.0.0.1:{port}/"
    consoles = [Console(f"console-{i}", url, token, history) for i in (1, 2)]
    publisher = Publisher(js, ns, history, rate=25)
    try:
        async with tasks(publisher.run(stop), *(c.run() for c in consoles)):
            await asyncio.gather(*(asyncio.wait_for(c.connected.wait(), 10) for c in consoles))
            for n in range(RANDOM_KILLS):
                await asyncio.sleep(rng.uniform(0.1, 0.6))
                service.kill()
                history.faults.append(f"kill -9 #{n + 1} after {len(history.acked)} acked")
                service.start()
                await service.serving()
            for point in NAMED_KILLS:  # a random kill, then a start that dies at the point
                await asyncio.sleep(rng.uniform(0.1, 0.6))
                service.kill()
                history.faults.append(f"kill -9 before arming {point}")
                service.start(fault_point=point)
                code = await service.exited(timeout=30)
                assert code == -9, f"the service should have died at {point}, exited {code}"
                history.faults.append(f"died at {point}")
                service.start()
                await service.serving()
            await asyncio.sleep(2)
            stop.set()
            snapshot = await settled(database_url, history, consoles)
            counts = await check(database_url, history, snapshot)
            print(f"faults: {len(history.faults)}, {counts}, publish retries "
                  f"{dict(history.publish_errors)}, reconnects {dict(history.reconnects)}")
    finally:
        await service.stop()
    assert service.starts == 1 + RANDOM_KILLS + 2 * len(NAMED_KILLS)
    # the load was real: the faults hit a system doing all of its work
    assert counts["signals"] > 400
    assert counts["dispatched"] > 50
    assert counts["timers_fired"] > 50
    assert len([f for f in history.faults if f.startswith("kill -9")]) == RANDOM_KILLS + 3
    assert all(history.reconnects[c.name] >= RANDOM_KILLS for c in consoles)
