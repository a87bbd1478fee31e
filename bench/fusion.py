"""Benchmark: signals/s through fusion with 10,000 open incidents.

On embedded servers (or those of NATS_URL and DATABASE_URL): 10,000 signals on
a grid over a city (0.004 degrees apart, beyond every radius of these types, so
none fuse) raise 10,000 open incidents, then signals are taken in through the
real intake (``SignalIntake.accept``: inbox, candidate lookup by grid cell,
choose, attach or report, projections) in batches of 64, as the consumer loop
hands them over. Half the signals land on an existing incident, half raise new
ones.

The figure of ``bench.run`` is ``fusion.signals_per_s_10k_open_incidents``.

    python -m bench.fusion [--incidents 10000] [--signals 2000] [--quick] [--metrics FILE]
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench.metric import Metric, parser_for, report
from bench.servers import database, servers
from command import logs
from command.intake import SignalIntake
from command.model import Signal
from command.settings import load_catalogue
from command.store import Store
from command.subjects import Namespace
from workflows.geo import Location


def signal(lat: float, lon: float, category: str) -> Signal:
    return Signal(signal_id=f"f-{uuid.uuid4().hex[:16]}", source="sensor", category=category,
                  location=Location(lat=lat, lon=lon), observed_at=datetime.now(UTC),
                  confidence=0.6)


CATEGORIES = ["fire", "medical", "traffic", "gas_leak", "crime"]


def spots(incidents: int, rng: random.Random) -> list[tuple[float, float, str]]:
    """Places for ``incidents`` incidents on a grid 0.004 degrees apart (none fuse)."""
    side = int(incidents ** 0.5) + 1
    return [(34.55 + (n // side) * 0.004, 113.45 + (n % side) * 0.004, rng.choice(CATEGORIES))
            for n in range(incidents)]


async def run(incidents: int, signals: int) -> dict[str, Any]:
    logs.configure(json=True, level=40)
    rng = random.Random(11)
    async with servers() as srv, database(srv) as database_url:
        store = await Store.connect(database_url, Namespace("fb"))
        intake = SignalIntake(store, Namespace("fb"), load_catalogue())
        places = spots(incidents, rng)
        for i in range(0, incidents, 500):  # the open incidents, through the same intake
            await intake.accept([signal(*s) for s in places[i:i + 500]])
        batch = []
        for n in range(signals):
            if n % 2 == 0:
                lat, lon, cat = rng.choice(places)  # about an open incident
                batch.append(signal(lat + 0.0003, lon, cat))
            else:
                batch.append(signal(rng.uniform(34.55, 34.95), rng.uniform(113.45, 113.85),
                                    rng.choice(CATEGORIES)))
        count = "SELECT count(*) FROM events WHERE type = 'incident.signal_attached'"
        attached_before = await store.pool.fetchval(count)
        open_before = await store.pool.fetchval("SELECT count(*) FROM incidents WHERE is_open")
        start = time.perf_counter()
        for i in range(0, signals, 64):
            await intake.accept(batch[i:i + 64])
        elapsed = time.perf_counter() - start
        attached = await store.pool.fetchval(count) - attached_before
        open_now = await store.pool.fetchval("SELECT count(*) FROM incidents WHERE is_open")
        await store.close()
    return {"benchmark": "fusion", "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "open_incidents_before": open_before, "signals": signals,
            "signals_per_s": round(signals / elapsed, 1), "attached": attached,
            "open_incidents_after": open_now}


def metrics(r: dict[str, Any]) -> list[Metric]:
    return [Metric("fusion.signals_per_s_10k_open_incidents", r["signals_per_s"], "signals/s")]


async def measure(quick: bool = False) -> list[Metric]:
    return metrics(await run(1000 if quick else 10_000, 200 if quick else 2000))


def main() -> None:
    parser = parser_for(
        __doc__,
        incidents=(int, "open incidents (10000; 1000 quick)"),
        signals=(int, "signals measured (2000; 200 quick)"),
    )
    args = parser.parse_args()
    result = asyncio.run(run(args.incidents or (1000 if args.quick else 10_000),
                             args.signals or (200 if args.quick else 2000)))
    print(f"fusion with {result['open_incidents_before']} open incidents: "
          f"{result['signals_per_s']} signals/s through the intake "
          f"({result['attached']} attached of {result['signals']})")
    report("fusion", result, metrics(result), args)


if __name__ == "__main__":
    main()
