"""Shell: what the records say. ``ecc catalogue check`` (a catalogue file validated),
``ecc report`` (response times of a period, beside the SF Fire Department's) and
``ecc audit export`` (who did what in a period, as CSV)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from command.settings import Settings
from ecc.cli import files
from ecc.cli.endpoints import server_urls
from ecc.cli.errors import CliError

__all__ = ["COMMANDS", "add_parsers"]


async def cmd_catalogue_check(settings: Settings, args: argparse.Namespace) -> None:
    path = Path(args.path) if args.path else settings.catalogue_path
    cat = files.catalogue(settings.model_copy(update={"catalogue_path": path}))
    print(json.dumps({"types": len(cat.types), "plans": sum(len(p) for p in cat.plans.values()),
                      "agencies": list(cat.agencies)}))



async def cmd_history(settings: Settings, args: argparse.Namespace) -> None:
    """`ecc report` and `ecc audit export`: a period read back (command/history.py)."""
    from command import history

    try:
        start, end = history.period(args.start, args.end)
        _, database_url = server_urls(settings)
        if args.command == "audit":
            text, _ = await history.export_audit(database_url, start, end)
        else:
            text = await history.build_report(database_url, start, end, fmt=args.format,
                                              sf=Path(args.sf) if args.sf else None)
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    except history.ReportError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror}") from exc



def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cat = sub.add_parser("catalogue", help="the incident catalogue").add_subparsers(
        dest="catalogue_command", required=True)
    check = cat.add_parser("check", help="validate a catalogue file")
    check.add_argument("path", nargs="?", default=None)
    rpt = sub.add_parser("report", help="response times of a period (NFPA 1710 intervals)")
    audit = sub.add_parser("audit", help="the audit log").add_subparsers(
        dest="audit_command", required=True)
    export = audit.add_parser("export", help="who did what in a period, as CSV")
    for period in (rpt, export):
        period.add_argument("--from", dest="start", required=True,
                            help="ISO 8601 with an offset, e.g. 2026-07-20T00:00+08:00")
        period.add_argument("--to", dest="end", required=True, help="the end (not included)")
        period.add_argument("--out", default=None, help="write to this file, not stdout")
    rpt.add_argument("--format", choices=("table", "csv", "html"), default="table")
    rpt.add_argument("--sf", default=None, help="SF Fire Department CSV, or a folder of "
                                                "them, to report beside ECC's figures")


COMMANDS = {
    ("catalogue", "check"): cmd_catalogue_check,
    ("report", None): cmd_history,
    ("audit", "export"): cmd_history,
}
