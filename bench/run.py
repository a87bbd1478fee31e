"""Run every benchmark, print one table, and write ``bench/results/latest.json``.

``make bench`` runs this. Each benchmark runs in a process of its own
(``python -m bench.<name> --metrics FILE``), so one's servers, ports and memory
never meet the next's. At the end it prints one table (name, value, unit,
baseline, ratio) and writes, to ``--out`` (``bench/results``, where each
benchmark also writes its detailed figures as ``<name>.json``):

* ``latest.json``: the list of metrics, each ``{"name", "value", "unit"}`` and,
  for a figure measured beside a raw baseline in the same run, ``"baseline"``
  (the baseline metric's name), ``"baseline_value"`` and ``"ratio"`` (value /
  baseline_value). The names are stable, so runs compare across versions;
* ``latest-meta.json``: the machine (cores, CPU, memory, Python, platform), the
  date, the git commit, whether it was ``--quick``, and per benchmark its
  duration, its exit status, and how busy the whole machine was meanwhile (a
  shared machine makes figures noisy; this says how noisy).

It exits with status 1 if a benchmark failed (the others still run and are
written).

    python -m bench.run [--only NAME ...] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.metric import RESULTS, Metric, fmt, fmt_ratio
from bench.servers import machine_busy_seconds

# In order: the pure ones first, then those that start servers.
BENCHES = ("workflow", "dispatch", "gazetteer", "skeleton", "roundtrip", "fusion", "fanout",
           "positions", "stalled",
           "memory", "recovery")
# The first word of a metric's name, for the benchmarks whose module is named otherwise.
ALIASES = {"ingest": ("skeleton",), "latency": ("skeleton",),
           "consoles": ("fanout", "positions", "stalled"), "startup": ("memory",)}
REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 3600.0  # seconds for one benchmark


def run_one(name: str, quick: bool, results: Path) -> tuple[list[Metric], dict[str, Any]]:
    """Run ``bench.<name>`` in a process of its own; its metrics, and how it went."""
    with tempfile.TemporaryDirectory(prefix="ecc-bench-run-") as tmp:
        out = Path(tmp) / "metrics.json"
        cmd = [sys.executable, "-m", f"bench.{name}", "--metrics", str(out),
               "--results", str(results)]
        if quick:
            cmd.append("--quick")
        began, busy = time.monotonic(), machine_busy_seconds()
        load = os.getloadavg()[0]
        try:
            code = subprocess.run(cmd, cwd=REPO, timeout=TIMEOUT, check=False).returncode
        except subprocess.TimeoutExpired:
            code = None
        wall = time.monotonic() - began
        info: dict[str, Any] = {
            "seconds": round(wall, 1), "exit": code,
            "load_before": round(load, 2),
            "machine_busy_cores": round((machine_busy_seconds() - busy) / wall, 2),
        }
        if code != 0 or not out.exists():
            return [], info
        return [Metric.from_json(m) for m in json.loads(out.read_text())], info


def meta(quick: bool, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The machine, the date and the commit a run was made on."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git("rev-parse", "HEAD") or None,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "cores": os.cpu_count(), "cpu": cpu, "memory_gb": round(mem_kb / 2**20, 1),
        "python": platform.python_version(), "platform": platform.platform(),
        "servers": "external" if os.environ.get("NATS_URL") and os.environ.get("DATABASE_URL")
                   else "embedded",
        "quick": quick,
        "benchmarks": runs,
    }


def table(metrics: list[Metric]) -> str:
    rows = [("name", "value", "unit", "baseline", "ratio")]
    rows += [(m.name, fmt(m.value), m.unit, m.baseline or "",
              fmt_ratio(m.ratio) if m.baseline else "") for m in metrics]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2]),
                 row[3].ljust(widths[3]), row[4].rjust(widths[4])]
        lines.append(" | ".join(cells).rstrip())
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help=f"run only these ({', '.join(BENCHES)}; or a metric's first "
                             f"word: {', '.join(ALIASES)})")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: a smoke test of every benchmark, not figures")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="where latest.json and latest-meta.json go (bench/results)")
    args = parser.parse_args(argv)
    chosen = list(BENCHES)
    if args.only:
        wanted = {b for n in args.only for b in ALIASES.get(n, (n,))}
        unknown = wanted - set(BENCHES)
        if unknown:
            parser.error(f"no benchmark {', '.join(sorted(unknown))}; there are "
                         f"{', '.join(BENCHES)}")
        chosen = [b for b in BENCHES if b in wanted]
    args.out.mkdir(parents=True, exist_ok=True)
    metrics: list[Metric] = []
    runs: dict[str, dict[str, Any]] = {}
    for name in chosen:
        print(f"== bench.{name}{' --quick' if args.quick else ''}", flush=True)
        got, runs[name] = run_one(name, args.quick, args.out)
        metrics += got
        if runs[name]["exit"] != 0:
            print(f"== bench.{name} FAILED (exit {runs[name]['exit']})", flush=True)
    (args.out / "latest.json").write_text(
        json.dumps([m.as_json() for m in metrics], indent=2) + "\n")
    (args.out / "latest-meta.json").write_text(
        json.dumps(meta(args.quick, runs), indent=2) + "\n")
    print()
    print(table(metrics))
    failed = [n for n, r in runs.items() if r["exit"] != 0]
    busy = {n: r["machine_busy_cores"] for n, r in runs.items()}
    print(f"\nwhole machine busy (cores of {os.cpu_count()}) while each ran: {busy}")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    print(f"written {args.out / 'latest.json'} and {args.out / 'latest-meta.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
