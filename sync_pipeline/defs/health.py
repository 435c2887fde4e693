"""The health dashboard in the Dagster UI: the `sync_health` asset, whose numeric metadata the UI plots over time.

Materialised after every sync: it is part of `seller_sync_job` (downstream of `sellers_table`, so it runs at the end of
the same run, with no daemon needed — also for `sync-pipeline sync`), and `sync_health_after_failure_sensor` runs it
after a sync run that failed, when the in-run step was skipped and the dashboard matters most.

No `from __future__ import annotations` here: Dagster reads the annotations at definition time.
"""

from typing import Any

import dagster as dg

from sync_pipeline.defs.jobs import seller_sync_job
from sync_pipeline.defs.recovery import seller_resync_job
from sync_pipeline.defs.resources import SyncDatabase
from sync_pipeline.services.health import HealthFigures, health

HEALTH_GROUP = "sync_health"
SYNC_HEALTH = dg.AssetKey("sync_health")


def _cell(value: object) -> str:
    return "" if value is None else str(value).replace("|", "/").replace("\n", " ")


def recent_syncs_markdown(figures: HealthFigures) -> str:
    if not figures.recent_syncs:
        return "No syncs yet."
    lines = [
        f"| started ({figures.timezone}) | kind | status | seconds | rows/s | inserted | updated | rejected | gaps "
        "| sync |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in figures.recent_syncs:
        duration = "" if s.duration_s is None else f"{s.duration_s:.1f}"
        rate = "" if s.rows_per_s is None else f"{s.rows_per_s:.0f}"
        lines.append(
            f"| {figures.local(s.started_at)} | {s.kind} | {s.status} | {duration} | {rate} | {s.inserted} | "
            f"{s.updated} | {s.rejected} | {_cell(s.gaps_found)} | `{s.sync_id}` |"
        )
    return "\n".join(lines)


def open_alerts_markdown(figures: HealthFigures) -> str:
    if not figures.open_alert_list:
        return "No open alerts."
    lines = [f"| id | raised ({figures.timezone}) | severity | type | message |", "|---:|---|---|---|---|"]
    for a in figures.open_alert_list:
        lines.append(
            f"| {a.id} | {figures.local(a.created_at)} | {a.severity} | {a.alert_type} | {_cell(a.message)[:200]} |"
        )
    if figures.open_alerts > len(figures.open_alert_list):
        lines.append(f"\n…and {figures.open_alerts - len(figures.open_alert_list)} more (`sync-pipeline alerts`).")
    return "\n".join(lines)


def health_metadata(figures: HealthFigures) -> dict[str, Any]:
    """Numbers the UI plots (a figure with no data yet, such as a rate with no attempts, is left out, not 0)."""
    numbers: dict[str, float | int | None] = {
        "success_rate_24h": figures.success_rate_24h,
        "success_rate_7d": figures.success_rate_7d,
        "gap_count": figures.gap_count,
        "open_alerts": figures.open_alerts,
        "minutes_since_last_success": figures.minutes_since_last_success,
        "last_duration_s": figures.last_duration_s,
        "last_rows_per_s": figures.last_rows_per_s,
        "duration_p50_7d_s": figures.week.duration_s.p50,
        "duration_p95_7d_s": figures.week.duration_s.p95,
        "attempts_7d": figures.rate_7d.attempts,
    }
    metadata: dict[str, Any] = {
        key: (float(round(value, 4)) if isinstance(value, float) else int(value))
        for key, value in numbers.items()
        if value is not None
    }
    last = figures.local(figures.last_attempt_at) or "never"
    metadata["last_attempt"] = f"{last} {figures.last_attempt_status or ''}".strip()
    metadata["last_success"] = figures.local(figures.last_success_at) or "never"
    metadata["recent_syncs"] = dg.MetadataValue.md(recent_syncs_markdown(figures))
    metadata["open_alert_list"] = dg.MetadataValue.md(open_alerts_markdown(figures))
    return metadata


@dg.asset(group_name=HEALTH_GROUP, deps=["sellers_table"], kinds={"python"})
def sync_health(context: dg.AssetExecutionContext, database: SyncDatabase) -> dg.MaterializeResult:
    """Is the seller sync healthy? Success rate over 24 hours and 7 days, the gap count of the latest verification,
    open alerts, minutes since the last success, and the last sync's duration and throughput.

    Each materialisation records these as numbers, so the asset's plots are the trend dashboard; the recent syncs and
    the open alerts are tables (times in the sheet_timezone setting).
    """
    figures = health(database.open())
    context.log.info(
        f"health: 24 h success rate {figures.success_rate_24h}, gaps {figures.gap_count}, "
        f"open alerts {figures.open_alerts}"
    )
    return dg.MaterializeResult(metadata=health_metadata(figures))


sync_health_job = dg.define_asset_job(
    "sync_health_job",
    selection=dg.AssetSelection.assets(sync_health),
    description="Refresh the health dashboard (sync_health) without running a sync.",
)


@dg.run_failure_sensor(
    name="sync_health_after_failure_sensor",
    monitored_jobs=[seller_sync_job, seller_resync_job],
    request_job=sync_health_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After a sync run fails (so sync_health was skipped in it), refresh the health dashboard.",
)
def sync_health_after_failure_sensor(context: dg.RunFailureSensorContext) -> dg.RunRequest:
    return dg.RunRequest(run_key=context.dagster_run.run_id)
