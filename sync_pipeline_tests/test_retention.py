"""Retention on real SQLite and Postgres: with the clock moved past `retention_days`, exactly the old audit, record,
error and metric rows and acknowledged alerts move to the archive tables (in batches), the recent ones stay, and the
audit query with the archive still finds every archived sync; plus the Dagster job, its schedule and the CLI option.

Syncs run through services.resync.sync_verify_repair over an in-memory sheet with a fixed clock.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from sync_pipeline.adapters.store.tables import (
    ARCHIVES,
    sync_alerts,
    sync_audit_logs,
    sync_error_logs,
    sync_metrics,
    sync_record_logs,
)
from sync_pipeline.definitions import defs
from sync_pipeline.defs.resources import SyncDatabase
from sync_pipeline.domain.alerts import AlertType, Severity
from sync_pipeline.domain.audit import AuditQuery
from sync_pipeline.domain.clock import FixedClock
from sync_pipeline.services.alerts import acknowledge, raise_alert
from sync_pipeline.services.database import Database, open_database
from sync_pipeline.services.metrics import record_sync_metrics
from sync_pipeline.services.resync import sync_verify_repair
from sync_pipeline.services.retention import archive_older_than
from sync_pipeline_tests.support.cli import parse_json_stdout, run_cli
from sync_pipeline_tests.support.sheets import seller_row, sheet

START = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
LIVE = (sync_audit_logs, sync_record_logs, sync_error_logs, sync_metrics, sync_alerts)


def _sync(db: Database, keys: list[str], name: str) -> str:
    rows = [seller_row(k, name=name) for k in keys] + [seller_row("RT00009", name="")]  # rejected: an error log
    done = sync_verify_repair(db, sheet(rows))
    record_sync_metrics(db, done.summary.sync_id)
    return done.summary.sync_id


def _alert(db: Database, message: str, *, ack: bool) -> int:
    with db.engine.begin() as conn:
        alert = raise_alert(conn, AlertType.GAPS_FOUND, Severity.WARNING, message, now=db.clock.now())
    if ack:
        acknowledge(db, [alert.id])
    return alert.id


def _rows(db: Database, table: sa.Table) -> dict[int, dict[str, Any]]:
    with db.engine.connect() as conn:
        return {r["id"]: dict(r) for r in conn.execute(sa.select(table)).mappings()}


def _build_history(db: Database, clock: FixedClock) -> tuple[list[str], list[str]]:
    old = [_sync(db, ["RT00001", "RT00002"], f"古{i}") for i in range(3)]
    _alert(db, "old, acknowledged", ack=True)
    _alert(db, "old, still open", ack=False)
    clock.advance(days=100)
    recent = [_sync(db, ["RT00002", "RT00003"], f"新{i}") for i in range(2)]
    _alert(db, "recent, acknowledged", ack=True)
    return old, recent


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


def test_retention_archives_exactly_the_old_rows_and_the_archive_query_finds_them(
    engine: sa.Engine, clock: FixedClock
) -> None:
    db = Database(engine=engine, clock=clock)
    old, recent = _build_history(db, clock)
    cutoff = clock.now() - dt.timedelta(days=90)
    before = {t.name: _rows(db, t) for t in LIVE}
    is_old = {
        "sync_audit_logs": lambda r: r["sync_id"] in old,
        "sync_record_logs": lambda r: r["sync_id"] in old,
        "sync_error_logs": lambda r: r["sync_id"] in old,
        "sync_metrics": lambda r: r["sync_id"] in old,
        "sync_alerts": lambda r: r["acknowledged_at"] is not None and r["created_at"] < cutoff,
    }
    expected_old = {name: {i for i, r in rows.items() if is_old[name](r)} for name, rows in before.items()}
    assert all(expected_old[t] for t in expected_old)  # every kind of row has something to archive
    assert len(before["sync_record_logs"]) - len(expected_old["sync_record_logs"]) > 0

    result = archive_older_than(db, batch_size=2)  # small batches: several transactions per table

    assert result.moved == {name: len(ids) for name, ids in expected_old.items()}
    assert result.batches > len(LIVE)
    for table in LIVE:
        after = _rows(db, table)
        assert set(after) == set(before[table.name]) - expected_old[table.name]  # the recent rows stay, untouched
        with db.engine.connect() as conn:
            archived = [dict(r) for r in conn.execute(sa.select(ARCHIVES[table.name])).mappings()]
        assert {r["id"] for r in archived} == expected_old[table.name]
        for row in archived:  # every column kept as it was
            assert row["archived_at"] == clock.now()
            assert {k: v for k, v in row.items() if k not in {"archive_id", "archived_at"}} == before[table.name][
                row["id"]
            ]

    with db.engine.connect() as conn:
        by_seller = db.audit.query(conn, AuditQuery(seller_number="RT00001", include_archive=True))
        assert {r["sync_id"] for r in by_seller} == set(old)  # inserted, then updated (new name) by each old sync
        everything = db.audit.query(conn, AuditQuery(include_archive=True, limit=1000))
        assert {r["sync_id"] for r in everything} >= set(old) | set(recent)
        assert not {r["sync_id"] for r in db.audit.query(conn, AuditQuery(limit=1000))} & set(old)
        assert db.audit.query(conn, AuditQuery(seller_number="RT00001")) == []
        bad = db.audit.query(conn, AuditQuery(seller_number="RT00009", include_archive=True, limit=1000))
        assert {r["sync_id"] for r in bad} >= set(old) | set(recent)  # found through archived error rows too
        assert db.audit.written_before(conn, ["RT00001", "RT00009"]) == {"RT00001"}

    assert archive_older_than(db).total == 0  # nothing left to move


def test_audit_retention_job_runs_daily_and_archives(tmp_path: Path, clock: FixedClock) -> None:
    url = f"sqlite:///{tmp_path / 'retention.db'}"
    db = open_database(url, clock=clock)
    old, recent = _build_history(db, clock)
    schedule = defs.resolve_schedule_def("audit_retention_schedule")
    assert schedule.job_name == "audit_retention_job" and schedule.cron_schedule == "30 3 * * *"

    # The job archives against the real clock: every row here is far older than 90 days by now.
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("audit_retention_job").execute_in_process(
            instance=instance, resources={"database": SyncDatabase(url=url)}
        )
    assert result.success
    moved = result.output_for_node("archive_old_audit_rows")
    assert moved["sync_audit_logs"] == len(old) + len(recent)

    done = run_cli(["audit", "--seller", "RT00003", "--include-archive", "--json", "--database-url", url])
    assert done.returncode == 0, done.stderr
    assert {r["sync_id"] for r in parse_json_stdout(done)} == set(recent)
    plain = run_cli(["audit", "--seller", "RT00003", "--json", "--database-url", url])
    assert parse_json_stdout(plain) == []
