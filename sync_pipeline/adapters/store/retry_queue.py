"""The failed-record retry queue (Requirement 7.4): rows of `sync_retry_queue`, one per seller that failed to write."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from sync_pipeline.adapters.store.reads import among
from sync_pipeline.adapters.store.tables import sync_retry_queue
from sync_pipeline.domain.retries import RetryState


@dataclass(frozen=True)
class QueuedRecord:
    """A seller whose write failed: `attempts` failed writes so far, the next retry due at `due_at`."""

    seller_number: str
    sync_id: str | None  # the sync whose write failed last
    attempts: int
    due_at: dt.datetime
    last_error: str | None
    created_at: dt.datetime

    @property
    def state(self) -> RetryState:
        return RetryState(attempts=self.attempts, due_at=self.due_at)


def _record(row: sa.RowMapping) -> QueuedRecord:
    return QueuedRecord(
        seller_number=row["seller_number"],
        sync_id=row["sync_id"],
        attempts=int(row["attempts"]),
        due_at=row["due_at"],
        last_error=row["last_error"],
        created_at=row["created_at"],
    )


class RetryQueueStore:
    """SQL for `sync_retry_queue`; every method takes the caller's connection (its transaction)."""

    def save_failures(
        self,
        conn: sa.Connection,
        failures: Mapping[str, str],
        states: Mapping[str, RetryState],
        *,
        sync_id: str,
        now: dt.datetime,
    ) -> list[QueuedRecord]:
        """Write each failed seller's state (`states`, from domain.retries) with its last error, queueing the new
        ones; returns the rows as they are now."""
        if not failures:
            return []
        known = {r.seller_number for r in self.get(conn, list(failures))}
        for key, error in sorted(failures.items()):
            state = states[key]
            values = {"sync_id": sync_id, "attempts": state.attempts, "due_at": state.due_at, "last_error": error}
            if key in known:
                conn.execute(sync_retry_queue.update().where(sync_retry_queue.c.seller_number == key).values(**values))
            else:
                conn.execute(sync_retry_queue.insert().values(seller_number=key, created_at=now, **values))
        return self.get(conn, list(failures))

    def get(self, conn: sa.Connection, keys: Collection[str]) -> list[QueuedRecord]:
        query = sa.select(sync_retry_queue).where(among(sync_retry_queue.c.seller_number, keys, conn.dialect.name))
        return sorted((_record(r) for r in conn.execute(query).mappings()), key=lambda r: r.seller_number)

    def all(self, conn: sa.Connection) -> list[QueuedRecord]:
        query = sa.select(sync_retry_queue).order_by(sync_retry_queue.c.due_at, sync_retry_queue.c.seller_number)
        return [_record(r) for r in conn.execute(query).mappings()]

    def due(self, conn: sa.Connection, *, now: dt.datetime, max_attempts: int) -> list[QueuedRecord]:
        """Records due for a retry: due now and with retries left (attempts counts the first failure too)."""
        query = (
            sa.select(sync_retry_queue)
            .where(sync_retry_queue.c.due_at <= now, sync_retry_queue.c.attempts <= max_attempts)
            .order_by(sync_retry_queue.c.due_at, sync_retry_queue.c.seller_number)
        )
        return [_record(r) for r in conn.execute(query).mappings()]

    def remove(self, conn: sa.Connection, keys: Collection[str]) -> None:
        conn.execute(sync_retry_queue.delete().where(among(sync_retry_queue.c.seller_number, keys, conn.dialect.name)))
