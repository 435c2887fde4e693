"""Failed records retried (Requirement 7.4): a seller the database refused is queued, retried later, then alerted.

- `queue_failures` — when the database refuses a record (a constraint, a trigger, a value), the sync queues it:
  due again `retry_delay_minutes` later. `attempts` counts the first failure and each retry made while one was due
  (domain/retries.py): a sync that fails on the record before then — the schedule, the automatic gap resync — is not
  a retry.
- `due_retries` — what `failed_record_retry_sensor` resyncs: due now and with retries left.
- `record_outcome` — at the end of every sync: a queued seller that sync wrote leaves the queue, and one that is no
  longer a valid sheet row is dropped (nothing to retry it from).
After the first failure and `retry_max_attempts` retries have all failed, one critical `retry_exhausted` alert names
each seller and its last error; the seller stays queued (not due) until a sync writes it. Every step is a recovery
action in the audit log (rule `recovery:record_retry`, P31).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence

import sqlalchemy as sa

from sync_pipeline.adapters.store.retry_queue import QueuedRecord, RetryQueueStore
from sync_pipeline.domain.alerts import Alert, AlertType, Severity
from sync_pipeline.domain.audit import ErrorLog
from sync_pipeline.domain.recovery import RecoveryAction
from sync_pipeline.domain.retries import FailedWrite, after_failed_write
from sync_pipeline.services.alerts import raise_alert
from sync_pipeline.services.database import Database
from sync_pipeline.services.recovery import recovery_event

__all__ = ["QueuedRecord", "due_retries", "pending_retries", "queue_failures", "record_outcome"]

_store = RetryQueueStore()
ALERT_SAMPLE = 20  # sellers quoted one by one in the alert message


def queue_failures(db: Database, sync_id: str, failures: Mapping[str, str]) -> list[QueuedRecord]:
    """Queue each seller whose write failed, with the database's message, counting the failure when it was the first
    or a retry made while one was due (domain/retries.py); alert the sellers whose last retry this was.

    Returns the queue rows as they are now. Sellers whose retries are used up by this failure get one critical
    `retry_exhausted` alert (per call) naming each with its last error.
    """
    if not failures:
        return []
    settings = db.settings()
    now = db.clock.now()
    limit = settings.retry_max_attempts
    with db.engine.begin() as conn:
        before = {r.seller_number: r.state for r in _store.get(conn, list(failures))}
        outcomes = {
            key: after_failed_write(
                before.get(key), now, delay_minutes=settings.retry_delay_minutes, max_attempts=limit
            )
            for key in failures
        }
        rows = _store.save_failures(conn, failures, {k: o.state for k, o in outcomes.items()}, sync_id=sync_id, now=now)
        events = [_failure_event(row, outcomes[row.seller_number], limit) for row in rows]
        exhausted = [row for row in rows if outcomes[row.seller_number].exhausted_now]
        db.audit.log_errors(conn, sync_id, events, now)
        if exhausted:
            _alert_exhausted(conn, sync_id, exhausted, limit=limit, now=now)
    return rows


def _failure_event(row: QueuedRecord, outcome: FailedWrite, limit: int) -> ErrorLog:
    if outcome.exhausted_now:
        text = (
            f"seller {row.seller_number} failed on its last retry ({row.attempts} failed writes, "
            f"retry_max_attempts={limit}): {row.last_error}; no more automatic retries"
        )
    elif outcome.counted:
        text = (
            f"seller {row.seller_number} queued for retry {row.attempts} of {limit} at "
            f"{row.due_at:%Y-%m-%d %H:%M:%S} UTC (failed write {row.attempts}: {row.last_error})"
        )
    elif row.state.is_exhausted(limit):
        text = (
            f"seller {row.seller_number} failed again ({row.last_error}); it is out of automatic retries "
            f"(retry_max_attempts={limit}) and waits for a fix"
        )
    else:
        text = (
            f"seller {row.seller_number} failed again before its retry was due ({row.last_error}); not counted, "
            f"retry {row.attempts} of {limit} stays due at {row.due_at:%Y-%m-%d %H:%M:%S} UTC"
        )
    return recovery_event(RecoveryAction.RECORD_RETRY, text, seller_number=row.seller_number)


def _alert_exhausted(
    conn: sa.Connection, sync_id: str, rows: Sequence[QueuedRecord], *, limit: int, now: dt.datetime
) -> Alert:
    shown = rows[:ALERT_SAMPLE]
    more = len(rows) - len(shown)
    message = (
        f"{len(rows)} seller(s) could not be written after {limit} automatic retries: "
        + "; ".join(f"{r.seller_number} (last error: {r.last_error})" for r in shown)
        + (f"; and {more} more" if more else "")
        + ". Fix the cause in the database (constraint, trigger, value) or the sheet, then run seller_resync_job "
        "for them; they leave the retry queue once written."
    )
    return raise_alert(
        conn,
        AlertType.RETRY_EXHAUSTED,
        Severity.CRITICAL,
        message,
        now=now,
        sync_id=sync_id,
        detail={
            "seller_numbers": [r.seller_number for r in shown],
            "count": len(rows),
            "last_errors": {r.seller_number: r.last_error for r in shown},
            "attempts": {r.seller_number: r.attempts for r in shown},
        },
    )


def due_retries(db: Database, now: dt.datetime | None = None) -> list[QueuedRecord]:
    """Queued sellers whose retry is due at `now` (default: the database's clock) and that have retries left."""
    settings = db.settings()
    with db.engine.connect() as conn:
        return _store.due(conn, now=now or db.clock.now(), max_attempts=settings.retry_max_attempts)


def pending_retries(db: Database) -> list[QueuedRecord]:
    """Everything in the queue, soonest due first (exhausted sellers included)."""
    with db.engine.connect() as conn:
        return _store.all(conn)


def record_outcome(
    db: Database, sync_id: str, *, written: Collection[str], valid_keys: Collection[str] | None = None
) -> frozenset[str]:
    """At the end of a sync: queued sellers it wrote leave the queue; with `valid_keys` (the whole sheet's valid
    keys), queued sellers that are no longer valid sheet rows are dropped. Returns the sellers that left the queue."""
    with db.engine.begin() as conn:
        queued = _store.all(conn)
        if not queued:
            return frozenset()
        written_set = set(written)
        valid = None if valid_keys is None else set(valid_keys)
        done = [r for r in queued if r.seller_number in written_set]
        gone = [] if valid is None else [r for r in queued if r.seller_number not in written_set | valid]
        events = [
            recovery_event(
                RecoveryAction.RECORD_RETRY,
                f"seller {r.seller_number} written after {r.attempts} failed write(s); it left the retry queue",
                seller_number=r.seller_number,
            )
            for r in done
        ] + [
            recovery_event(
                RecoveryAction.RECORD_RETRY,
                f"seller {r.seller_number} is no longer a valid row of the sheet; dropped from the retry queue "
                f"(last error: {r.last_error})",
                seller_number=r.seller_number,
            )
            for r in gone
        ]
        left = {r.seller_number for r in [*done, *gone]}
        _store.remove(conn, left)
        db.audit.log_errors(conn, sync_id, events, db.clock.now())
    return frozenset(left)
