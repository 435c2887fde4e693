"""The alert repository: rows of `sync_alerts` (the e-mail outbox is the `emailed_at IS NULL` rows)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from sync_pipeline.adapters.store.tables import sync_alerts
from sync_pipeline.domain.alert_rules import RULE_KEY
from sync_pipeline.domain.alerts import Alert, Severity

RULE_KEY_LOOKBACK = 20  # recent alerts of a type searched for a rule key: streaks and silences end one at a time


def _alert(row: sa.RowMapping) -> Alert:
    return Alert(
        id=int(row["id"]),
        alert_type=row["alert_type"],
        severity=Severity(row["severity"]),
        message=row["message"],
        created_at=row["created_at"],
        sync_id=row["sync_id"],
        detail=row["detail"] or {},
        acknowledged_at=row["acknowledged_at"],
        acknowledged_by=row["acknowledged_by"],
        emailed_at=row["emailed_at"],
        email_attempts=int(row["email_attempts"] or 0),
    )


class AlertStore:
    """SQL for `sync_alerts`; every method takes the caller's connection (its transaction)."""

    def insert(
        self,
        conn: sa.Connection,
        *,
        alert_type: str,
        severity: Severity,
        message: str,
        created_at: dt.datetime,
        sync_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Alert:
        statement = (
            sync_alerts.insert()
            .values(
                alert_type=alert_type,
                severity=severity.value,
                message=message,
                sync_id=sync_id,
                detail=dict(detail or {}) or None,
                created_at=created_at,
            )
            .returning(*sync_alerts.c)
        )
        return _alert(conn.execute(statement).mappings().one())

    def recent(
        self,
        conn: sa.Connection,
        *,
        limit: int = 50,
        unacknowledged_only: bool = False,
        alert_type: str | None = None,
        sync_id: str | None = None,
        since: dt.datetime | None = None,
    ) -> list[Alert]:
        """Alerts, most recent first."""
        query = sa.select(sync_alerts)
        if unacknowledged_only:
            query = query.where(sync_alerts.c.acknowledged_at.is_(None))
        if alert_type is not None:
            query = query.where(sync_alerts.c.alert_type == alert_type)
        if sync_id is not None:
            query = query.where(sync_alerts.c.sync_id == sync_id)
        if since is not None:
            query = query.where(sync_alerts.c.created_at >= since)
        query = query.order_by(sync_alerts.c.created_at.desc(), sync_alerts.c.id.desc()).limit(limit)
        return [_alert(r) for r in conn.execute(query).mappings()]

    def acknowledge(
        self, conn: sa.Connection, ids: Sequence[int], *, now: dt.datetime, by: str | None = None
    ) -> list[int]:
        """Acknowledge the given alerts that are not acknowledged yet; returns the ids acknowledged now."""
        if not ids:
            return []
        statement = (
            sync_alerts.update()
            .where(sync_alerts.c.id.in_(list(ids)), sync_alerts.c.acknowledged_at.is_(None))
            .values(acknowledged_at=now, acknowledged_by=by)
            .returning(sync_alerts.c.id)
        )
        return sorted(int(r[0]) for r in conn.execute(statement))

    def rule_keys(self, conn: sa.Connection, alert_type: str) -> frozenset[str]:
        """The rule keys (streaks, silent periods) that the latest alerts of `alert_type` were raised for."""
        query = (
            sa.select(sync_alerts.c.detail)
            .where(sync_alerts.c.alert_type == alert_type)
            .order_by(sync_alerts.c.created_at.desc(), sync_alerts.c.id.desc())
            .limit(RULE_KEY_LOOKBACK)
        )
        details = conn.execute(query).scalars()
        return frozenset(str(d[RULE_KEY]) for d in details if isinstance(d, dict) and d.get(RULE_KEY))

    # -- the e-mail outbox: rows with emailed_at NULL ------------------------------------------------------------
    def outbox(self, conn: sa.Connection) -> list[Alert]:
        """Alerts still owed an e-mail, oldest first; an acknowledged alert is no longer owed one (someone saw it)."""
        query = (
            sa.select(sync_alerts)
            .where(sync_alerts.c.emailed_at.is_(None), sync_alerts.c.acknowledged_at.is_(None))
            .order_by(sync_alerts.c.created_at, sync_alerts.c.id)
        )
        return [_alert(r) for r in conn.execute(query).mappings()]

    def last_emailed_at(self, conn: sa.Connection, alert_type: str) -> dt.datetime | None:
        """When an e-mail about `alert_type` last went out: the throttle is held here, so it holds across processes."""
        query = sa.select(sa.func.max(sync_alerts.c.emailed_at)).where(sync_alerts.c.alert_type == alert_type)
        value: dt.datetime | None = conn.execute(query).scalar_one()
        return value

    def mark_emailed(self, conn: sa.Connection, ids: Sequence[int], *, now: dt.datetime) -> None:
        conn.execute(
            sync_alerts.update()
            .where(sync_alerts.c.id.in_(list(ids)), sync_alerts.c.emailed_at.is_(None))
            .values(emailed_at=now, email_attempts=sync_alerts.c.email_attempts + 1)
        )

    def count_failed_attempt(self, conn: sa.Connection, ids: Sequence[int]) -> None:
        conn.execute(
            sync_alerts.update()
            .where(sync_alerts.c.id.in_(list(ids)), sync_alerts.c.emailed_at.is_(None))
            .values(email_attempts=sync_alerts.c.email_attempts + 1)
        )
