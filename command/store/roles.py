"""Shell: PostgreSQL's roles and their rights on a cluster and a database, and moving
objects to the owner: the statements the embedded runtime (:mod:`command.runtime`) and
the test fixtures run as the superuser. The roles' names and the access rules are
:mod:`command.pgroles` (pure).

Errors: connecting as an administrator translates the driver's refusals
(:class:`AccessRefused`, :class:`PasswordRefused`) and a server not ready yet
(:class:`command.store.StoreUnavailable`).
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from command.pgroles import PG_OWNER, PG_SERVICE, PG_SUPERUSER
from command.store.errors import StoreError, StoreUnavailable


class AccessRefused(StoreError):
    """PostgreSQL refused the connection itself (no rule lets it in, or a wrong
    password): the server is up and answering."""


class PasswordRefused(AccessRefused):
    """PostgreSQL refused the password."""


async def format_sql(conn: asyncpg.Connection, template: str, *args: str) -> str:
    """A utility statement with identifiers and literals quoted by the server's own
    ``format`` (``%I``, ``%L``): role names and passwords never meet string pasting."""
    params = ", ".join(f"${i + 1}::text" for i in range(len(args)))
    return str(await conn.fetchval(f"SELECT format('{template}', {params})", *args))


async def secure_database(conn: asyncpg.Connection, database: str, *,
                          owner: str = PG_OWNER, service: str = PG_SERVICE) -> None:
    """Give ``database`` to ``owner`` and let only ``owner`` and ``service`` connect
    (no TEMP for the service: it creates nothing). ``conn`` is a superuser's."""
    statements = [
        "ALTER DATABASE %I OWNER TO %I",
        "REVOKE ALL ON DATABASE %I FROM PUBLIC",
        "GRANT CONNECT ON DATABASE %I TO %I",
    ]
    await conn.execute(await format_sql(conn, statements[0], database, owner))
    await conn.execute(await format_sql(conn, statements[1], database))
    await conn.execute(await format_sql(conn, statements[2], database, service))


async def reassign_to_owner(conn: asyncpg.Connection, owner: str = PG_OWNER) -> int:
    """Give every object of schema ``public`` of the connected database to ``owner``
    (a cluster made before the roles: its tables belong to ``postgres``, and
    ``REASSIGN OWNED BY postgres`` is refused for the bootstrap superuser). Returns
    how many objects changed hands. ``conn`` is a superuser's."""
    rows = await conn.fetch(
        """
        SELECT format('ALTER %s %s OWNER TO %I', kind, name, $1::text) AS sql FROM (
          SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                      WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
                      ELSE 'TABLE' END AS kind, c.oid::regclass::text AS name, 1 AS pass
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
            AND pg_get_userbyid(c.relowner) <> $1::text
            -- a serial's sequence moves with its table
            AND NOT (c.relkind = 'S' AND EXISTS (
                SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
          UNION ALL
          SELECT 'ROUTINE', p.oid::regprocedure::text, 2
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> $1::text
          UNION ALL
          SELECT 'TYPE', t.oid::regtype::text, 3
          FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
          WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'r', 'm')
            AND pg_get_userbyid(t.typowner) <> $1::text
        ) objects ORDER BY pass
        """, owner)
    async with conn.transaction():
        for row in rows:
            await conn.execute(row["sql"])
    return len(rows)


class Admin:
    """A superuser's connection to one database of the cluster. Open with
    :meth:`connect`; close with :meth:`close`."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @classmethod
    async def connect(cls, url: str, timeout: float = 2.0) -> Admin:
        """Connect; raises :class:`PasswordRefused` or :class:`AccessRefused` when the
        server refuses us, :class:`StoreUnavailable` when it cannot answer yet (not
        listening, starting up, too slow)."""
        try:
            return cls(await asyncpg.connect(url, timeout=timeout))
        except asyncpg.InvalidPasswordError as exc:
            raise PasswordRefused(str(exc)) from exc
        except asyncpg.InvalidAuthorizationSpecificationError as exc:
            raise AccessRefused(str(exc)) from exc
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        await self._conn.close()

    async def reload_conf(self) -> None:
        """Ask the postmaster to read its configuration again (asynchronous in it)."""
        await self._conn.execute("SELECT pg_reload_conf()")

    async def ensure_roles(self, passwords: Mapping[str, str], database: str) -> None:
        """Passwords on every role, the owner and service roles with no power over the
        cluster, ``database`` owned by the owner and open to only the owner and the
        service, the maintenance database the superuser's alone; idempotent."""
        conn = self._conn
        await conn.execute(await format_sql(conn, "ALTER ROLE %I PASSWORD %L",
                                             PG_SUPERUSER, passwords[PG_SUPERUSER]))
        for role in (PG_OWNER, PG_SERVICE):
            verb = "ALTER" if await conn.fetchval(
                "SELECT 1 FROM pg_roles WHERE rolname = $1", role) else "CREATE"
            await conn.execute(await format_sql(
                conn, f"{verb} ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                "NOREPLICATION NOBYPASSRLS NOINHERIT PASSWORD %L", role, passwords[role]))
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            await conn.execute(await format_sql(conn, "CREATE DATABASE %I OWNER %I",
                                                 database, PG_OWNER))
        await secure_database(conn, database)
        # the maintenance database is the superuser's alone
        await conn.execute("REVOKE ALL ON DATABASE postgres FROM PUBLIC")

    async def reassign_to_owner(self, owner: str = PG_OWNER) -> int:
        """:func:`reassign_to_owner` on this connection's database."""
        return await reassign_to_owner(self._conn, owner)
