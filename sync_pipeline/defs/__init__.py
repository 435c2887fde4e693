"""Dagster face of the sync: resources, assets and checks, jobs (schedules and sensors join them here)."""
