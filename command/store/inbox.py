"""Shell: the inbox, the record of each handled message id (what makes effects
exactly-once under at-least-once delivery): claimed inside the effect's transaction."""

from __future__ import annotations

from collections.abc import Sequence

from command.store.connection import Conn


class InboxTx:
    """The inbox's part of a transaction (:class:`command.store.Tx`)."""

    conn: Conn

    async def claim(self, consumer: str, message_id: str) -> bool:
        """Record ``message_id`` as handled by ``consumer``; False if it already was."""
        row = await self.conn.fetchval(
            "INSERT INTO inbox (consumer, message_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            consumer,
            message_id,
        )
        return row is not None

    async def claim_many(self, consumer: str, message_ids: Sequence[str]) -> set[str]:
        """Claim several message ids at once; returns those not handled before."""
        rows = await self.conn.fetch(
            "INSERT INTO inbox (consumer, message_id) SELECT $1, m FROM unnest($2::text[]) AS m "
            "ON CONFLICT DO NOTHING RETURNING message_id",
            consumer,
            list(message_ids),
        )
        return {r["message_id"] for r in rows}
