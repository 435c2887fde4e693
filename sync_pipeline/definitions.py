"""The project's one Definitions object: what `dagster dev`, `dagster definitions validate` and the CLI load.

Hand-listed rather than autoloaded, so that reading this file tells every asset, job, schedule and sensor there is.
"""

import dagster as dg

from sync_pipeline.defs.alert_jobs import acknowledge_alerts
from sync_pipeline.defs.assets import seller_sync
from sync_pipeline.defs.health import sync_health, sync_health_job
from sync_pipeline.defs.jobs import seller_sync_job
from sync_pipeline.defs.recovery import seller_resync_job
from sync_pipeline.defs.resources import resources_from_env
from sync_pipeline.defs.retention import audit_retention_job
from sync_pipeline.defs.schedules import schedules
from sync_pipeline.defs.sensors import sensors
from sync_pipeline.defs.settings import update_sync_settings_job

defs = dg.Definitions(
    assets=[seller_sync, sync_health],
    jobs=[
        seller_sync_job,
        seller_resync_job,
        update_sync_settings_job,
        acknowledge_alerts,
        sync_health_job,
        audit_retention_job,
    ],
    schedules=schedules,
    sensors=sensors,
    resources=resources_from_env(),
)
