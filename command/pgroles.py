"""Core: PostgreSQL's roles by name, the access rules (``pg_hba.conf``) that go with
them, and the URLs they connect with. No I/O: the statements that make the roles and
give them their rights are the store's (:mod:`command.store.roles`).

Used by the embedded runtime (:mod:`command.runtime`), the CLI and the test fixtures;
an operator of an external server makes the same roles by hand (docs/security.md,
"PostgreSQL").
"""

from __future__ import annotations

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
