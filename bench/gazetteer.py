"""Benchmark: address lookups over the whole east Reno extract.

The gazetteer is built from ``../shared/data/road_networks/reno_east3.osm`` (1,254
named ways, ~400 street names), then free-text addresses are looked up: a house
number on each real street (abbreviated, lower case, with a unit and a town), the
intersections of pairs of streets, and misspellings. Pure: no servers.

The figure of ``bench.run`` is ``gazetteer.lookup_p99_ms``.

    python -m bench.gazetteer [--lookups 3000] [--quick] [--metrics FILE]
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path
from typing import Any

from adapters.gazetteer import Gazetteer
from adapters.gazetteer_data import parse_osm_places
from bench.metric import Metric, parser_for, pct, report

OSM = Path(os.environ.get("ECC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared"
                          / "data")) / "road_networks" / "reno_east3.osm"


def queries(g: Gazetteer, n: int, rng: random.Random) -> list[str]:
    names = sorted({s.name for s in g.streets})
    short = {"Street": "St", "Avenue": "Ave", "Boulevard": "Blvd", "Drive": "Dr",
             "East": "E", "North": "N", "South": "S", "West": "W", "Lane": "Ln"}
    out = []
    for i in range(n):
        a, b = rng.choice(names), rng.choice(names)
        kind = i % 3
        if kind == 0:
            said = " ".join(short.get(w, w) for w in a.split()).lower()
            out.append(f"{rng.randint(1, 9999)} {said}, Apt {rng.randint(1, 40)}, Reno NV 89502")
        elif kind == 1:
            out.append(f"{a} & {b}")
        else:
            out.append(a[:-2] + "xx" if len(a) > 4 else a)
    return out


def run(lookups: int) -> dict[str, Any]:
    began = time.perf_counter()
    g = Gazetteer((39.52, -119.75), *parse_osm_places(OSM.read_bytes()))
    built = time.perf_counter() - began
    times, placed = [], 0
    for text in queries(g, lookups, random.Random(15)):
        t = time.perf_counter()
        found = g.lookup(text)
        times.append((time.perf_counter() - t) * 1000)
        placed += found.best is not None
    return {"lookups": lookups, "build_s": round(built, 3), "placed": placed,
            "p50_ms": round(pct(times, 0.5), 3), "p99_ms": round(pct(times, 0.99), 3),
            "max_ms": round(max(times), 3)}


def metrics(r: dict[str, Any]) -> list[Metric]:
    return [Metric("gazetteer.lookup_p99_ms", r["p99_ms"], "ms")]


async def measure(quick: bool = False) -> list[Metric]:
    return metrics(await asyncio.to_thread(run, 300 if quick else 3000))


def main() -> None:
    parser = parser_for(__doc__, lookups=(int, "lookups measured (3000; 300 quick)"))
    args = parser.parse_args()
    result = run(args.lookups or (300 if args.quick else 3000))
    print(f"gazetteer over reno_east3.osm: built in {result['build_s']} s; "
          f"{result['lookups']} lookups, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
          f"{result['placed']} placed")
    report("gazetteer", result, metrics(result), args)


if __name__ == "__main__":
    main()
