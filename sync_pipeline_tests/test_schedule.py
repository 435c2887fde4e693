"""seller_sync_schedule: the pure "is a sync due" decision, and the schedule itself evaluated with
`build_schedule_context` against a real database (SQLite and Postgres) after a real sync through the services.

Exercises domain/schedule.py, services/schedule.py and defs/schedules.py with a test Dagster instance (for the
queue check). Does not start the daemon (test_ui_end_to_end.py does) and touches no sheet file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import dagster as dg
import pytest

from sync_pipeline.definitions import defs
from sync_pipeline.defs.resources import SyncDatabase
from sync_pipeline.defs.schedules import seller_sync_schedule
from sync_pipeline.domain.audit import SyncKind
from sync_pipeline.domain.schedule import SyncActivity, sync_due
from sync_pipeline.services.database import Database, open_database
from sync_pipeline.services.lifecycle import SyncRun
from sync_pipeline.services.resync import sync_verify_repair
from sync_pipeline.services.settings import update_settings
from sync_pipeline_tests.support.db import audit_row
from sync_pipeline_tests.support.sheets import seller_row, sheet

T0 = dt.datetime(2026, 12, 1, 9, 0, 0)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(database_url)
    yield database
    database.engine.dispose()


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def evaluate(instance: dg.DagsterInstance, database_url: str, at: dt.datetime) -> dg.RunRequest | dg.SkipReason:
    # A context manager: the database resource opens its engine for the evaluation and disposes of it afterwards.
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=at.replace(tzinfo=dt.UTC),
        resources={"database": SyncDatabase(url=database_url)},
    ) as context:
        data = seller_sync_schedule.evaluate_tick(context)
    if data.skip_message is not None:
        return dg.SkipReason(data.skip_message)
    assert data.run_requests is not None and len(data.run_requests) == 1, data
    return data.run_requests[0]


def test_the_schedule_is_registered_running_every_minute_for_the_sync_job() -> None:
    schedule = defs.resolve_schedule_def("seller_sync_schedule")
    assert schedule.cron_schedule == "* * * * *"
    assert schedule.job_name == "seller_sync_job"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_schedule_skips_right_after_a_sync_and_requests_a_run_past_the_interval(
    db: Database, database_url: str, instance: dg.DagsterInstance
) -> None:
    # A CLI-style manual sync counts as much as a scheduled one: the interval runs from its start.
    done = sync_verify_repair(db, sheet([seller_row("SC00001"), seller_row("SC00002")]), kind=SyncKind.MANUAL)
    started = audit_row(db, done.summary.sync_id)["started_at"]
    interval = db.settings().sync_interval_minutes

    skip = evaluate(instance, database_url, started + dt.timedelta(minutes=1))
    assert isinstance(skip, dg.SkipReason)
    due_at = started + dt.timedelta(minutes=interval)
    assert f"sync_interval_minutes={interval}" in (skip.skip_message or "")
    assert f"next is due at {due_at:%Y-%m-%d %H:%M:%S} UTC" in (skip.skip_message or "")

    request = evaluate(instance, database_url, started + dt.timedelta(minutes=interval, seconds=1))
    assert isinstance(request, dg.RunRequest)
    assert request.tags.get("sync_pipeline/trigger") == "seller_sync_schedule"


def test_schedule_reads_the_interval_and_the_pause_switch_on_every_tick(
    db: Database, database_url: str, instance: dg.DagsterInstance
) -> None:
    done = sync_verify_repair(db, sheet([seller_row("SC00003")]))
    at = audit_row(db, done.summary.sync_id)["started_at"] + dt.timedelta(minutes=10, seconds=1)
    assert isinstance(evaluate(instance, database_url, at), dg.SkipReason)  # default interval: 60 minutes
    update_settings(db, {"sync_interval_minutes": 10}, changed_by="test")
    assert isinstance(evaluate(instance, database_url, at), dg.RunRequest)  # same tick time, new setting
    update_settings(db, {"sync_paused": True}, changed_by="test")
    paused = evaluate(instance, database_url, at)
    assert isinstance(paused, dg.SkipReason) and "sync_paused" in (paused.skip_message or "")


def test_schedule_skips_while_a_sync_is_running(db: Database, database_url: str, instance: dg.DagsterInstance) -> None:
    update_settings(db, {"sync_interval_minutes": 1}, changed_by="test")
    with SyncRun(db, sheet([seller_row("SC00004")]), kind=SyncKind.MANUAL) as run:  # opened: the audit row says running
        skip = evaluate(instance, database_url, run.started_at + dt.timedelta(minutes=2))
        assert isinstance(skip, dg.SkipReason)
        assert "a sync is running" in (skip.skip_message or "") and run.sync_id in (skip.skip_message or "")
        # A "running" row whose holder no longer holds the lock is a dead sync: it does not block the schedule.
        run.lock.release()  # type: ignore[union-attr]  # what the kernel or the server does when the holder dies
        later = run.started_at + dt.timedelta(minutes=2)
        assert isinstance(evaluate(instance, database_url, later), dg.RunRequest)
        run.fail(RuntimeError("stopped by the test"))


def test_sync_due_decision() -> None:
    never = SyncActivity(last_started_at=None)
    assert sync_due(T0, interval_minutes=60, paused=False, activity=never).run
    assert not sync_due(T0, interval_minutes=60, paused=True, activity=never).run
    recent = SyncActivity(last_started_at=T0 - dt.timedelta(minutes=59, seconds=59))
    waiting = sync_due(T0, interval_minutes=60, paused=False, activity=recent)
    assert not waiting.run and waiting.next_due_at == T0 + dt.timedelta(seconds=1)
    exactly = SyncActivity(last_started_at=T0 - dt.timedelta(minutes=60))
    assert sync_due(T0, interval_minutes=60, paused=False, activity=exactly).run
    running = SyncActivity(last_started_at=T0 - dt.timedelta(hours=5), running_sync_id="abc", running_since=T0)
    verdict = sync_due(T0, interval_minutes=60, paused=False, activity=running)
    assert not verdict.run and "abc" in verdict.reason
