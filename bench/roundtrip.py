"""Benchmark: dispatch round trip on real NATS and PostgreSQL.

From a gas-leak signal published (its tasks are created when it commits) to
the order arriving on the chosen unit's dispatch subject, one incident at a
time, with `ecc serve` in its own process and 150 gas crews in the city.

    python -m bench.roundtrip [--incidents 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from command import bus, logs
from command.model import OrderOffered, Signal
from command.runtime import EmbeddedNats, EmbeddedPostgres, free_port
from command.store import migrate
from command.subjects import Namespace
from workflows.geo import Location

RESULTS = Path(__file__).resolve().parent / "results" / "roundtrip.json"


def city(n: int) -> str:
    lines = ['name = "bench town"']
    for i in range(n):
        lines += ["[[station]]", f'id = "u{i}"', 'agency = "utility"', f'district = "d{i % 6}"',
                  f"lat = {34.70 + (i % 15) * 0.01:.3f}", f"lon = {113.55 + (i // 15) * 0.02:.3f}",
                  f'units = [{{ id = "G{i}", kind = "gas_crew" }}]']
    return "\n".join(lines) + "\n"


async def run(incidents: int) -> dict[str, object]:
    logs.configure(json=True, level=40)
    tmp = Path(tempfile.mkdtemp(prefix="ecc-bench-"))
    tmp.chmod(0o755)
    nats_srv, pg_srv = EmbeddedNats(tmp), EmbeddedPostgres(tmp)
    await asyncio.gather(nats_srv.start(), pg_srv.start())
    (tmp / "city.toml").write_text(city(150))
    ns = Namespace("rt")
    admin = await asyncpg.connect(pg_srv.url_for("postgres"))
    await admin.execute('CREATE DATABASE "rt"')
    await admin.close()
    database_url = pg_srv.url_for("rt")
    conn = await asyncpg.connect(database_url)
    await migrate(conn)
    await conn.close()
    env = {**os.environ, "NATS_URL": nats_srv.url, "DATABASE_URL": database_url,
           "ECC_NAMESPACE": ns.prefix, "ECC_CONSOLE_PORT": str(free_port()),
           "ECC_CITY": str(tmp / "city.toml")}
    service = subprocess.Popen([sys.executable, "-m", "command.cli", "serve"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nc = await bus.connect(nats_srv.url, "ecc-bench")
    js = nc.jetstream()
    arrived: dict[str, float] = {}
    got = asyncio.Event()

    async def on_order(msg: object) -> None:
        data = msg.data  # type: ignore[attr-defined]
        if b'"order.offered"' in data:
            arrived[OrderOffered.model_validate_json(data).summary] = time.perf_counter()
            got.set()

    await nc.subscribe(ns.dispatches, cb=on_order)
    try:
        await asyncio.sleep(3)  # the service registers its 150 units and starts consuming
        rtt = []
        for i in range(incidents + 5):
            summary = f"leak {uuid.uuid4().hex[:8]}"
            sig = Signal(signal_id=f"rt-{i}-{summary[5:]}", source="sensor", category="gas_leak",
                         # 550 m apart: separate leaks, each needing its own crew
                         location=Location(lat=34.70 + (i % 20) * 0.005,
                                           lon=113.55 + (i // 20) * 0.005),
                         observed_at=datetime.now(UTC), summary=summary, confidence=0.95)
            got.clear()
            start = time.perf_counter()
            await js.publish(ns.signal("sensor", "gas_leak"), sig.model_dump_json().encode())
            while summary not in arrived:
                await asyncio.wait_for(got.wait(), 30)
                got.clear()
            if i >= 5:  # the first few warm the caches
                rtt.append((arrived[summary] - start) * 1000)
    finally:
        service.terminate()
        service.wait(timeout=30)
        await nc.close()
        await asyncio.gather(nats_srv.stop(), pg_srv.stop())
        shutil.rmtree(tmp, ignore_errors=True)
    rtt.sort()
    return {"benchmark": "dispatch round trip", "when": datetime.now(UTC).isoformat(
        timespec="seconds"), "incidents": incidents,
        "signal_to_order_ms_p50": round(statistics.median(rtt), 1),
        "signal_to_order_ms_p99": round(rtt[int(0.99 * (len(rtt) - 1))], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100)
    args = parser.parse_args()
    result = asyncio.run(run(args.incidents))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"signal -> order on the unit's subject ({args.incidents} incidents): "
          f"p50 {result['signal_to_order_ms_p50']} ms, p99 {result['signal_to_order_ms_p99']} ms")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
