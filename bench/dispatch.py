"""Benchmark: unit recommendation over 10,000 units, and optimal assignment of 100 tasks.

The figures of ``bench.run``: ``dispatch.recommend_p99_ms_10k_units`` (the top five
units of a kind for one place, out of 10,000), ``dispatch.assign_100x10k_ms`` (the
optimal assignment of 100 tasks over those units), the weighted ETA of that
assignment against a greedy one, and Dijkstra on a real road network in scipy
against plain heapq.

    python -m bench.dispatch [--units 10000] [--queries 2000] [--tasks 100] [--quick]
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import random
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.metric import Metric, against, common_args, pct, report
from command.assign import Need, assign, greedy, weighted_total
from command.recommend import DEFAULT_SPEED_KMH, UnitIndex, UnitInfo
from command.roads import RoadNetwork, parse_osm

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


def roads_figures(rng: random.Random, runs_n: int = 20) -> dict[str, float]:
    """Shortest paths on the real east-Reno extract: scipy vs heapq, and routed ranking."""
    net = parse_osm(RENO.read_bytes())
    node = int(net.nearest(39.525, -119.75)[0][0])
    runs: dict[str, list[float]] = {"scipy": [], "heapq": []}
    for _ in range(runs_n):
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
    return {"road_nodes": len(net), "dijkstra_scipy_ms": round(statistics.median(runs["scipy"]), 2),
            "dijkstra_heapq_ms": round(statistics.median(runs["heapq"]), 2),
            "recommend_routed_1000_units_ms_p50": round(statistics.median(routed), 2),
            "recommend_routed_1000_units_ms_p99": round(pct(routed, 0.99), 2)}


def run(units: int, queries: int, tasks: int, road_runs: int = 20) -> dict[str, Any]:
    rng = random.Random(7)
    index = city(units, rng)
    kinds = list(DEFAULT_SPEED_KMH)
    lat_ms = []
    for _ in range(queries):
        kind, lat, lon = rng.choice(kinds), rng.uniform(*LAT), rng.uniform(*LON)
        start = time.perf_counter()
        index.recommend(kind, lat, lon, k=5, district="d3", target_s=480)
        lat_ms.append((time.perf_counter() - start) * 1000)
    needs = [Need(f"i{i}/t1", rng.choice(["engine", "als", "patrol", "pump"]),
                  rng.uniform(*LAT), rng.uniform(*LON), rng.randint(1, 4))
             for i in range(tasks)]
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        chosen = assign(index, needs)
        runs.append((time.perf_counter() - start) * 1000)
    base = greedy(index, needs)
    return {
        "benchmark": "dispatch",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "units": units,
        "recommend_ms_p50": round(statistics.median(lat_ms), 3),
        "recommend_ms_p99": round(pct(lat_ms, 0.99), 3),
        "assign_tasks": tasks,
        "assign_ms_median": round(statistics.median(runs), 1),
        "assigned": len(chosen),
        "weighted_eta_optimal_s": round(weighted_total(needs, chosen)),
        "weighted_eta_greedy_s": round(weighted_total(needs, base)),
        **roads_figures(rng, road_runs),
    }


def metrics(r: dict[str, Any]) -> list[Metric]:
    greedy_eta = Metric("dispatch.greedy_weighted_eta_s_100_tasks", r["weighted_eta_greedy_s"],
                        "s")
    heapq_ms = Metric("dispatch.dijkstra_heapq_ms", r["dijkstra_heapq_ms"], "ms")
    return [
        Metric("dispatch.recommend_p50_ms_10k_units", r["recommend_ms_p50"], "ms"),
        Metric("dispatch.recommend_p99_ms_10k_units", r["recommend_ms_p99"], "ms"),
        Metric("dispatch.assign_100x10k_ms", r["assign_ms_median"], "ms"),
        against(Metric("dispatch.assign_weighted_eta_s_100_tasks", r["weighted_eta_optimal_s"],
                       "s"), greedy_eta),
        greedy_eta,
        against(Metric("dispatch.dijkstra_scipy_ms", r["dijkstra_scipy_ms"], "ms"), heapq_ms),
        heapq_ms,
        Metric("dispatch.recommend_routed_p99_ms_1000_units",
               r["recommend_routed_1000_units_ms_p99"], "ms"),
    ]


def measure(quick: bool = False) -> list[Metric]:
    return metrics(run(10_000, 200 if quick else 2000, 100, 3 if quick else 20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--queries", type=int, help="default 2000; 200 with --quick")
    parser.add_argument("--tasks", type=int, default=100)
    common_args(parser)
    args = parser.parse_args()
    result = run(args.units, args.queries or (200 if args.quick else 2000), args.tasks,
                 3 if args.quick else 20)
    print(f"recommend over {args.units} units: p50 {result['recommend_ms_p50']} ms, "
          f"p99 {result['recommend_ms_p99']} ms")
    print(f"assign {args.tasks} tasks: {result['assign_ms_median']} ms median; weighted ETA "
          f"optimal {result['weighted_eta_optimal_s']} s vs greedy "
          f"{result['weighted_eta_greedy_s']} s")
    print(f"road network ({result['road_nodes']} nodes, east Reno): Dijkstra scipy "
          f"{result['dijkstra_scipy_ms']} ms vs heapq {result['dijkstra_heapq_ms']} ms; routed "
          f"recommendation over 1,000 units p50 {result['recommend_routed_1000_units_ms_p50']} ms"
          f", p99 {result['recommend_routed_1000_units_ms_p99']} ms")
    report("dispatch", result, metrics(result), args)


if __name__ == "__main__":
    main()
