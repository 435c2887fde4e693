"""Alerts in Slack, Teams and a plain webhook (issue 20): each alert once per channel, retried on the channel that
failed only, throttled and digested per channel, never a webhook URL on any face.

Exercises `check_alerts` (the rules, then e-mail and chat delivery, as `alerts check` and the sensors run them) on a
fresh SQLite and Postgres database, with failed syncs written as audit rows, against a real HTTP server on 127.0.0.1
(support/webhooks.py) that answers 200, 429 with Retry-After, 500, 404 or hangs, and records the bytes posted. The
command line runs in a subprocess for the secret scan. E-mail is off here (its own tests: test_alert_email.py).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync_pipeline.adapters import webhook
from sync_pipeline.adapters.store.deliveries import DeliveryStore
from sync_pipeline.adapters.store.tables import metadata, sync_alert_deliveries
from sync_pipeline.domain.alert_chat import ADAPTIVE_CARD, Channel, redact, webhook_message
from sync_pipeline.domain.audit import SyncKind, SyncStatus
from sync_pipeline.domain.clock import FixedClock
from sync_pipeline.services.alert_check import check_alerts
from sync_pipeline.services.alerts import acknowledge, list_alerts
from sync_pipeline.services.chat_delivery import Webhooks
from sync_pipeline.services.database import Database, open_database
from sync_pipeline_tests.support.cli import parse_json_stdout, run_cli
from sync_pipeline_tests.support.webhooks import HANG, WebhookServer, webhook_server

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
PATHS = {
    Channel.SLACK: "/services/T0/B0/slack-secret",
    Channel.TEAMS: "/workflows/teams-secret",
    Channel.WEBHOOK: "/hook/plain-secret",
}


@pytest.fixture
def server() -> Iterator[WebhookServer]:
    with webhook_server() as running:
        yield running


@pytest.fixture
def hooks(server: WebhookServer) -> Webhooks:
    return Webhooks({channel: server.url(path) for channel, path in PATHS.items()})


@pytest.fixture
def db(engine: sa.Engine) -> Database:
    database = Database(engine=engine, clock=FixedClock(START))
    with engine.begin() as conn:
        database.config.save(conn, {"consecutive_failure_threshold": "2"}, now=START)
    return database


def failed_syncs(db: Database, count: int = 2) -> None:
    with db.engine.begin() as conn:
        for i in range(count):
            sync_id, at = str(uuid.uuid4()), START - dt.timedelta(minutes=30 - i)
            db.audit.start(conn, sync_id=sync_id, kind=SyncKind.SCHEDULED, started_at=at, run_id=f"run{i}")
            db.audit.finish(conn, sync_id, status=SyncStatus.FAILED, finished_at=at, message="boom")


def advance(db: Database, **delta: float) -> None:
    assert isinstance(db.clock, FixedClock)
    db.clock.advance(**delta)


def body(post: Any) -> dict[str, Any]:
    return json.loads(post.body.decode("utf-8"))


def test_each_alert_reaches_each_channel_once_and_a_failed_channel_gets_it_on_the_next_check(
    db: Database, server: WebhookServer, hooks: Webhooks
) -> None:
    failed_syncs(db)
    server.answer(PATHS[Channel.SLACK], 500)
    first = check_alerts(db, webhooks=hooks)
    [alert] = first.rules.raised
    assert alert.alert_type == "consecutive_failures"
    assert [len(server.to(PATHS[c])) for c in PATHS] == [1, 1, 1]
    assert not first.delivery.ok  # Slack answered 500: the check says so (exit 1 on the CLI)

    slack = body(server.to(PATHS[Channel.SLACK])[0])
    assert slack["text"].startswith(":rotating_light: CRITICAL consecutive_failures")
    assert [b["type"] for b in slack["blocks"]][:2] == ["header", "section"]
    assert "/runs/run1|Open the run>" in slack["blocks"][1]["text"]["text"]
    teams = body(server.to(PATHS[Channel.TEAMS])[0])
    [attachment] = teams["attachments"]
    assert teams["type"] == "message" and attachment["contentType"] == ADAPTIVE_CARD
    assert attachment["content"]["body"][0]["color"] == "Attention"
    plain = server.to(PATHS[Channel.WEBHOOK])[0]
    [stored] = list_alerts(db, limit=5)
    expected = webhook_message([stored], ui_base_url=db.settings().ui_base_url, run_ids={stored.sync_id: "run1"})
    assert plain.body == json.dumps(expected, ensure_ascii=False).encode("utf-8")  # byte for byte
    assert set(expected) >= {"id", "type", "severity", "message", "created_at", "sync_id", "run_url", "sellers"}
    assert plain.content_type.startswith("application/json")

    advance(db, minutes=2)  # past Slack's first backoff (1 minute)
    second = check_alerts(db, webhooks=hooks)
    assert second.delivery.ok
    assert [len(server.to(PATHS[c])) for c in PATHS] == [2, 1, 1]  # Slack only: Teams and the webhook had it
    advance(db, minutes=30)
    check_alerts(db, webhooks=hooks)
    assert len(server.posts) == 4  # the third check posts nothing


def test_a_429_is_retried_after_its_retry_after(db: Database, server: WebhookServer, hooks: Webhooks) -> None:
    failed_syncs(db)
    server.answer(PATHS[Channel.SLACK], (429, {"Retry-After": "300"}))
    check_alerts(db, webhooks=hooks)
    advance(db, minutes=4)  # before Retry-After has passed: nothing
    check_alerts(db, webhooks=hooks)
    assert len(server.to(PATHS[Channel.SLACK])) == 1
    advance(db, minutes=2)
    check_alerts(db, webhooks=hooks)
    assert len(server.to(PATHS[Channel.SLACK])) == 2


def test_a_revoked_webhook_raises_one_delivery_failed_alert_on_the_other_channels(
    db: Database, server: WebhookServer, hooks: Webhooks
) -> None:
    failed_syncs(db)
    server.answer(PATHS[Channel.TEAMS], 404)
    first = check_alerts(db, webhooks=hooks)
    [failed] = [c for c in first.delivery.chat if c.failed]
    assert failed.channel == "teams" and "HTTP 404: invalid_token" in failed.failed[0]["error"]
    assert not failed.failed[0]["retry"]
    alerts = {a.alert_type: a for a in list_alerts(db, limit=10)}
    assert "delivery_failed" in alerts and redact(hooks.urls[Channel.TEAMS]) in alerts["delivery_failed"].message
    advance(db, minutes=20)
    check_alerts(db, webhooks=hooks)
    teams_posts = server.to(PATHS[Channel.TEAMS])
    assert len(teams_posts) == 1  # never retried, and the delivery_failed alert is not sent to Teams
    for channel in (Channel.SLACK, Channel.WEBHOOK):
        types = [json.dumps(body(p), ensure_ascii=False) for p in server.to(PATHS[channel])]
        assert len(types) == 2 and "delivery_failed" in types[1]
    advance(db, minutes=20)
    check_alerts(db, webhooks=hooks)
    assert [a.alert_type for a in list_alerts(db, limit=10)].count("delivery_failed") == 1


def test_a_hung_channel_times_out_and_is_retried(
    db: Database, server: WebhookServer, hooks: Webhooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhook, "READ_TIMEOUT_SECONDS", 0.5)
    failed_syncs(db)
    server.answer(PATHS[Channel.WEBHOOK], HANG)
    first = check_alerts(db, webhooks=hooks)
    [failed] = [c for c in first.delivery.chat if c.failed]
    assert failed.channel == "webhook" and "timeout" in failed.failed[0]["error"] and failed.failed[0]["retry"]
    advance(db, minutes=2)
    check_alerts(db, webhooks=hooks)
    assert len(server.to(PATHS[Channel.WEBHOOK])) == 2


def test_throttle_and_digest_hold_per_channel(db: Database, server: WebhookServer, hooks: Webhooks) -> None:
    from sync_pipeline.domain.alerts import Severity
    from sync_pipeline.services.alerts import raise_alert

    def raise_one(message: str) -> int:
        with db.engine.begin() as conn:
            return raise_alert(conn, "gaps_found", Severity.WARNING, message, now=db.clock.now()).id

    raise_one("first")
    check_alerts(db, rules=(), webhooks=hooks)
    advance(db, minutes=1)
    second, third = raise_one("second"), raise_one("third")
    report = check_alerts(db, rules=(), webhooks=hooks)
    assert all(c.throttled["gaps_found"]["alert_ids"] == [second, third] for c in report.delivery.chat)
    assert len(server.to(PATHS[Channel.SLACK])) == 1
    acknowledge(db, [third], by="test")  # seen before it was delivered: not sent
    advance(db, minutes=15)
    check_alerts(db, rules=(), webhooks=hooks)
    digest = body(server.to(PATHS[Channel.WEBHOOK])[-1])
    assert [a["id"] for a in digest["alerts"]] == [second]
    assert len(server.to(PATHS[Channel.SLACK])) == 2


def test_a_claim_left_by_a_dead_process_is_never_posted_again(
    db: Database, server: WebhookServer, hooks: Webhooks
) -> None:
    """Recorded before posting: a post whose answer never got recorded (the process died) is not repeated."""
    failed_syncs(db)
    from sync_pipeline.services.alert_rules import evaluate_rules

    [alert] = evaluate_rules(db).raised
    with db.engine.begin() as conn:
        DeliveryStore().claim(conn, [alert.id], Channel.SLACK.value, db.clock.now())
    check_alerts(db, webhooks=hooks)
    assert server.to(PATHS[Channel.SLACK]) == [] and len(server.to(PATHS[Channel.TEAMS])) == 1
    with db.engine.connect() as conn:
        [slack] = [d for d in DeliveryStore().for_alerts(conn, [alert.id])[alert.id] if d["channel"] == "slack"]
    assert slack["unconfirmed"] and slack["delivered_at"] is None


def test_no_webhook_url_appears_on_any_face(tmp_path: Path, server: WebhookServer) -> None:
    url = f"sqlite:///{tmp_path / 'sync.db'}"
    secrets = {
        "SYNC_SLACK_WEBHOOK_URL": server.url(PATHS[Channel.SLACK]),
        "SYNC_TEAMS_WEBHOOK_URL": server.url(PATHS[Channel.TEAMS]),
        "SYNC_ALERT_WEBHOOK_URL": server.url(PATHS[Channel.WEBHOOK]),
    }
    env = {"SYNC_DATABASE_URL": url, **secrets}
    assert run_cli(["settings", "set", "consecutive_failure_threshold=2"], env=env).returncode == 0
    db = open_database(url)
    failed_syncs(db)
    server.answer(PATHS[Channel.TEAMS], 404)
    outputs = [
        run_cli(args, env=env)
        for args in (
            ["alerts", "check", "--json"],
            ["alerts", "check"],
            ["alerts", "list", "--all", "--json"],
            ["alerts", "list", "--all"],
            ["alerts", "test", "--channel", "slack"],
            ["alerts", "test", "--channel", "teams", "--json"],
            ["settings", "show"],
            ["status", "--json"],
            ["health", "--json"],
            ["sync", "--source", "/nonexistent.csv", "--json"],
        )
    ]
    assert len(server.posts) >= 4  # the channels were really used
    listed = parse_json_stdout(outputs[2])
    assert any(d["channel"] == "teams" and d["failed_at"] for a in listed for d in a["deliveries"])
    texts = [o.stdout + o.stderr for o in outputs]
    with db.engine.connect() as conn:  # every table, every row, as text
        texts += [repr(conn.execute(sa.select(t)).all()) for t in metadata.sorted_tables]
    for secret in secrets.values():
        path = secret.split("127.0.0.1", 1)[1]
        assert not any(path.split("/")[-1] in text for text in texts), secret
    assert any("127.0.0.1/***" in text for text in texts)
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sync_alert_deliveries)).scalar_one() >= 3


def test_no_webhook_url_reaches_the_logs_even_at_debug(
    db: Database, server: WebhookServer, hooks: Webhooks, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3 logs each request line at DEBUG, path (the secret) included
    failed_syncs(db)
    server.answer(PATHS[Channel.TEAMS], 404)
    check_alerts(db, webhooks=hooks)
    assert len(server.posts) >= 3 and "POST /*** HTTP/1.1" in caplog.text
    for path in PATHS.values():
        assert path.split("/")[-1] not in caplog.text
