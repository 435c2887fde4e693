"""Fault suite: a record the database refuses is isolated, queued, retried and repaired (Requirement 7.4; P30, P31).

On the real SQLite and Postgres, a trigger refuses one seller. The sync writes every other seller, logs the refused
one with the database's message and queues it in `sync_retry_queue`. With the trigger removed, the retry run that
`failed_record_retry_sensor` requests (seller_resync_job, executed through the real Dagster definitions) writes it,
and it leaves the queue; each test ends by comparing the whole database with the valid sheet by content hash. A
moved FixedClock shows the retry is requested after `retry_delay_minutes`, not before, and that the critical
`retry_exhausted` alert follows the last failed retry. Does not touch the command line or the network.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from sync_pipeline.definitions import defs
from sync_pipeline.defs.resources import SellerSheet, SyncDatabase
from sync_pipeline.defs.retry_sensors import RETRY_OF_TAG, failed_record_retry_sensor, retry_run_request
from sync_pipeline.domain.alerts import AlertType, Severity
from sync_pipeline.domain.audit import SyncKind, SyncStatus
from sync_pipeline.domain.clock import FixedClock
from sync_pipeline.services.alerts import list_alerts
from sync_pipeline.services.database import Database
from sync_pipeline.services.resync import resync_from_source, sync_verify_repair
from sync_pipeline.services.retry_queue import due_retries
from sync_pipeline_tests.support import tamper
from sync_pipeline_tests.support.faults import assert_database_matches_sheet, queue, rules, sync_rows
from sync_pipeline_tests.support.sample_sheet import write_csv
from sync_pipeline_tests.support.sheets import HEADER, seller_row, sheet

KEYS = [f"RQ{i:05d}" for i in range(1, 41)]
REFUSED = KEYS[7]
ROWS = [HEADER, *(seller_row(k, name=f"売主{k[-3:]}") for k in KEYS)]
START = dt.datetime(
    2026, 1, 15, 9, 0, tzinfo=dt.UTC
)  # in the past: the sensor (system clock) sees these retries as due


@pytest.fixture
def db(engine: sa.Engine) -> Iterator[Database]:
    yield Database(engine=engine, clock=FixedClock(START))
    tamper.drop_reject_trigger(engine)


def sensor_context(database_url: str, instance: dg.DagsterInstance) -> dg.SensorEvaluationContext:
    """The sensor's context with the real database resource (a context manager: the resource opens its engine)."""
    return dg.build_sensor_context(instance=instance, resources={"database": SyncDatabase(url=database_url)})


def errors_of(db: Database, sync_id: str) -> list[dict]:
    with db.engine.connect() as conn:
        return [dict(e) for e in db.audit.errors(conn, sync_id)]


def test_property_31_a_refused_record_is_queued_and_the_sensors_retry_run_repairs_it(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    csv = write_csv(tmp_path / "sellers.csv", ROWS)
    tamper.install_reject_trigger(db.engine, REFUSED)

    run = sync_verify_repair(db, sheet(ROWS[1:]))

    # The good records are written, the bad one is logged with the database's message and queued.
    assert run.summary.status is SyncStatus.PARTIAL and run.summary.counts.failed == 1
    assert tamper.seller_numbers(db.engine) == set(KEYS) - {REFUSED}
    events = errors_of(db, run.summary.sync_id)
    assert rules(events)[:3] == ["recovery:chunk_retry", "write_failed", "recovery:record_retry"]
    [failed] = [e for e in events if e["rule"] == "write_failed"]
    assert failed["seller_number"] == REFUSED and "refused by the test trigger" in failed["message"]
    queued = queue(db.engine)[REFUSED]
    # One counted failure: the automatic gap resync's, right after the sync's, came before a retry was due.
    assert queued["attempts"] == 1 and "refused by the test trigger" in queued["last_error"]
    assert queued["due_at"] == START + dt.timedelta(minutes=db.settings().retry_delay_minutes)

    # The cause is removed; the sensor asks for a retry run of exactly that seller, once.
    tamper.drop_reject_trigger(db.engine)
    with dg.instance_for_test() as instance:
        with sensor_context(database_url, instance) as context:
            request = failed_record_retry_sensor(context)
        assert isinstance(request, dg.RunRequest)
        assert request.run_config == {"ops": {"resync_sellers": {"config": {"seller_numbers": [REFUSED]}}}}
        assert request.tags[RETRY_OF_TAG] == REFUSED and request.run_key
        with sensor_context(database_url, instance) as context:
            again = failed_record_retry_sensor(context)
        assert isinstance(again, dg.RunRequest) and again.run_key == request.run_key  # Dagster launches a key once

        result = defs.resolve_job_def("seller_resync_job").execute_in_process(
            run_config=request.run_config,
            tags=request.tags,
            instance=instance,
            resources={"database": SyncDatabase(url=database_url), "sheet": SellerSheet(source=str(csv))},
        )
    assert result.success

    assert queue(db.engine) == {}
    assert assert_database_matches_sheet(db.engine, ROWS) == len(KEYS)
    [retry] = [r for r in sync_rows(db.engine) if r["run_id"] == result.run_id]
    assert (retry["kind"], retry["trigger"], retry["status"]) == (
        SyncKind.RESYNC.value,
        "failed_record_retry_sensor",
        SyncStatus.SUCCEEDED.value,
    )
    retry_events = errors_of(db, retry["sync_id"])
    assert rules(retry_events) == ["recovery:resync", "recovery:record_retry"]
    assert "left the retry queue" in retry_events[-1]["message"] and retry_events[-1]["seller_number"] == REFUSED
    with dg.instance_for_test() as instance, sensor_context(database_url, instance) as context:
        skipped = failed_record_retry_sensor(context)
    assert isinstance(skipped, dg.SkipReason) and "empty" in (skipped.skip_message or "")


def test_the_retry_is_requested_after_the_delay_and_the_alert_follows_the_last_attempt(db: Database) -> None:
    clock = db.clock
    assert isinstance(clock, FixedClock)
    with db.engine.begin() as conn:  # no automatic gap resync: each write below is one counted attempt
        db.config.save(
            conn, {"auto_recovery": "false", "retry_delay_minutes": "5", "retry_max_attempts": "2"}, now=START
        )
    tamper.install_reject_trigger(db.engine, REFUSED)
    first = sync_verify_repair(db, sheet(ROWS[1:])).summary
    assert first.failures.keys() == {REFUSED}

    def retry_now() -> None:
        request = retry_run_request(db, clock.now())
        assert isinstance(request, dg.RunRequest), request
        keys = request.run_config["ops"]["resync_sellers"]["config"]["seller_numbers"]
        resync_from_source(db, sheet(ROWS[1:]), keys, trigger="failed_record_retry_sensor")

    keys_seen: list[str | None] = []
    for attempt in (1, 2):  # retry_max_attempts=2 retries after the first failure
        clock.advance(minutes=4, seconds=59)
        early = retry_run_request(db, clock.now())
        assert isinstance(early, dg.SkipReason) and "1 waiting" in (early.skip_message or "")
        assert due_retries(db) == []
        clock.advance(seconds=1)  # exactly retry_delay_minutes after the last failure
        request = retry_run_request(db, clock.now())
        assert isinstance(request, dg.RunRequest)
        keys_seen.append(request.run_key)
        assert list_alerts(db, alert_type=AlertType.RETRY_EXHAUSTED) == []  # not before the last attempt
        retry_now()
        assert queue(db.engine)[REFUSED]["attempts"] == attempt + 1
    assert len(set(keys_seen)) == 2  # a new attempt is a new run key

    [alert] = list_alerts(db, alert_type=AlertType.RETRY_EXHAUSTED)
    assert alert.severity is Severity.CRITICAL
    assert REFUSED in alert.message and "refused by the test trigger" in alert.message
    assert alert.detail["seller_numbers"] == [REFUSED]
    clock.advance(hours=5)
    assert due_retries(db) == []  # out of retries: no more runs, and no second alert
    exhausted = retry_run_request(db, clock.now())
    assert isinstance(exhausted, dg.SkipReason) and "1 out of retries" in (exhausted.skip_message or "")

    # Fixed at last: the next regular sync writes it, and it leaves the queue.
    tamper.drop_reject_trigger(db.engine)
    clock.advance(minutes=1)
    assert sync_verify_repair(db, sheet(ROWS[1:])).summary.status is SyncStatus.SUCCEEDED
    assert queue(db.engine) == {}
    assert len(list_alerts(db, alert_type=AlertType.RETRY_EXHAUSTED)) == 1
    assert assert_database_matches_sheet(db.engine, ROWS) == len(KEYS)
    with db.engine.connect() as conn:
        logged = [e for e in db.audit.errors(conn, first.sync_id) if e["rule"] == "recovery:record_retry"]
    assert [e["seller_number"] for e in logged] == [REFUSED] and "retry 1 of 2" in logged[0]["message"]


def test_a_record_refused_on_every_sync_of_a_one_minute_schedule_is_retried_only_when_due(db: Database) -> None:
    """Every minute for 30 minutes a scheduled sync (with its automatic gap resync) fails on the refused record,
    and half a minute later the retry sensor ticks: only the attempts made `retry_delay_minutes` apart count."""
    clock = db.clock
    assert isinstance(clock, FixedClock)
    delay, limit = 5, 3
    with db.engine.begin() as conn:
        db.config.save(
            conn,
            {"sync_interval_minutes": "1", "retry_delay_minutes": str(delay), "retry_max_attempts": str(limit)},
            now=START,
        )
    tamper.install_reject_trigger(db.engine, REFUSED)
    counted_at: list[dt.datetime] = []  # when the queue's count of failed writes moved
    alerts_at: dict[int, dt.datetime] = {}
    for _minute in range(31):
        minute_start = clock.now()
        for face in ("schedule", "sensor"):
            if face == "schedule":
                sync_verify_repair(db, sheet(ROWS[1:]))
            else:
                request = retry_run_request(db, clock.now())
                if isinstance(request, dg.RunRequest):
                    keys = request.run_config["ops"]["resync_sellers"]["config"]["seller_numbers"]
                    resync_from_source(db, sheet(ROWS[1:]), keys, trigger="failed_record_retry_sensor")
            attempts = queue(db.engine)[REFUSED]["attempts"]
            if attempts > len(counted_at):
                counted_at.append(clock.now())
            for alert in list_alerts(db, alert_type=AlertType.RETRY_EXHAUSTED):
                alerts_at.setdefault(alert.id, clock.now())
            clock.advance(seconds=30)
        assert clock.now() == minute_start + dt.timedelta(minutes=1)

    # The first failure and retry_max_attempts retries, each at least retry_delay_minutes after the one before.
    assert len(counted_at) == 1 + limit
    assert all(b - a >= dt.timedelta(minutes=delay) for a, b in itertools.pairwise(counted_at))
    assert counted_at[-1] - counted_at[0] >= dt.timedelta(minutes=delay * limit)
    # Exactly one retry_exhausted alert, raised by the last retry, not before.
    assert list(alerts_at.values()) == [counted_at[-1]]
    assert queue(db.engine)[REFUSED]["attempts"] == 1 + limit
