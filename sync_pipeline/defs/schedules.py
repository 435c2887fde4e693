"""Schedules: when syncs run without a person (filled by the schedule issue), and the daily audit retention."""

import dagster as dg

from sync_pipeline.defs.retention import audit_retention_job

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

schedules: list[dg.ScheduleDefinition] = [audit_retention_schedule]
