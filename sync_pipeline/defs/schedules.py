"""Schedules: when syncs run without a person (filled by the schedule issue)."""

import dagster as dg

schedules: list[dg.ScheduleDefinition] = []
