"""Admin job for the Dagster UI's launchpad: acknowledge alerts (the UI face of `sync-pipeline alerts ack`)."""

import dagster as dg
from pydantic import Field

from sync_pipeline.defs.resources import SyncDatabase
from sync_pipeline.services.alerts import acknowledge


class AcknowledgeAlertsConfig(dg.Config):
    """Launchpad config, e.g. `ops: {acknowledge: {config: {alert_ids: [3, 4], acknowledged_by: hanako}}}`."""

    alert_ids: list[int] = Field(
        description="Ids of the alerts to acknowledge, as `sync-pipeline alerts list` or the alert e-mail shows them."
    )
    acknowledged_by: str = Field(
        default="dagster-ui", description="Who acknowledges them; stored with each alert (acknowledged_by)."
    )


@dg.op(
    name="acknowledge",
    description="Acknowledge the given alerts; ids already acknowledged or unknown are reported, not an error.",
    out=dg.Out(int, description="How many alerts were acknowledged now."),
)
def acknowledge_op(context: dg.OpExecutionContext, config: AcknowledgeAlertsConfig, database: SyncDatabase):
    done = acknowledge(database.open(), config.alert_ids, by=config.acknowledged_by)
    missing = sorted(set(config.alert_ids) - set(done))
    context.log.info(f"acknowledged alerts {done or 'none'}")
    if missing:
        context.log.warning(f"no unacknowledged alert with id {missing}")
    metadata = {"acknowledged": dg.MetadataValue.json(done), "not_found": dg.MetadataValue.json(missing)}
    return dg.Output(len(done), metadata=metadata)


@dg.job(
    name="acknowledge_alerts",
    description="Acknowledge alerts by id (launchpad: ops.acknowledge.config.alert_ids). Acknowledged alerts leave "
    "`sync-pipeline alerts list` and are no longer owed an e-mail.",
)
def acknowledge_alerts() -> None:
    acknowledge_op()
