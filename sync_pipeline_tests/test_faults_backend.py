"""Fault suite: the sync's Postgres backends terminated mid-write (P29, P31, P39).

Runs on the real Postgres only (SQLite has no server session to lose). Another session calls pg_terminate_backend
on the connection that is about to upsert a chunk (twice, at different chunks) and, in between, on the session that
holds the sync's advisory lock. The sync reconnects and retries each chunk, takes the lock back (nobody else took
it), logs each as a recovery action, and ends with the database equal to the valid sheet row for row by content
hash. Does not touch Dagster, files other than the CSV, or the network.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync_pipeline.adapters.sheets.file import FileSheetSource
from sync_pipeline.adapters.store.engine import make_engine
from sync_pipeline.adapters.store.lock import SYNC_LOCK_KEY, current_holder
from sync_pipeline.domain.audit import SyncStatus
from sync_pipeline.domain.clock import FixedClock
from sync_pipeline.services.database import Database
from sync_pipeline.services.resync import sync_verify_repair
from sync_pipeline_tests.support.faults import assert_database_matches_sheet, rules
from sync_pipeline_tests.support.sample_sheet import generate_rows, write_csv

ROWS = 3_000
CHUNK_SIZE = 200  # 15 chunks
KILL_WRITER_AT = (3, 9)  # the upserts (1-based, counting retries) whose connection is terminated just before
KILL_LOCK_AT = 6  # ...and the upsert before which the lock's own session is terminated
pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def lock_backend_pid(admin: sa.Engine) -> int:
    with admin.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND ((classid::bigint << 32) | objid::bigint) = :key AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"key": SYNC_LOCK_KEY},
            ).scalar_one()
        )


def test_property_29_backends_terminated_mid_write_are_reconnected_and_the_lock_taken_back(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    csv = write_csv(tmp_path / "sellers.csv", generate_rows(ROWS, seed=290))
    db = Database(engine=engine, clock=FixedClock(dt.datetime(2026, 5, 1, 9, 0)))
    with engine.begin() as conn:
        db.config.save(conn, {"chunk_size": str(CHUNK_SIZE)}, now=db.clock.now())
    admin = make_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    upserts: list[int] = []
    terminated: list[tuple[str, int]] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def terminate(conn: sa.Connection, cursor: Any, statement: str, *args: Any) -> None:
        if "INSERT INTO SELLERS" not in statement.upper():
            return
        upserts.append(1)
        n = len(upserts)
        if n in KILL_WRITER_AT:
            pid = conn.connection.driver_connection.info.backend_pid  # type: ignore[union-attr]
            terminated.append(("writer", pid))
        elif n == KILL_LOCK_AT:
            terminated.append(("lock", lock_backend_pid(admin)))
        else:
            return
        with admin.connect() as other:
            assert other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": terminated[-1][1]}).scalar()

    waits: list[float] = []
    run = sync_verify_repair(db, FileSheetSource(csv), sleep=waits.append)
    sa.event.remove(engine, "before_cursor_execute", terminate)
    admin.dispose()

    assert [what for what, _ in terminated] == ["writer", "lock", "writer"]
    assert run.summary.status is SyncStatus.SUCCEEDED and run.summary.counts.inserted == ROWS
    assert run.verification.clean and run.resync.sync_id is None  # nothing left for a resync to repair
    assert assert_database_matches_sheet(engine, csv) == ROWS
    assert current_holder(engine) is None  # the lock taken back was released at the end
    with engine.connect() as conn:
        events = db.audit.errors(conn, run.summary.sync_id)
    assert rules(events) == ["recovery:reconnect", "recovery:lock_reacquired", "recovery:reconnect"]
    assert all(e["category"] == "database" and e["message"].startswith("recovery:") for e in events)
    assert len(waits) == 2  # one backoff wait per reconnection
