"""The sync lock dies with its holder (P39, Requirement 9.3), on real SQLite files and the real Postgres.

A second process holds the lock (a child Python process taking `SyncLock`); while it lives every other sync is
refused, and once it is killed with SIGKILL the next sync takes the lock at once, without waiting for any lease, and
learns whose lock it took over. In-memory SQLite uses a process-local lock. No Dagster, no sheets.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from sync_pipeline.adapters.store.engine import make_engine
from sync_pipeline.adapters.store.lock import SyncLock, current_holder, lock_file_path
from sync_pipeline.adapters.store.migrations import upgrade
from sync_pipeline.domain.clock import FixedClock
from sync_pipeline.domain.errors import SyncRefusedError
from sync_pipeline.services.database import Database
from sync_pipeline.services.recovery import take_sync_lock
from sync_pipeline.services.report import current_status

NOW = dt.datetime(2026, 4, 1, 9, 0, tzinfo=dt.UTC)
CHILD_READY_SECONDS = 60  # the child imports SQLAlchemy and connects; generous on a busy 2-core machine
RELEASE_SECONDS = 10  # how long the server / kernel may take to notice the holder died

HOLD_LOCK = """
import sys, time, datetime as dt
from sync_pipeline.adapters.store.engine import make_engine
from sync_pipeline.adapters.store.lock import SyncLock
lock = SyncLock(make_engine(sys.argv[1]))
assert lock.try_acquire(sys.argv[2], now=dt.datetime(2026, 4, 1, 8, 0))
print("held", flush=True)
time.sleep(600)
"""


@pytest.fixture
def holder_process(database_url: str) -> Iterator[subprocess.Popen[str]]:
    """A live process holding the sync lock as sync 'dead-sync' (killed by the test, or at the end)."""
    with subprocess.Popen(  # the with closes the child's stdout pipe
        [sys.executable, "-c", HOLD_LOCK, database_url, "dead-sync"], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        line = child.stdout.readline()  # blocks until the lock is held (or the child died)
        assert line.strip() == "held", f"the child could not take the lock (exit {child.poll()})"
        yield child
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)


def _acquire_within(lock: SyncLock, holder: str, seconds: float) -> tuple[bool, float]:
    start = time.monotonic()
    while True:
        got = lock.try_acquire(holder, now=NOW)
        if got or time.monotonic() - start > seconds:
            return bool(got), time.monotonic() - start
        time.sleep(0.05)


def test_property_39_a_live_holder_in_another_process_always_blocks(
    database_url: str, engine: sa.Engine, holder_process: subprocess.Popen[str]
) -> None:
    db = Database(engine=engine, clock=FixedClock(NOW))
    for _ in range(3):
        with pytest.raises(SyncRefusedError, match="dead-sync"):
            take_sync_lock(db, "second-sync")
    holder = current_holder(engine)
    assert holder is not None and holder.holder == "dead-sync"
    assert current_status(db)["lock"]["holder"] == "dead-sync"  # what `sync-pipeline status` shows
    assert holder_process.poll() is None


def test_property_39_a_holder_killed_with_sigkill_never_blocks_the_next_sync(
    database_url: str, engine: sa.Engine, holder_process: subprocess.Popen[str]
) -> None:
    os.kill(holder_process.pid, signal.SIGKILL)
    holder_process.wait(timeout=30)
    lock = SyncLock(engine)
    got, waited = _acquire_within(lock, "next-sync", RELEASE_SECONDS)
    try:
        assert got, "the lock of a killed holder was not released"
        assert waited < RELEASE_SECONDS
        assert current_holder(engine) is not None and current_holder(engine).holder == "next-sync"  # type: ignore[union-attr]
    finally:
        lock.release()
    assert current_holder(engine) is None


def test_property_39_taking_over_a_dead_holders_lock_is_a_logged_recovery_action(
    engine: sa.Engine, holder_process: subprocess.Popen[str]
) -> None:
    db = Database(engine=engine, clock=FixedClock(NOW))
    holder_process.kill()
    holder_process.wait(timeout=30)
    deadline = time.monotonic() + RELEASE_SECONDS
    while True:
        try:
            lock = take_sync_lock(db, "next-sync")
            break
        except SyncRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with lock, engine.connect() as conn:
        [event] = db.audit.errors(conn, "next-sync")
    assert event["rule"] == "recovery:lock_takeover" and "dead-sync" in event["message"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_sqlite_lock_file_sits_beside_the_database(engine: sa.Engine) -> None:
    path = lock_file_path(engine)
    assert path is not None and str(path) == os.path.abspath(str(engine.url.database)) + ".lock"
    with SyncLock(engine) as first:
        assert first.try_acquire("one", now=NOW)
        assert path.exists()
        assert not SyncLock(engine).try_acquire("two", now=NOW)  # two opens of the file conflict, even in-process
    with SyncLock(engine) as again:
        assert again.try_acquire("two", now=NOW)


def test_in_memory_sqlite_uses_a_process_lock() -> None:
    engine = make_engine("sqlite://", poolclass=sa.pool.StaticPool)
    upgrade(engine)
    assert lock_file_path(engine) is None
    with SyncLock(engine) as first:
        assert first.try_acquire("one", now=NOW)
        assert not SyncLock(engine).try_acquire("two", now=NOW)
        assert current_holder(engine) is not None
    assert current_holder(engine) is None
    engine.dispose()


def test_one_lock_object_serves_one_sync(engine: sa.Engine) -> None:
    with SyncLock(engine) as lock:
        assert lock.try_acquire("one", now=NOW)
        with pytest.raises(RuntimeError, match="one SyncLock per sync"):
            lock.try_acquire("two", now=NOW)
        assert lock.is_held() and not lock.ensure_held()
    assert not lock.is_held()
