"""Benchmark: signals through the whole skeleton, from publish to a console.

Starts embedded nats-server and PostgreSQL (or uses NATS_URL / DATABASE_URL),
runs `ecc serve` as its own process, connects one console over a websocket,
and measures, from this process's clock:

* latency: one signal at a time, publish -> delta on the console (median, p90, p99);
* throughput: a burst of signals published with many in flight, the rate at
  which their deltas reach the console (the durable ingest rate of the whole
  pipeline: broker, intake and fusion, PostgreSQL commit, outbox, gateway);
* the raw JetStream durable publish rate on the same server, in the same run
  (the same payloads, the same number in flight, a file stream of its own, acks
  awaited), and the ratio of the pipeline's rate to it.

Prints the figures and writes them to bench/results/skeleton.json.

    python -m bench.skeleton [--burst 3000] [--single 300]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from command import bus, logs
from command.model import Signal
from command.runtime import EmbeddedNats, EmbeddedPostgres, free_port
from command.store import migrate
from command.subjects import Namespace
from consoles.client import ConsoleClient, open_console
from consoles.protocol import Delta
from workflows.geo import Location

RESULTS = Path(__file__).resolve().parent / "results" / "skeleton.json"


_spot = itertools.count()


def signal(i: int) -> Signal:
    n = next(_spot)  # every signal its own place: separate events, each its own incident
    return Signal(
        signal_id=f"bench-{uuid.uuid4().hex[:12]}",
        source="hotline",
        category="fire",
        # 1.1 km apart: separate events, so each raises its own incident
        location=Location(lat=34.0 + (n % 100) * 0.01, lon=113.0 + (n // 100) * 0.01),
        observed_at=datetime.now(UTC),
        summary=f"bench call {i}",
        confidence=0.6,
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def wait_delta(console: ConsoleClient, want: set[str], arrived: dict[str, float]) -> None:
    while want - arrived.keys():
        msg = await asyncio.wait_for(console.receive(), 30)
        if isinstance(msg, Delta) and msg.event.type == "incident.reported":
            arrived[msg.event.data["signal_id"]] = time.perf_counter()


async def run(burst: int, single: int) -> dict[str, Any]:
    logs.configure(json=True, level=40)
    tmp = Path(tempfile.mkdtemp(prefix="ecc-bench-"))
    tmp.chmod(0o755)
    nats_srv = pg_srv = None
    if os.environ.get("NATS_URL") and os.environ.get("DATABASE_URL"):
        nats_url, admin_url = os.environ["NATS_URL"], os.environ["DATABASE_URL"]
    else:
        nats_srv, pg_srv = EmbeddedNats(tmp), EmbeddedPostgres(tmp)
        await asyncio.gather(nats_srv.start(), pg_srv.start())
        nats_url, admin_url = nats_srv.url, pg_srv.url_for("postgres")
    db = f"ecc_bench_{os.getpid()}"
    database_url = admin_url.rsplit("/", 1)[0] + "/" + db
    ns = Namespace(f"b{os.getpid()}")
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{db}"')
    conn = await asyncpg.connect(database_url)
    await migrate(conn)
    token = uuid.uuid4().hex
    await conn.execute("INSERT INTO tokens (token_hash, name, role) VALUES (sha256($1), 'bench', "
                       "'admin')", token.encode())
    await conn.close()
    port = free_port()
    env = {**os.environ, "NATS_URL": nats_url, "DATABASE_URL": database_url,
           "ECC_NAMESPACE": ns.prefix, "ECC_CONSOLE_PORT": str(port)}
    service = subprocess.Popen([sys.executable, "-m", "command.cli", "serve"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nc = await bus.connect(nats_url, "ecc-bench")
    js = nc.jetstream()
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(200):
            try:
                async with open_console(url, token) as probe:
                    await probe.receive()
                break
            except OSError:
                await asyncio.sleep(0.1)
        async with open_console(url, token) as console:
            await console.receive(), await console.receive()  # welcome, snapshot
            subject = ns.signal("hotline", "fire")

            async def publish(sig: Signal) -> None:
                await js.publish(subject, sig.model_dump_json().encode(),
                                 headers={"Nats-Msg-Id": f"hotline:{sig.signal_id}"})

            # warm-up
            warm = [signal(i) for i in range(50)]
            for sig in warm:
                await publish(sig)
            await wait_delta(console, {s.signal_id for s in warm}, {})

            # latency, one at a time
            latencies = []
            for i in range(single):
                sig = signal(i)
                arrived: dict[str, float] = {}
                start = time.perf_counter()
                await publish(sig)
                await wait_delta(console, {sig.signal_id}, arrived)
                latencies.append((arrived[sig.signal_id] - start) * 1000)

            # raw JetStream: what the broker alone takes durably, for the ratio
            from nats.js import api
            raw_subject = f"{ns.prefix}.rawbench.x"
            await js.add_stream(api.StreamConfig(
                name=f"{ns.prefix.upper()}_RAWBENCH", subjects=[raw_subject],
                storage=api.StorageType.FILE, duplicate_window=120.0))
            payloads = [signal(i).model_dump_json().encode() for i in range(burst)]
            raw_start = time.perf_counter()
            raw_acks = [await js.publish_async(raw_subject, p,
                                               headers={"Nats-Msg-Id": uuid.uuid4().hex})
                        for p in payloads]
            await asyncio.gather(*raw_acks)
            raw_s = time.perf_counter() - raw_start
            await js.delete_stream(f"{ns.prefix.upper()}_RAWBENCH")

            # throughput, a burst with many in flight
            sigs = [signal(i) for i in range(burst)]
            arrived = {}
            sent: dict[str, float] = {}
            start = time.perf_counter()
            receiver = asyncio.create_task(wait_delta(console, {s.signal_id for s in sigs},
                                                      arrived))
            acks = []
            for sig in sigs:
                sent[sig.signal_id] = time.perf_counter()
                acks.append(await js.publish_async(
                    subject, sig.model_dump_json().encode(),
                    headers={"Nats-Msg-Id": f"hotline:{sig.signal_id}"}))
            await asyncio.gather(*acks)
            published = time.perf_counter()
            await receiver
            done = time.perf_counter()
            burst_lat = [(arrived[k] - sent[k]) * 1000 for k in sent]
    finally:
        service.terminate()
        service.wait(timeout=30)
        await nc.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()
        for srv in (nats_srv, pg_srv):
            if srv is not None:
                await srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    return {
        "benchmark": "skeleton",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "servers": "external" if nats_srv is None else "embedded",
        "single": {
            "signals": single,
            "latency_ms_p50": round(statistics.median(latencies), 2),
            "latency_ms_p90": round(pct(latencies, 0.9), 2),
            "latency_ms_p99": round(pct(latencies, 0.99), 2),
        },
        "burst": {
            "signals": burst,
            "publish_s": round(published - start, 3),
            "total_s": round(done - start, 3),
            "signals_per_s": round(burst / (done - start), 1),
            "latency_ms_p50": round(statistics.median(burst_lat), 1),
            "latency_ms_p99": round(pct(burst_lat, 0.99), 1),
        },
        "raw_jetstream": {
            "messages": burst,
            "messages_per_s": round(burst / raw_s, 1),
        },
        "pipeline_to_raw_ratio": round((burst / (done - start)) / (burst / raw_s), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=3000)
    parser.add_argument("--single", type=int, default=300)
    args = parser.parse_args()
    result = asyncio.run(run(args.burst, args.single))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    s, b = result["single"], result["burst"]
    print(f"signal -> console, one at a time ({s['signals']}): "
          f"p50 {s['latency_ms_p50']} ms, p90 {s['latency_ms_p90']} ms, "
          f"p99 {s['latency_ms_p99']} ms")
    print(f"burst of {b['signals']}: {b['signals_per_s']} signals/s through to the console "
          f"({b['total_s']} s; publish took {b['publish_s']} s); "
          f"latency p50 {b['latency_ms_p50']} ms, p99 {b['latency_ms_p99']} ms")
    print(f"raw JetStream durable publish, same server and run: "
          f"{result['raw_jetstream']['messages_per_s']} msgs/s; the pipeline does "
          f"{result['pipeline_to_raw_ratio']:.1%} of it")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
