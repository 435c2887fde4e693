"""Every sensor of the project: alerts (Requirement 3), the failed-record retry (7.4), health after a failed sync."""

import dagster as dg

from sync_pipeline.defs.alert_sensors import alert_sensors
from sync_pipeline.defs.health import sync_health_after_failure_sensor
from sync_pipeline.defs.retry_sensors import retry_sensors

sensors: list[dg.SensorDefinition] = [*alert_sensors, *retry_sensors, sync_health_after_failure_sensor]
