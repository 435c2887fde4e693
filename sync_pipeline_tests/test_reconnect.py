"""Requirement 7.2 (P29): the sync survives losing its database connection in the middle of a chunk.

Runs on the real Postgres only: another session terminates the sync's backend (pg_terminate_backend) just before the
chunk's upsert, as a server restart or a dropped network link would. SQLite has no connection to lose.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from sync_pipeline.adapters.store.engine import make_engine
from sync_pipeline.domain.audit import SyncStatus
from sync_pipeline.domain.clock import FixedClock
from sync_pipeline.services.database import Database
from sync_pipeline.services.resync import sync_verify_repair
from sync_pipeline_tests.support.sheets import seller_row, sheet

KEYS = [f"RC{i:05d}" for i in range(1, 8)]
# Postgres only (the `database_url` fixture, told which of its two databases to give): SQLite has no connection.
pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def terminate_backend_before_upserts(engine: sa.Engine, admin_url: str, times: int) -> list[int]:
    """Kill the connection that is about to write sellers (the chunk statement), `times` times; returns the killed
    backend pids."""
    killed: list[int] = []
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)

    @sa.event.listens_for(engine, "before_cursor_execute")
    def kill(conn: sa.Connection, cursor: Any, statement: str, *args: Any) -> None:
        if len(killed) < times and "INSERT INTO SELLERS" in statement.upper():
            pid = conn.connection.driver_connection.info.backend_pid  # type: ignore[union-attr]
            with admin.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            killed.append(pid)

    return killed


def test_property_29_a_lost_connection_is_reestablished_and_the_chunk_retried(
    engine: sa.Engine, database_url: str
) -> None:
    db = Database(engine=engine, clock=FixedClock(dt.datetime(2026, 3, 1)))
    waits: list[float] = []
    killed = terminate_backend_before_upserts(engine, database_url, times=1)
    run = sync_verify_repair(db, sheet([seller_row(k) for k in KEYS]), sleep=waits.append)
    assert len(killed) == 1 and len(waits) == 1
    assert run.summary.status is SyncStatus.SUCCEEDED and run.summary.counts.inserted == len(KEYS)
    assert run.verification.clean
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM sellers")).scalar_one() == len(KEYS)
        errors = db.audit.errors(conn, run.summary.sync_id)
    assert [(e["category"], e["rule"]) for e in errors] == [
        ("database", "recovery:reconnect")
    ]  # the recovery is logged
    assert "lost database connection" in errors[0]["message"]


def test_property_29_a_connection_that_stays_lost_fails_the_sync_as_a_database_error(
    engine: sa.Engine, database_url: str
) -> None:
    db = Database(engine=engine, clock=FixedClock(dt.datetime(2026, 3, 1)))
    killed = terminate_backend_before_upserts(engine, database_url, times=10)
    with pytest.raises(Exception, match="write of"):
        sync_verify_repair(db, sheet([seller_row(k) for k in KEYS]), sleep=lambda seconds: None)
    assert len(killed) == 4  # the first attempt and three retries
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM sellers")).scalar_one() == 0
        last = db.audit.latest(conn)
        assert last is not None and last["status"] == SyncStatus.FAILED.value
        errors = db.audit.errors(conn, last["sync_id"])
    assert [e["rule"] for e in errors].count("recovery:reconnect") == 3
    assert errors[-1]["category"] == "database"
