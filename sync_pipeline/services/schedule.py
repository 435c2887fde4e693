"""Whether the periodic sync is due now: the settings in force and the audit log, read on every schedule tick."""

from __future__ import annotations

import datetime as dt

from sync_pipeline.domain.audit import SyncKind, SyncStatus
from sync_pipeline.domain.schedule import SyncActivity, SyncDue, sync_due
from sync_pipeline.services.database import Database

# Full syncs, whatever started them; a resync of chosen sellers does not reset the interval.
FULL_SYNC_KINDS = (SyncKind.SCHEDULED, SyncKind.MANUAL, SyncKind.RETRY)


def sync_activity(db: Database, now: dt.datetime, *, lease_seconds: int) -> SyncActivity:
    """The last full sync's start and the sync running now, from the audit log (so CLI syncs count).

    A row still 'running' whose heartbeat is older than the lock lease belongs to a sync that died; it does not block
    the schedule (the next sync closes it as abandoned).
    """
    with db.engine.connect() as conn:
        last = db.audit.latest(conn, kinds=FULL_SYNC_KINDS)
        running = db.audit.latest(conn, statuses=[SyncStatus.RUNNING])
    if running is not None:
        beat = running.get("heartbeat_at") or running["started_at"]
        if beat < now - dt.timedelta(seconds=lease_seconds):
            running = None
    return SyncActivity(
        last_started_at=last["started_at"] if last else None,
        running_sync_id=running["sync_id"] if running else None,
        running_since=running["started_at"] if running else None,
    )


def scheduled_sync_due(db: Database, now: dt.datetime) -> SyncDue:
    """The schedule's decision at `now` (naive UTC), with the interval and pause switch read afresh (P46)."""
    settings = db.settings()
    activity = sync_activity(db, now, lease_seconds=settings.lock_lease_seconds)
    return sync_due(
        now, interval_minutes=settings.sync_interval_minutes, paused=settings.sync_paused, activity=activity
    )
