"""The record every benchmark returns, and what the benchmark modules share to report it.

A benchmark is a module ``bench.<name>`` with ``async def measure(quick) -> list[Metric]``
(or a plain function for the ones that need no servers) and a ``main`` that prints its
figures. ``bench.run`` runs them all and writes ``bench/results/latest.json``: the
list of :meth:`Metric.as_json` objects. Metric names are stable dotted names, so
results compare across versions; a rate measured beside a raw baseline in the same
run carries the baseline's name, value and the ratio of the two.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Metric:
    """One figure: ``value`` in ``unit``, optionally beside a ``baseline`` figure."""

    name: str
    value: float
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline_value is None or self.baseline_value == 0:
            return None
        return self.value / self.baseline_value

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "value": self.value, "unit": self.unit}
        if self.baseline is not None:
            out["baseline"] = self.baseline
            out["baseline_value"] = self.baseline_value
            ratio = self.ratio
            out["ratio"] = None if ratio is None else round(ratio, 4)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Metric:
        return cls(name=data["name"], value=data["value"], unit=data["unit"],
                   baseline=data.get("baseline"), baseline_value=data.get("baseline_value"))


def against(metric: Metric, base: Metric) -> Metric:
    """``metric`` with ``base`` (measured in the same run) as its baseline."""
    return Metric(metric.name, metric.value, metric.unit, base.name, base.value)


def pct(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank: the value below which ``q`` of them lie."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def common_args(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark module takes, so ``bench.run`` can drive any of them."""
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: a smoke test, not a measurement")
    parser.add_argument("--metrics", type=Path, metavar="FILE",
                        help="also write the metrics as a JSON list to FILE")
    parser.add_argument("--results", type=Path, default=RESULTS, metavar="DIR",
                        help="where the detailed figures go, as <name>.json (bench/results)")


def parser_for(doc: str | None, **options: tuple[type, str]) -> argparse.ArgumentParser:
    """A benchmark's parser: ``--name`` for each size in ``options`` (its type and help),
    then the options every benchmark takes."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    for name, (kind, text) in options.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, help=text)
    common_args(parser)
    return parser


def report(name: str, detail: dict[str, Any], metrics: list[Metric],
           args: argparse.Namespace) -> None:
    """Write ``<args.results>/<name>.json`` (the detail), print the metrics, and write
    them to ``args.metrics`` when given (see :func:`common_args`)."""
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"{name}.json"
    path.write_text(json.dumps(detail, indent=2) + "\n")
    for m in metrics:
        line = f"  {m.name} = {fmt(m.value)} {m.unit}"
        if m.baseline is not None and m.baseline_value is not None:
            line += f"  (vs {m.baseline} {fmt(m.baseline_value)}: {fmt_ratio(m.ratio)})"
        print(line, flush=True)
    print(f"  written {path}", flush=True)
    if args.metrics is not None:
        args.metrics.write_text(json.dumps([m.as_json() for m in metrics], indent=2) + "\n")


def fmt(value: float | None) -> str:
    """A figure for people: three significant digits, at least, and no exponent."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value == 0:
        return "0"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def fmt_ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.3f}x"


def sizes(args: argparse.Namespace, defaults: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` with the options given on the command line in their place."""
    return {k: v if getattr(args, k, None) is None else getattr(args, k)
            for k, v in defaults.items()}
