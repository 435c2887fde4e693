"""Verification and recovery through the real Dagster definitions: the sellers_table checks, seller_gap_resync and
seller_resync_job, on SQLite and Postgres.

Exercises seller_sync_job and seller_resync_job with execute_in_process over CSV files in tmp_path, real resources
and an ephemeral instance: check evaluations with their metadata, the resync asset's output and check, the audit
rows and alerts behind them. The database is changed between runs with plain SQL (support/tamper.py). Does not
touch the command line, Google, DAGSTER_HOME or the project's var/ database.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from sync_pipeline.adapters.store.tables import sync_audit_logs
from sync_pipeline.definitions import defs
from sync_pipeline.defs.resources import SellerSheet, SyncDatabase
from sync_pipeline.domain.alerts import AlertType, Severity
from sync_pipeline.services.alerts import list_alerts
from sync_pipeline.services.database import Database, open_database
from sync_pipeline_tests.support import tamper
from sync_pipeline_tests.support.sample_sheet import write_csv
from sync_pipeline_tests.support.sheets import HEADER, seller_row

KEYS = [f"DG{n:05d}" for n in range(1, 31)]
SELLER_CHECKS = {"counts_match_sheet", "no_gaps", "integrity"}


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "sellers.csv", [HEADER, *(seller_row(k) for k in KEYS)])


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(database_url)
    yield database
    database.engine.dispose()


def resources(database_url: str, csv_path: Path) -> dict[str, Any]:
    return {"database": SyncDatabase(url=database_url), "sheet": SellerSheet(source=str(csv_path))}


def sync_job(instance: dg.DagsterInstance, database_url: str, csv_path: Path) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("seller_sync_job").execute_in_process(
        resources=resources(database_url, csv_path), instance=instance, raise_on_error=False
    )


def checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], Any]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def md(check: Any, key: str) -> str:
    return str(check.metadata[key].value)


def audit_rows(db: Database, run_id: str) -> list[dict[str, Any]]:
    query = sa.select(sync_audit_logs).where(sync_audit_logs.c.run_id == run_id).order_by(sync_audit_logs.c.id)
    with db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def test_a_clean_sync_passes_every_verification_check(
    instance: dg.DagsterInstance, database_url: str, csv_path: Path, db: Database
) -> None:
    result = sync_job(instance, database_url, csv_path)
    assert result.success
    found = checks(result)
    assert {name for asset, name in found if asset == "sellers_table"} == SELLER_CHECKS
    assert all(found[("sellers_table", name)].passed for name in SELLER_CHECKS)
    counts = found[("sellers_table", "counts_match_sheet")]
    assert counts.metadata["sheet_valid_count"].value == counts.metadata["db_matched_count"].value == len(KEYS)
    assert found[("seller_gap_resync", "gaps_repaired")].passed
    [row] = audit_rows(db, result.run_id)  # no resync: nothing to repair
    assert row["verification_status"] == "clean" and row["sheet_valid_count"] == len(KEYS)
    assert row["phases"]["verify"] > 0
    [resync] = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("seller_gap_resync")
    ]
    assert resync["requested"].value == resync["gaps_resynced"].value == 0
    assert row["gaps_found"] == row["gaps_resynced"] == 0


def test_stale_rows_fail_no_gaps_and_are_repaired_by_seller_gap_resync(
    instance: dg.DagsterInstance, database_url: str, csv_path: Path, db: Database
) -> None:
    assert sync_job(instance, database_url, csv_path).success
    tamper.delete_properties(db.engine, KEYS[:2])
    tamper.raw_edit(db.engine, KEYS[2:4])
    result = sync_job(instance, database_url, csv_path)
    assert result.success
    found = checks(result)
    no_gaps = found[("sellers_table", "no_gaps")]
    assert not no_gaps.passed and no_gaps.severity == dg.AssetCheckSeverity.WARN
    assert no_gaps.metadata["stale_found"].value == 4 and no_gaps.metadata["gaps_found"].value == 0
    assert all(f"`{k}`" in md(no_gaps, "stale") for k in KEYS[:4])
    integrity = found[("sellers_table", "integrity")]
    assert not integrity.passed and integrity.severity == dg.AssetCheckSeverity.ERROR
    assert integrity.metadata["by_rule"].value == {"property_missing": 2}
    assert all(k in md(integrity, "issues") for k in KEYS[:2])
    assert found[("sellers_table", "counts_match_sheet")].passed  # every seller is there; two are incomplete
    assert found[("seller_gap_resync", "gaps_repaired")].passed
    parent, child = audit_rows(db, result.run_id)
    assert child["kind"] == "resync" and child["parent_sync_id"] == parent["sync_id"]
    assert child["verification_status"] == "clean"
    again = sync_job(instance, database_url, csv_path)
    assert all(checks(again)[("sellers_table", name)].passed for name in SELLER_CHECKS)


def test_a_seller_the_database_refuses_fails_the_checks_and_raises_a_critical_alert(
    instance: dg.DagsterInstance, database_url: str, csv_path: Path, db: Database
) -> None:
    assert sync_job(instance, database_url, csv_path).success
    refused = KEYS[5]
    tamper.delete_sellers(db.engine, [refused, KEYS[6]])
    tamper.install_reject_trigger(db.engine, refused)
    result = sync_job(instance, database_url, csv_path)
    assert result.success  # the sync and the resync ran; what they could not do is in the checks and the alert
    found = checks(result)
    counts = found[("sellers_table", "counts_match_sheet")]
    assert not counts.passed and counts.metadata["missing"].value == 2  # both deleted sellers are gaps
    assert f"`{refused}`" in md(found[("sellers_table", "no_gaps")], "gaps")
    repaired = found[("seller_gap_resync", "gaps_repaired")]
    assert not repaired.passed and repaired.severity == dg.AssetCheckSeverity.ERROR
    assert f"`{refused}`" in md(repaired, "sellers")
    [alert] = list_alerts(db, alert_type=AlertType.RESYNC_FAILED)
    assert alert.severity is Severity.CRITICAL and alert.detail["seller_numbers"] == [refused]
    assert KEYS[6] in tamper.seller_numbers(db.engine)  # the resync put the other one back


def resync_job(
    instance: dg.DagsterInstance, database_url: str, csv_path: Path, numbers: Sequence[str]
) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("seller_resync_job").execute_in_process(
        run_config={"ops": {"resync_sellers": {"config": {"seller_numbers": list(numbers)}}}},
        resources=resources(database_url, csv_path),
        instance=instance,
        raise_on_error=False,
    )


def test_seller_resync_job_repairs_the_chosen_sellers(
    instance: dg.DagsterInstance, database_url: str, csv_path: Path, db: Database
) -> None:
    assert sync_job(instance, database_url, csv_path).success
    tamper.raw_edit(db.engine, KEYS[:3])
    result = resync_job(instance, database_url, csv_path, [KEYS[0], KEYS[1].lower()])
    assert result.success
    output = result.output_for_node("resync_sellers")
    assert output["repaired"] == 2 and output["remaining_count"] == 0
    [row] = audit_rows(db, result.run_id)
    assert row["kind"] == "resync" and row["trigger"] == "seller_resync_job"
    materialisations = result.get_asset_materialization_events()
    # the tables it wrote, then the dashboard they feed (issue 22: a resync refreshes sync_health)
    assert [m.asset_key.to_user_string() for m in materialisations] == ["sellers_table", "sync_health"]
    stale = checks(sync_job(instance, database_url, csv_path))[("sellers_table", "no_gaps")]
    assert stale.metadata["stale_found"].value == 1  # only the seller that was not chosen was still stale


def test_seller_resync_job_fails_naming_sellers_the_sheet_does_not_have(
    instance: dg.DagsterInstance, database_url: str, csv_path: Path
) -> None:
    assert sync_job(instance, database_url, csv_path).success
    result = resync_job(instance, database_url, csv_path, [KEYS[0], "ZZ99999"])
    assert not result.success
    failure = result.failure_data_for_node("resync_sellers")
    assert failure is not None and failure.user_failure_data is not None
    assert "ZZ99999" in (failure.user_failure_data.description or "")


SELLERS = "sellers_table"


def test_recovery_definitions_are_pinned() -> None:
    graph = defs.resolve_asset_graph()
    checks_by_asset = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert {("sellers_table", name) for name in SELLER_CHECKS} | {("seller_gap_resync", "gaps_repaired")} <= (
        checks_by_asset
    )
    table_checks = [s for s in defs.resolve_assets_def("sellers_table").check_specs if s.asset_key.path == [SELLERS]]
    assert len(table_checks) == len(SELLER_CHECKS) and not any(spec.blocking for spec in table_checks)
    gap_resync = defs.resolve_assets_def("seller_gap_resync")
    assert gap_resync.op.pool == "seller_sync"
    assert gap_resync.group_names_by_key[dg.AssetKey("seller_gap_resync")] == "sellers"
    assert dg.AssetKey("sellers_table") in graph.get(dg.AssetKey("seller_gap_resync")).parent_keys
    assert dg.AssetKey("seller_gap_resync") in defs.resolve_job_def("seller_sync_job").asset_layer.selected_asset_keys
    job = defs.resolve_job_def("seller_resync_job")
    dg.validate_run_config(job, {"ops": {"resync_sellers": {"config": {"seller_numbers": ["AA12345"]}}}})
    with pytest.raises(dg.DagsterInvalidConfigError, match="seller_numbers"):
        dg.validate_run_config(job, {"ops": {"resync_sellers": {"config": {}}}})
    assert job.nodes[0].definition.pool == "seller_sync"  # type: ignore[attr-defined]
