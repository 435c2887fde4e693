"""Whether the periodic sync is due now: the settings in force and the audit log, read on every schedule tick."""

from __future__ import annotations

import datetime as dt

from sync_pipeline.adapters.store.lock import current_holder
from sync_pipeline.domain.audit import SyncKind, SyncStatus
from sync_pipeline.domain.schedule import SyncActivity, SyncDue, sync_due
from sync_pipeline.services.database import Database

# Full syncs, whatever started them; a resync of chosen sellers does not reset the interval.
FULL_SYNC_KINDS = (SyncKind.SCHEDULED, SyncKind.MANUAL, SyncKind.RETRY)


def sync_activity(db: Database) -> SyncActivity:
    """The last full sync's start and the sync running now, from the audit log (so CLI syncs count).

    A row still 'running' while nobody holds the sync lock belongs to a sync that died (the lock dies with its
    holder); it does not block the schedule, and the next sync closes it as abandoned.
    """
    with db.engine.connect() as conn:
        last = db.audit.latest(conn, kinds=FULL_SYNC_KINDS)
        running = db.audit.latest(conn, statuses=[SyncStatus.RUNNING])
    if running is not None and current_holder(db.engine) is None:
        running = None
    return SyncActivity(
        last_started_at=last["started_at"] if last else None,
        running_sync_id=running["sync_id"] if running else None,
        running_since=running["started_at"] if running else None,
    )


def scheduled_sync_due(db: Database, now: dt.datetime) -> SyncDue:
    """The schedule's decision at `now` (UTC), with the interval and pause switch read afresh (P46)."""
    settings = db.settings()
    activity = sync_activity(db)
    return sync_due(
        now, interval_minutes=settings.sync_interval_minutes, paused=settings.sync_paused, activity=activity
    )
