"""Schedules. The periodic sync: a tick every minute that starts seller_sync_job only when the interval in the settings
has passed since the last sync started, so changing `sync_interval_minutes` needs no code reload. And the daily
audit retention.

No `from __future__ import annotations` here: Dagster reads the resource annotations at definition time.
"""

import datetime as dt

import dagster as dg

from sync_pipeline.defs.jobs import seller_sync_job
from sync_pipeline.defs.resources import SyncDatabase
from sync_pipeline.defs.retention import audit_retention_job
from sync_pipeline.services.schedule import scheduled_sync_due

EVERY_MINUTE = "* * * * *"  # the finest cron grain; the interval itself is a setting, checked on each tick
WAITING_STATUSES = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]


def _utc(moment: dt.datetime) -> dt.datetime:
    # The audit log stores UTC with its zone; Dagster hands the tick's time in the schedule's zone (naive: UTC).
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dg.schedule(
    name="seller_sync_schedule",
    cron_schedule=EVERY_MINUTE,
    job=seller_sync_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    execution_timezone="UTC",
    description="Starts a full seller sync when `sync_interval_minutes` (a setting, read on every tick) have passed "
    "since the last sync started — from the UI, the CLI or this schedule. Skips, saying why, while a sync runs or "
    "waits in the queue, within the interval, or when `sync_paused` is true.",
)
def seller_sync_schedule(context: dg.ScheduleEvaluationContext, database: SyncDatabase):
    waiting = context.instance.get_runs_count(dg.RunsFilter(job_name=seller_sync_job.name, statuses=WAITING_STATUSES))
    if waiting:
        return dg.SkipReason(f"{waiting} seller_sync_job run(s) already waiting in the queue")
    due = scheduled_sync_due(database.open(), _utc(context.scheduled_execution_time))
    if not due.run:
        return dg.SkipReason(due.reason)
    context.log.info(f"starting a sync: {due.reason}")
    return dg.RunRequest(tags={"sync_pipeline/trigger": "seller_sync_schedule"})


# 03:30 in Japan, where the sheet is edited: the quietest hour for the seller database. Short batches keep it safe
# at any hour; this only keeps it out of the office's way.
audit_retention_schedule = dg.ScheduleDefinition(
    name="audit_retention_schedule",
    job=audit_retention_job,
    cron_schedule="30 3 * * *",
    execution_timezone="Asia/Tokyo",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every day: archive audit history older than retention_days.",
)

schedules: list[dg.ScheduleDefinition] = [seller_sync_schedule, audit_retention_schedule]
