"""Shell: the ``ecc`` command line, one module per command group.

    ecc up                 the whole system; embedded servers unless NATS_URL and DATABASE_URL
    ecc demo               ecc up, and a simulated city feeding it (sim/; make demo)
    ecc serve              the service alone, against external servers
    ecc adapter KIND       one adapter as its own process
    ecc migrate            apply database migrations
    ecc rebuild            rebuild the projections from the events alone
    ecc nats-url NAME      a component's NATS URL with its credentials (unit-E12, devices…)
    ecc nats-auth          deploy/nats-auth.conf, generated from the adapters' specs
    ecc signal send        publish one signal (for trying things out)
    ecc replay FILE        replay real call records through the hotline adapter
    ecc cap check FILE...  what ECC understands of CAP alerts (non-zero if any refused)
    ecc eido export ID     an incident as a NENA EIDO document
    ecc token create       make an access token for a console, a unit or an adapter
    ecc token revoke       revoke a token by name (open consoles are closed)
    ecc token rotate       a new token for a name; the old ones end after a grace period
    ecc console watch      print what a console receives
    ecc unit --id E12      a field unit's terminal: orders in, status and position out
    ecc catalogue check    validate a catalogue file (types, plans, SLA rules)
    ecc report             response times of a period, beside the SF Fire Department's
    ecc audit export       who did what in a period, from the audit log, as CSV
    ecc map build CITY     the console's offline street map from the city's OSM extract

=====================  ==============================================================
module                 commands
=====================  ==============================================================
:mod:`ecc.cli.run`      up, demo, serve, adapter
:mod:`ecc.cli.database` migrate, rebuild
:mod:`ecc.cli.users`    nats-url, nats-auth
:mod:`ecc.cli.borders`  signal send, replay, cap check, eido export
:mod:`ecc.cli.tokens`   token create, rotate, revoke
:mod:`ecc.cli.clients`  console watch, unit
:mod:`ecc.cli.records`  catalogue check, report, audit export
:mod:`ecc.cli.maps`     map build
=====================  ==============================================================

Where a command needs the servers, it takes ``NATS_URL`` / ``DATABASE_URL``
from the environment, or else the ``endpoints.json`` that ``ecc up`` wrote in
the data folder (``ECC_DATA_DIR``, default ``.ecc``) (:mod:`ecc.cli.endpoints`).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from pydantic import ValidationError

from command import logs
from command.settings import Settings
from ecc.cli import borders, clients, database, maps, records, run, tokens, users
from ecc.cli.errors import CliError

__all__ = ["CliError", "build_parser", "main"]

log = structlog.get_logger("ecc.cli")

GROUPS = (run, database, users, borders, tokens, clients, records, maps)
Handler = Callable[[Settings, argparse.Namespace], Awaitable[None]]
_COMMANDS: dict[tuple[str, str | None], Handler] = {
    key: handler for group in GROUPS for key, handler in group.COMMANDS.items()}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ecc", description="ECC: emergency command and coordination")
    sub = p.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sub = (getattr(args, "signal_command", None) or getattr(args, "token_command", None)
           or getattr(args, "console_command", None) or getattr(args, "catalogue_command", None)
           or getattr(args, "cap_command", None) or getattr(args, "audit_command", None)
           or getattr(args, "map_command", None))
    try:
        settings = Settings.from_env()
    except (ValidationError, ValueError) as exc:
        print(f"ecc: settings from the environment: {exc}", file=sys.stderr)
        return 2
    if args.command == "demo" and sys.stderr.isatty():
        # the demo on a terminal: its status line there, the service's log in a file
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = settings.data_dir / "ecc.log"
        logs.configure(to=path.open("a", buffering=1))
        print(f"ecc demo: the service's log goes to {path}", file=sys.stderr)
    else:
        logs.configure()
    handler = _COMMANDS[(args.command, sub)]

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        await handler(settings, args)

    try:
        asyncio.run(run())
    except CliError as exc:
        print(f"ecc: {exc}", file=sys.stderr)
        return 2
    except BaseExceptionGroup as group:  # a CliError from inside the running system
        found = group.subgroup(CliError)
        if found is None:
            raise
        for leaf in _leaves(found):
            print(f"ecc: {leaf}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        log.info("cli.stopped")
        return 0
    except TimeoutError:
        print("ecc: timed out", file=sys.stderr)
        return 1
    return 0


def _leaves(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return out
