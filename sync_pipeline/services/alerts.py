"""Raising, listing and acknowledging alerts (Requirement 3): rows of `sync_alerts`, each also logged with its severity.

Delivery by e-mail is separate: every alert is stored with `emailed_at` NULL, which makes the table its own outbox,
so an alert raised while the mail server is down is sent later rather than lost.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from sync_pipeline.adapters.store.alerts import AlertStore
from sync_pipeline.domain.alerts import Alert, AlertType, Severity
from sync_pipeline.services.database import Database

log = logging.getLogger("sync_pipeline.alerts")

_LEVELS = {Severity.INFO: logging.INFO, Severity.WARNING: logging.WARNING, Severity.CRITICAL: logging.CRITICAL}
_store = AlertStore()


def raise_alert(
    conn: sa.Connection,
    alert_type: AlertType | str,
    severity: Severity,
    message: str,
    *,
    now: dt.datetime,
    sync_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> Alert:
    """Store an alert in the caller's transaction and write it to the log with its severity (Property 11)."""
    alert = _store.insert(
        conn,
        alert_type=str(alert_type),
        severity=severity,
        message=message,
        created_at=now,
        sync_id=sync_id,
        detail=detail,
    )
    log.log(
        _LEVELS[severity],
        "ALERT %s [%s] %s",
        severity.value.upper(),
        alert.alert_type,
        message,
        extra={"alert_id": alert.id, "alert_type": alert.alert_type, "severity": severity.value, "sync_id": sync_id},
    )
    return alert


def list_alerts(
    db: Database,
    *,
    limit: int = 50,
    unacknowledged_only: bool = False,
    alert_type: AlertType | str | None = None,
    sync_id: str | None = None,
) -> list[Alert]:
    """Alerts, most recent first."""
    with db.engine.connect() as conn:
        return _store.recent(
            conn,
            limit=limit,
            unacknowledged_only=unacknowledged_only,
            alert_type=None if alert_type is None else str(alert_type),
            sync_id=sync_id,
        )


def acknowledge(db: Database, ids: Sequence[int], *, by: str | None = None) -> list[int]:
    """Acknowledge alerts by id; returns those acknowledged now (already acknowledged ones are left as they were)."""
    with db.engine.begin() as conn:
        return _store.acknowledge(conn, ids, now=db.clock.now(), by=by)
