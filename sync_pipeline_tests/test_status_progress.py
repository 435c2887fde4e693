"""Requirement 4 (P13–P17): `status` shows idle or running with the phase and the progress over the whole write
(rows done / rows to write, time left), the last attempt and the last success; a manual trigger runs a full sync;
the completion summary carries counts by action, gaps, errors and duration.

Exercises services/report.py (current_status), domain/progress.py, the cumulative progress SyncRun stores on the
audit row, seller_sync_job through execute_in_process (the UI's Materialize) and the `status` CLI, on real SQLite and
Postgres. Does not start a webserver or daemon (test_ui_end_to_end.py does).
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from sync_pipeline.definitions import defs
from sync_pipeline.defs.resources import SellerSheet, SyncDatabase
from sync_pipeline.domain.audit import AuditQuery, SyncKind, SyncStatus
from sync_pipeline.domain.errors import SyncError
from sync_pipeline.domain.progress import progress_record, progress_view
from sync_pipeline.services.database import Database, open_database
from sync_pipeline.services.lifecycle import SyncRun
from sync_pipeline.services.report import audit_rows, current_status
from sync_pipeline.services.resync import sync_verify_repair
from sync_pipeline.services.settings import update_settings
from sync_pipeline_tests.support import tamper
from sync_pipeline_tests.support.cli import parse_json_stdout, run_cli
from sync_pipeline_tests.support.sample_sheet import write_csv
from sync_pipeline_tests.support.sheets import HEADER, seller_row, sheet

KEYS = [f"PG{n:05d}" for n in range(1, 401)]
CHUNK = 37  # not a divisor of 400: the last chunk is short
T0 = dt.datetime(2026, 12, 1, 9, 0, 0)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(database_url)
    yield database
    database.engine.dispose()


def test_property_13_status_shows_idle_running_last_attempt_and_last_success(db: Database) -> None:
    idle = current_status(db)
    assert (idle["state"], idle["running"], idle["last_attempt"], idle["last_success"]) == ("idle", None, None, None)
    update_settings(db, {"chunk_size": CHUNK}, changed_by="test")
    seen: list[dict[str, Any]] = []

    def look(phase: str, done: int, total: int) -> None:
        if phase == "update" and done:
            seen.append(current_status(db))

    ok = sync_verify_repair(db, sheet([seller_row(k) for k in KEYS]), progress=look)
    assert seen and all(s["state"] == "running" for s in seen)
    running = seen[0]["running"]
    assert running["sync_id"] == ok.summary.sync_id and running["phase"] == "update"
    assert running["progress"]["label"] == "writing the changes"

    # A later sync that fails: the last attempt is the failure, the last success is still the first sync.
    with pytest.raises(SyncError):
        sync_verify_repair(db, sheet([seller_row(k) for k in KEYS[:10]]))  # 10 of 400: refused as a partial read
    status = current_status(db)
    assert status["state"] == "idle"
    assert status["last_attempt"]["status"] == "failed" and "min_sheet_ratio" in status["last_attempt"]["message"]
    success = status["last_success"]
    assert success["sync_id"] == ok.summary.sync_id and success["inserted"] == len(KEYS)
    assert success["duration_s"] > 0 and set(success["phases"]) >= {"fetch", "validate", "compare", "update", "verify"}


def test_property_15_progress_is_cumulative_and_monotonic_over_the_whole_sync(db: Database) -> None:
    update_settings(db, {"chunk_size": CHUNK}, changed_by="test")
    stored: list[tuple[int, int]] = []
    polled: list[tuple[int, int]] = []
    stop = threading.Event()

    def poll() -> None:  # what an operator running `status` in another terminal sees
        poller = open_database(db.url_with_password, migrate=False)
        try:
            while not stop.is_set():
                running = current_status(poller)["running"]
                if running and running["phase"] == "update":
                    polled.append((running["progress"]["done"], running["progress"]["total"]))
        finally:
            poller.engine.dispose()

    def look(phase: str, done: int, total: int) -> None:
        if phase == "update":
            running = current_status(db)["running"]
            stored.append((running["progress"]["done"], running["progress"]["total"]))

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        sync_verify_repair(db, sheet([seller_row(k) for k in KEYS]), progress=look)
    finally:
        stop.set()
        thread.join(timeout=30)
    chunks = -(-len(KEYS) // CHUNK)
    assert len(stored) == chunks + 1  # before the first chunk, then after each
    assert [d for d, _ in stored] == [min(i * CHUNK, len(KEYS)) for i in range(chunks + 1)]
    assert {t for _, t in stored} == {len(KEYS)}  # the whole write, never one chunk
    for seen in (stored, polled):
        assert all(a[0] <= b[0] for a, b in itertools.pairwise(seen)), seen
        assert all(t == len(KEYS) and 0 <= d <= t for d, t in seen)


def test_progress_view_estimates_the_time_left() -> None:
    record = progress_record("update", 250, 1000, started_at=T0, now=T0 + dt.timedelta(seconds=10))
    view = progress_view(record, now=T0 + dt.timedelta(seconds=12))
    assert (view.phase, view.done, view.total, view.percent) == ("update", 250, 1000, 25.0)
    assert view.eta_s == pytest.approx(30 - 2)  # 750 rows at 25 rows/s, 2 s since the record
    assert progress_view(record, now=T0 + dt.timedelta(seconds=100)).eta_s == 0.0  # overdue: never negative
    assert progress_view(progress_record("update", 0, 10, started_at=T0, now=T0), now=T0).eta_s is None
    assert progress_view(progress_record("update", 0, 0, started_at=T0, now=T0), now=T0).percent == 100.0
    assert progress_view(None, now=T0, phase="fetch").label == "reading the sheet"


def test_property_14_and_16_manual_trigger_runs_a_full_sync_and_ends_with_a_summary(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    csv_path = write_csv(tmp_path / "sellers.csv", [HEADER, *(seller_row(k) for k in KEYS[:120])])
    update_settings(db, {"chunk_size": 50}, changed_by="test")
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("seller_sync_job").execute_in_process(
            resources={"database": SyncDatabase(url=database_url), "sheet": SellerSheet(source=str(csv_path))},
            instance=instance,
        )
        assert result.success
        messages = [
            e.message for e in instance.all_logs(result.run_id) if e.user_message and "progress:" in e.user_message
        ]
    # The run log shows the write's progress, cumulative over the whole write (Requirement 4.3).
    updates = [int(m.split("records=")[1].split("/")[0]) for m in messages if "phase=update" in m]
    assert updates[0] == 0 and updates[-1] == 120 and updates == sorted(updates)
    assert all(m.endswith("/120") for m in messages if "phase=update" in m)
    [materialization] = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("sellers_table")
    ]
    meta = materialization.metadata
    assert "| `sync_interval_minutes` | `60` |" in str(meta["settings"].value)  # the settings table, in the UI
    assert (meta["inserted"].value, meta["updated"].value, meta["unchanged"].value) == (120, 0, 0)
    assert meta["gaps_found"].value == 0 and meta["duration_seconds"].value > 0
    last = current_status(db)["last_attempt"]
    assert (last["kind"], last["status"], last["inserted"], last["errors"]) == ("manual", "succeeded", 120, 0)
    assert last["run_id"] == result.run_id

    shown = run_cli(["status", "--json", "--database-url", database_url])
    assert shown.returncode == 0, shown.stderr
    data = parse_json_stdout(shown)
    assert data["state"] == "idle" and data["last_success"]["sync_id"] == last["sync_id"]
    human = run_cli(["status", "--database-url", database_url]).stdout
    assert "state: idle" in human and "inserted 120" in human


def test_property_17_a_sync_cannot_start_while_another_runs_whatever_started_them(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    """A sync opened outside Dagster (as the CLI's or a service's) holds the lock: the UI's job is refused, recorded
    as skipped with the other sync named, and writes nothing; once the first ends the job runs."""
    csv_path = write_csv(tmp_path / "sellers.csv", [HEADER, *(seller_row(k) for k in KEYS[:20])])
    job = defs.resolve_job_def("seller_sync_job")
    resources = {"database": SyncDatabase(url=database_url), "sheet": SellerSheet(source=str(csv_path))}
    with dg.instance_for_test() as instance:
        with SyncRun(db, sheet([seller_row(KEYS[0])]), kind=SyncKind.MANUAL, trigger="cli") as other:
            refused = job.execute_in_process(resources=resources, instance=instance, raise_on_error=False)
            assert not refused.success
            status = current_status(db)
            assert status["state"] == "running" and status["running"]["sync_id"] == other.sync_id
            other.fail(RuntimeError("stopped by the test"))
        rows = audit_rows(db, AuditQuery(status=SyncStatus.SKIPPED))
        assert [r["run_id"] for r in rows] == [refused.run_id]
        assert other.sync_id in (rows[0]["message"] or "") and "refused" in (rows[0]["message"] or "")
        assert tamper.seller_numbers(db.engine) == set()
        assert job.execute_in_process(resources=resources, instance=instance).success
    assert tamper.seller_numbers(db.engine) == set(KEYS[:20])
