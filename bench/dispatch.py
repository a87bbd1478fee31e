"""Benchmark: unit recommendation over 10,000 units, and optimal assignment of 100 tasks.

    python -m bench.dispatch [--units 10000] [--queries 2000] [--tasks 100]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from command.assign import Need, assign, greedy, weighted_total
from command.recommend import DEFAULT_SPEED_KMH, UnitIndex, UnitInfo

RESULTS = Path(__file__).resolve().parent / "results" / "dispatch.json"
AGENCY = {"engine": "fire", "ladder": "fire", "rescue": "fire", "hazmat": "fire", "als": "health",
          "bls": "health", "patrol": "police", "traffic": "police", "cordon": "police",
          "gas_crew": "utility", "power_crew": "utility", "water_crew": "utility",
          "pump": "utility"}
# Zhengzhou's built-up area, roughly
LAT, LON = (34.60, 34.90), (113.50, 113.85)


def city(n: int, rng: random.Random) -> UnitIndex:
    kinds = list(DEFAULT_SPEED_KMH)
    units = []
    for i in range(n):
        kind = rng.choice(kinds)
        units.append(UnitInfo(unit_id=f"U{i}", agency=AGENCY[kind], kind=kind,
                              capabilities=(kind,), district=f"d{i % 12}",
                              lat=rng.uniform(*LAT), lon=rng.uniform(*LON),
                              available=rng.random() < 0.7))
    return UnitIndex(units)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=100)
    args = parser.parse_args()
    rng = random.Random(7)
    index = city(args.units, rng)
    kinds = list(DEFAULT_SPEED_KMH)
    lat_ms = []
    for _ in range(args.queries):
        kind, lat, lon = rng.choice(kinds), rng.uniform(*LAT), rng.uniform(*LON)
        start = time.perf_counter()
        index.recommend(kind, lat, lon, k=5, district="d3", target_s=480)
        lat_ms.append((time.perf_counter() - start) * 1000)
    lat_ms.sort()
    needs = [Need(f"i{i}/t1", rng.choice(["engine", "als", "patrol", "pump"]),
                  rng.uniform(*LAT), rng.uniform(*LON), rng.randint(1, 4))
             for i in range(args.tasks)]
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        chosen = assign(index, needs)
        runs.append((time.perf_counter() - start) * 1000)
    base = greedy(index, needs)
    result = {
        "benchmark": "dispatch",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "units": args.units,
        "recommend_ms_p50": round(statistics.median(lat_ms), 3),
        "recommend_ms_p99": round(lat_ms[int(0.99 * len(lat_ms))], 3),
        "assign_tasks": args.tasks,
        "assign_ms_median": round(statistics.median(runs), 1),
        "assigned": len(chosen),
        "weighted_eta_optimal_s": round(weighted_total(needs, chosen)),
        "weighted_eta_greedy_s": round(weighted_total(needs, base)),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"recommend over {args.units} units: p50 {result['recommend_ms_p50']} ms, "
          f"p99 {result['recommend_ms_p99']} ms")
    print(f"assign {args.tasks} tasks: {result['assign_ms_median']} ms median; weighted ETA "
          f"optimal {result['weighted_eta_optimal_s']} s vs greedy "
          f"{result['weighted_eta_greedy_s']} s")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
