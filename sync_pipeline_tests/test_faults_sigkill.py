"""Fault suite: a sync process killed with SIGKILL while rows are landing, then an immediate sync (P9, P31, P39).

A child Python process runs the whole sync (`sync_verify_repair`) over a 10,000-row CSV on the real SQLite file and
the real Postgres; once sellers are landing the test kills it with SIGKILL (no `finally`, no cleanup). At once a new
sync runs in this process and must succeed: the dead process's lock died with it, its audit entry is closed as
abandoned, the takeover and the closing are recovery actions in the audit log (also through `sync-pipeline audit`),
and the database equals the valid sheet row for row by content hash. Does not touch Dagster or the network.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from sync_pipeline.adapters.sheets.file import FileSheetSource
from sync_pipeline.adapters.store.lock import current_holder
from sync_pipeline.domain.audit import AuditQuery, SyncStatus
from sync_pipeline.services.database import open_database
from sync_pipeline.services.report import recovery_events
from sync_pipeline.services.resync import sync_verify_repair
from sync_pipeline_tests.support.cli import parse_json_stdout, run_cli
from sync_pipeline_tests.support.faults import assert_database_matches_sheet, queue, rules, sync_rows
from sync_pipeline_tests.support.sample_sheet import generate_rows, write_csv

ROWS = 10_000  # ingestion takes a few seconds and the writes a few more: the kill lands mid-write
CHUNK_SIZE = 100  # small chunks: many commits, so rows are visibly landing long before the end
LANDING_TIMEOUT_SECONDS = 180  # a busy 2-core machine; the child normally writes within ~10 s
POLL_SECONDS = 0.02

SYNC_IN_A_CHILD = """
import sys
from pathlib import Path
from sync_pipeline.adapters.sheets.file import FileSheetSource
from sync_pipeline.services.database import open_database
from sync_pipeline.services.report import recovery_events
from sync_pipeline.services.resync import sync_verify_repair
sync_verify_repair(open_database(sys.argv[1]), FileSheetSource(Path(sys.argv[2])), trigger="doomed")
print("finished", flush=True)
"""


def count_sellers(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM sellers")).scalar_one())


def kill_once_rows_land(database_url: str, engine: sa.Engine, csv: Path) -> tuple[int, str]:
    """Start the sync in a child, SIGKILL it once sellers are in the database; returns (sellers then, its sync id)."""
    child = subprocess.Popen(
        [sys.executable, "-c", SYNC_IN_A_CHILD, database_url, str(csv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + LANDING_TIMEOUT_SECONDS
        while count_sellers(engine) == 0:
            assert child.poll() is None, "the child sync ended before writing anything"
            assert time.monotonic() < deadline, "no seller landed in time"
            time.sleep(POLL_SECONDS)
        holder = current_holder(engine)  # a live holder: the lock is its, and the label says which sync
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()  # the pipe of a killed child is ours to close (else a ResourceWarning, an error here)
    assert holder is not None
    return count_sellers(engine), holder.holder


def test_property_31_a_sync_killed_mid_write_is_closed_as_abandoned_and_the_next_sync_repairs_everything(
    database_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    csv = write_csv(tmp_path / "sellers.csv", generate_rows(ROWS, seed=29))
    db = open_database(database_url)
    with engine.begin() as conn:
        db.config.save(conn, {"chunk_size": str(CHUNK_SIZE)}, now=db.clock.now())

    landed, dead_id = kill_once_rows_land(database_url, engine, csv)
    assert 0 < landed < ROWS, f"the kill did not land mid-write ({landed} of {ROWS} sellers)"
    [dead] = [r for r in sync_rows(engine) if r["sync_id"] == dead_id]
    assert dead["status"] == SyncStatus.RUNNING.value  # nobody closed it: the process died
    if engine.dialect.name == "sqlite":  # the lock file stays behind; the kernel dropped the flock with the process
        assert Path(str(engine.url.database) + ".lock").exists()
    with engine.begin() as conn:  # the recovering sync writes in ordinary chunks
        db.config.save(conn, {"chunk_size": "1000"}, now=db.clock.now())

    run = sync_verify_repair(db, FileSheetSource(csv), trigger="after-the-crash")  # at once, not after a lease

    assert run.summary.status is SyncStatus.SUCCEEDED
    assert run.summary.counts.inserted + run.summary.counts.unchanged == ROWS
    assert run.summary.counts.unchanged >= landed  # what the dead sync committed was whole and is kept
    assert run.verification.clean
    assert assert_database_matches_sheet(engine, csv) == ROWS
    assert current_holder(engine) is None and queue(engine) == {}

    after = {r["sync_id"]: r for r in sync_rows(engine)}
    assert after[dead_id]["status"] == SyncStatus.ABANDONED.value
    assert run.summary.sync_id in after[dead_id]["message"] and after[dead_id]["finished_at"] is not None
    assert [r["sync_id"] for r in after.values() if r["status"] == SyncStatus.RUNNING.value] == []

    # The recovery actions, as an operator sees them.
    shown = run_cli(["audit", "--sync", run.summary.sync_id, "--json", "--database-url", database_url])
    assert shown.returncode == 0, shown.stderr
    events = parse_json_stdout(shown)["events"]
    assert rules(events) == ["recovery:lock_takeover", "recovery:abandoned_closed"]
    assert all(dead_id in e["message"] and e["recovery"] for e in events)
    listed = recovery_events(db, AuditQuery())  # what `sync-pipeline audit --recovery` prints
    assert {e["rule"] for e in listed} == {"recovery:lock_takeover", "recovery:abandoned_closed"}
