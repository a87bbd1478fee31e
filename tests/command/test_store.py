"""The event store on a real PostgreSQL: appends, expected versions, order, inbox."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from command.store import Append, ConcurrencyError, NewEvent, Store, migrate, migrations


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
