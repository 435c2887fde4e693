"""The project's one Definitions object: what `dagster dev`, `dagster definitions validate` and the CLI load.

Hand-listed rather than autoloaded, so that reading this file tells every asset, job, schedule and sensor there is.
"""

import dagster as dg

from sync_pipeline.defs.assets import seller_sync
from sync_pipeline.defs.jobs import seller_sync_job
from sync_pipeline.defs.recovery import seller_resync_job
from sync_pipeline.defs.resources import resources_from_env
from sync_pipeline.defs.schedules import schedules
from sync_pipeline.defs.sensors import sensors

defs = dg.Definitions(
    assets=[seller_sync],
    jobs=[seller_sync_job, seller_resync_job],
    schedules=schedules,
    sensors=sensors,
    resources=resources_from_env(),
)
