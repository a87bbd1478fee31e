"""Benchmark: signals/s through fusion with 10,000 open incidents.

Embedded PostgreSQL only: 10,000 signals on a grid over a city (0.004 degrees
apart, beyond every radius of these types, so none fuse) raise 10,000 open
incidents, then
signals taken in through the real intake (``SignalIntake.accept``: inbox,
candidate lookup by grid cell, choose, attach or report, projections) in
batches of 64, as the consumer loop hands them over. Half the signals land on
an existing incident, half raise new ones.

    python -m bench.fusion [--incidents 10000] [--signals 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from command import logs
from command.intake import SignalIntake
from command.model import Signal
from command.runtime import EmbeddedPostgres
from command.settings import load_catalogue
from command.store import Store, migrate
from command.subjects import Namespace
from workflows.geo import Location

RESULTS = Path(__file__).resolve().parent / "results" / "fusion.json"


def signal(lat: float, lon: float, category: str) -> Signal:
    return Signal(signal_id=f"f-{uuid.uuid4().hex[:16]}", source="sensor", category=category,
                  location=Location(lat=lat, lon=lon), observed_at=datetime.now(UTC),
                  confidence=0.6)


async def run(incidents: int, signals: int) -> dict[str, object]:
    logs.configure(json=True, level=40)
    rng = random.Random(11)
    tmp = Path(tempfile.mkdtemp(prefix="ecc-bench-"))
    tmp.chmod(0o755)
    pg = EmbeddedPostgres(tmp)
    await pg.start()
    try:
        conn = await asyncpg.connect(pg.url)
        await migrate(conn)
        await conn.close()
        store = await Store.connect(pg.url, Namespace("fb"))
        intake = SignalIntake(store, Namespace("fb"), load_catalogue())
        cats = ["fire", "medical", "traffic", "gas_leak", "crime"]
        side = int(incidents ** 0.5) + 1
        spots = [(34.55 + (n // side) * 0.004, 113.45 + (n % side) * 0.004, rng.choice(cats))
                 for n in range(incidents)]
        for i in range(0, incidents, 500):  # the open incidents, through the same intake
            await intake.accept([signal(*s) for s in spots[i:i + 500]])
        batch = []
        for n in range(signals):
            if n % 2 == 0:
                lat, lon, cat = rng.choice(spots)  # about an open incident
                batch.append(signal(lat + 0.0003, lon, cat))
            else:
                batch.append(signal(rng.uniform(34.55, 34.95), rng.uniform(113.45, 113.85),
                                    rng.choice(cats)))
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
    finally:
        await pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"benchmark": "fusion", "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "open_incidents_before": open_before, "signals": signals,
            "signals_per_s": round(signals / elapsed, 1), "attached": attached,
            "open_incidents_after": open_now}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--signals", type=int, default=2000)
    args = parser.parse_args()
    result = asyncio.run(run(args.incidents, args.signals))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"fusion with {result['open_incidents_before']} open incidents: "
          f"{result['signals_per_s']} signals/s through the intake "
          f"({result['attached']} attached of {result['signals']})")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
