"""Shell: ``ecc migrate`` and ``ecc rebuild``, and whom migrations run as.

The migrations run on a connection of their own as the schema's owner (the store's pool
connects as the service role, which may not change the schema).
"""

from __future__ import annotations

import argparse
import json
from urllib.parse import urlsplit

from command.pgroles import PG_OWNER, PG_SERVICE, pg_url
from command.runtime import RuntimeStartError, pg_users_file, read_users
from command.settings import Settings
from command.store import MigrationRefused, Store, migrate_at
from ecc.cli.endpoints import endpoints_path, server_urls
from ecc.cli.errors import CliError

__all__ = ["COMMANDS", "add_parsers", "migration_target", "run_migrations"]


def migration_target(settings: Settings) -> tuple[str, str | None]:
    """``(url, service_role)``: whom migrations run as, and the role they then give the
    service's privileges to. Embedded: the owner role, and the service role. External:
    ``DATABASE_OWNER_URL`` and ``DATABASE_URL``'s user, or without an owner URL
    ``DATABASE_URL`` alone and no grants (one role does everything, as before)."""
    if settings.external:
        assert settings.database_url
        owner = settings.database_owner_url
        if not owner:
            return settings.database_url, None
        try:
            service, owner_role = (urlsplit(settings.database_url).username,
                                   urlsplit(owner).username)
        except ValueError as exc:
            raise CliError(f"DATABASE_URL or DATABASE_OWNER_URL is not a URL: {exc}") from exc
        if not service or service == owner_role:
            raise CliError("DATABASE_OWNER_URL and DATABASE_URL must name two roles: the "
                           "schema's owner and the service's (docs/security.md, PostgreSQL)")
        return owner, service
    _, database_url = server_urls(settings)
    path = pg_users_file(settings.data_dir)
    try:
        password = read_users(path).get(PG_OWNER)
    except RuntimeStartError as exc:
        raise CliError(str(exc)) from exc
    if not password:
        raise CliError(f"no password for {PG_OWNER} in {path}: start `ecc up` once in this "
                       "data folder")
    try:
        where = urlsplit(database_url)
        port = where.port or 0
    except ValueError as exc:
        raise CliError(f"{endpoints_path(settings)}: database_url is not a URL; start "
                       "`ecc up` again") from exc
    return pg_url(PG_OWNER, password, port, where.path.lstrip("/")), PG_SERVICE


async def run_migrations(url: str, service_role: str | None) -> list[str]:
    """Apply pending migrations as ``url``'s role, then the service role's grants."""
    try:
        return await migrate_at(url, service_role=service_role)
    except MigrationRefused as exc:
        raise CliError(str(exc)) from exc



async def cmd_migrate(settings: Settings, args: argparse.Namespace) -> None:
    applied = await run_migrations(*migration_target(settings))
    print(json.dumps({"applied": applied}))



async def cmd_rebuild(settings: Settings, args: argparse.Namespace) -> None:
    from command.projections import rebuild

    _, database_url = server_urls(settings)
    store = await Store.connect(database_url, min_size=1, max_size=1)
    try:
        counts = await rebuild(store)
    finally:
        await store.close()
    print(json.dumps(counts))



def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("rebuild", help="rebuild the projections from the events")


COMMANDS = {
    ("migrate", None): cmd_migrate,
    ("rebuild", None): cmd_rebuild,
}
