"""Shell: PostgreSQL's roles and their rights on a cluster and a database, the
access rules (``pg_hba.conf``) that go with them, and moving objects to the owner.

Used by the embedded runtime (:mod:`command.runtime`) and by the test fixtures that
make databases of their own; an operator of an external server makes the same roles
by hand (docs/security.md, "PostgreSQL"). ``hba_trusts`` and ``pg_url`` are pure.
"""

from __future__ import annotations

import asyncpg

# PostgreSQL's roles (docs/security.md, "PostgreSQL"): the bootstrap superuser, used
# only by the runtime to make the others; the owner of the schema, that migrations run as;
# and the service, which owns nothing and holds only the grants the migration step gives it.
PG_SUPERUSER = "postgres"
PG_OWNER = "ecc_owner"
PG_SERVICE = "ecc"
PG_ROLES = (PG_SUPERUSER, PG_OWNER, PG_SERVICE)

# Password (SCRAM) over loopback TCP, nothing else: no trust, no peer, no unix socket.
PG_HBA = """\
# Written by ECC (command/runtime.py) on every start; edits here are replaced.
# Password authentication (SCRAM-SHA-256) over loopback TCP only: no trust, no socket.
# TYPE  DATABASE  USER  ADDRESS        METHOD
host    all       all   127.0.0.1/32   scram-sha-256
host    all       all   ::1/128        scram-sha-256
"""


def hba_trusts(text: str) -> bool:
    """Whether a ``pg_hba.conf`` lets anyone in without a password (``trust``,
    or ``peer``/``ident``, which trust the host's user names)."""
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if fields and any(f in {"trust", "peer", "ident"} for f in fields[3:]):
            return True
    return False


def pg_url(role: str, password: str | None, port: int, database: str) -> str:
    """``postgresql://<role>:<password>@127.0.0.1:<port>/<database>``."""
    creds = f"{role}:{password}" if password else role
    return f"postgresql://{creds}@127.0.0.1:{port}/{database}"


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
