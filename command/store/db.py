"""Shell: the two doors of the store: :class:`Store`, the event store on a connection
pool, and :class:`Tx`, one open transaction. Each is assembled from the parts the
modules of this package hold (events, inbox, outbox, projections, audit, tokens, ...),
so every statement lives beside the table it touches."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg

from command.model import RecordedEvent
from command.store.audit import AuditStore, AuditTx
from command.store.connection import Conn, _init_connection, _redact, _reset_connection
from command.store.dispatch import DispatchReads, DispatchTx
from command.store.errors import (
    ConcurrencyError,
    DataRejected,
    StoreError,
    StoreUnavailable,
    _is_transient,
)
from command.store.events import EventReads, EventsTx
from command.store.figures import FigureReads
from command.store.inbox import InboxTx
from command.store.migrate import migrate
from command.store.outbox import OutboxTx
from command.store.projections import ProjectionReads, ProjectionsTx
from command.store.session import SessionStore
from command.store.timers import TimersTx
from command.store.tokens import TokenStore, TokensTx
from command.store.tracks import TrackStore
from command.subjects import Namespace


@dataclass
class Tx(InboxTx, EventsTx, OutboxTx, ProjectionsTx, TimersTx, DispatchTx, AuditTx, TokensTx):
    """One open transaction. Obtain it from :meth:`Store.transaction`."""

    conn: Conn
    ns: Namespace
    recorded: list[RecordedEvent] = field(default_factory=list)
    _appended: bool = False


class Store(EventReads, ProjectionReads, DispatchReads, FigureReads, TokenStore, AuditStore,
            SessionStore, TrackStore):
    """The event store on a connection pool. Open with :meth:`connect`."""

    def __init__(self, pool: asyncpg.Pool, ns: Namespace, url: str) -> None:
        self.pool = pool
        self.ns = ns
        self.url = url

    @classmethod
    async def connect(
        cls, url: str, ns: Namespace | None = None, *, min_size: int = 2, max_size: int = 10
    ) -> Store:
        try:
            pool = await asyncpg.create_pool(
                url, min_size=min_size, max_size=max_size, init=_init_connection,
                reset=_reset_connection,
            )
        except Exception as exc:
            if _is_transient(exc):
                raise StoreUnavailable(f"cannot reach PostgreSQL at {_redact(url)}: {exc}") from exc
            raise
        assert pool is not None
        return cls(pool, ns or Namespace(), url)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A transaction that commits when the block ends without error.

        Translates driver errors: transient ones to :class:`StoreUnavailable`,
        constraint races on streams to :class:`ConcurrencyError`.
        """
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                yield Tx(conn, self.ns)
        except StoreError:
            raise
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name in ("events_stream_version_key", "streams_pkey"):
                raise ConcurrencyError(str(exc.detail or ""), -1, None) from exc
            raise
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
            # Two writers crossed: like a moved stream, the cure is to run it again.
            raise ConcurrencyError("(lock conflict)", -1, None) from exc
        except asyncpg.DataError as exc:
            raise DataRejected(getattr(exc, "sqlstate", None), str(exc)) from exc
        except UnicodeError as exc:  # text the driver cannot encode at all
            raise DataRejected(None, str(exc)) from exc
        except Exception as exc:
            if _is_transient(exc):
                raise StoreUnavailable(str(exc) or type(exc).__name__) from exc
            raise

    # --- schema -------------------------------------------------------------

    async def migrate(self) -> list[str]:
        """Apply pending migrations in order; returns the names applied."""
        return await migrate(self.pool)
