"""Health and metrics services on real SQLite and Postgres: Properties 18-25 and 27 (the SQL paths agree with the pure
rules of domain/metrics.py, which test_metrics_properties.py checks on their own).

Histories are written straight into the audit log (support/history.py) with a fixed clock; the metrics of a real sync
come from services.resync.sync_verify_repair over an in-memory sheet (the lifecycle records them when a sync
closes). No Dagster, no CLI (test_health_faces.py).
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_pipeline.adapters.store.tables import sync_metrics
from sync_pipeline.domain.alerts import AlertType, Severity
from sync_pipeline.domain.audit import ErrorLog, SyncStatus
from sync_pipeline.domain.clock import FixedClock
from sync_pipeline.domain.errors import ErrorCategory
from sync_pipeline.domain.metrics import DAY, WEEK, SyncSample, success_rate
from sync_pipeline.services.alerts import acknowledge, list_alerts, raise_alert
from sync_pipeline.services.database import Database
from sync_pipeline.services.health import health
from sync_pipeline.services.metrics import SyncStillRunningError, record_sync_metrics
from sync_pipeline.services.resync import sync_verify_repair
from sync_pipeline_tests.support import tamper
from sync_pipeline_tests.support.db import reset_database
from sync_pipeline_tests.support.history import add_sync
from sync_pipeline_tests.support.sheets import seller_row, sheet

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
DB_EXAMPLES = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None, max_examples=12
)


@pytest.fixture
def db(engine: sa.Engine) -> Database:
    return Database(engine=engine, clock=FixedClock(NOW))


history_entries = st.lists(
    st.tuples(
        st.integers(0, 9 * 86400),  # seconds before NOW: some outside the 7-day window
        st.sampled_from([s.value for s in SyncStatus]),
        st.sampled_from(["scheduled", "manual", "retry", "resync"]),
    ),
    max_size=25,
)


@DB_EXAMPLES
@given(entries=history_entries, edge=st.sampled_from([DAY, WEEK]))
def test_property_19_health_rates_equal_the_domain_rule_over_exactly_24h_and_7d(
    engine: sa.Engine, entries: list[tuple[int, str, str]], edge: dt.timedelta
) -> None:
    reset_database(engine)
    db = Database(engine=engine, clock=FixedClock(NOW))
    # One sync exactly on the window's start (counted) and one at NOW (not counted: the end is exclusive).
    entries = [*entries, (int(edge.total_seconds()), "failed", "scheduled"), (0, "failed", "scheduled")]
    samples = []
    for seconds_before, status, kind in entries:
        started = NOW - dt.timedelta(seconds=seconds_before)
        add_sync(db, started, status, kind=kind, metrics=False)
        samples.append(SyncSample(started_at=started, status=status, kind=kind))
    figures = health(db, NOW)
    assert figures.rate_24h == success_rate(samples, NOW, DAY)
    assert figures.rate_7d == success_rate(samples, NOW, WEEK)
    for rate in (figures.success_rate_24h, figures.success_rate_7d):
        assert rate is None or 0.0 <= rate <= 1.0


def test_property_18_last_attempt_and_last_success(db: Database) -> None:
    assert health(db, NOW).last_attempt_at is None and health(db, NOW).minutes_since_last_success is None
    ok = NOW - dt.timedelta(hours=3)
    add_sync(db, ok, "partial", duration_s=60)
    add_sync(db, NOW - dt.timedelta(hours=2), "failed", duration_s=5)
    add_sync(db, NOW - dt.timedelta(hours=1), "skipped", duration_s=None)  # refused by the lock: not an attempt
    add_sync(db, NOW - dt.timedelta(minutes=30), "succeeded", kind="resync")  # part of its parent sync
    figures = health(db, NOW)
    assert figures.last_attempt_at == NOW - dt.timedelta(hours=2)
    assert figures.last_attempt_status == "failed"
    assert figures.last_success_at == ok + dt.timedelta(seconds=60)  # when it finished
    assert figures.minutes_since_last_success == pytest.approx(179.0)
    assert figures.last_duration_s == 5


def test_property_20_gap_count_is_the_latest_verifications(db: Database) -> None:
    assert health(db, NOW).gap_count is None
    add_sync(db, NOW - dt.timedelta(hours=2), gaps_found=4)
    assert health(db, NOW).gap_count == 4
    add_sync(db, NOW - dt.timedelta(hours=1), "failed")  # no verification: the last one still stands
    add_sync(db, NOW - dt.timedelta(minutes=50), kind="resync", gaps_found=1)  # the resync verified again
    assert health(db, NOW).gap_count == 1


def test_property_21_recent_syncs_and_open_alerts(db: Database) -> None:
    ids = [add_sync(db, NOW - dt.timedelta(minutes=m)) for m in range(15, 0, -1)]
    with db.engine.begin() as conn:
        first = raise_alert(conn, AlertType.GAPS_FOUND, Severity.WARNING, "2 gaps", now=NOW - dt.timedelta(hours=1))
        raise_alert(conn, AlertType.CONSECUTIVE_FAILURES, Severity.CRITICAL, "3 failures", now=NOW)
    acknowledge(db, [first.id])
    figures = health(db, NOW)
    assert [s.sync_id for s in figures.recent_syncs] == ids[::-1][:10]  # most recent first
    assert figures.open_alerts == 1
    assert [(a.alert_type, a.severity) for a in figures.open_alert_list] == [("consecutive_failures", "critical")]


def test_property_22_trend_has_each_syncs_duration_throughput_and_counts_oldest_first(db: Database) -> None:
    for minutes, duration in ((30, 10.0), (20, 20.0), (10, 40.0)):
        add_sync(db, NOW - dt.timedelta(minutes=minutes), duration_s=duration, rows_read=200)
    trend = health(db, NOW).trend
    assert [p.duration_s for p in trend] == [10.0, 20.0, 40.0]
    assert [p.rows_per_s for p in trend] == [20.0, 10.0, 5.0]
    assert all(p.rows_read == 200 and p.phases["fetch"] == 0.5 for p in trend)
    week = health(db, NOW).week
    assert (week.duration_s.count, week.duration_s.p50, week.duration_s.max) == (3, 20.0, 40.0)


def test_property_23_every_sync_records_its_phases_throughput_and_errors_when_it_closes(
    engine: sa.Engine,
) -> None:
    db = Database(engine=engine)  # the system clock: a real duration
    keys = [f"MT{i:05d}" for i in range(1, 31)]
    rows = [seller_row(k) for k in keys] + [seller_row("bad key"), seller_row("MT99999", name="")]
    first = sync_verify_repair(db, sheet(rows))
    tamper.delete_sellers(engine, keys[:3])
    second = sync_verify_repair(db, sheet(rows))  # finds 3 gaps and resyncs them in a sync of its own

    def stored(sync_id: str) -> dict:
        with db.engine.connect() as conn:
            query = sa.select(sync_metrics).where(sync_metrics.c.sync_id == sync_id)
            return dict(conn.execute(query).mappings().one())  # exactly one row per sync, written by the lifecycle

    for done in (first, second):
        row = stored(done.summary.sync_id)
        assert row["fetch_s"] > 0 and row["validate_s"] > 0 and row["compare_s"] > 0 and row["update_s"] >= 0
        assert row["verify_s"] > 0
        assert row["rows_read"] == 32
        assert row["rows_per_s"] == pytest.approx(32 / row["duration_s"])
        # Two rejected rows: one bad key format and one missing name, both integrity rules (P25).
        assert row["errors_by_category"]["integrity"] >= 2
        assert row["error_count"] == sum(row["errors_by_category"].values())
    assert stored(first.summary.sync_id)["resync_s"] == 0.0  # nothing to repair the first time
    resync_id = second.resync.sync_id
    assert resync_id is not None
    resync_row = stored(resync_id)
    assert resync_row["kind"] == "resync"
    # The parent's resync phase is its resync's whole duration, refreshed when the resync closed.
    assert stored(second.summary.sync_id)["resync_s"] == pytest.approx(resync_row["duration_s"])

    metrics = record_sync_metrics(db, second.summary.sync_id)  # recording again rewrites the one row
    assert metrics is not None
    assert metrics.numeric_metadata()["resync_seconds"] == round(metrics.phases["resync"], 4)
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sync_metrics)).scalar_one() == 3


def test_metrics_of_a_running_sync_are_refused_and_a_skipped_one_has_none(db: Database) -> None:
    running = add_sync(db, NOW, "running")
    with pytest.raises(SyncStillRunningError):
        record_sync_metrics(db, running)
    assert record_sync_metrics(db, add_sync(db, NOW, "skipped", metrics=False)) is None


def test_property_27_a_slow_sync_raises_one_slow_sync_warning(db: Database) -> None:
    for day in range(1, 6):  # five successful 10 s syncs in the last 7 days; an old slow one outside the window
        add_sync(db, NOW - dt.timedelta(days=day), duration_s=10.0)
    add_sync(db, NOW - dt.timedelta(days=8), duration_s=1.0)
    add_sync(db, NOW - dt.timedelta(hours=1), duration_s=20.0)  # exactly 2 x the median: not slow
    assert list_alerts(db, alert_type=AlertType.SLOW_SYNC) == []

    slow = add_sync(db, NOW - dt.timedelta(minutes=1), duration_s=25.0)
    record_sync_metrics(db, slow)  # recorded twice: still one alert
    alerts = list_alerts(db, alert_type=AlertType.SLOW_SYNC)
    assert len(alerts) == 1 and alerts[0].severity is Severity.WARNING and alerts[0].sync_id == slow
    assert alerts[0].detail["median_s"] == 10.0 and "update" in alerts[0].message


def test_property_27_too_few_samples_never_judge_a_sync_slow(db: Database) -> None:
    for day in range(1, 5):  # four samples, the setting asks for five
        add_sync(db, NOW - dt.timedelta(days=day), duration_s=1.0)
    add_sync(db, NOW, duration_s=500.0)
    assert list_alerts(db, alert_type=AlertType.SLOW_SYNC) == []


def test_health_shows_times_in_the_sheet_timezone(db: Database) -> None:
    add_sync(db, NOW - dt.timedelta(hours=1), duration_s=30)
    shown = health(db, NOW).as_dict()
    assert shown["timezone"] == "Asia/Tokyo"
    assert shown["last_attempt_at"] == "2026-03-10 20:00:00+09:00"
    with db.engine.begin() as conn:
        db.config.save(conn, {"sheet_timezone": "Europe/London"}, now=NOW)
    assert health(db, NOW).as_dict()["last_attempt_at"] == "2026-03-10 11:00:00+00:00"


def test_property_24_throughput_is_rows_read_per_second_of_the_whole_sync(db: Database) -> None:
    measured = record_sync_metrics(db, add_sync(db, NOW - dt.timedelta(hours=1), duration_s=8.0, rows_read=400))
    assert measured is not None and measured.rows_per_s == 50.0
    instant = record_sync_metrics(db, add_sync(db, NOW, duration_s=0.0, rows_read=400))
    assert instant is not None and instant.rows_per_s is None  # no time measured: no throughput, not infinity


def test_property_25_errors_are_counted_by_category(db: Database) -> None:
    sync_id = add_sync(db, NOW - dt.timedelta(minutes=5), metrics=False)
    logged = [ErrorCategory.NETWORK, ErrorCategory.VALIDATION, ErrorCategory.VALIDATION, ErrorCategory.DATABASE]
    with db.engine.begin() as conn:
        db.audit.log_errors(conn, sync_id, [ErrorLog(c, f"{c} problem") for c in logged], NOW)
        db.audit.log_errors(conn, None, [ErrorLog(ErrorCategory.UNKNOWN, "not this sync's")], NOW)
    measured = record_sync_metrics(db, sync_id)
    assert measured is not None
    assert dict(measured.errors_by_category) == {"network": 1, "validation": 2, "database": 1}
    assert measured.error_count == 4
    assert measured.numeric_metadata()["errors_validation"] == 2
