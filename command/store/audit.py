"""Shell: the audit log, written by one function (:func:`write_audit`) with one set of
columns, inside a command's transaction or on a connection of its own."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from command.store.connection import Conn
from workflows.text import clean, clean_data

log = structlog.get_logger("ecc.store")

_AUDIT_IN_PERIOD = """
    SELECT at, actor, role, agency, peer, command, incident_id, outcome, reason, args, seqs
    FROM audit_log WHERE at >= $1 AND at < $2 ORDER BY id
"""


async def write_audit(conn: Conn, *, actor: str, role: str, agency: str | None,
                      peer: str | None, command: str, outcome: str, reason: str = "",
                      incident_id: str | None = None, args: dict[str, Any] | None = None,
                      seqs: Sequence[int] = ()) -> None:
    """The one writer of ``audit_log`` rows, on ``conn`` (inside a command's transaction, so
    the row commits with its events or not at all; or on its own: :meth:`Store.audit`).

    No content can fail it: every text is cleaned (workflows.text; the connection's
    codecs do it again) and bounded, so what a console sent is always on record."""
    await conn.execute(
        "INSERT INTO audit_log (actor, role, agency, peer, command, incident_id, args, "
        "outcome, reason, seqs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        clean(actor)[:200], clean(role)[:40], clean(agency)[:40] if agency else agency,
        clean(peer)[:200] if peer else peer, clean(command)[:64],
        clean(incident_id)[:128] if incident_id else incident_id,
        clean_data(args) if args is not None else {}, outcome, clean(reason)[:2000],
        list(seqs))



class AuditTx:
    """The audit log's part of a transaction (:class:`command.store.Tx`)."""

    conn: Conn

    async def audit(self, *, actor: str, role: str, command: str, args: dict[str, Any],
                    outcome: str, reason: str = "", agency: str | None = None,
                    peer: str | None = None, incident_id: str | None = None,
                    seqs: Sequence[int] = ()) -> None:
        """An audit row in this transaction (:func:`write_audit`): it commits with what it
        records, or not at all."""
        await write_audit(self.conn, actor=actor, role=role, agency=agency, peer=peer,
                          command=command, outcome=outcome, reason=reason,
                          incident_id=incident_id, args=args, seqs=seqs)



class AuditStore:
    """The audit log's part of the store (:class:`command.store.Store`)."""

    pool: asyncpg.Pool

    async def audit(self, *, actor: str, role: str, agency: str | None, peer: str | None,
                    command: str, outcome: str, reason: str = "",
                    incident_id: str | None = None, args: dict[str, Any] | None = None,
                    seqs: Sequence[int] = ()) -> bool:
        """One audit row on its own connection (a refusal, a console opening or shut out,
        an ingress refusal). Never raises: a log that is away must not keep anyone out or
        turn an answer into a false one; the failure is logged loudly. True if written."""
        try:
            await self.audit_or_raise(actor=actor, role=role, agency=agency, peer=peer,
                                      command=command, outcome=outcome, reason=reason,
                                      incident_id=incident_id, args=args, seqs=seqs)
            return True
        except Exception as exc:
            log.error("audit.write_failed", command=command, outcome=outcome, actor=actor,
                      error=str(exc))
            return False

    async def audit_or_raise(self, *, actor: str, role: str, agency: str | None = None,
                             peer: str | None = None, command: str, outcome: str,
                             reason: str = "", incident_id: str | None = None,
                             args: dict[str, Any] | None = None,
                             seqs: Sequence[int] = ()) -> None:
        """One audit row on its own connection that must be on record before the caller
        goes on (personal data leaving the system: ``ecc eido export``); raises what the
        driver raised when it cannot be written."""
        async with self.pool.acquire() as conn:
            await write_audit(conn, actor=actor, role=role, agency=agency, peer=peer,
                              command=command, outcome=outcome, reason=reason,
                              incident_id=incident_id, args=args, seqs=seqs)

    async def audit_rows(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Every audit row of ``[start, end)`` in the order written, read with a cursor in
        one read-only transaction."""
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            return [dict(r) async for r in conn.cursor(_AUDIT_IN_PERIOD, start, end,
                                                       prefetch=1000)]
