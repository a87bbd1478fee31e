"""The event store on a real PostgreSQL: appends, expected versions, order, inbox."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from command.store import (
    Append,
    ConcurrencyError,
    NewEvent,
    Store,
    hash_token,
    migrate,
    migrations,
)


def ev(kind: str = "thing.happened", n: int = 0) -> NewEvent:
    return NewEvent(type=kind, data={"n": n}, actor="test", event_id=uuid.uuid4())


async def test_append_and_read_back(store: Store) -> None:
    """Appended events come back from their stream in version order with their data."""
    async with store.transaction() as tx:
        recorded = await tx.append([Append("incident:a", 0, [ev(n=1), ev(n=2)])])
    assert [r.version for r in recorded] == [1, 2]
    back = await store.read_stream("incident:a")
    assert [(e.version, e.data["n"]) for e in back] == [(1, 1), (2, 2)]
    assert back[0].seq < back[1].seq


async def test_two_appends_with_the_same_expected_version_one_wins(store: Store) -> None:
    """Concurrent writers at the same expected version: exactly one commits."""
    async with store.transaction() as tx:
        await tx.append([Append("incident:race", 0, [ev()])])

    async def writer(n: int) -> bool:
        try:
            async with store.transaction() as tx:
                await tx.append([Append("incident:race", 1, [ev(n=n)])])
                await asyncio.sleep(0.05)  # hold the transaction open so they overlap
            return True
        except ConcurrencyError as exc:
            assert exc.stream_id == "incident:race"
            return False

    results = await asyncio.gather(*(writer(n) for n in range(8)))
    assert results.count(True) == 1
    assert [e.version for e in await store.read_stream("incident:race")] == [1, 2]


async def test_a_stale_expected_version_raises_with_the_actual_one(store: Store) -> None:
    """Appending at an old version names the stream, the expected and the actual version."""
    async with store.transaction() as tx:
        await tx.append([Append("incident:b", 0, [ev(), ev()])])
    with pytest.raises(ConcurrencyError) as info:
        async with store.transaction() as tx:
            await tx.append([Append("incident:b", 1, [ev()])])
    assert (info.value.expected, info.value.actual) == (1, 2)
    with pytest.raises(ConcurrencyError):
        async with store.transaction() as tx:  # ahead of the stream is as wrong as behind
            await tx.append([Append("incident:b", 5, [ev()])])


async def test_multi_stream_append_is_all_or_nothing(store: Store) -> None:
    """If one stream in an append conflicts, no stream gets events."""
    async with store.transaction() as tx:
        await tx.append([Append("unit:u1", 0, [ev()])])
    with pytest.raises(ConcurrencyError):
        async with store.transaction() as tx:
            await tx.append([Append("incident:c", 0, [ev()]), Append("unit:u1", 0, [ev()])])
    assert await store.read_stream("incident:c") == []
    assert len(await store.read_stream("unit:u1")) == 1


async def test_seq_order_is_commit_order_under_concurrency(store: Store) -> None:
    """Many concurrent appends: read_all after any seen seq never misses an event."""

    async def writer(i: int) -> None:
        async with store.transaction() as tx:
            await tx.append([Append(f"incident:w{i}", 0, [ev(n=i)])])

    await asyncio.gather(*(writer(i) for i in range(40)))
    events = await store.read_all(after=0)
    seqs = [e.seq for e in events]
    assert len(seqs) == 40 and seqs == sorted(seqs)
    # the outbox holds the same events, in the same order
    rows = await store.pool.fetch("SELECT msg_id FROM outbox ORDER BY id")
    assert [r["msg_id"] for r in rows] == [e.event_id for e in events]


async def test_inbox_claims_a_message_once(store: Store) -> None:
    """The same (consumer, message id) is claimed once; another consumer may claim it too."""
    async with store.transaction() as tx:
        assert await tx.claim("intake", "m1")
        assert not await tx.claim("intake", "m1")
        assert await tx.claim("other", "m1")


async def test_an_aborted_transaction_leaves_nothing(store: Store) -> None:
    """An error inside the block rolls back inbox, events and outbox together."""
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.claim("intake", "m2")
            await tx.append([Append("incident:d", 0, [ev()])])
            raise RuntimeError("boom")
    async with store.transaction() as tx:
        assert await tx.claim("intake", "m2")
    assert await store.read_stream("incident:d") == []
    assert await store.pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_migrations_are_idempotent_and_numbered(store: Store) -> None:
    """Running migrations on a migrated database applies nothing; numbers are unique."""
    assert await migrate(store.pool) == []
    numbers = [n for n, _, _ in migrations()]
    assert numbers == sorted(set(numbers)) and numbers[0] == 1


async def test_tokens_are_stored_hashed(store: Store) -> None:
    """A token resolves to its principal; the table never holds the token itself."""
    await store.create_token("s3cret-token", name="desk 4", role="dispatcher", agency="fire")
    principal = await store.principal("s3cret-token")
    assert principal is not None and (principal.role, principal.agency) == ("dispatcher", "fire")
    assert await store.principal("wrong") is None
    stored = await store.pool.fetchval("SELECT token_hash FROM tokens")
    assert b"s3cret-token" not in bytes(stored)


async def test_every_token_ends_and_an_expired_one_is_refused_like_a_revoked_one(
        store: Store) -> None:
    """A console token lives a shift, an adapter's 90 days (or its --ttl); once past its end
    it resolves to no one and shows as gone to the gateway's watch."""
    from datetime import timedelta

    shift = await store.create_token("desk-a", name="desk a", role="dispatcher", agency=None)
    feed = await store.create_token("feed-a", name="feed a", role="adapter", agency=None,
                                    kinds=("hotline", "cap"))
    now = await store.pool.fetchval("SELECT now()")
    assert timedelta(hours=11, minutes=59) < shift - now <= timedelta(hours=12)
    assert timedelta(days=89) < feed - now <= timedelta(days=90)
    adapter = await store.principal("feed-a")
    assert adapter is not None and adapter.kinds == ("hotline", "cap")
    desk = await store.principal("desk-a")
    assert desk is not None and desk.kinds == () and desk.expires_at == shift
    await store.create_token("brief", name="brief", role="viewer", agency=None,
                             ttl=timedelta(seconds=1))
    assert await store.principal("brief") is not None
    await store.pool.execute("UPDATE tokens SET expires_at = now() - interval '1 s' "
                             "WHERE name = 'brief'")
    assert await store.principal("brief") is None
    assert await store.revoked(["brief", "desk-a"]) == {"brief"}
    assert await store.revoke_token("brief") == 0  # nothing live to revoke


async def test_rotation_keeps_role_agency_and_kinds_and_ends_the_old_after_the_grace(
        store: Store) -> None:
    """`rotate` makes a new token of the same name, role, agency and doors; the old ones
    stay valid for the grace period only; a name with no live token rotates nothing."""
    from datetime import timedelta

    await store.create_token("old-1", name="119 platform", role="adapter", agency="police",
                             kinds=("hotline",))
    rotated = await store.rotate_token("119 platform", "new-1", grace=timedelta(minutes=10))
    assert rotated is not None
    new, cut = rotated
    assert cut == 1 and (new.role, new.agency, new.kinds) == ("adapter", "police",
                                                              ("hotline",))
    assert await store.principal("old-1") is not None and await store.principal("new-1")
    left = await store.pool.fetchval(
        "SELECT expires_at - now() FROM tokens WHERE token_hash = $1", hash_token("old-1"))
    assert timedelta(minutes=9) < left <= timedelta(minutes=10)
    wider = await store.rotate_token("119 platform", "new-2", grace=timedelta(0),
                                     kinds=("hotline", "cap"))
    assert wider is not None and wider[0].kinds == ("hotline", "cap") and wider[1] == 2
    assert await store.principal("old-1") is None and await store.principal("new-1") is None
    assert await store.rotate_token("nobody", "x", grace=timedelta(0)) is None


async def test_tokens_made_before_the_migration_get_an_end_and_their_doors(
        servers: Any) -> None:
    """A database at migration 5 with a token of each kind: after 0006 every one has an
    expiry (a shift for a desk, 90 days for an adapter) and an adapter keeps every door."""
    import asyncpg

    from tests.conftest import with_database

    name = f"ecc_m_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(servers.admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(with_database(servers.admin_url, name))
        try:
            await conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
                               "name text NOT NULL, applied_at timestamptz NOT NULL "
                               "DEFAULT now())")
            for version, file, sql in migrations():
                if version < 6:
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)",
                                       version, file)
            await conn.execute(
                "INSERT INTO tokens (token_hash, name, role) VALUES ($1, 'desk', 'supervisor'),"
                " ($2, 'feed', 'adapter')", hash_token("d"), hash_token("f"))
            assert [n for n in await migrate(conn) if n.startswith("0006")] == [
                "0006_tokens.sql"]
            rows = {r["name"]: r for r in await conn.fetch(
                "SELECT name, kinds, expires_at - now() AS left FROM tokens")}
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    from datetime import timedelta
    assert timedelta(hours=11) < rows["desk"]["left"] <= timedelta(hours=12)
    assert rows["desk"]["kinds"] is None
    assert timedelta(days=89) < rows["feed"]["left"] <= timedelta(days=90)
    assert rows["feed"]["kinds"] == ["hotline", "video", "cap", "eido"]


async def test_the_one_audit_writer_and_the_kept_command_results(store: Store) -> None:
    """`Store.audit` writes a row on its own; a command's answer is kept once per (token,
    request id): a second keep is refused, and what was kept is recalled."""
    from command.store import remember_result

    assert await store.audit(actor="(unknown token)", role="-", agency=None, peer="10.0.0.9",
                             command="ingress.cap", outcome="unauthorized", reason="no token",
                             args={"status": 401})
    row = await store.pool.fetchrow("SELECT * FROM audit_log")
    assert (row["command"], row["outcome"], row["peer"], row["args"]) == (
        "ingress.cap", "unauthorized", "10.0.0.9", {"status": 401})
    key = hash_token("desk")
    async with store.pool.acquire() as conn:
        assert await remember_result(conn, key, "r1", b"f", {"ok": True, "n": 1})
        assert not await remember_result(conn, key, "r1", b"f", {"ok": True, "n": 2})
        assert await remember_result(conn, hash_token("other"), "r1", b"f", {"ok": False})
    assert await store.recall_result(key, "r1") == (b"f", {"ok": True, "n": 1})
    assert await store.recall_result(key, "r2") is None
    await store.pool.execute("UPDATE command_results SET at = now() - interval '25 hours'")
    assert await store.recall_result(key, "r1") is None  # a day on, it is forgotten
    async with store.pool.acquire() as conn:
        assert await remember_result(conn, key, "r3", b"f", {})
    assert await store.pool.fetchval("SELECT count(*) FROM command_results") == 1


def test_the_store_package_public_names_are_pinned() -> None:
    """command.store's public names change only on purpose (the package is the one door)."""
    import command.store

    assert sorted(command.store.__all__) == [
        "APPEND_ONLY_TABLES", "Append", "ConcurrencyError", "Conn", "DataRejected",
        "MigrationRefused", "NewEvent", "OUTBOX_CHANNEL", "OutboxRow", "PRUNED_TABLES", "Principal",
        "Probe", "READ_ONLY_TABLES", "Sample", "Session", "Store", "StoreError",
        "StoreUnavailable", "TrackPoint", "Tx", "event_subject", "grant_service", "hash_token",
        "migrate", "migrate_at", "migrations", "on_the_bus", "remember_result", "write_audit",
    ]
    assert all(hasattr(command.store, name) for name in command.store.__all__)
