"""Shell: the record of a period, read back for people: the response-time report
(``ecc report``) and the audit export (``ecc audit export``).

It reads PostgreSQL and files and hands them to the pure modules:
:mod:`workflows.intervals` measures each incident's events,
:mod:`command.sf_fire` the SF Fire Department's records, :mod:`command.report`
summarises and writes text, :mod:`command.report_html` draws the page. It
only reads: nothing here writes to the store.

A period is ``[start, end)``. The report takes the incidents whose
``incident.reported`` is in it (by its ``at``), with all of their events, also
those after the end; the export takes the audit rows whose ``at`` is in it.
"""

from __future__ import annotations

import io
import shutil
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from rich.console import Console

from command import report, report_html, sf_fire
from command.engine import incident_event
from command.store import Store
from workflows.incident_messages import AnyIncidentEvent
from workflows.intervals import Measure, measure

FORMATS = ("table", "csv", "html")

class ReportError(Exception):
    """Input the person can fix (a time, a file); the message says how."""


def parse_when(text: str, what: str) -> datetime:
    """An ISO 8601 time with its offset (``2026-07-20T00:00+08:00``, or ``Z``)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ReportError(f"{what} {text!r} is not an ISO 8601 time, e.g. "
                          "2026-07-20T00:00+08:00") from exc
    if when.tzinfo is None:
        raise ReportError(f"{what} {text!r} has no time-zone offset: add one, e.g. "
                          f"{text}+08:00 or {text}Z")
    return when


def period(start: str, end: str) -> tuple[datetime, datetime]:
    """``--from`` and ``--to`` read (:func:`parse_when`); the end must come after the start."""
    begins, ends = parse_when(start, "--from"), parse_when(end, "--to")
    if ends <= begins:
        raise ReportError(f"--to {end} is not after --from {start}")
    return begins, ends


async def incident_measures(store: Store, start: datetime,
                            end: datetime) -> tuple[list[Measure], int]:
    """The measures of every incident reported in ``[start, end)``, and how many
    incidents that is. Reads one incident's events at a time, in one read-only
    transaction, so a long period does not sit in memory."""
    out: list[Measure] = []
    count = 0
    async for events in _streams(store, start, end):
        count += 1
        out += measure(events)
    return out, count


async def _streams(store: Store, start: datetime,
                   end: datetime) -> AsyncIterator[list[AnyIncidentEvent]]:
    async for stored in store.incidents_reported_in(start, end):
        yield [incident_event.read(data, schema) for data, schema in stored]


def sf_measures(path: Path) -> tuple[list[Measure], list[sf_fire.UnitRow], list[Path]]:
    """The SF records of ``path``: one CSV, or every ``*.csv`` in a folder (each unit of
    each call once, however many files hold it)."""
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise ReportError(f"no .csv files in {path}")
    try:
        texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
    except OSError as exc:
        raise ReportError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    rows = sf_fire.read_rows(texts)
    if not rows:
        raise ReportError(f"{path}: no SF Fire Department rows (the columns Call Number, "
                          "Unit ID and Received DtTm are needed)")
    return sf_fire.measures(rows), rows, files


async def build_report(database_url: str, start: datetime, end: datetime, *, fmt: str,
                       sf: Path | None = None, width: int | None = None) -> str:
    """The report of ``[start, end)`` from the store, beside the SF records when
    ``sf`` is given, as ``fmt`` (one of :data:`FORMATS`)."""
    department = sf_measures(sf) if sf is not None else None  # a bad path fails first
    store = await Store.connect(database_url, min_size=1, max_size=1)
    try:
        measures, incidents = await incident_measures(store, start, end)
    finally:
        await store.close()
    dispatched = sum(1 for m in measures if m.interval == "call_processing")
    sources = [report.summarise("ecc", measures)]
    names = ["ECC"]
    lines = [f"ECC: {incidents} incidents reported from {start.isoformat()} to "
             f"{end.isoformat()}, {dispatched} of them with a unit dispatched."]
    if department is not None:
        sf_found, rows, files = department
        sources.append(report.summarise("sf", sf_found))
        names.append("SF")
        received = sorted(r.received for r in rows if r.received)
        span = (f"{received[0]:%Y-%m-%d} to {received[-1]:%Y-%m-%d}" if received else "-")
        lines.append(f"SF: the San Francisco Fire Department's records, "
                     f"{len({r.call for r in rows})} calls ({len(rows)} unit responses), "
                     f"received {span} (UTC dates), from "
                     f"{', '.join(f.name for f in files)}.")
    for name, rows_ in zip(names, sources, strict=True):
        dropped = [f"{r.interval} {r.dropped}" for r in rows_ if r.dimension == "all"
                   and r.dropped]
        if dropped:
            lines.append(f"{name}: left out, the end stamped before the start: "
                         f"{', '.join(dropped)}.")
    if fmt == "csv":
        return report.to_csv(row for rows_ in sources for row in rows_)
    pairs = report.side_by_side(*sources)
    title = "Response times" + (" beside the SF Fire Department" if sf is not None else "")
    if fmt == "html":
        return report_html.render(pairs, names, title=title, lines=lines)
    buf = io.StringIO()
    console = Console(file=buf, width=width or _width(), color_system=None,
                      force_terminal=False)
    console.print(report.table(pairs, names, title=title))
    for line in lines:
        console.print(line, markup=False, highlight=False)
    console.print("Seconds, nearest-rank percentiles; ≤ tgt: the share within the NFPA "
                  f"target, ✓ at {report.TARGET_FRACTION:.0%} or more (docs/report.md).",
                  markup=False, highlight=False)
    return buf.getvalue()


def _width() -> int:
    if sys.stdout.isatty():
        return shutil.get_terminal_size((200, 40)).columns
    return 200


async def export_audit(database_url: str, start: datetime, end: datetime) -> tuple[str, int]:
    """The audit rows of ``[start, end)`` as CSV (:func:`command.report.audit_csv`), and
    how many there are."""
    store = await Store.connect(database_url, min_size=1, max_size=1)
    try:
        rows = await store.audit_rows(start, end)
    finally:
        await store.close()
    return report.audit_csv(rows), len(rows)
