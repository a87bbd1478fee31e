"""Benchmark: one console gateway feeding 1,000 consoles over real websockets.

`ecc serve` runs as its own process on embedded servers (or those of NATS_URL and
DATABASE_URL). 1,000 consoles connect to its gateway over loopback TCP from two
client processes of 500 (bench/lean.py), each console with a viewer token (a
token opens at most eight consoles, so there are 125). Then signals are
published, each at a place of its own so each raises an incident, and every
console must receive every ``incident.reported`` delta:

* a burst of ``--burst`` (200) signals published at once:
  ``consoles.fanout_deliveries_per_s_1000`` is the deliveries (one delta reaching
  one console) per second across all consoles, from the first publish to the
  last delivery; ``consoles.fanout_burst_p99_ms_1000`` is the p99 of publish ->
  delivery in that burst (mostly the time it takes to drain);
  ``consoles.gateway_cpu_us_per_delivery`` is the CPU time `ecc serve` spent
  meanwhile, divided by the deliveries (the intake of the 200 incidents is in it,
  but it is small beside 200,000 deliveries). On a shared machine the rate depends
  on what else runs; the CPU per delivery much less;
* then signals at a fixed rate (``--rate`` 1 a second for ``--seconds`` 20):
  ``consoles.fanout_p99_ms_1000`` is the p99 of publish -> delivery over every
  delivery, when the gateway keeps up.

The baselines, ``consoles.raw_websockets_broadcast_per_s_1000`` and
``consoles.raw_websockets_cpu_us_per_delivery``, are measured in the same run
with the same client processes: a bare websockets server (a process of its own;
no NATS, no database, no queues) that sends the same frames (a real delta
captured from the gateway) to the same 1,000 consoles with
``websockets.broadcast``, as fast as it can.

Like browsers, the consoles offer permessage-deflate (``--no-deflate`` to
measure without it). Publish and arrival times are ``time.monotonic()``, one
clock for every process on the machine: the publish time travels in the
signal's summary. ``results/fanout.json`` has the CPU each process (and the
whole machine) used during the burst, in cores, to say what limits the rate.
``consoles.serve_rss_mb_1000`` is the resident memory of `ecc serve` with the
1,000 consoles connected, beside ``consoles.serve_rss_mb_0`` before they came.

    python -m bench.fanout [--consoles 1000] [--procs 2] [--burst 200] [--rate 1]
                           [--seconds 20] [--no-deflate] [--quick] [--metrics FILE]
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench.lean import TIMEOUT
from bench.metric import Metric, against, parser_for, pct, report, sizes
from bench.servers import Serve, cpu_seconds, database, machine_busy_seconds, serve_env, servers

PER_TOKEN = 8  # the gateway's limit of consoles per token


# --- the benchmark ------------------------------------------------------------------------


class Child:
    """A child process of this module, talking JSON lines (config in, reports out)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, role: str, cfg: dict[str, Any]) -> Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.lean", role, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, limit=256 * 1024 * 1024)
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(cfg).encode() + b"\n")
        await proc.stdin.drain()
        return cls(proc)

    async def line(self, timeout: float = TIMEOUT + 60) -> dict[str, Any]:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not raw:
            raise RuntimeError(f"bench.lean child exited ({await self.proc.wait()})")
        result: dict[str, Any] = json.loads(raw)
        return result

    async def send(self, line: str) -> None:
        """One line to the child's stdin (bench.lean's position client takes commands)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def _summary(phase: str, reports: list[dict[str, Any]], consoles: int,
             expect: int) -> dict[str, Any]:
    lat = [x for r in reports for x in r["latencies"]]
    deliveries = len(lat)
    first = min(r["first_pub"] for r in reports if r["first_pub"] is not None)
    last = max(r["last"] for r in reports if r["last"] is not None)
    return {
        "phase": phase, "events": expect, "consoles": consoles,
        "deliveries": deliveries, "missing": consoles * expect - deliveries,
        "consoles_complete": sum(r["complete"] for r in reports),
        "seconds": round(last - first, 3),
        "deliveries_per_s": round(deliveries / (last - first)),
        "latency_ms_p50": round(statistics.median(lat), 1),
        "latency_ms_p99": round(pct(lat, 0.99), 1),
        "latency_ms_max": round(max(lat), 1),
        "resyncs": sum(r["resyncs"] for r in reports),
        "closed": sum(r["closed"] for r in reports),
    }


def _split(items: list[str], parts: int) -> list[list[str]]:
    size = math.ceil(len(items) / parts)
    return [items[i:i + size] for i in range(0, len(items), size)]


class CpuWatch:
    """CPU seconds of named processes between :meth:`start` and :meth:`stop`, as cores."""

    def __init__(self, pids: dict[str, tuple[int | None, bool]]) -> None:
        self.pids = pids
        self.before: dict[str, float] = {}
        self.seconds: dict[str, float] = {}  # CPU seconds used, after stop()
        self.began = self.wall = 0.0

    def start(self) -> None:
        self.began = time.monotonic()
        self.before = {k: cpu_seconds(pid, kids) for k, (pid, kids) in self.pids.items()}
        self.before["whole machine"] = machine_busy_seconds()

    def stop(self) -> dict[str, float]:
        """Cores used by each process (and the whole machine) since :meth:`start`."""
        self.wall = time.monotonic() - self.began
        used = {k: cpu_seconds(pid, kids) - self.before[k]
                for k, (pid, kids) in self.pids.items()}
        used["whole machine"] = machine_busy_seconds() - self.before["whole machine"]
        self.seconds = used
        return {k: round(v / self.wall, 2) for k, v in used.items()}


async def run(consoles: int, procs: int, burst: int, rate: float, seconds: float,
              deflate: bool = True) -> dict[str, Any]:
    from command import bus, logs
    from command.model import Signal
    from command.store import Store
    from command.subjects import Namespace
    from workflows.geo import Location

    logs.configure(json=True, level=40)
    paced_n = round(rate * seconds)
    spot = iter(range(10**9))

    def signal(phase: str) -> Signal:
        n = next(spot)  # 1.1 km apart: each its own incident
        return Signal(signal_id=f"fan-{uuid.uuid4().hex[:12]}", source="hotline",
                      category="fire", observed_at=datetime.now(UTC), confidence=0.6,
                      location=Location(lat=34.0 + (n % 100) * 0.01,
                                        lon=113.0 + (n // 100) * 0.01),
                      summary=f"fanout {phase} {time.monotonic():.6f}")

    async with servers() as srv, database(srv) as database_url:
        ns = Namespace(f"f{uuid.uuid4().hex[:8]}")
        store = await Store.connect(database_url, ns)
        tokens = []
        for i in range(math.ceil(consoles / PER_TOKEN)):
            token = uuid.uuid4().hex
            await store.create_token(token, name=f"bench console {i}", role="viewer",
                                     agency=None)
            tokens += [token] * PER_TOKEN
        await store.close()
        # every console comes from 127.0.0.1: past the gateway's per-peer limit (32)
        service = Serve(serve_env(srv.nats_url, database_url, ns.prefix,
                                  ECC_CONSOLE_MAX_PER_PEER=str(consoles + 8)))
        await service.start()
        nc = await bus.connect(srv.nats_url, "ecc-bench")
        js = nc.jetstream()
        children: list[Child] = []
        try:
            await service.ready()
            await asyncio.sleep(2.0)
            rss = {"no_consoles": service.rss_mb()}
            expect = {"burst": burst, "paced": paced_n}
            for part in _split(tokens[:consoles], procs):
                children.append(await Child.start("--client", {
                    "url": service.url, "tokens": part, "expect": expect,
                    "deflate": deflate}))
            joins = [await c.line() for c in children]
            await asyncio.sleep(2.0)
            rss["consoles_joined"] = service.rss_mb()
            subject = ns.signal("hotline", "fire")

            async def publish(phase: str) -> Any:
                sig = signal(phase)
                return await js.publish_async(subject, sig.model_dump_json().encode(),
                                              headers={"Nats-Msg-Id": f"hotline:{sig.signal_id}"})

            watch = CpuWatch({"ecc serve": (service.pid, False),
                              "nats-server": (srv.nats_pid, False),
                              "postgres": (srv.postgres_pid, True),
                              "bench": (os.getpid(), False),
                              **{f"consoles {i}": (c.pid, False)
                                 for i, c in enumerate(children)}})
            watch.start()
            await asyncio.gather(*[await publish("burst") for _ in range(burst)])
            burst_reports = [await c.line() for c in children]
            cpu = watch.stop()
            rss["after_burst"] = service.rss_mb()
            serve_cpu_s = watch.seconds["ecc serve"]
            await asyncio.sleep(1.0)
            begin = time.monotonic()
            acks = []
            for i in range(paced_n):
                delay = begin + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                acks.append(await publish("paced"))
            await asyncio.gather(*acks)
            paced_reports = [await c.line() for c in children] if paced_n else []
            service.check()
        finally:
            for c in children:
                await c.stop()
            await service.stop()
            await nc.close()

    sample = next(r["sample"] for r in burst_reports if r["sample"])
    burst_deliveries = sum(len(r["latencies"]) for r in burst_reports)
    raw = await _raw_baseline(consoles, procs, burst, sample, deflate)
    result = {
        "benchmark": "fanout", "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "consoles": consoles, "client_processes": procs, "deflate": deflate,
        "join_seconds": max(j["seconds"] for j in joins),
        "serve_rss_mb": {k: round(v, 1) for k, v in rss.items()},
        "burst": _summary("burst", burst_reports, consoles, burst),
        "paced": ({**_summary("paced", paced_reports, consoles, paced_n), "rate_per_s": rate}
                  if paced_n else None),
        "cpu_cores_during_burst": cpu,
        # what the service spent per delivery (the intake and fusion of the burst's
        # incidents included: 200 incidents against 200,000 deliveries)
        "serve_cpu_us_per_delivery": round(serve_cpu_s * 1e6 / burst_deliveries, 1),
        "raw_websockets": raw,
        "delta_frame_bytes": len(sample.encode()),
    }
    return result


async def _raw_baseline(consoles: int, procs: int, burst: int, sample: str,
                        deflate: bool) -> dict[str, Any]:
    from command.runtime import free_port

    port = free_port()
    server = await Child.start("--raw-server", {"port": port, "consoles": consoles,
                                                "burst": burst, "sample": sample})
    children: list[Child] = []
    try:
        await server.line(30)
        url = f"http://127.0.0.1:{port}/"
        tokens = ["raw"] * consoles
        for part in _split(tokens, procs):
            children.append(await Child.start("--client", {
                "url": url, "tokens": part, "expect": {"burst": burst}, "deflate": deflate,
                "concurrency": 32}))
        for c in children:
            await c.line()
        watch = CpuWatch({"server": (server.pid, False),
                          **{f"consoles {i}": (c.pid, False) for i, c in enumerate(children)}})
        watch.start()
        reports = [await c.line() for c in children]
        cpu = watch.stop()
    finally:
        for c in children:
            await c.stop()
        await server.stop()
    deliveries = sum(len(r["latencies"]) for r in reports)
    return {**_summary("burst", reports, consoles, burst), "cpu_cores": cpu,
            "server_cpu_us_per_delivery": round(watch.seconds["server"] * 1e6 / deliveries, 1)}


def metrics(r: dict[str, Any]) -> list[Metric]:
    n = 1000  # the names stay those of the full size, whatever was run (--quick is smaller)
    raw = Metric(f"consoles.raw_websockets_broadcast_per_s_{n}",
                 r["raw_websockets"]["deliveries_per_s"], "deliveries/s")
    no_consoles = Metric("consoles.serve_rss_mb_0", r["serve_rss_mb"]["no_consoles"], "MB")
    raw_cpu = Metric("consoles.raw_websockets_cpu_us_per_delivery",
                     r["raw_websockets"]["server_cpu_us_per_delivery"], "us")
    out = [against(Metric(f"consoles.fanout_deliveries_per_s_{n}",
                          r["burst"]["deliveries_per_s"], "deliveries/s"), raw),
           raw,
           Metric(f"consoles.fanout_burst_p99_ms_{n}", r["burst"]["latency_ms_p99"], "ms"),
           against(Metric("consoles.gateway_cpu_us_per_delivery", r["serve_cpu_us_per_delivery"],
                          "us"), raw_cpu),
           raw_cpu,
           against(Metric(f"consoles.serve_rss_mb_{n}", r["serve_rss_mb"]["consoles_joined"],
                          "MB"), no_consoles),
           no_consoles]
    if r["paced"]:
        out.insert(1, Metric(f"consoles.fanout_p99_ms_{n}", r["paced"]["latency_ms_p99"], "ms"))
    return out


SIZES: dict[bool, dict[str, Any]] = {
    False: {"consoles": 1000, "procs": 2, "burst": 200, "rate": 1.0, "seconds": 20.0},
    True: {"consoles": 100, "procs": 1, "burst": 10, "rate": 5.0, "seconds": 1.0},
}


async def measure(quick: bool = False) -> list[Metric]:
    return metrics(await run(**SIZES[quick]))


def main() -> None:
    parser = parser_for(
        __doc__,
        consoles=(int, "consoles (1000)"),
        procs=(int, "client processes (2)"),
        burst=(int, "signals in the burst (200; 10 quick)"),
        rate=(float, "signals/s of the paced run (5)"),
        seconds=(float, "length of the paced run (10; 1 quick)"),
    )
    parser.add_argument("--no-deflate", dest="deflate", action="store_false",
                        help="consoles do not offer permessage-deflate")
    args = parser.parse_args()
    r = asyncio.run(run(**sizes(args, SIZES[args.quick]), deflate=args.deflate))
    b, p, w = r["burst"], r["paced"], r["raw_websockets"]
    print(f"{r['consoles']} consoles in {r['client_processes']} processes joined in "
          f"{r['join_seconds']} s")
    print(f"burst of {b['events']} incidents: {b['deliveries_per_s']} deliveries/s "
          f"({b['deliveries']} in {b['seconds']} s, {b['missing']} missing, "
          f"{b['resyncs']} resyncs); latency p50 {b['latency_ms_p50']} ms, "
          f"p99 {b['latency_ms_p99']} ms")
    if p:
        print(f"at {p['rate_per_s']:g} incidents/s: latency p50 {p['latency_ms_p50']} ms, "
              f"p99 {p['latency_ms_p99']} ms, max {p['latency_ms_max']} ms "
              f"({p['missing']} missing)")
    print(f"raw websockets broadcast, same clients: {w['deliveries_per_s']} deliveries/s")
    print(f"ecc serve RSS (MB): {r['serve_rss_mb']}")
    print(f"CPU (cores) during the burst: {r['cpu_cores_during_burst']}; "
          f"baseline: {w['cpu_cores']}")
    report("fanout", r, metrics(r), args)


if __name__ == "__main__":
    main()
