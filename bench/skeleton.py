"""Benchmark: signals through the whole skeleton, from publish to a console.

Starts embedded nats-server and PostgreSQL (or uses NATS_URL / DATABASE_URL),
runs `ecc serve` as its own process, connects one console over a websocket,
and measures, from this process's clock:

* latency at a fixed rate (``latency.signal_to_console_p50_ms`` / ``_p99_ms``):
  signals published on a schedule (50 a second for 10 s by default), each its
  own incident, publish -> ``incident.reported`` delta on the console;
* latency one at a time (``latency.one_at_a_time_p50_ms`` / ``_p99_ms``): the
  next signal is published when the last one's delta arrived;
* throughput (``ingest.durable_signals_per_s``): a burst of signals published
  with many in flight, the rate at which their deltas reach the console (the
  durable ingest rate of the whole pipeline: broker, intake and fusion,
  PostgreSQL commit, outbox, gateway);
* the raw JetStream durable publish rate on the same server, in the same run
  (``ingest.raw_jetstream_durable_publish_per_s``: the same payloads, the same
  number in flight, a file stream of its own, acks awaited), the baseline of the
  pipeline's rate.

    python -m bench.skeleton [--burst 3000] [--single 300] [--rate 50] [--seconds 10]
                             [--quick] [--metrics FILE]
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from nats.js import api

from bench.metric import Metric, against, parser_for, pct, report, sizes
from bench.servers import Serve, database, serve_env, servers
from command import bus, logs
from command.model import Signal
from command.store import Store
from command.subjects import Namespace
from consoles.client import ConsoleClient, open_console
from consoles.protocol import Delta
from workflows.geo import Location

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


async def wait_delta(console: ConsoleClient, want: set[str], arrived: dict[str, float]) -> None:
    while want - arrived.keys():
        msg = await asyncio.wait_for(console.receive(), 30)
        if isinstance(msg, Delta) and msg.event.type == "incident.reported":
            arrived[msg.event.data["signal_id"]] = time.perf_counter()


async def joined(url: str, token: str, deadline: float = 60.0) -> None:
    """Wait until the gateway at ``url`` gives a console its snapshot."""
    end = time.monotonic() + deadline
    while True:
        try:
            async with open_console(url, token) as probe:
                await probe.receive()
                return
        except OSError:
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.1)


async def run(burst: int, single: int, rate: float, seconds: float) -> dict[str, Any]:
    logs.configure(json=True, level=40)
    async with servers() as srv, database(srv) as database_url:
        ns = Namespace(f"b{uuid.uuid4().hex[:8]}")
        store = await Store.connect(database_url, ns)
        token = uuid.uuid4().hex
        await store.create_token(token, name="bench", role="admin", agency=None)
        await store.close()
        service = Serve(serve_env(srv.nats_url, database_url, ns.prefix))
        await service.start()
        nc = await bus.connect(srv.nats_url, "ecc-bench")
        js = nc.jetstream()
        try:
            await service.ready()
            await joined(service.url, token)
            async with open_console(service.url, token) as console:
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

                # latency at a fixed rate: each signal on its schedule, whatever the last did
                paced = [signal(i) for i in range(round(rate * seconds))]
                arrived = {}
                sent: dict[str, float] = {}
                receiver = asyncio.create_task(
                    wait_delta(console, {s.signal_id for s in paced}, arrived))
                acks = []
                begin = time.perf_counter()
                for i, sig in enumerate(paced):
                    delay = begin + i / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    payload = sig.model_dump_json().encode()
                    sent[sig.signal_id] = time.perf_counter()
                    acks.append(await js.publish_async(
                        subject, payload, headers={"Nats-Msg-Id": f"hotline:{sig.signal_id}"}))
                await asyncio.gather(*acks)
                paced_late = time.perf_counter() - (begin + (len(paced) - 1) / rate)
                await receiver
                paced_lat = [(arrived[k] - sent[k]) * 1000 for k in sent]

                # raw JetStream: what the broker alone takes durably, for the ratio
                raw_subject = f"{ns.prefix}.rawbench.x"
                raw_stream = f"{ns.prefix.upper()}_RAWBENCH"
                await js.add_stream(api.StreamConfig(
                    name=raw_stream, subjects=[raw_subject],
                    storage=api.StorageType.FILE, duplicate_window=120.0))
                payloads = [signal(i).model_dump_json().encode() for i in range(burst)]
                raw_start = time.perf_counter()
                raw_acks = [await js.publish_async(raw_subject, p,
                                                   headers={"Nats-Msg-Id": uuid.uuid4().hex})
                            for p in payloads]
                await asyncio.gather(*raw_acks)
                raw_s = time.perf_counter() - raw_start
                await js.delete_stream(raw_stream)

                # throughput, a burst with many in flight
                sigs = [signal(i) for i in range(burst)]
                arrived = {}
                sent = {}
                start = time.perf_counter()
                receiver = asyncio.create_task(
                    wait_delta(console, {s.signal_id for s in sigs}, arrived))
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
            service.check()
        finally:
            await service.stop()
            await nc.close()

    return {
        "benchmark": "skeleton",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "servers": "embedded" if srv.embedded else "external",
        "single": {
            "signals": single,
            "latency_ms_p50": round(statistics.median(latencies), 2),
            "latency_ms_p90": round(pct(latencies, 0.9), 2),
            "latency_ms_p99": round(pct(latencies, 0.99), 2),
        },
        "paced": {
            "signals": len(paced),
            "rate_per_s": rate,
            "publisher_behind_s": round(max(0.0, paced_late), 3),
            "latency_ms_p50": round(statistics.median(paced_lat), 2),
            "latency_ms_p90": round(pct(paced_lat, 0.9), 2),
            "latency_ms_p99": round(pct(paced_lat, 0.99), 2),
            "latency_ms_max": round(max(paced_lat), 2),
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


def metrics(r: dict[str, Any]) -> list[Metric]:
    raw = Metric("ingest.raw_jetstream_durable_publish_per_s",
                 r["raw_jetstream"]["messages_per_s"], "msgs/s")
    return [
        against(Metric("ingest.durable_signals_per_s", r["burst"]["signals_per_s"],
                       "signals/s"), raw),
        raw,
        Metric("ingest.burst_latency_p99_ms", r["burst"]["latency_ms_p99"], "ms"),
        Metric("latency.signal_to_console_p50_ms", r["paced"]["latency_ms_p50"], "ms"),
        Metric("latency.signal_to_console_p99_ms", r["paced"]["latency_ms_p99"], "ms"),
        Metric("latency.one_at_a_time_p50_ms", r["single"]["latency_ms_p50"], "ms"),
        Metric("latency.one_at_a_time_p99_ms", r["single"]["latency_ms_p99"], "ms"),
    ]


SIZES: dict[bool, dict[str, Any]] = {
    False: {"burst": 3000, "single": 300, "rate": 50.0, "seconds": 10.0},
    True: {"burst": 300, "single": 30, "rate": 50.0, "seconds": 2.0},
}


async def measure(quick: bool = False) -> list[Metric]:
    return metrics(await run(**SIZES[quick]))


def main() -> None:
    parser = parser_for(
        __doc__,
        burst=(int, "signals in the burst (3000; 300 quick)"),
        single=(int, "signals one at a time (300; 30 quick)"),
        rate=(float, "signals/s of the paced run (50)"),
        seconds=(float, "length of the paced run (10; 2 quick)"),
    )
    args = parser.parse_args()
    result = asyncio.run(run(**sizes(args, SIZES[args.quick])))
    s, p, b = result["single"], result["paced"], result["burst"]
    print(f"signal -> console at {p['rate_per_s']:g}/s ({p['signals']} signals): "
          f"p50 {p['latency_ms_p50']} ms, p90 {p['latency_ms_p90']} ms, "
          f"p99 {p['latency_ms_p99']} ms, max {p['latency_ms_max']} ms")
    print(f"signal -> console, one at a time ({s['signals']}): "
          f"p50 {s['latency_ms_p50']} ms, p90 {s['latency_ms_p90']} ms, "
          f"p99 {s['latency_ms_p99']} ms")
    print(f"burst of {b['signals']}: {b['signals_per_s']} signals/s through to the console "
          f"({b['total_s']} s; publish took {b['publish_s']} s); "
          f"latency p50 {b['latency_ms_p50']} ms, p99 {b['latency_ms_p99']} ms")
    print(f"raw JetStream durable publish, same server and run: "
          f"{result['raw_jetstream']['messages_per_s']} msgs/s; the pipeline does "
          f"{result['pipeline_to_raw_ratio']:.1%} of it")
    report("skeleton", result, metrics(result), args)


if __name__ == "__main__":
    main()
