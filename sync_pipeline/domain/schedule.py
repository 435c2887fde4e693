"""When the periodic sync is due (Requirement 10.5, DESIGN "Schedule"): a pure decision from the settings in force,
the last sync's start and whether one is running; the schedule only asks and maps the answer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class SyncActivity:
    """What the audit log says about syncs, as of `now` (naive UTC like every audit time)."""

    last_started_at: dt.datetime | None  # the most recent sync start (any face: schedule, UI, CLI), None if never
    running_sync_id: str | None = None  # a sync still running with a live heartbeat
    running_since: dt.datetime | None = None


@dataclass(frozen=True)
class SyncDue:
    """The schedule's verdict on one tick: start a sync or not, and why."""

    run: bool
    reason: str
    next_due_at: dt.datetime | None = None


def sync_due(now: dt.datetime, *, interval_minutes: int, paused: bool, activity: SyncActivity) -> SyncDue:
    """A sync is due when syncing is not paused, none is running, and `interval_minutes` have passed since the last
    one started (or none ever did). Each refusal says why, and when the next sync is due where that is known."""
    if paused:
        return SyncDue(False, "syncing is paused (setting sync_paused=true); set it to false to resume")
    if activity.running_sync_id is not None:
        since = f" since {activity.running_since:%Y-%m-%d %H:%M:%S} UTC" if activity.running_since else ""
        return SyncDue(False, f"a sync is running ({activity.running_sync_id}{since}); the next tick checks again")
    interval = dt.timedelta(minutes=interval_minutes)
    last = activity.last_started_at
    if last is None:
        return SyncDue(True, "no sync has ever started")
    due_at = last + interval
    if now < due_at:
        return SyncDue(
            False,
            f"the last sync started at {last:%Y-%m-%d %H:%M:%S} UTC, within sync_interval_minutes={interval_minutes}; "
            f"the next is due at {due_at:%Y-%m-%d %H:%M:%S} UTC",
            next_due_at=due_at,
        )
    return SyncDue(
        True,
        f"sync_interval_minutes={interval_minutes} have passed since the last sync started at "
        f"{last:%Y-%m-%d %H:%M:%S} UTC",
        next_due_at=due_at,
    )
