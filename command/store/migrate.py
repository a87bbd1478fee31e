"""Shell: the schema: migrations (command/migrations, applied in order under a lock) and
the service role's grants, re-applied after every migration."""

from __future__ import annotations

from importlib import resources

import asyncpg
import structlog

from command.store.connection import Conn, _connection
from command.store.errors import MigrationRefused

log = structlog.get_logger("ecc.store")

_MIGRATION_LOCK = 0x0ECC_0002


def migrations() -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` for every file in command/migrations, in order."""
    found = []
    for entry in resources.files("command.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql"):
            found.append((int(name.split("_", 1)[0]), name, entry.read_text()))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


# The service role's grants, re-applied after every migration by :func:`migrate`: every
# table of schema public gets SELECT, INSERT, UPDATE and DELETE (a new migration's table
# too, with nothing to add) except the ones named here. An append-only table may only be
# read and added to; the migrations' ledger may only be read; a pruned table may be read,
# added to and deleted from past its retention, never changed (units' tracks).
APPEND_ONLY_TABLES = ("audit_log",)
READ_ONLY_TABLES = ("schema_migrations",)
PRUNED_TABLES = ("unit_positions",)



async def migrate(pool: asyncpg.Pool | Conn, *, service_role: str | None = None) -> list[str]:
    """Apply pending migrations, each in its own transaction, under a lock; then, with
    ``service_role``, give that role exactly the service's privileges (see
    ``APPEND_ONLY_TABLES``) in one transaction. Run it as the schema's owner.

    Safe to run from several processes at once: the advisory lock makes the
    second wait, then find nothing to do. With nothing pending it creates nothing, so
    the service's own role may call it at start; with migrations pending and a role
    that may not create tables it raises :class:`MigrationRefused`.
    """
    applied: list[str] = []
    async with _connection(pool) as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            pending = migrations()
            try:
                if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NULL"):
                    await conn.execute(
                        "CREATE TABLE schema_migrations ("
                        " version integer PRIMARY KEY, name text NOT NULL,"
                        " applied_at timestamptz NOT NULL DEFAULT now())")
                done = {r["version"]
                        for r in await conn.fetch("SELECT version FROM schema_migrations")}
                pending = [(v, n, sql) for v, n, sql in pending if v not in done]
                for version, name, sql in pending:
                    async with conn.transaction():
                        await conn.execute(sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                            version,
                            name,
                        )
                    applied.append(name)
                    log.info("store.migration_applied", migration=name)
            except asyncpg.InsufficientPrivilegeError as exc:
                role = str(await conn.fetchval("SELECT current_user"))
                raise MigrationRefused([n for _, n, _ in pending if n not in applied],
                                       role) from exc
            if service_role is not None:
                await grant_service(conn, service_role)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied


async def grant_service(conn: Conn, role: str) -> None:
    """(Re)apply ``role``'s privileges on schema public, as its owner, atomically: it
    may use the schema but create nothing in it; every table is its to read and write
    but ``APPEND_ONLY_TABLES`` (SELECT, INSERT), ``READ_ONLY_TABLES`` (SELECT) and
    ``PRUNED_TABLES`` (SELECT, INSERT, DELETE); it
    may use every sequence. Nothing else (no TRUNCATE, REFERENCES or TRIGGER)."""
    if role == await conn.fetchval("SELECT current_user"):
        raise ValueError(f"{role!r} runs the migrations: the service needs a role of its own")
    ident = await conn.fetchval("SELECT quote_ident($1::text)", role)
    tables = [r["name"] for r in await conn.fetch(
        "SELECT quote_ident(c.relname) AS name FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1")]
    async with conn.transaction():
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        await conn.execute(f"REVOKE ALL ON SCHEMA public FROM {ident}")
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {ident}")
        await conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ident}")
        await conn.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {ident}")
        for table in tables:
            if table in APPEND_ONLY_TABLES:
                rights = "SELECT, INSERT"
            elif table in READ_ONLY_TABLES:
                rights = "SELECT"
            elif table in PRUNED_TABLES:
                rights = "SELECT, INSERT, DELETE"
            else:
                rights = "SELECT, INSERT, UPDATE, DELETE"
            await conn.execute(f"GRANT {rights} ON {table} TO {ident}")
        await conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {ident}")
    log.info("store.service_granted", role=role, tables=len(tables))


async def migrate_at(url: str, *, service_role: str | None = None) -> list[str]:
    """:func:`migrate` on a connection of its own to ``url`` (the schema owner's, for
    ``ecc migrate``), closed afterwards."""
    conn = await asyncpg.connect(url)
    try:
        return await migrate(conn, service_role=service_role)
    finally:
        await conn.close()
