"""Benchmark: 1,000 moving units' positions fanned out to 100 consoles by the gateway.

`ecc serve` runs as its own process on embedded servers (or those of NATS_URL and
DATABASE_URL), with ``ECC_CONSOLE_POSITIONS_HZ`` 1 (its default). This process
publishes a :class:`command.model.PositionReport` for each of ``--units`` (1,000)
simulated units once a second, each on its own subject ``<ns>.unit.<unit>.position``
(the POSITIONS stream takes them), the units spread evenly over the second, each
stamped ``at`` when it is published. ``--consoles`` (100) consoles connect over
loopback websockets from a client process of their own (bench/lean.py, viewer
tokens, permessage-deflate as browsers offer it) and count the unit entries of the
``positions`` messages they get:

* ``consoles.position_fanout_updates_per_s_1000``: unit entries delivered per second,
  summed over the consoles, over a ``--window`` (12 s) measured after a warm-up. Every
  unit moving once a second to every console is 1,000 x 100 = 100,000 a second;
* ``consoles.position_fanout_p99_ms_1000``: the p99, over every entry delivered in the
  window, of its report's ``at`` -> its arrival at a console (wall clocks of one
  machine). The gateway holds a position until its next tick, so up to one interval
  (1 s) of it is the coalescing, by design;
* ``consoles.position_intake_cpu_us_per_report_1000``: the CPU `ecc serve` spends per
  position report with no console connected (``--idle`` 8 s of the same flow before
  the consoles join): the gateway's feed, the tracks writer storing every position,
  the dispatcher's position reader;
* ``consoles.position_fanout_cpu_us_per_update_1000``: the CPU `ecc serve` spent during
  the window less that intake (its idle rate times the window), divided by the entries
  delivered: what the consoles cost it per delivered update;
* ``consoles.position_fanout_cpu_us_per_message_1000``: the same CPU divided by the
  ``positions`` messages delivered (one message to one console): the figure to set
  beside ``consoles.gateway_cpu_us_per_delivery`` of bench.fanout (one incident delta
  to one console).

`ecc serve`, the publishers (this process) and the consoles (a child process) are
three processes, so ``/proc`` gives each one's CPU apart; ``results/positions.json``
has every process's (and the whole machine's) CPU in both windows.

    python -m bench.positions [--units 1000] [--consoles 100] [--procs 1] [--hz 1]
                              [--window 12] [--idle 8] [--warmup 3] [--no-deflate]
                              [--quick] [--metrics FILE]
"""

from __future__ import annotations

import asyncio
import math
import os
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from bench.fanout import PER_TOKEN, Child, CpuWatch, _split
from bench.metric import Metric, parser_for, report, sizes
from bench.servers import Serve, database, serve_env, servers


async def publish_positions(nc: Any, ns: Any, units: int, stop: asyncio.Event,
                            tally: Counter[str]) -> None:
    """Each unit's position once a second, the units spread over the second in 50 slots
    (each on its schedule, whatever the previous slot did), until ``stop`` is set."""
    from command.model import PositionReport

    slots = 50
    names = [f"B{i:04d}" for i in range(units)]
    subjects = [ns.unit_position(n) for n in names]
    begin = time.monotonic()
    k = 0
    while not stop.is_set():
        delay = begin + k / slots - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            tally["late_slots"] += 1
        second, slot = divmod(k, slots)
        for i in range(slot * units // slots, (slot + 1) * units // slots):
            angle = (i * 7 + second) % 360  # each unit drives its own circle, 1 deg a second
            report = PositionReport(
                unit_id=names[i], lat=34.0 + (i % 40) * 0.01 + 0.001 * math.cos(angle),
                lon=113.0 + (i // 40) * 0.01 + 0.001 * math.sin(angle),
                heading=float(angle), speed_mps=12.0, at=datetime.now(UTC))
            await nc.publish(subjects[i], report.model_dump_json().encode())
            tally["published"] += 1
        k += 1


def _merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The client processes' reports as one: counts summed, latency bins merged."""
    bins: Counter[int] = Counter()
    for r in reports:
        bins.update({int(k): v for k, v in r["bins"].items()})
    ordered = sorted(bins.items())
    total = sum(bins.values())

    def quantile(q: float) -> float:
        rank, seen = max(1, math.ceil(q * total)), 0
        for tenths, n in ordered:
            seen += n
            if seen >= rank:
                return tenths / 10
        return math.nan

    return {
        "updates": sum(r["updates"] for r in reports),
        "messages": sum(r["messages"] for r in reports),
        "max_units_per_message": max(r["max_units_per_message"] for r in reports),
        "latency_ms_p50": quantile(0.5), "latency_ms_p99": quantile(0.99),
        "latency_ms_max": ordered[-1][0] / 10 if ordered else math.nan,
        "resyncs": sum(r["resyncs"] for r in reports),
        "closed": sum(r["closed"] for r in reports),
    }


async def run(units: int, consoles: int, procs: int, hz: float, window: float, idle: float,
              warmup: float, deflate: bool = True) -> dict[str, Any]:
    from command import bus, logs
    from command.store import Store
    from command.subjects import Namespace

    logs.configure(json=True, level=40)
    async with servers() as srv, database(srv) as database_url:
        ns = Namespace(f"p{uuid.uuid4().hex[:8]}")
        store = await Store.connect(database_url, ns)
        tokens = []
        for i in range(math.ceil(consoles / PER_TOKEN)):
            token = uuid.uuid4().hex
            await store.create_token(token, name=f"bench console {i}", role="viewer",
                                     agency=None)
            tokens += [token] * PER_TOKEN
        await store.close()
        service = Serve(serve_env(srv.nats_url, database_url, ns.prefix,
                                  ECC_CONSOLE_POSITIONS_HZ=str(hz),
                                  # every console comes from 127.0.0.1
                                  ECC_CONSOLE_MAX_PER_PEER=str(consoles + 8)))
        await service.start()
        nc = await bus.connect(srv.nats_url, "ecc-bench")
        children: list[Child] = []
        stop = asyncio.Event()
        published: Counter[str] = Counter()
        publisher: asyncio.Task[None] | None = None
        try:
            await service.ready()
            publisher = asyncio.create_task(publish_positions(nc, ns, units, stop, published))
            await asyncio.sleep(warmup)

            def watch() -> CpuWatch:
                return CpuWatch({"ecc serve": (service.pid, False),
                                 "nats-server": (srv.nats_pid, False),
                                 "postgres": (srv.postgres_pid, True),
                                 "bench (publishers)": (os.getpid(), False),
                                 **{f"consoles {i}": (c.pid, False)
                                    for i, c in enumerate(children)}})

            quiet = watch()
            before = published["published"]
            quiet.start()
            await asyncio.sleep(idle)
            quiet_cores = quiet.stop()
            quiet_reports = published["published"] - before
            for part in _split(tokens[:consoles], procs):
                children.append(await Child.start("--positions", {
                    "url": service.url, "tokens": part, "deflate": deflate}))
            joins = [await c.line() for c in children]
            await asyncio.sleep(warmup)
            busy = watch()
            for c in children:
                await c.send("start")
            for c in children:
                await c.line(30)
            before = published["published"]
            busy.start()
            await asyncio.sleep(window)
            busy_cores = busy.stop()
            window_reports = published["published"] - before
            for c in children:
                await c.send("stop")
            reports = [await c.line(60) for c in children]
            service.check()
        finally:
            stop.set()
            if publisher is not None:
                await publisher
            for c in children:
                await c.stop()
            await service.stop()
            await nc.close()

    got = _merge(reports)
    intake_rate = quiet.seconds["ecc serve"] / quiet.wall  # CPU seconds a second
    serve_s = busy.seconds["ecc serve"]
    fanout_s = serve_s - intake_rate * busy.wall
    return {
        "benchmark": "positions", "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "units": units, "consoles": consoles, "client_processes": procs, "positions_hz": hz,
        "deflate": deflate, "window_s": round(busy.wall, 2), "idle_s": round(quiet.wall, 2),
        "join_seconds": max(j["seconds"] for j in joins),
        "reports_published": {"idle": quiet_reports, "window": window_reports,
                              "late_slots": published["late_slots"]},
        **got,
        "updates_per_s": round(got["updates"] / busy.wall),
        "updates_expected_per_s": round(window_reports / busy.wall * consoles),
        "messages_per_s": round(got["messages"] / busy.wall, 1),
        "cpu_cores_idle": quiet_cores,
        "cpu_cores_window": busy_cores,
        "serve_cpu_us_per_report_idle": round(quiet.seconds["ecc serve"] * 1e6
                                              / max(1, quiet_reports), 1),
        "serve_cpu_s_window": round(serve_s, 3),
        "serve_cpu_s_fanout": round(fanout_s, 3),
        # all of ecc serve's CPU in the window, intake included, per update / message
        "serve_cpu_us_per_update_gross": round(serve_s * 1e6 / max(1, got["updates"]), 2),
        "serve_cpu_us_per_update": round(fanout_s * 1e6 / max(1, got["updates"]), 2),
        "serve_cpu_us_per_message": round(fanout_s * 1e6 / max(1, got["messages"]), 1),
    }


def metrics(r: dict[str, Any]) -> list[Metric]:
    n = 1000  # the names stay those of the full size, whatever was run (--quick is smaller)
    return [
        Metric(f"consoles.position_fanout_updates_per_s_{n}", r["updates_per_s"], "updates/s"),
        Metric(f"consoles.position_fanout_p99_ms_{n}", r["latency_ms_p99"], "ms"),
        Metric(f"consoles.position_fanout_cpu_us_per_update_{n}", r["serve_cpu_us_per_update"],
               "us"),
        Metric(f"consoles.position_fanout_cpu_us_per_message_{n}",
               r["serve_cpu_us_per_message"], "us"),
        Metric(f"consoles.position_intake_cpu_us_per_report_{n}",
               r["serve_cpu_us_per_report_idle"], "us"),
    ]


SIZES: dict[bool, dict[str, Any]] = {
    False: {"units": 1000, "consoles": 100, "procs": 1, "hz": 1.0, "window": 12.0,
            "idle": 8.0, "warmup": 3.0},
    True: {"units": 100, "consoles": 10, "procs": 1, "hz": 1.0, "window": 3.0,
           "idle": 2.0, "warmup": 1.5},
}


async def measure(quick: bool = False) -> list[Metric]:
    return metrics(await run(**SIZES[quick]))


def main() -> None:
    parser = parser_for(
        __doc__,
        units=(int, "moving units, each reporting once a second (1000)"),
        consoles=(int, "consoles (100)"),
        procs=(int, "console client processes (1)"),
        hz=(float, "ECC_CONSOLE_POSITIONS_HZ of the gateway (1)"),
        window=(float, "seconds measured with the consoles (12)"),
        idle=(float, "seconds measured before the consoles join (8)"),
        warmup=(float, "seconds of flow before each measured window (3)"),
    )
    parser.add_argument("--no-deflate", dest="deflate", action="store_false",
                        help="consoles do not offer permessage-deflate")
    args = parser.parse_args()
    r = asyncio.run(run(**sizes(args, SIZES[args.quick]), deflate=args.deflate))
    print(f"{r['units']} units at 1 Hz, {r['consoles']} consoles (joined in "
          f"{r['join_seconds']} s), positions at {r['positions_hz']:g} Hz")
    print(f"window of {r['window_s']} s: {r['updates_per_s']} updates/s delivered "
          f"(expected {r['updates_expected_per_s']}), {r['messages_per_s']} messages/s, "
          f"up to {r['max_units_per_message']} units a message, {r['resyncs']} resyncs; "
          f"at -> console p50 {r['latency_ms_p50']} ms, p99 {r['latency_ms_p99']} ms, "
          f"max {r['latency_ms_max']} ms")
    print(f"ecc serve CPU: {r['serve_cpu_us_per_report_idle']} us a report with no console; "
          f"in the window {r['serve_cpu_us_per_update']} us an update over that "
          f"({r['serve_cpu_us_per_update_gross']} gross), "
          f"{r['serve_cpu_us_per_message']} us a positions message")
    print(f"CPU (cores) with no console: {r['cpu_cores_idle']}; in the window: "
          f"{r['cpu_cores_window']}")
    report("positions", r, metrics(r), args)


if __name__ == "__main__":
    main()
