"""Crash recovery for the sync lifecycle: take the lock that dies with its holder, close what dead holders left running,
and log every recovery action as an audit event (Requirements 2.4, 7.5; P9, P31, P39).

`services.lifecycle.SyncRun` calls, once per sync (a resync shares its parent's lock and calls neither):
    lock = take_sync_lock(db, sync_id)          # in __enter__; refuses (SyncRefusedError) while a live sync holds it
    close_abandoned_syncs(db, sync_id)          # right after: every other 'running' entry is now abandoned
    ... the sync; the chunk writer calls lock.ensure_held() before each chunk ...
    lock.release()                              # in __exit__; a crash releases it anyway
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sync_pipeline.adapters.store.lock import SyncLock, current_holder
from sync_pipeline.domain.audit import ErrorLog, SyncStatus
from sync_pipeline.domain.errors import ErrorCategory, SyncRefusedError
from sync_pipeline.domain.recovery import RecoveryAction
from sync_pipeline.services.database import Database

log = logging.getLogger(__name__)


def log_recovery(
    db: Database,
    sync_id: str | None,
    action: RecoveryAction,
    message: str,
    *,
    category: ErrorCategory = ErrorCategory.DATABASE,
    seller_number: str | None = None,
) -> None:
    """Write one recovery action to the sync's error log (rule `recovery:<action>`), in a transaction of its own."""
    with db.engine.begin() as conn:
        db.audit.log_errors(conn, sync_id, [recovery_event(action, message, category, seller_number)], db.clock.now())
    log.info("recovery %s (sync %s): %s", action.value, sync_id, message)


def recovery_event(
    action: RecoveryAction,
    message: str,
    category: ErrorCategory = ErrorCategory.DATABASE,
    seller_number: str | None = None,
) -> ErrorLog:
    """A recovery action as an error-log entry, for callers that write it inside their own transaction."""
    return ErrorLog(category, f"recovery: {message}", rule=action.rule, seller_number=seller_number)


def take_sync_lock(db: Database, sync_id: str) -> SyncLock:
    """The sync lock for sync `sync_id`, held until `.release()` (or the end of a `with` block, or the process).

    Raises SyncRefusedError, naming the holder, while another live sync holds it. Taking over the label of a holder
    that died holding the lock is logged as a recovery action of this sync.
    """
    lock = SyncLock(db.engine)
    got = lock.try_acquire(sync_id, now=db.clock.now())
    if not got:
        other = current_holder(db.engine)
        who = "another sync" if other is None else f"sync {other.holder} (since {other.acquired_at:%Y-%m-%d %H:%M:%S})"
        raise SyncRefusedError(
            ErrorCategory.CONFLICT,
            f"{who} holds the sync lock and is applying changes; this sync was refused before writing anything. "
            "It will run again on the next schedule.",
        )
    if got.taken_over is not None:
        dead = got.taken_over
        try:
            log_recovery(
                db,
                sync_id,
                RecoveryAction.LOCK_TAKEOVER,
                f"took over the sync lock from sync {dead.holder} (holder since {dead.acquired_at:%Y-%m-%d %H:%M:%S} "
                "UTC), which died without releasing it; the database or the operating system had already released "
                "the lock itself",
            )
        except BaseException:
            lock.release()
            raise
    return lock


def close_abandoned_syncs(db: Database, sync_id: str, *, keep: Collection[str] = ()) -> Sequence[str]:
    """Close every other 'running' audit entry as abandoned; call only while holding the sync lock.

    The lock dies with its holder, so while `sync_id` holds it no other sync is alive: an entry still 'running' was
    left by a process that was killed or lost its database. `keep` names entries of this same sync that must stay
    open (a parent sync whose resync is running under the same lock). Each entry closed is a recovery action logged
    on `sync_id`; returns the ids closed.
    """
    now = db.clock.now()
    reason = (
        f"abandoned: still 'running' when sync {sync_id} took the sync lock at {now:%Y-%m-%d %H:%M:%S} UTC; the "
        "process that ran it no longer held the lock (killed, crashed, or lost its database connection)"
    )
    with db.engine.begin() as conn:
        closed = db.audit.close_abandoned(conn, keep={sync_id, *keep}, now=now, reason=reason)
        db.audit.log_errors(
            conn,
            sync_id,
            [
                recovery_event(
                    RecoveryAction.ABANDONED_CLOSED,
                    f"closed sync {row['sync_id']} (started {row['started_at']:%Y-%m-%d %H:%M:%S} UTC, "
                    f"{_progress(row)}) as {SyncStatus.ABANDONED.value}: its holder no longer held the lock",
                )
                for row in closed
            ],
            now,
        )
    for row in closed:
        log.warning("closed abandoned sync %s", row["sync_id"])
    return [row["sync_id"] for row in closed]


def _progress(row: Mapping[str, Any]) -> str:
    progress = row.get("progress") or {}
    if progress.get("phase"):
        return f"last seen in phase {progress['phase']}"
    return "no progress recorded"
