"""Requirement 10 (P42–P46): settings changed through the job `update_sync_settings` (the UI's settings panel), the
service and the CLI are validated all-or-nothing, versioned in `sync_config_history`, and used on their next use
without a restart (the next schedule tick, the next sync's verification and resync).

Runs the real job with execute_in_process on a test instance, the services, and the installed CLI, against real
SQLite and Postgres. Does not start a webserver or daemon (test_ui_end_to_end.py does) and reads no sheet file.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from sync_pipeline.adapters.sheets.file import FileSheetSource
from sync_pipeline.definitions import defs
from sync_pipeline.defs.resources import SyncDatabase
from sync_pipeline.defs.schedules import seller_sync_schedule
from sync_pipeline.defs.settings import UpdateSyncSettingsConfig
from sync_pipeline.domain.alerts import AlertType
from sync_pipeline.domain.errors import SyncError
from sync_pipeline.domain.settings import MIN_SYNC_INTERVAL_MINUTES, Settings, SettingsError, setting_docs
from sync_pipeline.services.alerts import list_alerts
from sync_pipeline.services.database import Database, open_database
from sync_pipeline.services.resync import sync_verify_repair
from sync_pipeline.services.settings import settings_history, settings_markdown, update_settings
from sync_pipeline_tests.support import tamper
from sync_pipeline_tests.support.cli import parse_json_stdout, run_cli
from sync_pipeline_tests.support.db import audit_row
from sync_pipeline_tests.support.sheets import seller_row, sheet

KEYS = [f"ST{n:05d}" for n in range(1, 11)]
ROWS = [seller_row(k) for k in KEYS]


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(database_url)
    yield database
    database.engine.dispose()


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def run_settings_job(instance: dg.DagsterInstance, database_url: str, **values: Any) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("update_sync_settings").execute_in_process(
        run_config={"ops": {"update_sync_settings": {"config": values}}},
        resources={"database": SyncDatabase(url=database_url)},
        instance=instance,
        raise_on_error=False,
    )


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    failure = result.failure_data_for_node("update_sync_settings")
    assert failure is not None and failure.error is not None
    return failure.error.message


def test_the_job_offers_every_setting_with_its_documentation() -> None:
    config_fields = UpdateSyncSettingsConfig.model_fields
    assert set(config_fields) == {f.name for f in fields(Settings)}
    docs = setting_docs()
    for key, info in config_fields.items():
        assert info.description == docs[key] and docs[key].strip(), key
        assert info.default is None  # every field optional: only the fields given change
    job = defs.resolve_job_def("update_sync_settings")
    assert [node.name for node in job.graph.nodes] == ["update_sync_settings"]


def test_the_job_changes_only_the_given_settings_and_versions_each_change(
    db: Database, database_url: str, instance: dg.DagsterInstance
) -> None:
    before = db.settings()
    result = run_settings_job(instance, database_url, sync_interval_minutes=15, required_fields=["seller_number"])
    assert result.success
    after = db.settings()
    assert (after.sync_interval_minutes, after.required_fields) == (15, ("seller_number",))
    assert {k: v for k, v in after.as_strings().items() if k not in {"sync_interval_minutes", "required_fields"}} == {
        k: v for k, v in before.as_strings().items() if k not in {"sync_interval_minutes", "required_fields"}
    }
    history = {c.key: c for c in settings_history(db)}
    assert set(history) == {"sync_interval_minutes", "required_fields"}
    assert (history["sync_interval_minutes"].old_value, history["sync_interval_minutes"].new_value) == ("60", "15")
    assert history["required_fields"].old_value == "seller_number,name,property_address"
    assert history["sync_interval_minutes"].changed_by == f"update_sync_settings run {result.run_id}"
    # Giving a setting its current value is not a change: no new history row.
    assert run_settings_job(instance, database_url, sync_interval_minutes=15).success
    assert len(settings_history(db)) == 2


def test_cli_lists_the_settings_history(database_url: str, db: Database) -> None:
    update_settings(db, {"gap_threshold": 3}, changed_by="operator@example.com")
    done = run_cli(["settings", "set", "gap_threshold=4", "--database-url", database_url])
    assert done.returncode == 0, done.stderr
    listed = run_cli(["settings", "history", "--json", "--database-url", database_url])
    assert listed.returncode == 0, listed.stderr
    rows = parse_json_stdout(listed)
    assert [(r["key"], r["old_value"], r["new_value"], r["changed_by"]) for r in rows] == [
        ("gap_threshold", "3", "4", "cli"),
        ("gap_threshold", "0", "3", "operator@example.com"),
    ]
    human = run_cli(["settings", "history", "--database-url", database_url])
    assert "gap_threshold: 3 -> 4  by cli" in human.stdout


@pytest.mark.parametrize("invalid", [0, -5])
def test_property_42_sync_interval_is_validated_through_the_job(
    db: Database, database_url: str, instance: dg.DagsterInstance, invalid: int
) -> None:
    before = db.settings()
    # A valid change given together with the invalid one is not applied either: all or nothing.
    result = run_settings_job(instance, database_url, gap_threshold=9, sync_interval_minutes=invalid)
    assert not result.success
    message = failure_message(result)
    assert "sync_interval_minutes" in message and f"must be at least {MIN_SYNC_INTERVAL_MINUTES}" in message
    assert "nothing was changed" in message
    assert db.settings() == before
    assert settings_history(db) == []


@hypothesis_settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(minutes=st.integers(min_value=-10_000, max_value=100_000))
def test_property_42_sync_interval_accepted_exactly_when_at_least_the_minimum(db: Database, minutes: int) -> None:
    before = db.settings()
    if minutes >= MIN_SYNC_INTERVAL_MINUTES:
        assert update_settings(db, {"sync_interval_minutes": minutes}, changed_by="test").after.sync_interval_minutes
        assert db.settings().sync_interval_minutes == minutes
    else:
        with pytest.raises(SettingsError) as refused:
            update_settings(db, {"sync_interval_minutes": minutes}, changed_by="test")
        assert refused.value.key == "sync_interval_minutes"
        assert db.settings() == before


def test_property_43_consecutive_failure_threshold_is_configurable(
    db: Database, database_url: str, instance: dg.DagsterInstance
) -> None:
    assert run_settings_job(instance, database_url, consecutive_failure_threshold=5).success
    assert db.settings().consecutive_failure_threshold == 5
    refused = run_settings_job(instance, database_url, consecutive_failure_threshold=0)
    assert not refused.success and "consecutive_failure_threshold" in failure_message(refused)
    assert db.settings().consecutive_failure_threshold == 5
    # The next sync starts with the new value in force (recorded on its audit row).
    done = sync_verify_repair(db, sheet(ROWS))
    assert audit_row(db, done.summary.sync_id)["settings"]["consecutive_failure_threshold"] == "5"
    # And the failure rule uses it: two failed syncs in a row alert with the threshold at 2 (not at the default 3).
    assert run_settings_job(instance, database_url, consecutive_failure_threshold=2).success
    missing = FileSheetSource(Path("/nonexistent/sellers.csv"))
    for _ in range(2):
        with pytest.raises(SyncError):
            sync_verify_repair(db, missing)
    streak = [a for a in list_alerts(db, limit=100) if a.alert_type == AlertType.CONSECUTIVE_FAILURES]
    assert len(streak) == 1


def gap_alerts(db: Database) -> int:
    return sum(1 for a in list_alerts(db, limit=100, unacknowledged_only=False) if a.alert_type == AlertType.GAPS_FOUND)


def test_property_44_gap_threshold_is_configurable(
    db: Database, database_url: str, instance: dg.DagsterInstance
) -> None:
    source = sheet(ROWS)
    sync_verify_repair(db, source)
    assert run_settings_job(instance, database_url, gap_threshold=2).success
    tamper.delete_sellers(db.engine, KEYS[:2])
    done = sync_verify_repair(db, source)
    assert len(done.verification.gaps) == 2 and gap_alerts(db) == 0  # 2 gaps, threshold 2: no alert
    assert run_settings_job(instance, database_url, gap_threshold=1).success
    tamper.delete_sellers(db.engine, KEYS[:2])
    done = sync_verify_repair(db, source)
    assert len(done.verification.gaps) == 2 and gap_alerts(db) == 1  # the next sync uses the new threshold
    refused = run_settings_job(instance, database_url, gap_threshold=-1)
    assert not refused.success and "gap_threshold" in failure_message(refused)


def test_property_45_automatic_recovery_can_be_switched_off_and_on(
    db: Database, database_url: str, instance: dg.DagsterInstance
) -> None:
    source = sheet(ROWS)
    sync_verify_repair(db, source)
    assert run_settings_job(instance, database_url, auto_recovery=False).success
    tamper.delete_sellers(db.engine, KEYS[:3])
    off = sync_verify_repair(db, source)
    assert off.resync.skipped == "auto_recovery is off" and off.resync.gaps_resynced == 0
    assert tamper.seller_numbers(db.engine) == set(KEYS[3:])
    assert run_settings_job(instance, database_url, auto_recovery=True).success
    on = sync_verify_repair(db, source)
    assert on.resync.gaps_resynced == 3
    assert tamper.seller_numbers(db.engine) == set(KEYS)


def test_property_46_changes_take_effect_without_restart(
    db: Database, database_url: str, instance: dg.DagsterInstance
) -> None:
    """One process, one set of definitions and resources throughout: nothing is reloaded between change and use."""
    done = sync_verify_repair(db, sheet(ROWS))
    tick = audit_row(db, done.summary.sync_id)["started_at"] + dt.timedelta(minutes=5, seconds=1)
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=tick.replace(tzinfo=dt.UTC),
        resources={"database": SyncDatabase(url=database_url)},
    ) as context:
        assert seller_sync_schedule.evaluate_tick(context).skip_message  # 60 minutes by default
        assert run_settings_job(instance, database_url, sync_interval_minutes=5).success
        assert seller_sync_schedule.evaluate_tick(context).run_requests  # the very next evaluation sees 5 minutes

    assert run_settings_job(instance, database_url, chunk_size=3).success
    progress: list[tuple[str, int, int]] = []
    sync_verify_repair(db, sheet([seller_row(k, name="変更後") for k in KEYS]), progress=lambda *p: progress.append(p))
    writes = [done for phase, done, _ in progress if phase == "update"]
    assert writes == [0, 3, 6, 9, 10]  # the next sync writes in chunks of the new size


def test_settings_markdown_lists_every_setting_with_value_and_documentation() -> None:
    table = settings_markdown(Settings(gap_threshold=7))
    lines = table.splitlines()
    assert lines[0] == "| setting | value | what it does |"
    for key, value in Settings(gap_threshold=7).as_strings().items():
        assert any(line.startswith(f"| `{key}` | `{value.replace('|', chr(92) + '|')}` |") for line in lines), key


def test_defaults_written_by_many_processes_at_once_on_a_new_database(database_url: str) -> None:
    """Several syncs starting together on a fresh database all read the defaults; none fails writing them."""
    databases = [open_database(database_url) for _ in range(5)]
    barrier = threading.Barrier(len(databases))

    def first_read(db: Database) -> dict[str, str]:
        barrier.wait()
        return db.settings().as_strings()

    with concurrent.futures.ThreadPoolExecutor(len(databases)) as pool:
        results = list(pool.map(first_read, databases))
    assert all(r == results[0] for r in results)
    for db in databases:
        db.engine.dispose()
