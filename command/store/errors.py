"""Shell: the store's one error tree (drawn in :mod:`command.store`), and which driver
errors are worth a retry. Driver errors are translated here, by class and SQLSTATE."""

from __future__ import annotations

import asyncpg

_TRANSIENT_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03", "53300", "08000", "08003",
                        "08006", "08001", "08004"}


class StoreError(Exception):
    """Base of the store's errors."""

    retryable = False


class ConcurrencyError(StoreError):
    """``stream_id`` was not at ``expected`` when we appended; reload and retry."""

    retryable = True

    def __init__(self, stream_id: str, expected: int, actual: int | None) -> None:
        super().__init__(f"stream {stream_id} is at version {actual}, expected {expected}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class StoreUnavailable(StoreError):
    """The database is unreachable or aborted the transaction; retry later."""

    retryable = True


class DataRejected(StoreError):
    """PostgreSQL refused the data itself (SQLSTATE class 22: a character it cannot store,
    a value out of range). Retrying cannot help: ``permanent`` tells the consumer loop to
    dead-letter the message at once with the reason (command.bus)."""

    retryable = False
    permanent = True

    def __init__(self, sqlstate: str | None, detail: str) -> None:
        super().__init__(f"the database refused the content ({sqlstate}): {detail}")
        self.sqlstate = sqlstate


class MigrationRefused(StoreError):
    """Migrations are pending and this role may not apply them: run ``ecc migrate``
    (the owner role's URL; ``DATABASE_OWNER_URL`` for an external server)."""

    def __init__(self, pending: list[str], role: str) -> None:
        super().__init__(
            f"migrations {pending} are pending and role {role!r} may not apply them: run "
            "`ecc migrate` (it connects as the schema's owner: DATABASE_OWNER_URL for an "
            "external server), then start again")
        self.pending = pending
        self.role = role



def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (OSError, asyncpg.InterfaceError, TimeoutError)):
        return True
    if isinstance(exc, asyncpg.PostgresConnectionError):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(exc, asyncpg.PostgresError) and sqlstate in _TRANSIENT_SQLSTATES

