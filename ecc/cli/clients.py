"""Shell: the clients people and crews run. ``ecc console watch`` (print what a
console receives) and ``ecc unit --id E12`` (a field unit's terminal: orders in,
status and position out)."""

from __future__ import annotations

import argparse
import asyncio
import os

from command import bus, natsauth
from command.settings import Settings
from command.subjects import Namespace
from ecc.cli import files
from ecc.cli.endpoints import read_endpoints, server_urls
from ecc.cli.errors import CliError

__all__ = ["COMMANDS", "add_parsers"]


async def cmd_console_watch(settings: Settings, args: argparse.Namespace) -> None:
    from consoles.client import open_console

    found = read_endpoints(settings) or {}
    url = args.url or found.get("console_url")
    token = args.token or os.environ.get("ECC_TOKEN") or found.get("token")
    if not url or not token:
        raise CliError("need --url and --token (or a running `ecc up` in this data folder)")
    seen = 0
    async with open_console(url, token, since=args.since) as console:
        while args.count is None or seen < args.count:
            msg = await asyncio.wait_for(console.receive(), args.timeout)
            print(msg.model_dump_json(), flush=True)
            seen += 1


# --- ecc unit -----------------------------------------------------------------------


def _unit_inbox(nats_url: str, unit_id: str) -> str | None:
    """The unit's own reply inbox when the URL is the unit's user (its grant reads replies
    there only); None for the service's URL."""
    user, _ = natsauth.credentials(nats_url.split(",")[0])
    return natsauth.inbox_prefix(user) if user == natsauth.unit_user(unit_id) else None


async def cmd_unit(settings: Settings, args: argparse.Namespace) -> None:
    from consoles.field import terminal

    # NATS_URL as given (an operator passes the unit's own, from `ecc nats-url unit-E12`),
    # or the service's from endpoints.json on the command host.
    agency = args.agency
    if agency is None:  # the city file says whose unit it is (its orders' subject)
        city = files.city(settings, demo=True)
        assert city is not None
        agency = next((s.agency for s in city.stations for u in s.units if u.id == args.id),
                      None)
        if agency is None:
            raise CliError(f"unit {args.id} is not in the city file; give --agency or "
                           "check ECC_CITY")
    nats_url, _ = server_urls(settings)
    nc = await bus.connect(nats_url, name=f"ecc-unit-{args.id}",
                           inbox_prefix=_unit_inbox(nats_url, args.id))
    try:
        await terminal(nc, Namespace(settings.namespace), args.id, agency)
    finally:
        await nc.close()



def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    con = sub.add_parser("console", help="console clients").add_subparsers(
        dest="console_command", required=True)
    watch = con.add_parser("watch", help="print what a console receives")
    watch.add_argument("--url", default=None)
    watch.add_argument("--token", default=None)
    watch.add_argument("--since", type=int, default=None)
    watch.add_argument("--count", type=int, default=None)
    watch.add_argument("--timeout", type=float, default=3600.0)
    unit = sub.add_parser("unit", help="a field unit's terminal: orders in, status out")
    unit.add_argument("--id", required=True)
    unit.add_argument("--agency", default=None,
                      help="the unit's agency, for its last order (default: from the city "
                           "file)")


COMMANDS = {
    ("console", "watch"): cmd_console_watch,
    ("unit", None): cmd_unit,
}
