"""The Dagster definitions as the UI and the CLI load them: asset keys, checks, jobs and pools are pinned, and the
domain layer stays free of Dagster, SQLAlchemy and gspread. Loads the real definitions; runs nothing."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg

from sync_pipeline.definitions import defs


def test_asset_keys_are_pinned() -> None:
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert {"seller_sheet", "sellers_table"} <= keys


def test_asset_checks_are_pinned_with_their_severity_contract() -> None:
    graph = defs.resolve_asset_graph()
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert {("seller_sheet", "sheet_header_matches"), ("seller_sheet", "sheet_rows_valid")} <= checks
    header_spec = next(
        spec for spec in defs.resolve_assets_def("seller_sheet").check_specs if spec.name == "sheet_header_matches"
    )
    assert header_spec.blocking  # a broken header must stop the sync before sellers_table writes anything


def test_seller_sync_job_materialises_the_sheet_then_the_tables() -> None:
    job = defs.resolve_job_def("seller_sync_job")
    selected = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert {"seller_sheet", "sellers_table"} <= selected
    upstream = defs.resolve_asset_graph().get(dg.AssetKey("sellers_table")).parent_keys
    assert dg.AssetKey("seller_sheet") in upstream


def test_sync_steps_share_the_seller_sync_pool() -> None:
    for key in ("seller_sheet", "sellers_table"):
        assert defs.resolve_assets_def(key).op.pool == "seller_sync"


def test_assets_carry_business_descriptions() -> None:
    for key in ("seller_sheet", "sellers_table"):
        description = defs.resolve_assets_def(key).specs_by_key[dg.AssetKey(key)].description
        assert description and len(description) > 40


def test_domain_layer_imports_no_dagster_sqlalchemy_or_gspread() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import sync_pipeline.domain as d\n"
        "for m in pkgutil.iter_modules(d.__path__): importlib.import_module('sync_pipeline.domain.' + m.name)\n"
        "print(','.join(sorted(n for n in ('dagster', 'sqlalchemy', 'gspread') if n in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_failed_record_retry_sensor_runs_by_default_and_launches_the_resync_job() -> None:
    sensor = defs.resolve_sensor_def("failed_record_retry_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.job_name == "seller_resync_job"


def test_health_and_retention_definitions_are_pinned() -> None:
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert "sync_health" in keys
    assert defs.resolve_assets_def("sync_health").group_names_by_key[dg.AssetKey("sync_health")] == "sync_health"
    assert defs.resolve_job_def("audit_retention_job") is not None
    assert defs.resolve_job_def("sync_health_job") is not None
    assert defs.resolve_schedule_def("audit_retention_schedule").job_name == "audit_retention_job"
    assert defs.resolve_sensor_def("sync_health_after_failure_sensor") is not None
