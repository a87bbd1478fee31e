"""Benchmark: a console logs in while 50 consoles that never read hold their sockets open.

`ecc serve` runs as its own process on embedded servers (or those of NATS_URL and
DATABASE_URL) with ``--incidents`` (1,000) open incidents of about ``--pad`` (2 KB)
each, so a snapshot is about 2 MB. Then ``--stalled`` (50) consoles connect over
loopback, say hello with a good token and never read again: each is a raw socket
with a 4 KB receive buffer, a frozen tab on a thin link, and the gateway's send of
its snapshot backs up. While they sit there, ``--logins`` (10) new consoles log in
one after the other, each reading its welcome and snapshot:

* ``consoles.login_with_50_stalled_ms``: the median time from opening the socket to
  the ``welcome`` of a new console (goal: at most 1,000 ms; before issue 24 the
  sixteenth stalled console locked every other out: no welcome in 60 s);
* ``consoles.serve_rss_mb_50_stalled``: the resident memory of `ecc serve` with
  the stalled consoles connected, beside ``consoles.serve_rss_mb_before_stalled``
  (the same process before they came, its snapshot already sent once).

``results/stalled.json`` also has the slowest login, the snapshot's size, and
whether every stalled console was dropped once its start time was up
(``ecc_console_refusals_total{reason="start_stalled"}`` on the gateway's /metrics).
All the consoles come from 127.0.0.1, so the run sets ECC_CONSOLE_MAX_PER_PEER
above their number.

    python -m bench.stalled [--stalled 50] [--logins 10] [--incidents 1000] [--pad 2000]
                            [--quick] [--metrics FILE]
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from bench.metric import Metric, against, parser_for, report, sizes
from bench.servers import Serve, database, serve_env, servers
from consoles.client import stalled_console

PER_TOKEN = 8  # the gateway's limit of consoles per token


async def login(url: str, token: str) -> tuple[float, int]:
    """One console that reads: ms from opening the socket to its welcome; snapshot bytes."""
    from websockets.asyncio.client import connect

    began = time.monotonic()
    async with connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "hello", "token": token}))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 60))
        waited = (time.monotonic() - began) * 1000
        assert welcome["type"] == "welcome", welcome
        snapshot = await asyncio.wait_for(ws.recv(), 60)
    return waited, len(snapshot)


def refusals(base: str, reason: str) -> float:
    with urllib.request.urlopen(base + "metrics", timeout=10) as answer:
        text = answer.read().decode()
    found = re.search(rf'^ecc_console_refusals_total{{reason="{reason}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def run(stalled: int, logins: int, incidents: int, pad: int) -> dict[str, Any]:
    from command import logs
    from command.store import Store
    from command.subjects import Namespace

    logs.configure(json=True, level=40)
    async with servers() as srv, database(srv.admin_url) as database_url:
        ns = Namespace(f"st{uuid.uuid4().hex[:8]}")
        store = await Store.connect(database_url, ns)
        tokens = []
        for i in range(stalled // PER_TOKEN + 1):
            tokens.append(uuid.uuid4().hex)
            await store.create_token(tokens[-1], name=f"bench stalled {i}", role="viewer",
                                     agency=None)
        reader = uuid.uuid4().hex
        await store.create_token(reader, name="bench reader", role="dispatcher", agency=None)
        # open incidents as the projection holds them: the snapshot's size is what counts
        await store.pool.executemany(
            "INSERT INTO incidents (incident_id, is_open, version, last_seq, view) "
            "VALUES ($1, true, 1, $2, $3)",
            [(f"inc-{i}", i + 1, {"incident_id": f"inc-{i}", "status": "reported",
                                  "type": "fire", "summary": "x" * pad})
             for i in range(incidents)])
        await store.close()
        service = Serve(serve_env(srv.nats_url, database_url, ns.prefix,
                                  ECC_CONSOLE_MAX_PER_PEER=str(stalled + logins + 8)))
        await service.start()
        writers: list[asyncio.StreamWriter] = []
        try:
            await service.ready()
            ws = service.url.replace("http://", "ws://") + "ws"
            _, snapshot_bytes = await login(ws, reader)  # warm: the snapshot is encoded
            await asyncio.sleep(1.0)
            rss_before = service.rss_mb()
            for i in range(stalled):
                writers.append(await stalled_console(service.port, tokens[i // PER_TOKEN]))
            await asyncio.sleep(0.5)  # let their sends back up
            rss_stalled = service.rss_mb()
            times = [(await login(ws, reader))[0] for _ in range(logins)]
            rss_after_logins = service.rss_mb()
            # every stalled console is dropped once the start time (10 s) is up
            deadline = time.monotonic() + 60
            dropped = 0.0
            while time.monotonic() < deadline:
                dropped = await asyncio.to_thread(refusals, service.url, "start_stalled")
                if dropped >= stalled:
                    break
                await asyncio.sleep(0.5)
            rss_dropped = service.rss_mb()
            service.check()
        finally:
            for w in writers:
                w.close()
            await service.stop()
    return {
        "benchmark": "stalled", "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "stalled": stalled, "logins": logins, "incidents": incidents,
        "snapshot_bytes": snapshot_bytes,
        "login_ms_p50": round(statistics.median(times), 1),
        "login_ms_max": round(max(times), 1),
        "login_ms": [round(t, 1) for t in times],
        "serve_rss_mb": {"before_stalled": round(rss_before, 1),
                         "stalled": round(rss_stalled, 1),
                         "after_logins": round(rss_after_logins, 1),
                         "stalled_dropped": round(rss_dropped, 1)},
        "stalled_dropped": int(dropped),
    }


def metrics(r: dict[str, Any]) -> list[Metric]:
    before = Metric("consoles.serve_rss_mb_before_stalled", r["serve_rss_mb"]["before_stalled"],
                    "MB")
    # the names stay those of the full size, whatever was run (--quick is smaller)
    return [Metric("consoles.login_with_50_stalled_ms", r["login_ms_p50"], "ms"),
            against(Metric("consoles.serve_rss_mb_50_stalled", r["serve_rss_mb"]["stalled"],
                           "MB"), before),
            before]


SIZES: dict[bool, dict[str, Any]] = {
    False: {"stalled": 50, "logins": 10, "incidents": 1000, "pad": 2000},
    True: {"stalled": 20, "logins": 3, "incidents": 200, "pad": 2000},
}


async def measure(quick: bool = False) -> list[Metric]:
    return metrics(await run(**SIZES[quick]))


def main() -> None:
    parser = parser_for(
        __doc__,
        stalled=(int, "consoles that never read (50)"),
        logins=(int, "new consoles timed (10)"),
        incidents=(int, "open incidents in the snapshot (1000)"),
        pad=(int, "bytes of summary per incident (2000)"),
    )
    args = parser.parse_args()
    r = asyncio.run(run(**sizes(args, SIZES[args.quick])))
    print(f"{r['stalled']} stalled consoles, snapshot {r['snapshot_bytes']:,} bytes: "
          f"a new console's welcome in {r['login_ms_p50']} ms (median of {r['logins']}, "
          f"slowest {r['login_ms_max']} ms); {r['stalled_dropped']} stalled dropped")
    print(f"ecc serve RSS (MB): {r['serve_rss_mb']}")
    report("stalled", r, metrics(r), args)


if __name__ == "__main__":
    main()
