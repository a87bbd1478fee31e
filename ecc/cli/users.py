"""Shell: ECC's users on nats-server. ``ecc nats-url NAME`` prints a component's URL
with its credentials on the embedded server of this data folder; ``ecc nats-auth``
writes deploy/nats-auth.conf, the users file of an external server, from the
adapters' declarations (:func:`command.natsconf.nats_auth_conf`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlsplit

from adapters.ingest import SPECS
from command import natsauth
from command.natsconf import nats_auth_conf
from command.runtime import RuntimeStartError, read_users, users_file
from command.settings import Settings
from ecc.cli.endpoints import endpoints_path, read_endpoints
from ecc.cli.errors import CliError

__all__ = ["COMMANDS", "add_parsers", "component_url"]


def component_url(settings: Settings, component: str) -> str:
    """A component's URL, with its credentials, on the embedded nats-server of this data
    folder: ``nats://<component>:<password>@host:port``, or ``mqtt://…`` for ``devices``.

    Raises CliError with external servers (ECC did not make their users), before the
    first `ecc up`, and for a component that has no user.
    """
    if settings.external:
        raise CliError("NATS_URL is set: that server's users are in its own configuration, "
                       "not made by ECC (see docs/security.md)")
    path = users_file(settings.data_dir)
    try:
        passwords = read_users(path)
    except RuntimeStartError as exc:
        raise CliError(str(exc)) from exc
    if not passwords:
        raise CliError(f"no NATS users yet ({path}): start `ecc up` once in this data folder")
    if component not in passwords:
        named = [n for n in passwords if natsauth.unit_of_user(n) is None]
        raise CliError(f"no NATS user {component!r}: there are {', '.join(named)} and "
                       f"{len(passwords) - len(named)} unit-<id> users, one for each unit of "
                       "the city file `ecc up` last started with")
    key = "mqtt_url" if component == natsauth.DEVICES else "nats_url"
    found = (read_endpoints(settings) or {}).get(key)
    if not found:
        raise CliError(f"no {key} in {endpoints_path(settings)}: start `ecc up`")
    where = urlsplit(str(found))
    return natsauth.url(where.scheme, component, passwords[component],
                        where.hostname or "127.0.0.1", where.port or 0)


async def cmd_nats_url(settings: Settings, args: argparse.Namespace) -> None:
    print(component_url(settings, args.component))



async def cmd_nats_auth(settings: Settings, args: argparse.Namespace) -> None:
    """deploy/nats-auth.conf as the adapters' specs make it: printed, written to --out,
    or with --check compared with the file at --out (non-zero if it differs)."""
    text = nats_auth_conf(SPECS)
    if args.out is None:
        sys.stdout.write(text)
        return
    path = Path(args.out)
    try:
        if args.check:
            if path.read_text(encoding="utf-8") != text:
                raise CliError(f"{path} is not what `ecc nats-auth` writes: run "
                               f"`ecc nats-auth --out {path}`")
            return
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot {'read' if args.check else 'write'} {path}: "
                       f"{exc.strerror}") from exc


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    natsurl = sub.add_parser("nats-url", help="print a component's NATS URL with its "
                                              "credentials (the embedded server of `ecc up`)")
    natsurl.add_argument("component", help="ecc, adapter-hotline|cap|sensor|video, "
                                            "unit-<id>, devices (an MQTT URL), sim (demo)")
    auth = sub.add_parser("nats-auth", help="the users file of an external nats-server "
                                            "(deploy/nats-auth.conf), from the adapters' "
                                            "specs")
    auth.add_argument("--out", default=None, help="write to this file, not stdout")
    auth.add_argument("--check", action="store_true",
                      help="with --out: fail if the file is not what would be written")


COMMANDS = {
    ("nats-url", None): cmd_nats_url,
    ("nats-auth", None): cmd_nats_auth,
}
