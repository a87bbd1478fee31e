"""Shell: the outbox, what a transaction publishes after it commits (the relay,
:mod:`command.outbox`, drains it in order)."""

from __future__ import annotations

from command.store.connection import Conn

OUTBOX_CHANNEL = "ecc_outbox"


class OutboxTx:
    """The outbox's part of a transaction (:class:`command.store.Tx`)."""

    conn: Conn

    async def outbox(self, subject: str, msg_id: str, payload: bytes) -> None:
        """Publish ``payload`` on ``subject`` after commit, once (``Nats-Msg-Id`` = ``msg_id``)."""
        await self.conn.execute(
            "INSERT INTO outbox (subject, msg_id, payload) VALUES ($1, $2, $3)",
            subject, msg_id, payload)
        await self.conn.execute("SELECT pg_notify($1, '')", OUTBOX_CHANNEL)
