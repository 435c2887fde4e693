"""Every sensor of the project: the alert sensors (Requirement 3) and the failed-record retry (Requirement 7.4)."""

import dagster as dg

from sync_pipeline.defs.alert_sensors import alert_sensors
from sync_pipeline.defs.retry_sensors import retry_sensors

sensors: list[dg.SensorDefinition] = [*alert_sensors, *retry_sensors]
