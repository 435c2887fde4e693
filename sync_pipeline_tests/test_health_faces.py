"""The faces of health: the `sync_health` asset (real Dagster instance, `dg.materialize`, real SQLite and Postgres), its
place after every sync (job selection, failure sensor) and `sync-pipeline health [--json]` (a subprocess).

Histories are written straight into the audit log with support/history.py; the figures themselves are tested in
test_health.py. Does not run a sync through Dagster.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from sync_pipeline.adapters.store.engine import make_engine
from sync_pipeline.adapters.store.migrations import upgrade
from sync_pipeline.definitions import defs
from sync_pipeline.defs.health import sync_health, sync_health_after_failure_sensor
from sync_pipeline.defs.resources import SellerSheet, SyncDatabase
from sync_pipeline.domain.alerts import AlertType, Severity
from sync_pipeline.services.alerts import raise_alert
from sync_pipeline.services.database import Database, open_database
from sync_pipeline_tests.support.cli import parse_json_stdout, run_cli
from sync_pipeline_tests.support.history import add_sync

HEADLINE = (
    "success_rate_24h",
    "success_rate_7d",
    "gap_count",
    "open_alerts",
    "minutes_since_last_success",
    "last_duration_s",
    "last_rows_per_s",
)


def _history(db: Database) -> None:
    now = dt.datetime.now(dt.UTC)
    add_sync(db, now - dt.timedelta(days=3), "succeeded", duration_s=20.0, rows_read=400, gaps_found=0)
    add_sync(db, now - dt.timedelta(hours=5), "failed", duration_s=2.0)
    add_sync(db, now - dt.timedelta(hours=2), "partial", duration_s=10.0, rows_read=500, gaps_found=2)
    add_sync(db, now - dt.timedelta(hours=1), "succeeded", duration_s=8.0, rows_read=400, gaps_found=1)
    with db.engine.begin() as conn:
        raise_alert(conn, AlertType.GAPS_FOUND, Severity.WARNING, "1 seller missing | AA00001", now=now)


def test_sync_health_materialises_plottable_figures_and_tables(database_url: str) -> None:
    _history(open_database(database_url))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [sync_health], resources={"database": SyncDatabase(url=database_url)}, instance=instance
        )
        assert result.success
        event = instance.get_latest_materialization_event(dg.AssetKey("sync_health"))
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    assert metadata["success_rate_24h"] == dg.FloatMetadataValue(0.6667)  # rounded to 4 places for the plot
    assert metadata["success_rate_7d"] == dg.FloatMetadataValue(0.75)
    assert metadata["gap_count"] == dg.IntMetadataValue(1)
    assert metadata["open_alerts"] == dg.IntMetadataValue(1)
    assert metadata["last_duration_s"] == dg.FloatMetadataValue(8.0)
    assert metadata["last_rows_per_s"] == dg.FloatMetadataValue(50.0)
    assert 55 <= metadata["minutes_since_last_success"].value <= 65  # type: ignore[operator]
    tables = str(metadata["recent_syncs"].value) + str(metadata["open_alert_list"].value)
    assert "| partial |" in tables and "+09:00" in tables  # shown in the sheet's time zone (Asia/Tokyo)
    assert "1 seller missing / AA00001" in tables  # a pipe in a message does not break the table


def test_sync_health_on_an_empty_database_leaves_out_what_has_no_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with dg.instance_for_test() as instance:
        result = dg.materialize([sync_health], resources={"database": SyncDatabase(url=url)}, instance=instance)
    metadata = result.asset_materializations_for_node("sync_health")[0].metadata
    assert "success_rate_24h" not in metadata and metadata["open_alerts"] == dg.IntMetadataValue(0)
    assert metadata["last_success"] == dg.TextMetadataValue("never")


def test_sync_health_runs_after_every_sync_and_after_a_failed_one(tmp_path: Path) -> None:
    job = defs.resolve_job_def("seller_sync_job")
    assert dg.AssetKey("sync_health") in job.asset_layer.selected_asset_keys
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey("sellers_table") in graph.get(dg.AssetKey("sync_health")).parent_keys
    assert defs.resolve_sensor_def("sync_health_after_failure_sensor") is not None

    # A sync run that fails (its sheet does not exist): the sensor asks for a health refresh for that run.
    url = f"sqlite:///{tmp_path / 'failed.db'}"
    with dg.instance_for_test() as instance:
        failed = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            resources={"database": SyncDatabase(url=url), "sheet": SellerSheet(source=str(tmp_path / "none.csv"))},
        )
        assert not failed.success
        failure = next(e for e in failed.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(
            sensor_name="sync_health_after_failure_sensor",
            dagster_instance=instance,
            dagster_run=failed.dagster_run,
            dagster_event=failure,
        ).for_run_failure()
        request = sync_health_after_failure_sensor(context)
    assert isinstance(request, dg.RunRequest) and request.run_key == failed.run_id


def test_a_dagster_sync_puts_its_metrics_on_sellers_table_and_refreshes_sync_health(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dagster.db'}"
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("seller_sync_job").execute_in_process(
            instance=instance, resources={"database": SyncDatabase(url=url), "sheet": SellerSheet()}
        )
        assert result.success
        table = instance.get_latest_materialization_event(dg.AssetKey("sellers_table"))
        dashboard = instance.get_latest_materialization_event(dg.AssetKey("sync_health"))
    assert table is not None and table.asset_materialization is not None
    figures = table.asset_materialization.metadata
    for phase in ("fetch", "validate", "compare", "update", "verify"):
        assert isinstance(figures[f"{phase}_seconds"], dg.FloatMetadataValue)
    assert figures["rows_read_per_second"].value > 0  # type: ignore[operator]
    assert figures["errors_validation"].value + figures["errors_integrity"].value > 0  # the sample's bad rows
    assert dashboard is not None and dashboard.asset_materialization is not None
    health_figures = dashboard.asset_materialization.metadata
    assert health_figures["success_rate_24h"] == dg.FloatMetadataValue(1.0)  # the partial sync counts as a success
    assert health_figures["gap_count"] == dg.IntMetadataValue(0)
    assert health_figures["last_rows_per_s"].value > 0  # type: ignore[operator]


def test_health_command_prints_a_table_or_one_json_object(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    upgrade(engine)
    engine.dispose()
    _history(open_database(url))

    done = run_cli(["health", "--json", "--database-url", url])
    assert done.returncode == 0, done.stderr
    figures = parse_json_stdout(done)
    assert list(figures)[: len(HEADLINE)] == list(HEADLINE)
    assert (figures["success_rate_24h"], figures["success_rate_7d"]) == (2 / 3, 0.75)
    assert (figures["gap_count"], figures["open_alerts"], figures["last_rows_per_s"]) == (1, 1, 50.0)
    assert figures["last_attempt_at"].endswith("+09:00") and figures["timezone"] == "Asia/Tokyo"

    table = run_cli(["health", "--database-url", url])
    assert table.returncode == 0, table.stderr
    assert "success rate 24 h    66.7% (2/3)" in table.stdout
    assert "success rate 7 days  75.0% (3/4)" in table.stdout
    assert "open alerts" in table.stdout and "gaps_found" in table.stdout
    json.dumps(figures)  # the object is plain JSON all the way down
