"""Sensors: what watches the syncs between runs (filled by the alert and recovery issues)."""

import dagster as dg

from sync_pipeline.defs.health import sync_health_after_failure_sensor

sensors: list[dg.SensorDefinition] = [sync_health_after_failure_sensor]
