"""Delivering alerts by e-mail (Requirement 3.5, Property 12) from the outbox: the alerts without a delivered `email`
row in `sync_alert_deliveries` (the same model as the chat channels; `sync_alerts.emailed_at` is kept as a copy
for `alerts list`).

- Stored first, sent from the store: an alert raised while the mail server is down stays in the outbox (its
  `email_attempts` counts the tries) and goes out on the first delivery after the server is back, exactly once:
  `emailed_at` is set in its own transaction right after the server accepted the message, and deliveries are
  serialised by a lock that dies with its holder (`alert_delivery`, `adapters.store.lock`). The one gap: a process
  killed between the server's acceptance and that commit sends that e-mail again on the next delivery (at least
  once, never lost).
- Throttle, per alert type, held in the database: no e-mail about a type while its latest `emailed_at` is less than
  `email_min_interval_minutes` ago. Alerts raised meanwhile stay in the outbox and in `alerts list` (emailed_at
  empty); when the interval has passed they leave together as ONE digest e-mail. So five alerts of one type within
  the interval send one e-mail now and, at most, one digest later — never a flood, and no alert goes unmentioned.
- An alert acknowledged before it was e-mailed is no longer owed an e-mail: someone has seen it.
- With `email_enabled` false nothing is sent or marked; alerts wait in the outbox (acknowledge old ones before
  switching e-mail on, or they arrive as one digest per type).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sync_pipeline.adapters import mail
from sync_pipeline.adapters.store.alerts import AlertStore
from sync_pipeline.adapters.store.deliveries import DeliveryStore
from sync_pipeline.adapters.store.history import SyncHistory
from sync_pipeline.domain.alert_mail import render_alerts, render_test
from sync_pipeline.domain.alert_rules import utc_text
from sync_pipeline.domain.alerts import Alert
from sync_pipeline.services.alert_rules import hold_lock
from sync_pipeline.services.chat_delivery import ChannelReport, Webhooks, deliver_chat_due
from sync_pipeline.services.database import Database

log = logging.getLogger(__name__)

DELIVERY_LOCK = "alert_delivery"
CHAT_DELIVERY_LOCK = "alert_chat_delivery"  # chat apart: a slow SMTP server never holds Slack back

_alerts = AlertStore()
_deliveries = DeliveryStore()
_history = SyncHistory()


EMAIL = "email"


def _email_outbox(conn: Any, db: Database) -> list[Alert]:
    """The alerts owed an e-mail: the e-mail channel's outbox in `sync_alert_deliveries` (as every channel's)."""
    due, waiting = _deliveries.outbox(conn, EMAIL, db.clock.now())
    return sorted([*due, *waiting], key=lambda a: (a.created_at, a.id))


@dataclass(frozen=True)
class Sent:
    alert_type: str
    alert_ids: tuple[int, ...]
    subject: str
    refused: Mapping[str, str] = field(default_factory=dict)  # recipients the server refused while accepting others


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery pass did. `note` says why nothing could be sent, when nothing could."""

    sent: tuple[Sent, ...] = ()
    throttled: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # type -> {alert_ids, until}
    failed: Mapping[str, Any] | None = None  # {alert_type?, alert_ids, error}: what could not be sent, and why
    pending: int = 0  # alerts owed an e-mail when the pass started
    note: str | None = None
    chat: tuple[ChannelReport, ...] = ()  # the chat channels' passes (services.chat_delivery)

    @property
    def ok(self) -> bool:
        """False when e-mail is on and something owed could not be sent (server down, set-up incomplete), or a chat
        channel failed to take what was due."""
        return self.failed is None and not any(c.failed for c in self.chat)

    def summary(self) -> str:
        parts = [f"{self.pending} alert(s) owed an e-mail"]
        if self.note:
            parts.append(self.note)
        for s in self.sent:
            parts.append(f"e-mailed {s.alert_type} alert(s) {list(s.alert_ids)}")
        for alert_type, t in self.throttled.items():
            parts.append(f"{alert_type} alert(s) {t['alert_ids']} wait for the throttle until {t['until']} UTC")
        if self.failed:
            parts.append(f"sending failed, will retry: {self.failed['error']}")
        text = "; ".join(parts)
        for channel in self.chat:
            text += f". Chat: {channel.summary()}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "pending": self.pending,
            "note": self.note,
            "sent": [
                {"type": s.alert_type, "alert_ids": list(s.alert_ids), "subject": s.subject, "refused": dict(s.refused)}
                for s in self.sent
            ],
            "throttled": {k: dict(v) for k, v in self.throttled.items()},
            "failed": dict(self.failed) if self.failed else None,
            "chat": [c.as_dict() for c in self.chat],
        }


def deliver_due(
    db: Database, smtp: mail.SmtpSettings | None = None, webhooks: Webhooks | None = None
) -> DeliveryReport:
    """Deliver what the outbox owes now: e-mail (one per alert type not throttled; marked only once sent), then each
    configured chat channel (`services.chat_delivery`), under the delivery lock."""
    report = _deliver_email_due(db, smtp)
    webhooks = webhooks if webhooks is not None else Webhooks.from_env()
    if not webhooks.urls:
        return report
    with hold_lock(db, CHAT_DELIVERY_LOCK) as held:
        if not held:
            return report
        return replace(report, chat=tuple(deliver_chat_due(db, webhooks)))


def _deliver_email_due(db: Database, smtp: mail.SmtpSettings | None = None) -> DeliveryReport:
    with db.engine.connect() as conn:
        pending = len(_email_outbox(conn, db))
    settings = db.settings()
    if not settings.email_enabled:
        return DeliveryReport(pending=pending, note="e-mail is off (settings set email_enabled=true to switch it on)")
    if pending == 0:
        return DeliveryReport()
    try:
        smtp = smtp or mail.SmtpSettings.from_env(os.environ)
    except mail.MailConfigError as exc:
        return DeliveryReport(pending=pending, failed={"alert_ids": [], "error": str(exc)})
    if smtp.missing:
        error = f"e-mail is on but not configured: set {' and '.join(smtp.missing)}"
        return DeliveryReport(pending=pending, failed={"alert_ids": [], "error": error})
    with hold_lock(db, DELIVERY_LOCK) as held:
        if not held:
            return DeliveryReport(pending=pending, note="another process is delivering alerts right now")
        return _deliver(db, smtp, settings.email_recipients, settings.ui_base_url, settings.email_min_interval_minutes)


def _deliver(
    db: Database, smtp: mail.SmtpSettings, recipients: tuple[str, ...], ui_base_url: str, interval_minutes: int
) -> DeliveryReport:
    with db.engine.connect() as conn:  # read again under the lock: another deliverer may have just sent some
        outbox = _email_outbox(conn, db)
        by_type: dict[str, list[Alert]] = {}
        for alert in outbox:
            by_type.setdefault(alert.alert_type, []).append(alert)
        last_sent = {t: _deliveries.last_delivered_at(conn, EMAIL, t) for t in by_type}
        run_ids = _history.run_ids(conn, [a.sync_id for a in outbox if a.sync_id])
    interval = dt.timedelta(minutes=interval_minutes)
    sent: list[Sent] = []
    throttled: dict[str, dict[str, Any]] = {}
    for alert_type, alerts in by_type.items():
        ids = tuple(a.id for a in alerts)
        now = db.clock.now()
        last = last_sent[alert_type]
        if last is not None and now < last + interval:
            until = utc_text(last + interval)
            throttled[alert_type] = {"alert_ids": list(ids), "until": until}
            continue
        content = render_alerts(alerts, ui_base_url=ui_base_url, run_ids=run_ids)
        outgoing = mail.OutgoingMail(recipients, content.subject, content.text, content.html)
        try:
            refused = mail.send(smtp, outgoing)
        except mail.MailError as exc:
            with db.engine.begin() as conn:
                _alerts.count_failed_attempt(conn, ids)
                _deliveries.email_failed(conn, ids, str(exc))
            log.warning("e-mail of %s alert(s) %s failed; they stay in the outbox: %s", alert_type, list(ids), exc)
            # The server is most likely down for every type: stop here rather than wait out a timeout per type.
            failed = {"alert_type": alert_type, "alert_ids": list(ids), "error": str(exc)}
            return DeliveryReport(tuple(sent), throttled, failed, pending=len(outbox))
        with db.engine.begin() as conn:
            _alerts.mark_emailed(conn, ids, now=now)
            _deliveries.email_delivered(conn, ids, now)
        log.info("e-mailed %s alert(s) %s to %s", alert_type, list(ids), ", ".join(recipients))
        sent.append(Sent(alert_type, ids, content.subject, refused))
    return DeliveryReport(tuple(sent), throttled, None, pending=len(outbox))


@dataclass(frozen=True)
class EmailTestResult:
    ok: bool
    message: str
    recipients: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "message": self.message, "recipients": list(self.recipients)}


def send_test_email(db: Database, smtp: mail.SmtpSettings | None = None) -> EmailTestResult:
    """Send a test message to `email_recipients`, even with email_enabled off (try the set-up before switching on)."""
    settings = db.settings()
    recipients = settings.email_recipients
    try:
        smtp = smtp or mail.SmtpSettings.from_env(os.environ)
        content = render_test(now=db.clock.now(), recipients=recipients, ui_base_url=settings.ui_base_url)
        refused = mail.send(smtp, mail.OutgoingMail(recipients, content.subject, content.text, content.html))
    except mail.MailError as exc:
        return EmailTestResult(False, str(exc), recipients)
    note = f"; refused: {refused}" if refused else ""
    sent = f"test e-mail sent through {smtp.describe()} to {', '.join(recipients)}{note}"
    return EmailTestResult(True, sent, recipients)
