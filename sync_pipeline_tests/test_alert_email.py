"""E-mail of alerts (Requirement 3.5, Property 12) through a real SMTP server (aiosmtpd on 127.0.0.1, ephemeral port)
and real SQLite and Postgres: the outbox survives a mail server that is down, the per-type throttle and its digest,
the bodies as received (recipients, subject, plain text and HTML, the run link), the test e-mail and the SMTP
settings. Alerts come from the real rules over audit rows, or from `raise_alert`; time from a FixedClock.
Does not touch Dagster or the command line (test_alert_cli.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest

from sync_pipeline.adapters.mail import MailConfigError, SmtpSecurity, SmtpSettings
from sync_pipeline.domain.alerts import Alert, AlertType, Severity
from sync_pipeline.domain.audit import SyncKind, SyncStatus
from sync_pipeline.domain.clock import FixedClock
from sync_pipeline.domain.settings import Settings, SettingsError
from sync_pipeline.services.alert_check import check_alerts
from sync_pipeline.services.alert_delivery import deliver_due, send_test_email
from sync_pipeline.services.alerts import list_alerts, raise_alert
from sync_pipeline.services.database import Database, open_database
from sync_pipeline_tests.support.smtp import MAIL_FROM, Inbox, free_port, smtp_server, smtp_settings

START = dt.datetime(2026, 3, 2, 9, 0)
RECIPIENTS = ("ops@example.com", "oncall@example.org")
UI = "http://dagster.internal:3000"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def db(database_url: str, clock: FixedClock) -> Iterator[Database]:
    database = open_database(database_url, clock=clock)
    with database.engine.begin() as conn:
        database.config.save(
            conn,
            {"email_enabled": "true", "email_recipients": ",".join(RECIPIENTS), "ui_base_url": UI},
            now=clock.now(),
        )
    yield database
    database.engine.dispose()


def failed_sync(db: Database, run_id: str) -> None:
    sync_id = str(uuid.uuid4())
    now = db.clock.now()
    with db.engine.begin() as conn:
        db.audit.start(conn, sync_id=sync_id, kind=SyncKind.SCHEDULED, started_at=now, run_id=run_id)
        db.audit.finish(conn, sync_id, status=SyncStatus.FAILED, finished_at=now, message="sheet unreachable: 503")


def gap_alert(db: Database, n: int) -> Alert:
    with db.engine.begin() as conn:
        return raise_alert(
            conn,
            AlertType.GAPS_FOUND,
            Severity.WARNING,
            f"{n} gap(s) found",
            now=db.clock.now(),
            detail={"count": n, "seller_numbers": [f"GP{i:05d}" for i in range(n)]},
        )


def by_id(db: Database) -> dict[int, Alert]:
    return {a.id: a for a in list_alerts(db, limit=100)}


def test_property_12_an_alert_raised_while_the_mail_server_is_down_is_sent_once_when_it_is_back(
    db: Database, clock: FixedClock
) -> None:
    port = free_port()  # nothing listens here yet: the mail server is down
    run_ids = [f"run-{i}-{uuid.uuid4().hex[:8]}" for i in range(3)]
    for run_id in run_ids:
        clock.advance(minutes=10)
        failed_sync(db, run_id)
    down = check_alerts(db, smtp=smtp_settings(port))
    [alert] = down.rules.raised
    assert down.delivery.failed is not None and f"127.0.0.1:{port}" in down.delivery.failed["error"]
    clock.advance(minutes=1)
    assert deliver_due(db, smtp_settings(port)).failed is not None
    stored = by_id(db)[alert.id]
    assert stored.emailed_at is None and stored.email_attempts == 2  # nothing marked; every try counted

    with smtp_server(port) as inbox:
        clock.advance(minutes=1)
        up = check_alerts(db, smtp=smtp_settings(port))
        for _ in range(3):
            check_alerts(db, smtp=smtp_settings(port))
    assert up.rules.raised == () and [s.alert_ids for s in up.delivery.sent] == [(alert.id,)]
    [received] = inbox.messages
    assert received.mail_from == MAIL_FROM and received.recipients == RECIPIENTS
    assert received.subject.startswith("[sync_pipeline] CRITICAL consecutive_failures: 3 syncs in a row have failed")
    text, html = received.body("plain"), received.body("html")
    link = f"{UI}/runs/{run_ids[-1]}"
    for body in (text, html):
        assert "3 syncs in a row have failed" in body  # what happened
        assert "2026-03-02 09:10" in body  # since when: the first failure of the streak
        assert "threshold" in body and "sheet unreachable: 503" in body  # the figures and the cause
        assert "sync-pipeline audit --status failed" in body  # what to do next
        assert link in body
    assert f'<a href="{link}">' in html and "<table>" in html
    stored = by_id(db)[alert.id]
    assert stored.emailed_at == clock.now() and stored.email_attempts == 3


def test_property_12_five_alerts_of_one_type_within_the_interval_send_one_email(
    db: Database, clock: FixedClock
) -> None:
    port = free_port()
    with smtp_server(port) as inbox:
        first = gap_alert(db, 1)
        assert [s.alert_ids for s in deliver_due(db, smtp_settings(port)).sent] == [(first.id,)]
        later = []
        for n in range(2, 6):  # four more within the hour
            clock.advance(minutes=10)
            later.append(gap_alert(db, n))
            report = deliver_due(db, smtp_settings(port))
            assert report.sent == () and AlertType.GAPS_FOUND in report.throttled
        assert len(inbox.messages) == 1
        stored = by_id(db)
        assert all(stored[a.id].emailed_at is None for a in later)  # listed, not e-mailed
        assert {a.id for a in list_alerts(db)} >= {a.id for a in later}

        other = None
        with db.engine.begin() as conn:  # another type is not held back by this one's throttle
            other = raise_alert(conn, AlertType.INTEGRITY_ISSUE, Severity.WARNING, "bad key", now=clock.now())
        assert [s.alert_ids for s in deliver_due(db, smtp_settings(port)).sent] == [(other.id,)]
        assert len(inbox.messages) == 2

        clock.advance(minutes=25)  # the hour since the first e-mail has passed: one digest of the four
        assert [s.alert_ids for s in deliver_due(db, smtp_settings(port)).sent] == [tuple(a.id for a in later)]
        deliver_due(db, smtp_settings(port))
    assert len(inbox.messages) == 3
    digest = inbox.messages[2]
    assert "4 alerts since 2026-03-02 09:10" in digest.subject
    for a in later:
        assert f"Alert #{a.id}" in digest.body("plain") and f"Alert #{a.id}" in digest.body("html")
    assert all(a.emailed_at is not None for a in by_id(db).values())


def test_nothing_is_sent_or_marked_while_email_is_off(db: Database) -> None:
    with db.engine.begin() as conn:
        db.config.save(conn, {"email_enabled": "false"}, now=db.clock.now())
    alert = gap_alert(db, 1)
    port = free_port()
    with smtp_server(port) as inbox:
        report = deliver_due(db, smtp_settings(port))
    assert inbox.messages == [] and report.pending == 1 and "email_enabled" in (report.note or "")
    assert by_id(db)[alert.id].emailed_at is None and by_id(db)[alert.id].email_attempts == 0


def test_an_acknowledged_alert_is_no_longer_owed_an_email(db: Database) -> None:
    from sync_pipeline.services.alerts import acknowledge

    alert = gap_alert(db, 1)
    acknowledge(db, [alert.id], by="test")
    port = free_port()
    with smtp_server(port) as inbox:
        assert deliver_due(db, smtp_settings(port)).pending == 0
    assert inbox.messages == []


def test_test_email_arrives_and_smtp_errors_are_reported_clearly(db: Database) -> None:
    port = free_port()
    down = send_test_email(db, smtp_settings(port))
    assert not down.ok and down.message.startswith(f"cannot reach SMTP server 127.0.0.1:{port} (none)")
    with smtp_server(port, Inbox(refuse=frozenset(RECIPIENTS))) as refusing:
        refused = send_test_email(db, smtp_settings(port))
    assert not refused.ok and "refused every recipient" in refused.message and "550" in refused.message
    assert refusing.messages == []
    with smtp_server(port) as inbox:
        sent = send_test_email(db, smtp_settings(port))
    assert sent.ok, sent.message
    [received] = inbox.messages
    assert received.recipients == RECIPIENTS and received.subject == "[sync_pipeline] test e-mail"
    assert "test message" in received.body("plain") and "test message" in received.body("html")
    missing = send_test_email(db, SmtpSettings())
    assert not missing.ok and "SYNC_SMTP_HOST" in missing.message and "SYNC_MAIL_FROM" in missing.message


def test_smtp_settings_come_from_the_environment_with_defaults_and_named_errors() -> None:
    assert SmtpSettings.from_env({}) == SmtpSettings()
    ssl = SmtpSettings.from_env(
        {"SYNC_SMTP_HOST": "mail.example.com", "SYNC_SMTP_SECURITY": "SSL", "SYNC_SMTP_PASSWORD": "s3cret"}
    )
    assert (ssl.host, ssl.port, ssl.security) == ("mail.example.com", 465, SmtpSecurity.SSL)
    assert "s3cret" not in repr(ssl)
    assert SmtpSettings.from_env({"SYNC_SMTP_SECURITY": "none", "SYNC_SMTP_PORT": "2525"}).port == 2525
    for env, name in (
        ({"SYNC_SMTP_SECURITY": "tls"}, "SYNC_SMTP_SECURITY"),
        ({"SYNC_SMTP_PORT": "x"}, "SYNC_SMTP_PORT"),
    ):
        with pytest.raises(MailConfigError, match=name):
            SmtpSettings.from_env(env)


@pytest.mark.parametrize("value", ["ops@example.com;b@example.com", "ops", "ops@localhost", "a@@b.com", "<a@b.com>"])
def test_a_bad_recipient_is_refused_naming_the_setting(value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings().with_changes({"email_recipients": value})
    assert caught.value.key == "email_recipients"


def test_recipients_and_the_switch_are_settings() -> None:
    on = Settings().with_changes({"email_enabled": "true", "email_recipients": " a@example.com , b.c@example.co.jp "})
    assert on.email_recipients == ("a@example.com", "b.c@example.co.jp")
    assert Settings.from_strings(on.as_strings()) == on
    with pytest.raises(SettingsError, match="email_recipients"):
        Settings().with_changes({"email_enabled": "true"})
    with pytest.raises(SettingsError, match="ui_base_url"):
        Settings().with_changes({"ui_base_url": "dagster:3000"})


def test_alert_text_is_escaped_in_the_html_body(db: Database) -> None:
    with db.engine.begin() as conn:
        alert = raise_alert(
            conn, AlertType.INTEGRITY_ISSUE, Severity.WARNING, "name <script>x</script> & 売主", now=db.clock.now()
        )
    port = free_port()
    with smtp_server(port) as inbox:
        deliver_due(db, smtp_settings(port))
    [received] = inbox.messages
    assert "<script>" not in received.body("html") and "&lt;script&gt;" in received.body("html")
    assert "name <script>x</script> & 売主" in received.body(
        "plain"
    ) and f"#{alert.id}" in received.subject + received.body("plain")
