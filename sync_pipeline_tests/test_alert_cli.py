"""`sync-pipeline alerts check | test-email | list --json` and the e-mail settings, run as an operator would: the
installed command in a subprocess, a SQLite file, SYNC_SMTP_* pointing at a real aiosmtpd server on 127.0.0.1.
Failed syncs are audit rows written through the audit repository. Does not touch Dagster or Postgres (the services
behind these commands are tested on both databases in test_alert_rules.py and test_alert_email.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from sync_pipeline.domain.audit import SyncKind, SyncStatus
from sync_pipeline.services.database import open_database
from sync_pipeline_tests.support.cli import parse_json_stdout, run_cli
from sync_pipeline_tests.support.smtp import MAIL_FROM, free_port, smtp_server

LIST_KEYS = {"id", "type", "severity", "message", "created_at", "acknowledged_at", "emailed_at"}


def test_alerts_check_raises_and_emails_once_and_list_shows_emailed_at(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sync.db'}"
    port = free_port()
    env = {
        "SYNC_DATABASE_URL": url,
        "SYNC_SMTP_HOST": "127.0.0.1",
        "SYNC_SMTP_PORT": str(port),
        "SYNC_SMTP_SECURITY": "none",
        "SYNC_MAIL_FROM": MAIL_FROM,
    }
    bad = run_cli(["settings", "set", "email_recipients=ops@example.com;x"], env=env)
    assert bad.returncode == 2 and "email_recipients" in bad.stderr
    on = run_cli(["settings", "set", "email_enabled=true", "email_recipients=ops@example.com"], env=env)
    assert on.returncode == 0, on.stderr
    db = open_database(url)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
    with db.engine.begin() as conn:
        for i in range(3):
            sync_id, at = str(uuid.uuid4()), start + dt.timedelta(minutes=i)
            db.audit.start(conn, sync_id=sync_id, kind=SyncKind.SCHEDULED, started_at=at, run_id=f"run{i}")
            db.audit.finish(conn, sync_id, status=SyncStatus.FAILED, finished_at=at, message="boom")
    db.engine.dispose()

    down = run_cli(["alerts", "check", "--json"], env=env)
    assert down.returncode == 1, down.stderr  # the alert is raised and stored; its e-mail could not be sent
    checked = parse_json_stdout(down)
    assert [r["type"] for r in checked["raised"]] == ["consecutive_failures"]
    assert f"127.0.0.1:{port}" in checked["email"]["failed"]["error"]
    assert "ALERT CRITICAL [consecutive_failures]" in down.stderr  # Property 11: the console, with its severity

    with smtp_server(port) as inbox:
        up = run_cli(["alerts", "check", "--json"], env=env)
        again = run_cli(["alerts", "check"], env=env)
        test = run_cli(["alerts", "test-email"], env=env)
    assert up.returncode == 0, up.stderr
    assert parse_json_stdout(up)["raised"] == [] and len(parse_json_stdout(up)["email"]["sent"]) == 1
    assert again.returncode == 0 and "already alerted" in again.stdout
    assert test.returncode == 0 and "test e-mail sent" in test.stdout
    assert [m.subject.split(":")[0] for m in inbox.messages] == [
        "[sync_pipeline] CRITICAL consecutive_failures",
        "[sync_pipeline] test e-mail",
    ]
    assert inbox.messages[0].recipients == ("ops@example.com",) and "/runs/run2" in inbox.messages[0].body("html")

    listed = parse_json_stdout(run_cli(["alerts", "list", "--json"], env=env))
    [item] = listed
    assert set(item) >= LIST_KEYS and item["type"] == "consecutive_failures" and item["emailed_at"] is not None

    failed = run_cli(["alerts", "test-email"], env=env)  # the server is gone again
    assert failed.returncode == 1 and f"cannot reach SMTP server 127.0.0.1:{port}" in failed.stdout + failed.stderr
