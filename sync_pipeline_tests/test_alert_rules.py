"""The alert rules (Requirements 3.1, 3.3, Property 11) evaluated from the audit log on real SQLite and Postgres.

Failed syncs are made two ways: realistically, by syncing from a CSV file that does not exist through
`services.resync.sync_verify_repair` (the sync opens, the read fails, the audit row is closed as failed), and, where
a test needs statuses no service writes yet (skipped) or exact times, by writing audit rows through
`AuditStore.start/finish`. Time comes from a FixedClock. Does not touch Dagster (test_alert_sensors.py) or e-mail
(test_alert_email.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_pipeline.adapters.sheets.file import FileSheetSource
from sync_pipeline.domain.alert_rules import COUNTED_KINDS, FAILURE_STATUSES, SUCCESS_STATUSES
from sync_pipeline.domain.alerts import Alert, AlertType, Severity
from sync_pipeline.domain.audit import AuditQuery, SyncKind, SyncStatus
from sync_pipeline.domain.clock import FixedClock
from sync_pipeline.domain.errors import SheetReadError, SyncRefusedError
from sync_pipeline.services.alert_rules import evaluate_after_sync, evaluate_rules
from sync_pipeline.services.alerts import list_alerts
from sync_pipeline.services.database import Database, open_database
from sync_pipeline.services.resync import sync_verify_repair
from sync_pipeline_tests.support.db import reset_database
from sync_pipeline_tests.support.sheets import seller_row, sheet

START = dt.datetime(2026, 3, 2, 9, 0)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def db(database_url: str, clock: FixedClock) -> Iterator[Database]:
    database = open_database(database_url, clock=clock)
    yield database
    database.engine.dispose()


def failing_sync(db: Database, tmp_path: Path) -> str:
    """A real sync that fails: its sheet is a CSV file that does not exist."""
    with pytest.raises(SheetReadError):
        sync_verify_repair(db, FileSheetSource(tmp_path / "no-such-sheet.csv"), trigger="test")
    with db.engine.connect() as conn:
        row = db.audit.latest(conn)
    assert row is not None and row["status"] == SyncStatus.FAILED.value
    return str(row["sync_id"])


def good_sync(db: Database) -> str:
    done = sync_verify_repair(db, sheet([seller_row("AL00001"), seller_row("AL00002")]), trigger="test")
    assert done.summary.status is SyncStatus.SUCCEEDED
    return done.summary.sync_id


def audit_entry(
    db: Database, status: SyncStatus, *, kind: SyncKind = SyncKind.SCHEDULED, run_id: str | None = None
) -> str:
    """An audit row opened and closed now with `status` (what the lifecycle writes for a sync that ended so)."""
    sync_id = str(uuid.uuid4())
    now = db.clock.now()
    with db.engine.begin() as conn:
        db.audit.start(conn, sync_id=sync_id, kind=kind, started_at=now, run_id=run_id, trigger="test")
        if status is not SyncStatus.RUNNING:
            db.audit.finish(conn, sync_id, status=status, finished_at=now, message=f"ended {status.value}")
    return sync_id


def alerts_of(db: Database, alert_type: AlertType) -> list[Alert]:
    return list_alerts(db, alert_type=alert_type, limit=100)


def tick(clock: FixedClock, minutes: float = 5) -> None:
    clock.advance(minutes=minutes)


def test_three_failed_syncs_raise_exactly_one_alert_however_often_evaluated(
    db: Database, clock: FixedClock, tmp_path: Path
) -> None:
    good_sync(db)
    failed = []
    for _ in range(3):
        tick(clock)
        failed.append(failing_sync(db, tmp_path))
        evaluate_rules(db)  # after every sync, as the lifecycle will: the first two see a streak below threshold
    for _ in range(4):
        evaluate_rules(db)
    [alert] = alerts_of(db, AlertType.CONSECUTIVE_FAILURES)
    assert alert.severity is Severity.CRITICAL
    assert alert.sync_id == failed[-1]  # the e-mail links to the latest failed run
    assert alert.detail["failures"] == 3 and alert.detail["first_failure_sync_id"] == failed[0]
    assert "3 syncs in a row have failed" in alert.message and "no-such-sheet.csv" in alert.message


def test_a_success_ends_the_streak_and_three_more_failures_raise_a_second_alert(
    db: Database, clock: FixedClock, tmp_path: Path
) -> None:
    for _ in range(3):
        tick(clock)
        failing_sync(db, tmp_path)  # the lifecycle evaluates the rules as each sync closes
    evaluate_rules(db)
    assert len(alerts_of(db, AlertType.CONSECUTIVE_FAILURES)) == 1
    tick(clock)
    good_sync(db)
    tick(clock)
    failing_sync(db, tmp_path)
    evaluate_rules(db)
    assert len(alerts_of(db, AlertType.CONSECUTIVE_FAILURES)) == 1  # a new streak of one
    for _ in range(2):
        tick(clock)
        failing_sync(db, tmp_path)
    evaluate_rules(db)
    evaluate_rules(db)
    second, first = alerts_of(db, AlertType.CONSECUTIVE_FAILURES)
    assert first.detail["rule_key"] != second.detail["rule_key"]
    assert second.detail["failures"] == 3 and second.detail["last_success_sync_id"] is not None


def test_five_refused_syncs_raise_no_alert(db: Database, clock: FixedClock) -> None:
    audit_entry(db, SyncStatus.SUCCEEDED)
    for _ in range(5):  # five launched at once: the lock refused them all (one more is still running)
        audit_entry(db, SyncStatus.SKIPPED)
    audit_entry(db, SyncStatus.RUNNING)
    result = evaluate_rules(db)
    assert result.raised == ()
    assert "0 failed sync(s)" in result.summary()
    assert alerts_of(db, AlertType.CONSECUTIVE_FAILURES) == []


def test_skipped_and_cancelled_neither_count_nor_end_a_streak_and_abandoned_counts(
    db: Database, clock: FixedClock
) -> None:
    audit_entry(db, SyncStatus.SUCCEEDED)
    for status in (SyncStatus.FAILED, SyncStatus.SKIPPED, SyncStatus.CANCELLED, SyncStatus.ABANDONED):
        tick(clock)
        audit_entry(db, status)
    assert evaluate_rules(db).raised == ()  # two failures (failed, abandoned) so far
    tick(clock)
    audit_entry(db, SyncStatus.FAILED)
    [alert] = evaluate_rules(db).raised
    assert alert.detail["failures"] == 3


def test_resyncs_do_not_count_and_a_partial_sync_is_a_success(db: Database, clock: FixedClock) -> None:
    for status in (SyncStatus.FAILED, SyncStatus.FAILED):
        tick(clock)
        audit_entry(db, status)
    tick(clock)
    audit_entry(db, SyncStatus.FAILED, kind=SyncKind.RESYNC)  # a failed resync alerts on its own (resync_failed)
    tick(clock)
    audit_entry(db, SyncStatus.SUCCEEDED, kind=SyncKind.RESYNC)  # nor does a resync's success end the streak
    assert evaluate_rules(db).raised == ()
    tick(clock)
    audit_entry(db, SyncStatus.FAILED, kind=SyncKind.RETRY)
    assert len(evaluate_rules(db).raised) == 1
    tick(clock)
    audit_entry(db, SyncStatus.PARTIAL, kind=SyncKind.MANUAL)
    for _ in range(2):
        tick(clock)
        audit_entry(db, SyncStatus.FAILED)
    assert evaluate_rules(db).raised == ()


def test_the_threshold_is_read_on_every_evaluation(db: Database, clock: FixedClock) -> None:
    for _ in range(2):
        tick(clock)
        audit_entry(db, SyncStatus.FAILED)
    assert evaluate_rules(db).raised == ()
    with db.engine.begin() as conn:
        db.config.save(conn, {"consecutive_failure_threshold": "2"}, now=clock.now())
    [alert] = evaluate_rules(db).raised
    assert alert.detail["threshold"] == 2


def test_missed_sync_rule_raises_once_per_silent_period(db: Database, clock: FixedClock) -> None:
    audit_entry(db, SyncStatus.SUCCEEDED)
    clock.advance(hours=1.5)
    audit_entry(db, SyncStatus.FAILED)
    assert evaluate_rules(db).raised == ()  # 1.5 h of the 2 h allowed
    clock.advance(hours=1)
    [alert] = evaluate_rules(db).raised
    assert alert.alert_type == AlertType.NO_RECENT_SUCCESS and alert.severity is Severity.WARNING
    assert alert.detail["since"] == START.isoformat(sep=" ", timespec="seconds")
    assert "2.5 h" in alert.message
    clock.advance(hours=5)
    result = evaluate_rules(db)
    assert result.raised == () and "already alerted" in result.summary()
    audit_entry(db, SyncStatus.SUCCEEDED)  # the silence ends; a new one starts here
    clock.advance(hours=2.1)
    assert [a.alert_type for a in evaluate_rules(db).raised] == [AlertType.NO_RECENT_SUCCESS]
    assert len(alerts_of(db, AlertType.NO_RECENT_SUCCESS)) == 2


def test_missed_sync_rule_counts_from_the_first_sync_when_none_ever_succeeded(db: Database, clock: FixedClock) -> None:
    assert "no sync has run yet" in evaluate_rules(db).summary()
    clock.advance(hours=10)  # an empty audit log is not a silence: nothing ran to measure from
    assert evaluate_rules(db).raised == ()
    audit_entry(db, SyncStatus.CANCELLED)
    clock.advance(hours=2, minutes=1)
    [alert] = evaluate_rules(db, rules=["no_recent_success"]).raised
    assert alert.detail["last_success_sync_id"] is None and "the first sync" in alert.message


def test_property_11_every_alert_is_logged_with_its_severity(
    db: Database, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(3):
        tick(clock)
        audit_entry(db, SyncStatus.FAILED)
    clock.advance(hours=3)
    heard: list[Alert] = []
    with caplog.at_level(logging.INFO, logger="sync_pipeline.alerts"):
        raised = evaluate_rules(db, on_alert=heard.append).raised
    assert {a.alert_type for a in raised} == {AlertType.CONSECUTIVE_FAILURES, AlertType.NO_RECENT_SUCCESS}
    assert heard == list(raised)  # the listener (a Dagster context.log in the sensors) hears every alert
    logged = {(r.levelno, r.getMessage().split("]")[0]) for r in caplog.records if r.getMessage().startswith("ALERT")}
    assert logged == {
        (logging.CRITICAL, "ALERT CRITICAL [consecutive_failures"),
        (logging.WARNING, "ALERT WARNING [no_recent_success"),
    }


def expected_streak_alerts(events: list[tuple[SyncKind, SyncStatus, int]], threshold: int) -> int:
    """The model: counted failures in a row, reset by a counted success; a streak that has reached the threshold
    when the rules are evaluated alerts, once."""
    alerts = streak = 0
    alerted = False
    for kind, status, evaluations in [*events, (SyncKind.RESYNC, SyncStatus.SKIPPED, 1)]:  # the final evaluation
        if kind in COUNTED_KINDS and status in FAILURE_STATUSES:
            streak += 1
        elif kind in COUNTED_KINDS and status in SUCCESS_STATUSES:
            streak, alerted = 0, False
        if evaluations and streak >= threshold and not alerted:
            alerts, alerted = alerts + 1, True
    return alerts


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(list(SyncKind)),
        st.sampled_from([s for s in SyncStatus if s is not SyncStatus.RUNNING]),
        st.integers(min_value=0, max_value=2),  # evaluations after this sync: none, one, or repeated
    ),
    max_size=14,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(events=EVENTS, threshold=st.integers(min_value=1, max_value=4))
def test_one_consecutive_failures_alert_per_streak_for_any_history(
    db: Database, clock: FixedClock, events: list[tuple[SyncKind, SyncStatus, int]], threshold: int
) -> None:
    reset_database(db.engine)
    with db.engine.begin() as conn:
        db.config.save(conn, {"consecutive_failure_threshold": str(threshold)}, now=clock.now())
    for kind, status, evaluations in events:
        tick(clock, minutes=1)  # 14 minutes at most: no_recent_success (2 h) stays quiet
        audit_entry(db, status, kind=kind)
        for _ in range(evaluations):
            evaluate_rules(db)
    evaluate_rules(db)
    evaluate_rules(db)
    assert len(alerts_of(db, AlertType.CONSECUTIVE_FAILURES)) == expected_streak_alerts(events, threshold)


def test_the_after_sync_hook_evaluates_and_survives_a_database_error(
    db: Database, clock: FixedClock, tmp_path: Path
) -> None:
    for _ in range(3):
        tick(clock)
        audit_entry(db, SyncStatus.FAILED)
    result = evaluate_after_sync(db)
    assert result is not None and len(result.raised) == 1
    broken = open_database(f"sqlite:///{tmp_path / 'empty.db'}", migrate=False)  # no tables: every query fails
    assert evaluate_after_sync(broken) is None  # logged; the sync that called it is already closed


def test_every_finished_sync_evaluates_the_rules_through_the_lifecycle(
    db: Database, clock: FixedClock, tmp_path: Path
) -> None:
    good_sync(db)
    for _ in range(3):
        tick(clock)
        failing_sync(db, tmp_path)  # nothing else evaluates: the sync's own close does (SyncRun._after_close)
    [alert] = alerts_of(db, AlertType.CONSECUTIVE_FAILURES)
    assert alert.detail["failures"] == 3


def test_five_syncs_launched_at_once_raise_no_alert(db: Database) -> None:
    source = sheet([seller_row(f"AL{i:05d}") for i in range(1, 200)])
    # Past the first start: default settings written by several syncs at once collide (a separate, known race).
    db.settings()
    start = threading.Barrier(5)
    outcomes: list[str] = []

    def launch() -> None:
        start.wait()
        try:
            outcomes.append(sync_verify_repair(db, source, trigger="test").summary.status.value)
        except SyncRefusedError:
            outcomes.append(SyncStatus.SKIPPED.value)

    threads = [threading.Thread(target=launch) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    with db.engine.connect() as conn:
        statuses = sorted(r["status"] for r in db.audit.query(conn, AuditQuery(limit=10)))
    assert len(statuses) == 5 and SyncStatus.SKIPPED.value in statuses  # the lock refused the latecomers
    assert set(statuses) <= {SyncStatus.SUCCEEDED.value, SyncStatus.SKIPPED.value}
    for _ in range(3):
        evaluate_rules(db)
    assert list_alerts(db, limit=100) == []
