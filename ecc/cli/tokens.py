"""Shell: access tokens. ``ecc token create`` (for a console, a unit or an adapter,
printed once), ``ecc token rotate`` (a new token for a name; the old ones end after
a grace period) and ``ecc token revoke`` (every token of a name; open consoles are
closed)."""

from __future__ import annotations

import argparse
import json
import secrets

import structlog

from command.settings import Settings
from command.store import Store
from command.tokens import TokenError, default_ttl, parse_duration, parse_kinds
from ecc.cli import files
from ecc.cli.endpoints import server_urls
from ecc.cli.errors import CliError

__all__ = ["COMMANDS", "ROLES", "add_parsers"]

log = structlog.get_logger("ecc.cli")

# adapter: a hotline platform, camera platform or CAP feed posting to the HTTP ingress
ROLES = ("viewer", "call_taker", "dispatcher", "supervisor", "admin", "field_unit", "adapter")


async def cmd_token_create(settings: Settings, args: argparse.Namespace) -> None:
    try:
        kinds = parse_kinds(args.kinds, args.role)
        ttl = parse_duration(args.ttl) if args.ttl else default_ttl(args.role)
    except TokenError as exc:
        raise CliError(str(exc)) from exc
    if args.agency is not None:
        agencies = files.catalogue(settings).agencies
        if args.agency not in agencies:
            raise CliError(f"--agency {args.agency!r} is not an agency of the catalogue "
                           f"({settings.catalogue_path}); use one of {', '.join(agencies)}, "
                           "or leave --agency out for a city-wide desk")
    _, database_url = server_urls(settings)
    store = await Store.connect(database_url, min_size=1, max_size=1)
    try:
        token = secrets.token_urlsafe(24)
        expires = await store.create_token(token, name=args.name, role=args.role,
                                           agency=args.agency, kinds=kinds, ttl=ttl)
    finally:
        await store.close()
    print(json.dumps({"token": token, "name": args.name, "role": args.role,
                      "agency": args.agency, "kinds": list(kinds) if kinds else None,
                      "expires_at": expires.isoformat()}))


async def cmd_token_rotate(settings: Settings, args: argparse.Namespace) -> None:
    try:
        ttl = parse_duration(args.ttl) if args.ttl else None
        grace = parse_duration(args.grace, what="--grace", allow_zero=True)
        kinds = parse_kinds(args.kinds, "adapter") if args.kinds else None
    except TokenError as exc:
        raise CliError(str(exc)) from exc
    _, database_url = server_urls(settings)
    store = await Store.connect(database_url, min_size=1, max_size=1)
    try:
        token = secrets.token_urlsafe(24)
        rotated = await store.rotate_token(args.name, token, grace=grace, ttl=ttl,
                                           kinds=kinds)
    finally:
        await store.close()
    if rotated is None:
        raise CliError(f"no live token named {args.name!r} to rotate; make one with "
                       "`ecc token create`")
    new, cut = rotated
    if kinds is not None and new.role != "adapter":
        log.warning("cli.token_kinds_ignored", name=args.name, role=new.role)
    print(json.dumps({"token": token, "name": new.name, "role": new.role,
                      "agency": new.agency, "kinds": list(new.kinds) or None,
                      "expires_at": new.expires_at.isoformat() if new.expires_at else None,
                      "old_tokens_end_in_s": int(grace.total_seconds()),
                      "old_tokens": cut}))


async def cmd_token_revoke(settings: Settings, args: argparse.Namespace) -> None:
    _, database_url = server_urls(settings)
    store = await Store.connect(database_url, min_size=1, max_size=1)
    try:
        count = await store.revoke_token(args.name)
    finally:
        await store.close()
    if count == 0:
        raise CliError(f"no live token named {args.name!r}; `ecc token list` is not built "
                       "yet: check the name you gave at `ecc token create`")
    print(json.dumps({"revoked": count, "name": args.name}))



def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tok = sub.add_parser("token", help="access tokens").add_subparsers(dest="token_command",
                                                                       required=True)
    create = tok.add_parser("create", help="create a token (printed once)")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--agency", default=None,
                        help="bind the token to an agency of the catalogue (a fire desk)")
    create.add_argument("--kinds", default=None,
                        help="for --role adapter (required): the ingress doors it may post "
                             "to, from hotline,video,cap,eido")
    create.add_argument("--ttl", default=None,
                        help="how long it lives: 8h, 30d, ... (default: 12h for console "
                             "roles, 90d for adapters and field units)")
    rotate = tok.add_parser("rotate", help="a new token for a name (printed once); the old "
                                           "ones of that name end after --grace")
    rotate.add_argument("--name", required=True)
    rotate.add_argument("--ttl", default=None, help="the new token's life (default: the "
                                                    "role's)")
    rotate.add_argument("--grace", default="10m",
                        help="how long the old tokens still work (default 10m; 0s: at once)")
    rotate.add_argument("--kinds", default=None,
                        help="an adapter's new doors (default: the old token's)")
    revoke = tok.add_parser("revoke", help="revoke every token of a name (open consoles "
                                           "using it are closed within seconds)")
    revoke.add_argument("--name", required=True)


COMMANDS = {
    ("token", "create"): cmd_token_create,
    ("token", "revoke"): cmd_token_revoke,
    ("token", "rotate"): cmd_token_rotate,
}
