"""Shell: the tokens table (hashed bearer tokens, their roles, doors and ends) and the
remembered answers to commands (``command_results``, keyed by token and request id)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from command.store.connection import Conn
from command.tokens import default_ttl


@dataclass(frozen=True)
class Principal:
    """Who a token belongs to: ``kinds`` are the ingress doors of an adapter token (empty
    for other roles), ``key`` the token's hash (what per-token records are keyed by)."""

    name: str
    role: str
    agency: str | None
    kinds: tuple[str, ...] = ()
    expires_at: datetime | None = None
    key: bytes = field(default=b"", repr=False)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()



class TokenStore:
    """The tokens' part of the store (:class:`command.store.Store`)."""

    pool: asyncpg.Pool

    async def create_token(self, token: str, *, name: str, role: str, agency: str | None,
                           kinds: Sequence[str] | None = None,
                           ttl: timedelta | None = None) -> datetime:
        """Store ``token`` (hashed) for ``name``; it ends after ``ttl`` (the role's default,
        :func:`command.tokens.default_ttl`, unless given). An adapter token posts only at
        the doors in ``kinds`` (none when not given). Returns when it expires."""
        expires: datetime = await self.pool.fetchval(
            "INSERT INTO tokens (token_hash, name, role, agency, kinds, expires_at) "
            "VALUES ($1, $2, $3, $4, $5, now() + $6::interval) RETURNING expires_at",
            hash_token(token), name, role, agency,
            list(kinds or ()) if role == "adapter" else None,
            ttl if ttl is not None else default_ttl(role))
        return expires

    async def principal(self, token: str) -> Principal | None:
        """The principal behind ``token``, or None if unknown, revoked or expired."""
        key = hash_token(token)
        row = await self.pool.fetchrow(
            "SELECT name, role, agency, kinds, expires_at FROM tokens WHERE token_hash = $1 "
            "AND revoked_at IS NULL AND expires_at > now()", key)
        if row is None:
            return None
        return Principal(row["name"], row["role"], row["agency"], tuple(row["kinds"] or ()),
                         row["expires_at"], key)

    async def revoked(self, tokens: list[str]) -> set[str]:
        """Which of these tokens are revoked, expired or gone (for consoles already
        connected: the gateway closes them)."""
        if not tokens:
            return set()
        hashes = {hash_token(t): t for t in tokens}
        rows = await self.pool.fetch(
            "SELECT token_hash FROM tokens WHERE token_hash = ANY($1::bytea[]) "
            "AND revoked_at IS NULL AND expires_at > now()", list(hashes))
        valid = {bytes(r["token_hash"]) for r in rows}
        return {t for h, t in hashes.items() if h not in valid}

    async def revoke_token(self, name: str) -> int:
        """Revoke every live token of this name; returns how many."""
        result = await self.pool.execute(
            "UPDATE tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL "
            "AND expires_at > now()", name)
        return int(result.split()[-1])

    async def rotate_token(self, name: str, token: str, *, grace: timedelta,
                           ttl: timedelta | None = None,
                           kinds: Sequence[str] | None = None) -> tuple[Principal, int] | None:
        """A new token for ``name`` with the role and agency of its newest live token (and
        its kinds, unless ``kinds`` is given), ending after ``ttl`` (the role's default);
        every older live token of that name now ends within ``grace``, so the platform or
        desk can switch over without a gap. Returns the new principal and how many old
        tokens were cut short, or None when ``name`` has no live token (nothing changes)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT role, agency, kinds FROM tokens WHERE name = $1 AND revoked_at IS NULL "
                "AND expires_at > now() ORDER BY created_at DESC LIMIT 1 FOR UPDATE", name)
            if row is None:
                return None
            role = row["role"]
            doors = list(kinds) if kinds is not None else list(row["kinds"] or ())
            cut = await conn.execute(
                "UPDATE tokens SET expires_at = least(expires_at, now() + $2::interval) "
                "WHERE name = $1 AND revoked_at IS NULL AND expires_at > now()", name, grace)
            key = hash_token(token)
            expires = await conn.fetchval(
                "INSERT INTO tokens (token_hash, name, role, agency, kinds, expires_at) "
                "VALUES ($1, $2, $3, $4, $5, now() + $6::interval) RETURNING expires_at",
                key, name, role, row["agency"], doors if role == "adapter" else None,
                ttl if ttl is not None else default_ttl(role))
        return (Principal(name, role, row["agency"], tuple(doors) if role == "adapter" else (),
                          expires, key), int(cut.split()[-1]))

    # --- the audit log and command results ----------------------------------

    async def recall_result(self, key: bytes,
                            request_id: str) -> tuple[bytes, dict[str, Any]] | None:
        """The fingerprint and first answer of the command this token sent with this request
        id in the last day, or None."""
        row = await self.pool.fetchrow(
            "SELECT fingerprint, result FROM command_results WHERE token_hash = $1 AND "
            "request_id = $2 AND at > now() - interval '1 day'", key, request_id)
        return None if row is None else (bytes(row["fingerprint"]), row["result"])


async def remember_result(conn: Conn, key: bytes, request_id: str, fingerprint: bytes,
                          result: dict[str, Any]) -> bool:
    """Keep the first answer to (token, request id), in the command's own transaction;
    False if another answer is already kept (a twin of this request committed first: roll
    back and answer with that one). Also clears a few rows older than a day."""
    await conn.execute(
        "DELETE FROM command_results WHERE ctid = ANY(ARRAY(SELECT ctid FROM command_results "
        "WHERE at < now() - interval '1 day' LIMIT 100 FOR UPDATE SKIP LOCKED))")
    kept = await conn.fetchval(
        "INSERT INTO command_results (token_hash, request_id, fingerprint, result) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
        key, request_id, fingerprint, result)
    return kept is not None



class TokensTx:
    """The remembered answers' part of a transaction (:class:`command.store.Tx`)."""

    conn: Conn

    async def remember_result(self, key: bytes, request_id: str, fingerprint: bytes,
                              result: dict[str, Any]) -> bool:
        """:func:`remember_result` in this transaction."""
        return await remember_result(self.conn, key, request_id, fingerprint, result)
