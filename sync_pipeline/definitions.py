"""The project's one Definitions object: what `dagster dev`, `dagster definitions validate` and the CLI load."""

import dagster as dg

from sync_pipeline.defs.assets import seller_sheet, sellers_table
from sync_pipeline.defs.health import sync_health, sync_health_after_failure_sensor, sync_health_job
from sync_pipeline.defs.jobs import seller_sync_job
from sync_pipeline.defs.recovery import seller_gap_resync, seller_resync_job
from sync_pipeline.defs.resources import SellerSheet, SyncDatabase
from sync_pipeline.defs.retention import audit_retention_job
from sync_pipeline.defs.schedules import schedules

defs = dg.Definitions(
    assets=[seller_sheet, sellers_table, seller_gap_resync, sync_health],
    jobs=[seller_sync_job, seller_resync_job, sync_health_job, audit_retention_job],
    schedules=schedules,
    sensors=[sync_health_after_failure_sensor],
    resources={"database": SyncDatabase(), "sheet": SellerSheet()},
)
