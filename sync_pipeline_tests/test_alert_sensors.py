"""The alert sensors and the acknowledge_alerts job against a real Dagster instance (`dg.instance_for_test()`) holding
real failed runs of seller_sync_job (its sheet is a CSV file that does not exist), on SQLite and Postgres.

Sensors are evaluated as the daemon would call them, with `build_run_status_sensor_context` and
`build_sensor_context`; e-mail goes to a real aiosmtpd server on 127.0.0.1. Does not run the daemon itself, the
schedule, or the command line.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from sync_pipeline.definitions import defs
from sync_pipeline.defs.alert_sensors import (
    WILL_RETRY_TAG,
    alert_delivery_sensor,
    consecutive_failures_sensor,
    missed_sync_sensor,
)
from sync_pipeline.defs.resources import AlertWebhooks, SellerSheet, SyncDatabase
from sync_pipeline.domain.alerts import AlertType
from sync_pipeline.domain.audit import SyncKind, SyncStatus
from sync_pipeline.services.alerts import list_alerts
from sync_pipeline.services.database import Database, open_database
from sync_pipeline_tests.support.smtp import MAIL_FROM, free_port, smtp_server
from sync_pipeline_tests.support.webhooks import webhook_server


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    # The project's dagster.yaml hands the `sync_pipeline` loggers to Dagster: alerts raised in a run reach its log.
    python_logs = yaml.safe_load((Path(__file__).parents[1] / "dagster.yaml").read_text())["python_logs"]
    with dg.instance_for_test(overrides={"python_logs": python_logs}) as test_instance:
        yield test_instance


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(database_url)
    yield database
    database.engine.dispose()


def failed_run(
    instance: dg.DagsterInstance, database_url: str, tmp_path: Path, tags: dict[str, str] | None = None
) -> dg.ExecuteInProcessResult:
    result = defs.resolve_job_def("seller_sync_job").execute_in_process(
        instance=instance,
        raise_on_error=False,
        resources={
            "database": SyncDatabase(url=database_url),
            "sheet": SellerSheet(source=str(tmp_path / "no-such-sheet.csv")),
        },
        tags=tags,
    )
    assert not result.success
    return result


def on_failure(instance: dg.DagsterInstance, database_url: str, result: dg.ExecuteInProcessResult) -> Any:
    # A context manager: the database resource opens its engine for the evaluation and disposes of it after.
    with dg.build_run_status_sensor_context(
        sensor_name="consecutive_failures_sensor",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"database": SyncDatabase(url=database_url)},
    ) as context:
        return consecutive_failures_sensor(context.for_run_failure())


def tick(sensor: Any, instance: dg.DagsterInstance, database_url: str, webhooks: AlertWebhooks | None = None) -> Any:
    resources = {"database": SyncDatabase(url=database_url), "webhooks": webhooks or AlertWebhooks()}
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        return sensor(context)


def consecutive(db: Database) -> list[Any]:
    return list_alerts(db, alert_type=AlertType.CONSECUTIVE_FAILURES)


def set_threshold(db: Database, threshold: int) -> None:
    with db.engine.begin() as conn:
        db.config.save(conn, {"consecutive_failure_threshold": str(threshold)}, now=db.clock.now())


def test_three_failed_runs_raise_one_alert_and_the_sensor_sees_it_raised(
    instance: dg.DagsterInstance, database_url: str, tmp_path: Path, db: Database
) -> None:
    for expected in ("1 failed sync(s)", "2 failed sync(s)"):
        skip = on_failure(instance, database_url, failed_run(instance, database_url, tmp_path))
        assert isinstance(skip, dg.SkipReason) and expected in (skip.skip_message or "")
    third = failed_run(instance, database_url, tmp_path)  # its sync's close raised the alert, in the run's log
    [alert] = consecutive(db)
    assert alert.detail["run_id"] == third.run_id  # the e-mail links to this run
    assert any("ALERT CRITICAL [consecutive_failures]" in (e.message or "") for e in instance.all_logs(third.run_id))
    for _ in range(2):
        again = on_failure(instance, database_url, third)
        assert isinstance(again, dg.SkipReason) and "already alerted" in (again.skip_message or "")
    periodic = tick(missed_sync_sensor, instance, database_url)
    assert isinstance(periodic, dg.SkipReason) and "already alerted" in (periodic.skip_message or "")
    assert len(consecutive(db)) == 1


def test_consecutive_failures_sensor_raises_with_the_threshold_in_force(
    instance: dg.DagsterInstance, database_url: str, tmp_path: Path, db: Database
) -> None:
    set_threshold(db, 4)
    runs = [failed_run(instance, database_url, tmp_path) for _ in range(3)]
    skip = on_failure(instance, database_url, runs[-1])
    assert isinstance(skip, dg.SkipReason) and "3 failed sync(s)" in (skip.skip_message or "")
    assert consecutive(db) == []
    set_threshold(db, 3)  # lowered by an operator: the next evaluation applies it (P46)
    assert on_failure(instance, database_url, runs[-1]) is None
    [alert] = consecutive(db)
    assert alert.detail["threshold"] == 3 and alert.detail["run_id"] == runs[-1].run_id


def test_a_run_that_will_be_retried_is_not_counted_twice(
    instance: dg.DagsterInstance, database_url: str, tmp_path: Path, db: Database
) -> None:
    set_threshold(db, 4)  # so that the syncs' own evaluations (which cannot know about retries yet) stay quiet
    failed_run(instance, database_url, tmp_path)
    retried = failed_run(instance, database_url, tmp_path, tags={WILL_RETRY_TAG: "true"})
    skip = on_failure(instance, database_url, retried)
    assert isinstance(skip, dg.SkipReason) and "will retry" in (skip.skip_message or "")
    retry = failed_run(instance, database_url, tmp_path)  # its retry, failing too: one logical sync, counted once
    set_threshold(db, 3)
    periodic = tick(missed_sync_sensor, instance, database_url)
    assert isinstance(periodic, dg.SkipReason) and "2 failed sync(s)" in (periodic.skip_message or "")
    failure = on_failure(instance, database_url, retry)
    assert isinstance(failure, dg.SkipReason) and "2 failed sync(s)" in (failure.skip_message or "")
    assert consecutive(db) == []


def test_missed_sync_sensor_raises_once_per_silent_period(
    instance: dg.DagsterInstance, database_url: str, db: Database
) -> None:
    first = tick(missed_sync_sensor, instance, database_url)
    assert isinstance(first, dg.SkipReason) and "no sync has run yet" in (first.skip_message or "")
    long_ago = db.clock.now() - dt.timedelta(hours=3)
    with db.engine.begin() as conn:
        sync_id = str(uuid.uuid4())
        db.audit.start(conn, sync_id=sync_id, kind=SyncKind.SCHEDULED, started_at=long_ago)
        db.audit.finish(conn, sync_id, status=SyncStatus.SUCCEEDED, finished_at=long_ago)
    assert tick(missed_sync_sensor, instance, database_url) is None
    [alert] = list_alerts(db, alert_type=AlertType.NO_RECENT_SUCCESS)
    assert alert.detail["last_success_sync_id"] == sync_id
    again = tick(missed_sync_sensor, instance, database_url)
    assert isinstance(again, dg.SkipReason) and "already alerted" in (again.skip_message or "")
    assert len(list_alerts(db, alert_type=AlertType.NO_RECENT_SUCCESS)) == 1


def test_alert_delivery_sensor_emails_the_outbox_once(
    instance: dg.DagsterInstance, database_url: str, tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    for name, value in {
        "SYNC_SMTP_HOST": "127.0.0.1",
        "SYNC_SMTP_PORT": str(port),
        "SYNC_SMTP_SECURITY": "none",
        "SYNC_MAIL_FROM": MAIL_FROM,
    }.items():
        monkeypatch.setenv(name, value)
    with db.engine.begin() as conn:
        db.config.save(conn, {"email_enabled": "true", "email_recipients": "ops@example.com"}, now=db.clock.now())
    idle = tick(alert_delivery_sensor, instance, database_url)
    assert isinstance(idle, dg.SkipReason) and "no alert is owed" in (idle.skip_message or "")
    runs = [failed_run(instance, database_url, tmp_path) for _ in range(3)]
    assert len(consecutive(db)) == 1  # raised as the third sync closed
    down = tick(alert_delivery_sensor, instance, database_url)
    assert isinstance(down, dg.SkipReason) and "cannot reach SMTP server" in (down.skip_message or "")
    with smtp_server(port) as inbox:
        assert tick(alert_delivery_sensor, instance, database_url) is None
        assert isinstance(tick(alert_delivery_sensor, instance, database_url), dg.SkipReason)
    [received] = inbox.messages
    assert f"/runs/{runs[-1].run_id}" in received.body("plain")


def test_alert_delivery_sensor_posts_the_outbox_to_chat_once(
    instance: dg.DagsterInstance, database_url: str, tmp_path: Path, db: Database
) -> None:
    with webhook_server() as server:
        webhooks = AlertWebhooks(slack_webhook_url=server.url("/slack"), alert_webhook_url=server.url("/hook"))
        [failed_run(instance, database_url, tmp_path) for _ in range(3)]
        assert len(consecutive(db)) == 1
        assert tick(alert_delivery_sensor, instance, database_url, webhooks) is None  # delivered: no skip
        assert isinstance(tick(alert_delivery_sensor, instance, database_url, webhooks), dg.SkipReason)
    assert [p.path for p in server.posts] == ["/slack", "/hook"]


def test_acknowledge_alerts_job_acknowledges_from_the_launchpad_config(
    instance: dg.DagsterInstance, database_url: str, tmp_path: Path, db: Database
) -> None:
    for _ in range(3):
        failed_run(instance, database_url, tmp_path)
    tick(missed_sync_sensor, instance, database_url)
    [alert] = consecutive(db)
    result = defs.resolve_job_def("acknowledge_alerts").execute_in_process(
        instance=instance,
        resources={"database": SyncDatabase(url=database_url)},
        run_config={"ops": {"acknowledge": {"config": {"alert_ids": [alert.id, 999999], "acknowledged_by": "hanako"}}}},
    )
    assert result.success and result.output_for_node("acknowledge") == 1
    [stored] = list_alerts(db, alert_type=AlertType.CONSECUTIVE_FAILURES)
    assert stored.acknowledged_by == "hanako" and stored.acknowledged_at is not None


def test_sensors_and_the_acknowledge_job_are_registered_and_running_by_default() -> None:
    names = {s.name: s for s in defs.sensors or []}
    assert set(names) >= {"consecutive_failures_sensor", "missed_sync_sensor", "alert_delivery_sensor"}
    assert all(names[n].default_status is dg.DefaultSensorStatus.RUNNING for n in names)
    assert defs.resolve_job_def("acknowledge_alerts") is not None
