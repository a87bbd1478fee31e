"""Benchmark: dispatch round trip on real NATS and PostgreSQL.

From a gas-leak signal published (its tasks are created when it commits) to
the order arriving on the chosen unit's dispatch subject, one incident at a
time, with `ecc serve` in its own process and 150 gas crews in the city.

    python -m bench.roundtrip [--incidents 100] [--quick] [--metrics FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.metric import Metric, common_args, pct, report
from bench.servers import Serve, database, serve_env, servers
from command import bus, logs
from command.model import OrderOffered, Signal
from command.subjects import Namespace
from workflows.geo import Location


def city(n: int) -> str:
    lines = ['name = "bench town"']
    for i in range(n):
        lines += ["[[station]]", f'id = "u{i}"', 'agency = "utility"', f'district = "d{i % 6}"',
                  f"lat = {34.70 + (i % 15) * 0.01:.3f}", f"lon = {113.55 + (i // 15) * 0.02:.3f}",
                  f'units = [{{ id = "G{i}", kind = "gas_crew" }}]']
    return "\n".join(lines) + "\n"


async def run(incidents: int) -> dict[str, Any]:
    logs.configure(json=True, level=40)
    arrived: dict[str, float] = {}
    got = asyncio.Event()

    async def on_order(msg: Any) -> None:
        if b'"order.offered"' in msg.data:
            arrived[OrderOffered.model_validate_json(msg.data).summary] = time.perf_counter()
            got.set()

    with tempfile.TemporaryDirectory(prefix="ecc-bench-") as tmp:
        city_file = Path(tmp) / "city.toml"
        city_file.write_text(city(150))
        async with servers() as srv, database(srv) as database_url:
            ns = Namespace(f"rt{uuid.uuid4().hex[:8]}")
            service = Serve(serve_env(srv.nats_url, database_url, ns.prefix,
                                      ECC_CITY=str(city_file)))
            nc = await bus.connect(srv.nats_url, "ecc-bench")
            js = nc.jetstream()
            await nc.subscribe(ns.dispatches, cb=on_order)
            await service.start()
            try:
                await service.ready()  # its 150 units are registered before it is ready
                rtt = []
                for i in range(incidents + 5):
                    summary = f"leak {uuid.uuid4().hex[:8]}"
                    sig = Signal(signal_id=f"rt-{i}-{summary[5:]}", source="sensor",
                                 category="gas_leak",
                                 # 550 m apart: separate leaks, each needing its own crew
                                 location=Location(lat=34.70 + (i % 20) * 0.005,
                                                   lon=113.55 + (i // 20) * 0.005),
                                 observed_at=datetime.now(UTC), summary=summary,
                                 confidence=0.95)
                    got.clear()
                    start = time.perf_counter()
                    await js.publish(ns.signal("sensor", "gas_leak"),
                                     sig.model_dump_json().encode())
                    while summary not in arrived:
                        await asyncio.wait_for(got.wait(), 30)
                        got.clear()
                    if i >= 5:  # the first few warm the caches
                        rtt.append((arrived[summary] - start) * 1000)
                service.check()
            finally:
                await service.stop()
                await nc.close()
    return {"benchmark": "dispatch round trip", "when": datetime.now(UTC).isoformat(
        timespec="seconds"), "incidents": incidents,
        "signal_to_order_ms_p50": round(statistics.median(rtt), 1),
        "signal_to_order_ms_p99": round(pct(rtt, 0.99), 1)}


def metrics(r: dict[str, Any]) -> list[Metric]:
    return [Metric("roundtrip.signal_to_order_p50_ms", r["signal_to_order_ms_p50"], "ms"),
            Metric("roundtrip.signal_to_order_p99_ms", r["signal_to_order_ms_p99"], "ms")]


async def measure(quick: bool = False) -> list[Metric]:
    return metrics(await run(20 if quick else 100))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, help="default 100; 20 with --quick")
    common_args(parser)
    args = parser.parse_args()
    incidents = args.incidents or (20 if args.quick else 100)
    result = asyncio.run(run(incidents))
    print(f"signal -> order on the unit's subject ({incidents} incidents): "
          f"p50 {result['signal_to_order_ms_p50']} ms, p99 {result['signal_to_order_ms_p99']} ms")
    report("roundtrip", result, metrics(result), args)


if __name__ == "__main__":
    main()
