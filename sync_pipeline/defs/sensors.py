"""Sensors: what watches the syncs between runs (filled by the alert and recovery issues)."""

import dagster as dg

sensors: list[dg.SensorDefinition] = []
