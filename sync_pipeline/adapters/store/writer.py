"""Writing a sync's change set in chunks: each chunk one transaction with its record logs, under the sync lock.

A chunk whose connection is lost is retried on a fresh connection (Requirement 7.2); a chunk the database refuses
is retried row by row so that the good rows are still written and each bad one is named with the database's message.
Before each chunk the writer checks it still holds the sync lock, taking it back when the lock's own session was
lost and nobody else took it. Each recovery action is logged with the rule `recovery:<action>` (P31).
Database failures are classified here (lost connection = transient, anything else = terminal), so only the
transient ones are retried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from sync_pipeline.adapters.retry import retry_call
from sync_pipeline.adapters.sheets.base import RetryEvent
from sync_pipeline.adapters.store import bulk
from sync_pipeline.adapters.store.audit import AuditStore
from sync_pipeline.adapters.store.lock import SyncLock, SyncLockLostError
from sync_pipeline.adapters.store.sellers import SellerStore
from sync_pipeline.domain.audit import ErrorLog, RecordAction, RecordLog, chunk_record_logs
from sync_pipeline.domain.clock import Clock
from sync_pipeline.domain.errors import ErrorCategory, SyncError
from sync_pipeline.domain.recovery import RecoveryAction

log = logging.getLogger(__name__)

ChunkListener = Callable[[int], None]  # rows of the change set handled so far
ChunkResult = tuple[set[str], dict[str, str], int]  # sellers written, sellers refused (-> message), rows handled


@dataclass
class WriteOutcome:
    """What the writer did: the sellers written and those the database refused (seller number -> its message)."""

    written: set[str] = field(default_factory=set)
    failures: dict[str, str] = field(default_factory=dict)


@dataclass
class ChunkWriter:
    """Writes one sync's planned changes, logged under `sync_id`, under `lock` (the sync's own, or for a resync the
    lock of the sync it belongs to)."""

    engine: sa.Engine
    clock: Clock
    lock: SyncLock
    sync_id: str
    sellers: SellerStore = field(default_factory=SellerStore)
    audit: AuditStore = field(default_factory=AuditStore)
    sleep: Callable[[float], None] = time.sleep
    workers: int = 2  # chunks in flight at once on Postgres (SQLite has one writer: always 1)
    owned_attributes: tuple[str, ...] = ()  # the attribute keys the sheet owns (SellerStore.owned_attributes)
    _lock_check: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def write(self, to_write: pd.DataFrame, chunk_size: int, on_chunk: ChunkListener | None = None) -> WriteOutcome:
        """Write `to_write` chunk by chunk; on Postgres two chunks are in flight at once, each on its own connection
        and in its own transaction, so the server works on one while the next is prepared and sent.

        The chunks hold disjoint sellers, so the two transactions never wait for each other. When a chunk fails for
        good, or the run is cancelled, no new chunk starts and the one still in flight finishes (commits or rolls
        back whole) before the error goes on: a chunk is never left half-written.
        """
        outcome = WriteOutcome()
        done = 0

        def record(result: ChunkResult) -> None:
            nonlocal done
            written, failed, rows = result
            outcome.written |= written
            outcome.failures.update(failed)
            done += rows
            if on_chunk is not None:
                on_chunk(done)

        workers = self.workers if self.engine.dialect.name == "postgresql" else 1
        if workers <= 1:  # SQLite: one writer at a time, in this thread
            for chunk in _chunks(to_write, chunk_size):
                record(self._sized_chunk(chunk))
            return outcome
        # Results are taken in the chunks' order, so progress moves chunk by chunk as the sheet is ordered.
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chunk-writer") as pool:
            pending: deque[Future[ChunkResult]] = deque()
            try:
                for chunk in _chunks(to_write, chunk_size):
                    if len(pending) >= workers:
                        record(pending.popleft().result())
                    pending.append(pool.submit(self._sized_chunk, chunk))
                while pending:
                    record(pending.popleft().result())
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        return outcome

    def _sized_chunk(self, chunk: pd.DataFrame) -> ChunkResult:
        written, failed = self._chunk(chunk)
        return written, failed, len(chunk)

    def _chunk(self, chunk: pd.DataFrame) -> tuple[set[str], dict[str, str]]:
        """One chunk in one transaction; when the chunk fails, retry its rows one by one to isolate the bad ones."""
        try:
            return self._write_reconnecting(chunk), {}
        except sa.exc.DBAPIError as exc:
            if len(chunk) == 1:
                refused = {chunk["seller_number"].iloc[0]: db_message(exc)}
                self._log_failures(chunk, refused)
                return set(), refused
            log.warning("chunk of %d rows failed (%s); retrying them one by one", len(chunk), db_message(exc))
            self._log_recovery(
                RecoveryAction.CHUNK_RETRY,
                f"a chunk of {len(chunk)} seller(s) was refused by the database ({db_message(exc)}); "
                "retried row by row so that the good rows are written",
            )
        written: set[str] = set()
        failures: dict[str, str] = {}
        for i in range(len(chunk)):
            row = chunk.iloc[[i]]
            try:
                written |= self._write_reconnecting(row)
            except sa.exc.DBAPIError as exc:
                failures[row["seller_number"].iloc[0]] = db_message(exc)
        self._log_failures(chunk, failures)
        return written, failures

    def _log_failures(self, chunk: pd.DataFrame, failures: dict[str, str]) -> None:
        if not failures:
            return
        failed = chunk[chunk["seller_number"].isin(failures)]
        pairs = list(zip(failed["seller_number"], failed["sheet_row"], strict=True))
        now = self.clock.now()
        with self.engine.begin() as conn:
            self.audit.log_records(
                conn,
                self.sync_id,
                [RecordLog(key, RecordAction.FAILED, int(row), {"error": failures[key]}) for key, row in pairs],
                now,
            )
            self.audit.log_errors(
                conn,
                self.sync_id,
                [
                    ErrorLog(
                        ErrorCategory.DATABASE,
                        f"seller {key} could not be written: {failures[key]}",
                        rule="write_failed",
                        seller_number=key,
                        sheet_row=int(row),
                    )
                    for key, row in pairs
                ],
                now,
            )

    def _write_reconnecting(self, chunk: pd.DataFrame) -> set[str]:
        """Requirement 7.2: when the connection is lost mid-chunk, the pool opens a new one and the chunk's transaction
        (rolled back with the old connection) is retried, with backoff, each retry logged as a recovery action."""

        def on_retry(event: RetryEvent) -> None:
            try:
                self._log_recovery(
                    RecoveryAction.RECONNECT,
                    f"reconnected and retried the {event.operation} after {event.reason} (retry {event.attempt})",
                )
            except sa.exc.SQLAlchemyError:  # the database is still unreachable: the retry itself will tell
                log.warning("could not log the reconnection of sync %s", self.sync_id)

        return retry_call(
            lambda: self._write(chunk),
            operation=f"write of {len(chunk)} seller(s)",
            is_transient=is_lost_connection,
            describe=describe_db_failure,
            on_retry=on_retry,
            sleep=self.sleep,
        )

    def _write(self, chunk: pd.DataFrame) -> set[str]:
        try:
            with self._lock_check:  # the lock's own session is shared by the chunks in flight
                reacquired = self.lock.ensure_held()
            if reacquired:
                self._log_recovery(
                    RecoveryAction.LOCK_REACQUIRED,
                    "the sync lock's own database session was lost; the lock was free and was taken back before "
                    "writing more",
                )
        except SyncLockLostError as exc:
            raise SyncError(ErrorCategory.CONFLICT, str(exc)) from exc
        now = self.clock.now()
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # sellers, properties and record logs in one statement
                return bulk.write_chunk(conn, chunk, now, self.sync_id, self.owned_attributes)
            written = self.sellers.apply_chunk(conn, chunk, now, self.owned_attributes)
            self.audit.log_records(conn, self.sync_id, chunk_record_logs(chunk, written), now)
        return written

    def _log_recovery(self, action: RecoveryAction, message: str) -> None:
        with self.engine.begin() as conn:
            self.audit.log_errors(
                conn,
                self.sync_id,
                [ErrorLog(ErrorCategory.DATABASE, f"recovery: {message}", rule=action.rule)],
                self.clock.now(),
            )


def _chunks(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), size):
        yield frame.iloc[start : start + size]


def is_lost_connection(exc: BaseException) -> bool:
    """A database error that means the connection is gone (SQLAlchemy invalidated it), so a retry may succeed."""
    return isinstance(exc, sa.exc.DBAPIError) and bool(exc.connection_invalidated)


def describe_db_failure(exc: BaseException) -> str:
    return f"lost database connection ({db_message(exc)})" if isinstance(exc, sa.exc.DBAPIError) else repr(exc)


def db_message(exc: sa.exc.DBAPIError) -> str:
    """The database's own first line (e.g. the trigger's RAISE text), without SQLAlchemy's wrapping."""
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
