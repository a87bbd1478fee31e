"""Benchmark: unit recommendation over 10,000 units, and optimal assignment of 100 tasks.

    python -m bench.dispatch [--units 10000] [--queries 2000] [--tasks 100]
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from command.assign import Need, assign, greedy, weighted_total
from command.recommend import DEFAULT_SPEED_KMH, UnitIndex, UnitInfo
from command.roads import RoadNetwork, parse_osm

RESULTS = Path(__file__).resolve().parent / "results" / "dispatch.json"
RENO = Path(os.environ.get("ECC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared"
                          / "data")) / "road_networks" / "reno_east3.osm"
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


def heapq_dijkstra(net: RoadNetwork, source: int) -> list[float]:
    """The plain-Python alternative to scipy's Dijkstra, measured beside it."""
    graph = net.reverse.tocsr()
    indptr, indices, data = graph.indptr, graph.indices, graph.data
    dist = [math.inf] * len(net)
    dist[source] = 0.0
    heap = [(0.0, source)]
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist[u]:
            continue
        for k in range(indptr[u], indptr[u + 1]):
            v, nd = indices[k], d + data[k]
            if nd < dist[v]:
                dist[v] = nd
                heapq.heappush(heap, (nd, v))
    return dist


def roads_figures(rng: random.Random) -> dict[str, float]:
    """Shortest paths on the real east-Reno extract: scipy vs heapq, and routed ranking."""
    net = parse_osm(RENO.read_bytes())
    node = int(net.nearest(39.525, -119.75)[0][0])
    runs = {"scipy": [], "heapq": []}
    for _ in range(20):
        start = time.perf_counter()
        net.times_to(39.525, -119.75)
        runs["scipy"].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        heapq_dijkstra(net, node)
        runs["heapq"].append((time.perf_counter() - start) * 1000)
    units = [UnitInfo(unit_id=f"R{i}", agency="fire", kind="engine", capabilities=("engine",),
                      district="d", lat=rng.uniform(39.501, 39.543),
                      lon=rng.uniform(-119.80, -119.71)) for i in range(1000)]
    index = UnitIndex(units, roads=net)
    routed = []
    for _ in range(200):
        start = time.perf_counter()
        index.recommend("engine", rng.uniform(39.505, 39.54), rng.uniform(-119.79, -119.72))
        routed.append((time.perf_counter() - start) * 1000)
    routed.sort()
    return {"road_nodes": len(net), "dijkstra_scipy_ms": round(statistics.median(runs["scipy"]), 2),
            "dijkstra_heapq_ms": round(statistics.median(runs["heapq"]), 2),
            "recommend_routed_1000_units_ms_p50": round(statistics.median(routed), 2),
            "recommend_routed_1000_units_ms_p99": round(routed[int(0.99 * len(routed))], 2)}


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
        **roads_figures(rng),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"recommend over {args.units} units: p50 {result['recommend_ms_p50']} ms, "
          f"p99 {result['recommend_ms_p99']} ms")
    print(f"assign {args.tasks} tasks: {result['assign_ms_median']} ms median; weighted ETA "
          f"optimal {result['weighted_eta_optimal_s']} s vs greedy "
          f"{result['weighted_eta_greedy_s']} s")
    print(f"road network ({result['road_nodes']} nodes, east Reno): Dijkstra scipy "
          f"{result['dijkstra_scipy_ms']} ms vs heapq {result['dijkstra_heapq_ms']} ms; routed "
          f"recommendation over 1,000 units p50 {result['recommend_routed_1000_units_ms_p50']} ms"
          f", p99 {result['recommend_routed_1000_units_ms_p99']} ms")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
