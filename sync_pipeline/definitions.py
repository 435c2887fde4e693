"""The project's one Definitions object: what `dagster dev`, `dagster definitions validate` and the CLI load."""

import dagster as dg

from sync_pipeline.defs.assets import seller_sheet, sellers_table
from sync_pipeline.defs.jobs import seller_sync_job
from sync_pipeline.defs.recovery import seller_gap_resync, seller_resync_job
from sync_pipeline.defs.resources import SellerSheet, SyncDatabase
from sync_pipeline.defs.schedules import schedules
from sync_pipeline.defs.settings import update_sync_settings_job

defs = dg.Definitions(
    assets=[seller_sheet, sellers_table, seller_gap_resync],
    jobs=[seller_sync_job, seller_resync_job, update_sync_settings_job],
    schedules=schedules,
    resources={"database": SyncDatabase(), "sheet": SellerSheet()},
)
