"""Fixtures: real nats-server and PostgreSQL, embedded on free ports unless
NATS_URL and DATABASE_URL are set, shared by the session and isolated per
test (each test gets its own database, cloned from a migrated template, and
its own subject namespace and streams).

On the embedded PostgreSQL a test's ``database_url`` is the service role's
(docs/security.md, "PostgreSQL"): the whole suite runs with the service's least
privilege. A test that plays an attacker or sets up a fixture the service could
not uses ``admin_database_url`` (the superuser) or ``owner_database_url``."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import settings as hsettings

from adapters.ingest import SPECS
from command import bus, natsauth
from command.pgroles import PG_OWNER, PG_SERVICE
from command.runtime import EmbeddedNats, EmbeddedPostgres
from command.store import Store, migrate
from command.store.roles import secure_database
from command.subjects import Namespace
from ecc.app import Service, ServiceConfig

hsettings.register_profile("ci", deadline=None, print_blob=True)
hsettings.load_profile("ci")


def with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@dataclass
class Servers:
    nats_url: str
    admin_url: str  # a database we may CREATE DATABASE from
    owner_url: str  # the schema owner's (migrations); any database name, swapped per test
    service_url: str  # the service role's; any database name, swapped per test
    nats: EmbeddedNats | None = None
    postgres: EmbeddedPostgres | None = None
    data_dir: Path | None = None
    mqtt_url: str | None = None  # the nats-server's MQTT listener, with the devices' user


@pytest.fixture(scope="session")
async def servers() -> AsyncIterator[Servers]:
    """A nats-server and a PostgreSQL for the whole session."""
    if os.environ.get("NATS_URL") and os.environ.get("DATABASE_URL"):
        db = os.environ["DATABASE_URL"]  # today's one role, or an operator's DATABASE_OWNER_URL
        yield Servers(os.environ["NATS_URL"], db, os.environ.get("DATABASE_OWNER_URL") or db, db,
                      mqtt_url=os.environ.get("MQTT_URL"))
        return
    data_dir = Path(tempfile.mkdtemp(prefix="ecc-test-"))
    data_dir.chmod(0o755)
    # every test has a namespace of its own: the devices' grant covers them all
    nats_srv = EmbeddedNats(data_dir, namespace=natsauth.ANY_NAMESPACE, adapters=SPECS)
    pg_srv = EmbeddedPostgres(data_dir)
    await asyncio.gather(nats_srv.start(), pg_srv.start())
    try:  # nats_url is the service's user (every permission); mqtt_url the devices'
        yield Servers(nats_srv.url, pg_srv.admin_url, pg_srv.owner_url, pg_srv.url, nats_srv,
                      pg_srv, data_dir,
                      mqtt_url=nats_srv.mqtt_url_for(natsauth.DEVICES))
    finally:
        await asyncio.gather(nats_srv.stop(), pg_srv.stop())
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
async def template_db(servers: Servers) -> AsyncIterator[str]:
    """A database with every migration applied, to clone per test."""
    name = f"ecc_template_{os.getpid()}"
    admin = await asyncpg.connect(servers.admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
        if servers.postgres is not None:
            await secure_database(admin, name)
        conn = await asyncpg.connect(with_database(servers.owner_url, name))
        try:  # as the owner, as `ecc migrate` does; the service role gets its grants
            await migrate(conn, service_role=PG_SERVICE if servers.postgres else None)
        finally:
            await conn.close()
        yield name
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database_url(servers: Servers, template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test; the URL is the service role's."""
    name = f"ecc_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(servers.admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        if servers.postgres is not None:
            await secure_database(admin, name, owner=PG_OWNER, service=PG_SERVICE)
        yield with_database(servers.service_url, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def database_name(url: str) -> str:
    return url.rpartition("/")[2]


@pytest.fixture
def admin_database_url(servers: Servers, database_url: str) -> str:
    """The superuser's URL on this test's database: for a test that plays an attacker
    with every power, or sets up what the service itself may not."""
    return with_database(servers.admin_url, database_name(database_url))


@pytest.fixture
def owner_database_url(servers: Servers, database_url: str) -> str:
    """The schema owner's URL on this test's database (what migrations run as)."""
    return with_database(servers.owner_url, database_name(database_url))


@pytest.fixture
def mqtt_url(servers: Servers) -> str:
    """The MQTT listener of the nats-server the tests use, with a device's credentials."""
    if servers.mqtt_url is None:
        pytest.fail("NATS_URL is set but MQTT_URL is not: set MQTT_URL to that nats-server's "
                    "MQTT listener (mqtt://[user:password@]host:port)")
    return servers.mqtt_url


@pytest.fixture
def ns() -> Namespace:
    """A subject namespace of this test's own."""
    return Namespace(f"t{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def nc(servers: Servers) -> AsyncIterator[Any]:
    conn = await bus.connect(servers.nats_url, name="ecc-test")
    yield conn
    await conn.close()


@pytest.fixture
async def js(nc: Any, ns: Namespace) -> AsyncIterator[Any]:
    """JetStream with this test's streams created (and deleted afterwards)."""
    jsc = nc.jetstream()
    await bus.ensure_streams(jsc, ns, adapters=SPECS)
    yield jsc
    await bus.delete_streams(jsc, ns)


@pytest.fixture
async def store(database_url: str, ns: Namespace) -> AsyncIterator[Store]:
    st = await Store.connect(database_url, ns)
    yield st
    await st.close()


@pytest.fixture
async def token(store: Store) -> str:
    value = f"test-token-{uuid.uuid4().hex}"
    await store.create_token(value, name="test console", role="dispatcher", agency=None)
    return value


@pytest.fixture
async def service(
    servers: Servers, database_url: str, ns: Namespace, js: Any
) -> AsyncIterator[Service]:
    """The whole service, in this process, on this test's database and namespace."""
    async with running(Service(ServiceConfig(nats_url=servers.nats_url,
                                             database_url=database_url, namespace=ns.prefix,
                                             console_port=0))) as svc:
        yield svc


@asynccontextmanager
async def running(svc: Service, deadline: float = 30.0) -> AsyncIterator[Service]:
    """Run a service for the block: ready on entry (or what killed it is raised), and
    stopped on exit (the test fails loudly if it will not stop)."""
    task = asyncio.create_task(svc.run())
    try:
        ready = asyncio.ensure_future(svc.ready.wait())
        done, _ = await asyncio.wait({ready, task}, timeout=deadline,
                                     return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            ready.cancel()
            task.result()  # raise what killed it
            raise RuntimeError("service stopped before it was ready")
        if not done:
            ready.cancel()
            raise AssertionError(f"the service was not ready within {deadline} s")
        yield svc
    finally:
        task.cancel()
        stopped, _ = await asyncio.wait({task}, timeout=deadline)
        if not stopped:
            raise AssertionError(f"the service did not stop within {deadline} s of cancel")
