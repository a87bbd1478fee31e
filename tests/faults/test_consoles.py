"""Consoles that freeze or die while the service is busy."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from command.runtime import free_port
from command.store import Store
from command.subjects import Namespace
from consoles.client import stalled_console
from tests.conftest import Servers
from tests.faults.harness import (
    ROOT,
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
from tests.helpers import eventually

# A console in its own process: it connects, reads, and can be frozen or killed.
_CONSOLE = """
import asyncio, sys
from consoles.client import open_console
async def main():
    async with open_console(sys.argv[1], sys.argv[2]) as console:
        print("connected", flush=True)
        while True:
            await console.receive()
asyncio.run(main())
"""


def _connections(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        text = resp.read().decode()
    found = re.search(r"^ecc_console_connections (\S+)$", text, re.M)
    assert found, "ecc_console_connections missing from /metrics"
    return int(float(found.group(1)))


@pytest.mark.timeout(150)
async def test_frozen_and_dead_consoles_cost_the_live_ones_nothing(
    servers: Servers, database_url: str, store: Store, js: Any, ns: Namespace, tmp_path: Path
) -> None:
    """Proves: under 20 signals/s, a console that stops reading (a frozen tab on a thin
    link) and a console process that is suspended (SIGSTOP, a laptop lid closed) and
    then killed (SIGKILL) are dropped by the gateway (it tells the frozen one to
    resync; the dead one's connection closes) while two live consoles still receive
    every committed event once and in order; the gateway's connection count
    (``ecc_console_connections``) comes back to the two live ones."""
    token = await console_token(store)
    port = free_port()
    service = ServiceProcess(service_env(servers.nats_url, database_url, ns, port,
                                         fast_catalogue(tmp_path)), port, tmp_path / "ecc.log")
    history = History()
    stop = asyncio.Event()
    url = f"http://127.0.0.1:{port}/"
    service.start()
    doomed: subprocess.Popen[bytes] | None = None
    try:
        await service.serving()
        consoles = [Console(f"console-{i}", url, token, history) for i in (1, 2)]
        async with tasks(Publisher(js, ns, history, rate=20).run(stop),
                         *(c.run() for c in consoles)):
            await asyncio.gather(*(asyncio.wait_for(c.connected.wait(), 10) for c in consoles))
            frozen = await stalled_console(port, token)
            doomed = subprocess.Popen([sys.executable, "-c", _CONSOLE, url, token], cwd=ROOT,
                                      stdout=subprocess.PIPE)
            assert doomed.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(doomed.stdout.readline), 20)
            assert line.strip() == b"connected"
            await eventually(lambda: asyncio.to_thread(lambda: _connections(port) == 4),
                             timeout=10)
            await asyncio.sleep(1.0)
            doomed.send_signal(signal.SIGSTOP)
            await asyncio.sleep(3.0)
            doomed.send_signal(signal.SIGKILL)
            doomed.wait()
            # the frozen one overflows its queue and is dropped; the dead one is gone
            await eventually(lambda: asyncio.to_thread(lambda: _connections(port) == 2),
                             timeout=60, interval=0.5)
            stop.set()
            snapshot = await settled(database_url, history, consoles)
            counts = await check(database_url, history, snapshot)
            frozen.close()
    finally:
        if doomed is not None and doomed.poll() is None:
            doomed.kill()
        await service.stop()
    assert counts["deliveries"] > 500
    assert all(history.reconnects[c.name] == 0 for c in consoles), \
        "a live console was dropped because of the frozen or dead ones"
    assert "gateway.console_resync" in service.log_path.read_text()
