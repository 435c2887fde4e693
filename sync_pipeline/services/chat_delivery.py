"""Delivering alerts to chat (Slack, Teams, a plain webhook) from the same outbox as e-mail, per channel.

- A channel is on when its webhook URL is set (`SYNC_SLACK_WEBHOOK_URL`, `SYNC_TEAMS_WEBHOOK_URL`,
  `SYNC_ALERT_WEBHOOK_URL`; the Dagster resource `AlertWebhooks` takes them as EnvVars). The URL is a credential: it
  is never printed, logged or stored; a channel is shown as its host and `***`.
- Each channel has its own delivery state (`sync_alert_deliveries`): an alert Teams took and Slack refused is
  retried on Slack only.
- **At most once per channel, by recording before posting.** Slack and Teams webhooks take no idempotency key, so a
  post cannot be made safe to repeat; instead the delivery is *claimed* (committed) before the post, and a claim is
  never posted again. If the process dies between the claim and the answer, that alert is not re-sent to that
  channel (`alerts list` shows the delivery as unconfirmed) — a missed chat message rather than a duplicate one,
  while e-mail and the other channels still carry it. After the post the claim becomes delivered, or is released for
  a retry, or is recorded as refused.
- 429 (honouring Retry-After), 5xx, timeouts and refused connections leave the alert due again after a backoff;
  any other 4xx (a revoked webhook) is recorded with the answer and raises one `delivery_failed` alert, which goes to
  the other channels (never to the one it is about).
- Throttle and digest per alert type **and channel**, `chat_min_interval_minutes` (default 15): alerts raised
  meanwhile go out together as one message. An alert acknowledged before it was delivered is not sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sync_pipeline.adapters import webhook
from sync_pipeline.adapters.store.deliveries import DeliveryStore
from sync_pipeline.adapters.store.history import SyncHistory
from sync_pipeline.domain.alert_chat import CHAT_CHANNELS, RENDERERS, Channel, redact
from sync_pipeline.domain.alert_rules import utc_text
from sync_pipeline.domain.alerts import Alert, Severity
from sync_pipeline.services.database import Database

log = logging.getLogger(__name__)

WEBHOOK_ENV: Final[Mapping[Channel, str]] = {
    Channel.SLACK: "SYNC_SLACK_WEBHOOK_URL",
    Channel.TEAMS: "SYNC_TEAMS_WEBHOOK_URL",
    Channel.WEBHOOK: "SYNC_ALERT_WEBHOOK_URL",
}
DELIVERY_FAILED = "delivery_failed"
FIRST_BACKOFF_MINUTES: Final = 1  # then doubled per failed attempt…
MAX_BACKOFF_MINUTES: Final = 60  # …up to an hour: a channel down for a day is tried 24 times, not 1,440

_deliveries = DeliveryStore()
_history = SyncHistory()


@dataclass(frozen=True)
class Webhooks:
    """The configured chat channels: channel → webhook URL (secret). `repr` never shows the URLs."""

    urls: Mapping[Channel, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Webhooks:
        env = os.environ if environ is None else environ
        return cls({c: env[n].strip() for c, n in WEBHOOK_ENV.items() if env.get(n, "").strip()})

    def shown(self) -> dict[str, str]:
        return {c.value: redact(url) for c, url in self.urls.items()}


@dataclass(frozen=True)
class ChannelReport:
    channel: str
    target: str  # host/***
    sent: list[dict[str, Any]] = field(default_factory=list)  # {type, alert_ids, status}
    throttled: dict[str, dict[str, Any]] = field(default_factory=dict)
    waiting: list[int] = field(default_factory=list)  # alert ids in a backoff
    failed: list[dict[str, Any]] = field(default_factory=list)  # {type, alert_ids, status, error, retry}

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "target": self.target,
            "sent": self.sent,
            "throttled": self.throttled,
            "waiting": self.waiting,
            "failed": self.failed,
        }

    def summary(self) -> str:
        parts = [f"{self.channel} ({self.target})"]
        parts += [f"posted {s['type']} {s['alert_ids']}" for s in self.sent]
        parts += [f"{t} {v['alert_ids']} throttled until {v['until']} UTC" for t, v in self.throttled.items()]
        parts += [f"{f['type']} {f['alert_ids']} failed: {f['error']}" for f in self.failed]
        if self.waiting:
            parts.append(f"{len(self.waiting)} waiting for a retry")
        return " ".join(parts) if len(parts) > 1 else f"{parts[0]}: nothing due"


def deliver_chat_due(db: Database, webhooks: Webhooks | None = None) -> list[ChannelReport]:
    """One delivery pass over every configured chat channel (the caller holds the chat delivery lock)."""
    webhooks = webhooks if webhooks is not None else Webhooks.from_env()
    settings = db.settings()
    interval = dt.timedelta(minutes=settings.chat_min_interval_minutes)
    reports = []
    for channel in CHAT_CHANNELS:
        url = webhooks.urls.get(channel)
        if url:
            reports.append(_deliver_channel(db, channel, url, interval, settings.ui_base_url, webhooks))
    return reports


def _deliver_channel(
    db: Database, channel: Channel, url: str, interval: dt.timedelta, ui_base_url: str, webhooks: Webhooks
) -> ChannelReport:
    report = ChannelReport(channel.value, redact(url))
    now = db.clock.now()
    with db.engine.connect() as conn:
        due, waiting = _deliveries.outbox(conn, channel.value, now)
        report.waiting.extend(a.id for a in waiting)
        by_type: dict[str, list[Alert]] = {}
        for alert in due:
            by_type.setdefault(alert.alert_type, []).append(alert)
        last = {t: _deliveries.last_delivered_at(conn, channel.value, t) for t in by_type}
        run_ids = _history.run_ids(conn, [a.sync_id for a in due if a.sync_id])
    for alert_type, alerts in by_type.items():
        ids = [a.id for a in alerts]
        previous = last[alert_type]
        if previous is not None and now < previous + interval:
            report.throttled[alert_type] = {"alert_ids": ids, "until": utc_text(previous + interval)}
            continue
        payload = RENDERERS[channel](alerts, ui_base_url=ui_base_url, run_ids=run_ids)
        with db.engine.begin() as conn:
            _deliveries.claim(conn, ids, channel.value, now)  # recorded before the post: at most once
        result = webhook.post_json(url, payload)
        error = f"HTTP {result.status}: {result.answer}" if result.status else result.answer
        with db.engine.begin() as conn:
            if result.ok:
                _deliveries.delivered(conn, ids, channel.value, db.clock.now())
            elif result.transient:
                attempts = max(_deliveries.attempts(conn, ids, channel.value), 1)
                wait = result.retry_after_s
                backoff = dt.timedelta(seconds=wait) if wait is not None else _backoff(attempts)
                _deliveries.retry_later(conn, ids, channel.value, error, now + backoff)
            else:
                _deliveries.refused(conn, ids, channel.value, error, now)
        if result.ok:
            log.info("posted %s alert(s) %s to %s (%s)", alert_type, ids, channel.value, redact(url))
            report.sent.append({"type": alert_type, "alert_ids": ids, "status": result.status})
            continue
        log.warning("%s alert(s) %s to %s (%s) failed: %s", alert_type, ids, channel.value, redact(url), error)
        report.failed.append(
            {"type": alert_type, "alert_ids": ids, "status": result.status, "error": error, "retry": result.transient}
        )
        if not result.transient and alert_type != DELIVERY_FAILED:
            _raise_delivery_failed(db, channel, url, ids, error, webhooks)
    return report


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(minutes=min(FIRST_BACKOFF_MINUTES * 2 ** (attempts - 1), MAX_BACKOFF_MINUTES))


def _raise_delivery_failed(
    db: Database, channel: Channel, url: str, ids: list[int], error: str, webhooks: Webhooks
) -> None:
    """One critical alert that a channel refused for good, owed to the other channels only."""
    from sync_pipeline.services.alerts import raise_alert

    message = (
        f"Alerts {ids} could not be posted to {channel.value} ({redact(url)}): {error}. The webhook was probably "
        f"revoked or mistyped: create a new one and set {WEBHOOK_ENV[channel]} (then `sync-pipeline alerts test "
        f"--channel {channel.value}`); these alerts are not posted there again."
    )
    now = db.clock.now()
    with db.engine.begin() as conn:
        alert = raise_alert(
            conn,
            DELIVERY_FAILED,
            Severity.CRITICAL,
            message,
            now=now,
            detail={"channel": channel.value, "alert_ids": ids},
        )
        _deliveries.refused(conn, [alert.id], channel.value, "not sent to the channel it is about", now)


def send_test(db: Database, webhooks: Webhooks, channel: Channel) -> dict[str, Any]:
    """Post a test message to one chat channel now (ignores throttle and outbox); the answer, never the URL."""
    url = webhooks.urls.get(channel)
    if not url:
        return {"channel": channel.value, "ok": False, "answer": f"not configured: set {WEBHOOK_ENV[channel]}"}
    now = db.clock.now()
    test = Alert(
        id=0,
        alert_type="test",
        severity=Severity.INFO,
        message=f"Test message from sync_pipeline at {utc_text(now)} UTC: alerts reach this channel.",
        created_at=now,
    )
    result = webhook.post_json(url, RENDERERS[channel]([test], ui_base_url=db.settings().ui_base_url, run_ids={}))
    answer = f"HTTP {result.status}: {result.answer}" if result.status else result.answer
    return {"channel": channel.value, "target": redact(url), "ok": result.ok, "answer": answer}
