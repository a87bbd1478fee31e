"""Benchmark: the memory of `ecc serve` with 10,000 open incidents and 10,000 units.

On embedded servers (or those of NATS_URL and DATABASE_URL), `ecc serve` runs
as its own process three ways, and its resident set (``VmRSS`` of
``/proc/<pid>/status``) is read each time, a few seconds after it settles:

1. empty: no city, no incidents (``memory.rss_mb_empty``, the baseline);
2. with a city file of 10,000 units in 1,000 stations (``ECC_CITY``): the
   service registers them itself at start, one engine command each, as it does
   the demo city's 80 (``startup.register_10k_units_s`` is the time from spawn
   to ``service.ready``, beside ``startup.empty_s`` of step 1;
   ``memory.rss_mb_10k_units`` is the memory then);
3. then 10,000 signals are published on a grid 0.004 degrees apart (as in
   bench/fusion.py: beyond every fusion radius, so each raises an incident of
   its own; confidence 0.6, so none is verified and nothing is dispatched), and
   once the 10,000 incidents are open, ``memory.rss_mb_10k_incidents_10k_units``.

Last, one console connects and reads its snapshot (10,000 incidents and
10,000 units): ``consoles.snapshot_s_10k_incidents_10k_units`` is hello to
snapshot, ``memory.rss_mb_after_one_snapshot`` the resident set a few seconds
after it, and ``memory.peak_rss_mb_10k_incidents_10k_units`` the process's peak
(``VmHWM``) by then. The verify SLA (60 s) escalates the older incidents while
the rest are still coming in; that is part of what the service holds.

    python -m bench.memory [--units 10000] [--incidents 10000] [--quick] [--metrics FILE]
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.dispatch import AGENCY, LAT, LON
from bench.fusion import spots
from bench.metric import Metric, against, parser_for, report, sizes
from bench.servers import Serve, database, serve_env, servers
from command import bus, logs
from command.model import Signal
from command.store import Store
from command.subjects import Namespace
from consoles.client import open_console
from consoles.protocol import Snapshot
from workflows.geo import Location

SETTLE = 3.0  # seconds between a state being reached and its memory being read
PER_STATION = 10


def city(units: int, rng: random.Random) -> str:
    """A city file of ``units`` units, ten to a station, of every kind."""
    kinds = list(AGENCY)
    lines = ['name = "bench city"']
    for s in range(units // PER_STATION):
        kind = kinds[s % len(kinds)]
        lines += ["[[station]]", f'id = "s{s}"', f'agency = "{AGENCY[kind]}"',
                  f'district = "d{s % 12}"', f"lat = {rng.uniform(*LAT):.5f}",
                  f"lon = {rng.uniform(*LON):.5f}",
                  "units = [" + ", ".join(f'{{ id = "U{s}-{u}", kind = "{kind}" }}'
                                          for u in range(PER_STATION)) + "]"]
    return "\n".join(lines) + "\n"


async def settled_rss(service: Serve) -> float:
    await asyncio.sleep(SETTLE)
    service.check()
    return round(service.rss_mb(), 1)


async def run(units: int, incidents: int) -> dict[str, Any]:
    logs.configure(json=True, level=40)
    rng = random.Random(5)
    with tempfile.TemporaryDirectory(prefix="ecc-bench-") as tmp:
        city_file = Path(tmp) / "city.toml"
        city_file.write_text(city(units, rng))
        async with servers() as srv, database(srv) as database_url:
            ns = Namespace(f"m{uuid.uuid4().hex[:8]}")
            store = await Store.connect(database_url, ns)
            token = uuid.uuid4().hex
            await store.create_token(token, name="bench", role="viewer", agency=None)
            await store.close()

            empty = Serve(serve_env(srv.nats_url, database_url, ns.prefix))
            await empty.start()
            try:
                startup_empty_s = await empty.ready()
                rss_empty = await settled_rss(empty)
            finally:
                await empty.stop()

            service = Serve(serve_env(srv.nats_url, database_url, ns.prefix,
                                      ECC_CITY=str(city_file)))
            nc = await bus.connect(srv.nats_url, "ecc-bench")
            js = nc.jetstream()
            db = await asyncpg.connect(database_url)
            await service.start()
            try:
                startup_s = await service.ready(timeout=1800)
                registered = await db.fetchval("SELECT count(*) FROM units")
                rss_units = await settled_rss(service)

                start = time.monotonic()
                places = spots(incidents, rng)
                for i in range(0, incidents, 500):
                    acks = []
                    for lat, lon, category in places[i:i + 500]:
                        sig = Signal(signal_id=f"m-{uuid.uuid4().hex[:16]}", source="hotline",
                                     category=category, location=Location(lat=lat, lon=lon),
                                     observed_at=datetime.now(UTC), confidence=0.6)
                        acks.append(await js.publish_async(
                            ns.signal("hotline", category), sig.model_dump_json().encode(),
                            headers={"Nats-Msg-Id": f"hotline:{sig.signal_id}"}))
                    await asyncio.gather(*acks)
                deadline = time.monotonic() + 1800
                while (open_now := await db.fetchval(
                        "SELECT count(*) FROM incidents WHERE is_open")) < incidents:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"only {open_now} of {incidents} incidents open")
                    service.check()
                    await asyncio.sleep(0.5)
                ingest_s = time.monotonic() - start
                rss_incidents = await settled_rss(service)
                peak_before_snapshot = round(service.peak_rss_mb(), 1)

                asked = time.monotonic()
                async with open_console(service.url, token, max_size=None) as console:
                    await console.receive()  # welcome
                    snap = await asyncio.wait_for(console.receive(), 300)
                    snapshot_s = time.monotonic() - asked
                    assert isinstance(snap, Snapshot), snap
                    snap_incidents, snap_units = len(snap.incidents), len(snap.units)
                    snapshot_mb = len(snap.model_dump_json()) / 2**20
                rss_after_snapshot = await settled_rss(service)
                peak = round(service.peak_rss_mb(), 1)
            finally:
                await service.stop()
                await db.close()
                await nc.close()
    return {
        "benchmark": "memory", "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "units": registered, "incidents_open": open_now,
        "rss_mb_empty": rss_empty,
        "startup_s_empty": round(startup_empty_s, 2),
        "startup_s_registering_units": round(startup_s, 2),
        "rss_mb_units": rss_units,
        "incidents_ingest_s": round(ingest_s, 1),
        "rss_mb_units_incidents": rss_incidents,
        "snapshot": {"seconds": round(snapshot_s, 2), "incidents": snap_incidents,
                     "units": snap_units, "mb": round(snapshot_mb, 1)},
        "peak_rss_mb_before_snapshot": peak_before_snapshot,
        "rss_mb_after_snapshot": rss_after_snapshot,
        "peak_rss_mb": peak,
    }


def metrics(r: dict[str, Any]) -> list[Metric]:
    empty = Metric("memory.rss_mb_empty", r["rss_mb_empty"], "MB")
    startup = Metric("startup.empty_s", r["startup_s_empty"], "s")
    return [
        against(Metric("memory.rss_mb_10k_incidents_10k_units", r["rss_mb_units_incidents"],
                       "MB"), empty),
        against(Metric("memory.rss_mb_10k_units", r["rss_mb_units"], "MB"), empty),
        empty,
        Metric("memory.rss_mb_after_one_snapshot", r["rss_mb_after_snapshot"], "MB"),
        Metric("memory.peak_rss_mb_10k_incidents_10k_units", r["peak_rss_mb"], "MB"),
        against(Metric("startup.register_10k_units_s", r["startup_s_registering_units"], "s"),
                startup),
        startup,
        Metric("consoles.snapshot_s_10k_incidents_10k_units", r["snapshot"]["seconds"], "s"),
    ]


SIZES: dict[bool, dict[str, int]] = {False: {"units": 10_000, "incidents": 10_000},
                                     True: {"units": 500, "incidents": 500}}


async def measure(quick: bool = False) -> list[Metric]:
    return metrics(await run(**SIZES[quick]))


def main() -> None:
    parser = parser_for(
        __doc__,
        units=(int, "units in the city (10000; 500 quick)"),
        incidents=(int, "open incidents (10000; 500 quick)"),
    )
    args = parser.parse_args()
    r = asyncio.run(run(**sizes(args, SIZES[args.quick])))
    s = r["snapshot"]
    print(f"ecc serve RSS: empty {r['rss_mb_empty']} MB; with {r['units']} units "
          f"{r['rss_mb_units']} MB (start-up registering them: "
          f"{r['startup_s_registering_units']} s); with {r['incidents_open']} open incidents "
          f"too {r['rss_mb_units_incidents']} MB (they took {r['incidents_ingest_s']} s to "
          f"come in)")
    print(f"a console's snapshot ({s['incidents']} incidents, {s['units']} units, {s['mb']} MB "
          f"as JSON): {s['seconds']} s; RSS after it {r['rss_mb_after_snapshot']} MB, "
          f"peak {r['peak_rss_mb']} MB")
    report("memory", r, metrics(r), args)


if __name__ == "__main__":
    main()
