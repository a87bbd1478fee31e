"""Shell: connections of their own, outside the pool, for what keeps session state: a
leader's advisory lock (the outbox relay, the dispatcher), LISTEN for the outbox's
notifications, and the readiness probe (a busy pool must not read as an outage)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

import asyncpg


class OutboxRow(NamedTuple):
    """One outbox row: publish ``payload`` on ``subject`` with ``Nats-Msg-Id`` = ``msg_id``."""

    id: int
    subject: str
    msg_id: str
    payload: bytes


class Session:
    """One connection of its own. Open with :meth:`SessionStore.session`; its locks and
    listeners end when it closes."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def try_lock(self, key: int) -> bool:
        """Take the session advisory lock ``key`` if free; True if this session holds it."""
        return bool(await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", key))

    async def lead(self, key: int, poll: float = 1.0) -> None:
        """Wait, polling every ``poll`` seconds, until this session holds lock ``key``
        (another process leads until then; stand by)."""
        while not await self.try_lock(key):
            await asyncio.sleep(poll)

    async def listen(self, channel: str, notified: Callable[..., Any]) -> None:
        """Call ``notified`` on every NOTIFY on ``channel``."""
        await self._conn.add_listener(channel, notified)

    async def outbox_batch(self, limit: int) -> list[OutboxRow]:
        """The first ``limit`` outbox rows, in id (commit) order."""
        rows = await self._conn.fetch(
            "SELECT id, subject, msg_id, payload FROM outbox ORDER BY id LIMIT $1", limit)
        return [OutboxRow(r["id"], r["subject"], r["msg_id"], bytes(r["payload"]))
                for r in rows]

    async def outbox_done(self, ids: Sequence[int]) -> None:
        """Delete these outbox rows (the broker acknowledged them)."""
        await self._conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", list(ids))

    async def close(self) -> None:
        await self._conn.close(timeout=2)


class SessionStore:
    """Sessions of the store's database (:class:`command.store.Store`)."""

    url: str

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        """A connection of its own for the block; the driver's connect errors as they are
        (a leader's loop logs them and tries again)."""
        session = Session(await asyncpg.connect(self.url))
        try:
            yield session
        finally:
            await session.close()


class Probe:
    """Whether PostgreSQL at ``url`` answers, on one connection kept between probes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: asyncpg.Connection | None = None

    async def ping(self) -> None:
        """``SELECT 1``, connecting first if need be; raises what the driver raised."""
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.url)
        await self._conn.fetchval("SELECT 1")

    def drop(self) -> None:
        """Drop the connection at once (a probe that failed or stopped)."""
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None
