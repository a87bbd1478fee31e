"""Shell: how the store's connections are made: the codecs every pooled connection gets,
its reset on the way back to the pool, and URLs fit for a log line."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from workflows.text import clean, clean_data

Conn = asyncpg.Connection | PoolConnectionProxy


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """What a connection needs on its way back to the pool: nothing, unless it was left
    inside a transaction. asyncpg's default reset (RESET ALL, unlock all advisory locks,
    UNLISTEN, CLOSE ALL) is a round trip on every transaction, about a fifth of the
    service's time in socket writes under load (py-spy); ECC keeps no session state on
    pooled connections (its session locks and LISTEN live on connections of their own,
    and the migration lock is released before the connection goes back)."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def _encode_json(value: Any) -> str:
    """JSON for a ``jsonb`` parameter. ``json.dumps`` escapes NUL as ``\\u0000`` and a
    lone surrogate as ``\\udXXX``, both of which PostgreSQL refuses: the rare text that
    holds either is cleaned first (workflows.text), so no content can fail a write."""
    text = json.dumps(value)
    if "\\u0000" in text or "\\ud" in text:
        text = json.dumps(clean_data(value))
    return text


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("jsonb", "json"):
        await conn.set_type_codec(typ, encoder=_encode_json, decoder=json.loads,
                                  schema="pg_catalog")
    # Every text parameter passes the same normalisation: the last line of defence
    # behind the borders' own (an audit row must never fail on what a console sent).
    await conn.set_type_codec("text", encoder=clean, decoder=_same, schema="pg_catalog",
                              format="text")


def _same(text: str) -> str:
    return text


def _redact(url: str) -> str:
    """A URL fit for a log line: no password."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}@{host}"



@asynccontextmanager
async def _connection(pool: asyncpg.Pool | Conn) -> AsyncIterator[Conn]:
    if isinstance(pool, asyncpg.Pool):
        async with pool.acquire() as conn:
            yield conn
    else:
        yield pool
