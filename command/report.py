"""Core: the response-time report's figures, its targets, and its text formats.

:func:`summarise` turns measures (:mod:`workflows.intervals`, and
:mod:`command.sf_fire` for the SF Fire Department's records) into one
:class:`Row` per (source, dimension, group, interval): how many, p50, p90,
p99, the target, and the fraction within it. :func:`side_by_side` pairs two
sources' rows; :func:`to_csv` and :func:`table` write them out
(:mod:`command.report_html` draws the page). :func:`audit_csv` writes audit
rows. Nothing here does I/O or reads the clock.

Percentiles are **nearest-rank**: the p-th percentile of n values is the
``ceil(p/100 * n)``-th smallest, always a value that was measured. With it,
"p90 within the target" and "at least 90 % within the target" are the same
statement, which is how NFPA 1710 words its objectives.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

from workflows.intervals import INTERVALS, Interval, Measure

# The fraction of measures NFPA 1710 and NFPA 1225 ask to be within each target.
TARGET_FRACTION = 0.90
DIMENSIONS: tuple[str, ...] = ("all", "agency", "type", "priority")
LABELS: dict[str, str] = {
    "verification": "received → verified",
    "call_processing": "received → first dispatched (call processing)",
    "turnout": "dispatched → en route (turnout)",
    "travel": "en route → on scene, first unit (travel)",
    "travel_first_engine": "en route → on scene, first engine (travel)",
    "total_response": "received → first on scene (total response)",
}


def target_for(interval: Interval, agency: str) -> float | None:
    """The NFPA target in seconds for one measure, or None where no standard sets one.

    Call processing 60 s (NFPA 1225 / 1221, the highest-priority calls); turnout
    60 s for EMS (``health``) and 80 s for fire (NFPA 1710); travel 240 s for the
    first engine (NFPA 1710). Each is to be met by 90 % of measures.
    """
    if interval == "call_processing":
        return 60.0
    if interval == "turnout":
        return {"fire": 80.0, "health": 60.0}.get(agency)
    if interval == "travel_first_engine":
        return 240.0
    return None


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of non-empty ``values``."""
    if not values:
        raise ValueError("no values")
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} is not in (0, 100]")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


@dataclass(frozen=True, slots=True)
class Row:
    """The figures of one interval in one group of one source.

    ``n`` counts the measures used; ``dropped`` the negative ones left out (a
    clock out of step). ``target`` is None when no measure has one, or when
    they differ (turnout over fire and EMS together): ``within`` then counts
    each measure against its own agency's target. ``within`` is None when no
    measure has a target.
    """

    source: str
    dimension: str
    group: str
    interval: Interval
    n: int
    p50: float | None
    p90: float | None
    p99: float | None
    target: float | None
    within: float | None
    dropped: int = 0

    @property
    def met(self) -> bool | None:
        """Whether at least 90 % are within target (None when there is no target)."""
        return None if self.within is None else self.within >= TARGET_FRACTION

    @property
    def target_label(self) -> str:
        if self.within is None:
            return ""
        return f"{self.target:g}" if self.target is not None else "by agency"


def _group_keys(m: Measure) -> list[tuple[str, str]]:
    keys = [("all", "all"), ("type", m.category), ("priority", m.priority)]
    if m.agency:
        keys.insert(1, ("agency", m.agency))
    return keys


def summarise(source: str, measures: Iterable[Measure]) -> list[Row]:
    """One row per (dimension, group, interval) that has measures, in a stable order:
    dimensions as in :data:`DIMENSIONS`, groups by name, intervals as in
    :data:`~workflows.intervals.INTERVALS`."""
    groups: dict[tuple[str, str, Interval], list[Measure]] = {}
    for m in measures:
        for dimension, group in _group_keys(m):
            groups.setdefault((dimension, group, m.interval), []).append(m)
    order = {d: i for i, d in enumerate(DIMENSIONS)}
    rank = {name: i for i, name in enumerate(INTERVALS)}
    rows = []
    for (dimension, group, interval), found in sorted(
            groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1], rank[kv[0][2]])):
        rows.append(_row(source, dimension, group, interval, found))
    return rows


def _row(source: str, dimension: str, group: str, interval: Interval,
         found: list[Measure]) -> Row:
    kept = [m for m in found if m.seconds >= 0]
    values = [m.seconds for m in kept]
    targeted = [(m.seconds, t) for m in kept if (t := target_for(m.interval, m.agency)) is not None]
    targets = {t for _, t in targeted}
    return Row(
        source=source, dimension=dimension, group=group, interval=interval, n=len(kept),
        p50=percentile(values, 50) if values else None,
        p90=percentile(values, 90) if values else None,
        p99=percentile(values, 99) if values else None,
        target=targets.pop() if len(targets) == 1 else None,
        within=sum(s <= t for s, t in targeted) / len(targeted) if targeted else None,
        dropped=len(found) - len(kept))


def side_by_side(*sources: Sequence[Row]) -> list[tuple[Row | None, ...]]:
    """The rows of several sources lined up by (dimension, group, interval): one tuple
    per key, with None where a source has no such row, in the first source's order and
    then the others' new keys."""
    keyed = [{(r.dimension, r.group, r.interval): r for r in rows} for rows in sources]
    keys: list[tuple[str, str, Interval]] = []
    for rows in sources:
        for r in rows:
            key = (r.dimension, r.group, r.interval)
            if key not in keys:
                keys.append(key)
    order = {d: i for i, d in enumerate(DIMENSIONS)}
    keys.sort(key=lambda k: order[k[0]])  # stable: each dimension's groups as they came
    return [tuple(k.get(key) for k in keyed) for key in keys]


# --- formats ------------------------------------------------------------------------------

CSV_COLUMNS = ("source", "dimension", "group", "interval", "n", "p50_s", "p90_s", "p99_s",
               "target_s", "within_target_fraction", "dropped")


def safe_cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (OWASP's CSV injection
    advice): text starting with ``=``, ``+``, ``@``, a tab or a carriage return, or
    ``-`` followed by something that is not a number, gets a leading ``'``."""
    text = "" if value is None else str(value)
    if not text:
        return text
    if text[0] in "=+@\t\r" or (text[0] == "-" and len(text) > 1 and not _number(text)):
        return "'" + text
    return text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _fmt(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def to_csv(rows: Iterable[Row]) -> str:
    """One line per row, with a header of :data:`CSV_COLUMNS`; seconds to 0.1 s."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([safe_cell(v) for v in (
            r.source, r.dimension, r.group, r.interval, r.n, _fmt(r.p50), _fmt(r.p90),
            _fmt(r.p99), "" if r.target is None else f"{r.target:g}", _fmt(r.within, 3),
            r.dropped)])
    return out.getvalue()


def _cells(r: Row | None) -> list[str]:
    if r is None:
        return ["—"] * 5
    within = "" if r.within is None else f"{r.within:.0%} {'✓' if r.met else '✗'}"
    return [str(r.n), _fmt(r.p50, 0), _fmt(r.p90, 0), _fmt(r.p99, 0), within]


def table(pairs: Sequence[tuple[Row | None, ...]], names: Sequence[str],
          title: str = "") -> Table:
    """A rich table: one line per (dimension, group, interval), each source's n, p50,
    p90, p99 and share within target side by side. Markup in the data is not read."""
    t = Table(title=title or None, title_justify="left")
    t.add_column("dimension", no_wrap=True)
    t.add_column("group", no_wrap=True)
    t.add_column("interval", no_wrap=True)
    t.add_column("target s")
    for name in names:
        for heading in ("n", "p50", "p90", "p99", "≤ tgt"):
            t.add_column(f"{name}\n{heading}", justify="right")
    for pair in pairs:
        first = next(r for r in pair if r is not None)
        t.add_row(first.dimension, escape(first.group), first.interval, target_label(pair),
                  *[c for r in pair for c in _cells(r)])
    return t


def target_label(pair: Sequence[Row | None]) -> str:
    """The targets of a line of :func:`side_by_side`: each distinct one, ``" / "`` between
    (``80 / by agency`` when one source has fire alone and the other fire and EMS)."""
    labels: list[str] = []
    for r in pair:
        if r is not None and r.target_label and r.target_label not in labels:
            labels.append(r.target_label)
    return " / ".join(labels)


# --- the audit export ------------------------------------------------------------------

AUDIT_COLUMNS = ("at", "actor", "role", "agency", "peer", "command", "incident_id", "outcome",
                 "reason", "args", "seqs")


def audit_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """Audit rows as CSV, one line each in :data:`AUDIT_COLUMNS`: ``at`` in ISO 8601
    UTC, ``args`` as compact JSON with sorted keys, ``seqs`` (the events the command
    wrote) space-separated. Text that a spreadsheet would run is defused
    (:func:`safe_cell`). The args are written as the audit log keeps them: callers'
    names and numbers never went in (docs/consoles.md)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(AUDIT_COLUMNS)
    for row in rows:
        at = row["at"]
        writer.writerow([
            at.astimezone(UTC).isoformat() if isinstance(at, datetime) else safe_cell(at),
            *(safe_cell(row.get(k)) for k in ("actor", "role", "agency", "peer", "command",
                                                "incident_id", "outcome", "reason")),
            json.dumps(row.get("args") or {}, sort_keys=True, separators=(",", ":"),
                       ensure_ascii=False),
            " ".join(str(s) for s in row.get("seqs") or ())])
    return out.getvalue()
