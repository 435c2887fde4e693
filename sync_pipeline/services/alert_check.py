"""One pass of alerting: evaluate every rule, then deliver the e-mail that is due — what `sync-pipeline alerts check`
and the sensors run."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sync_pipeline.adapters.mail import SmtpSettings
from sync_pipeline.services.alert_delivery import DeliveryReport, deliver_due
from sync_pipeline.services.alert_rules import ALL_RULES, AlertListener, RulesResult, evaluate_rules
from sync_pipeline.services.chat_delivery import Webhooks
from sync_pipeline.services.database import Database


@dataclass(frozen=True)
class AlertCheck:
    rules: RulesResult
    delivery: DeliveryReport

    def summary(self) -> str:
        return f"{self.rules.summary()}. E-mail: {self.delivery.summary()}"

    def as_dict(self) -> dict[str, Any]:
        return {**self.rules.as_dict(), "email": self.delivery.as_dict()}


def check_alerts(
    db: Database,
    *,
    rules: Collection[str] = ALL_RULES,
    smtp: SmtpSettings | None = None,
    on_alert: AlertListener | None = None,
    webhooks: Webhooks | None = None,
) -> AlertCheck:
    """Evaluate `rules` once (idempotent) and deliver what is due: e-mail (`smtp` defaults to the SYNC_SMTP_*
    environment) and chat (`webhooks` to the SYNC_*_WEBHOOK_URL environment)."""
    evaluated = evaluate_rules(db, rules=rules, on_alert=on_alert)
    return AlertCheck(rules=evaluated, delivery=deliver_due(db, smtp, webhooks))
