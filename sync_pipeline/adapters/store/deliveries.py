"""The per-channel delivery repository: `sync_alert_deliveries`, one row per alert and channel."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from sync_pipeline.adapters.store.alerts import _alert
from sync_pipeline.adapters.store.tables import sync_alert_deliveries as deliveries
from sync_pipeline.adapters.store.tables import sync_alerts
from sync_pipeline.domain.alerts import Alert


class DeliveryStore:
    """SQL for `sync_alert_deliveries`; every method takes the caller's connection (its transaction)."""

    def outbox(self, conn: sa.Connection, channel: str, now: dt.datetime) -> tuple[list[Alert], list[Alert]]:
        """(due, waiting) of `channel`, oldest first: unacknowledged alerts neither delivered, failed nor claimed;
        `waiting` are those whose next attempt lies in the future (a backoff)."""
        joined = sync_alerts.outerjoin(
            deliveries, sa.and_(deliveries.c.alert_id == sync_alerts.c.id, deliveries.c.channel == channel)
        )
        query = (
            sa.select(sync_alerts, deliveries.c.next_attempt_at.label("next_attempt_at"))
            .select_from(joined)
            .where(
                sync_alerts.c.acknowledged_at.is_(None),
                deliveries.c.delivered_at.is_(None),
                deliveries.c.failed_at.is_(None),
                deliveries.c.claimed_at.is_(None),
            )
            .order_by(sync_alerts.c.created_at, sync_alerts.c.id)
        )
        due: list[Alert] = []
        waiting: list[Alert] = []
        for row in conn.execute(query).mappings():
            later = row["next_attempt_at"]
            if later is not None and later.tzinfo is None:
                later = later.replace(tzinfo=dt.UTC)
            (waiting if later is not None and later > now else due).append(_alert(row))
        return due, waiting

    def last_delivered_at(self, conn: sa.Connection, channel: str, alert_type: str) -> dt.datetime | None:
        """When an alert of `alert_type` last reached `channel`: the throttle, held in the database."""
        query = (
            sa.select(sa.func.max(deliveries.c.delivered_at))
            .select_from(deliveries.join(sync_alerts, sync_alerts.c.id == deliveries.c.alert_id))
            .where(deliveries.c.channel == channel, sync_alerts.c.alert_type == alert_type)
        )
        value: dt.datetime | None = conn.execute(query).scalar_one()
        return value

    def _upsert(self, conn: sa.Connection, ids: Sequence[int], channel: str, **values: Any) -> None:
        existing = set(
            conn.execute(
                sa.select(deliveries.c.alert_id).where(
                    deliveries.c.channel == channel, deliveries.c.alert_id.in_(list(ids))
                )
            ).scalars()
        )
        attempts = values.pop("attempts_delta", 0)
        if existing:
            conn.execute(
                deliveries.update()
                .where(deliveries.c.channel == channel, deliveries.c.alert_id.in_(sorted(existing)))
                .values(**values, attempts=deliveries.c.attempts + attempts)
            )
        fresh = [i for i in ids if i not in existing]
        if fresh:
            conn.execute(
                deliveries.insert(),
                [{"alert_id": i, "channel": channel, "attempts": attempts, **values} for i in fresh],
            )

    def attempts(self, conn: sa.Connection, ids: Sequence[int], channel: str) -> int:
        query = sa.select(sa.func.max(deliveries.c.attempts)).where(
            deliveries.c.channel == channel, deliveries.c.alert_id.in_(list(ids))
        )
        return int(conn.execute(query).scalar_one() or 0)

    def claim(self, conn: sa.Connection, ids: Sequence[int], channel: str, now: dt.datetime) -> None:
        """Recorded before the post: from here on the post counts as made (at most once per channel)."""
        self._upsert(conn, ids, channel, claimed_at=now, attempts_delta=1)

    def delivered(self, conn: sa.Connection, ids: Sequence[int], channel: str, now: dt.datetime) -> None:
        self._upsert(conn, ids, channel, delivered_at=now, claimed_at=None, last_error=None, next_attempt_at=None)

    def retry_later(self, conn: sa.Connection, ids: Sequence[int], channel: str, error: str, at: dt.datetime) -> None:
        self._upsert(conn, ids, channel, claimed_at=None, last_error=error, next_attempt_at=at)

    def refused(self, conn: sa.Connection, ids: Sequence[int], channel: str, error: str, now: dt.datetime) -> None:
        self._upsert(conn, ids, channel, claimed_at=None, last_error=error, failed_at=now)

    def email_delivered(self, conn: sa.Connection, ids: Sequence[int], now: dt.datetime) -> None:
        """E-mail is recorded after the server accepted it (at least once: SMTP has no way to ask what arrived)."""
        self._upsert(conn, ids, "email", delivered_at=now, last_error=None, attempts_delta=1)

    def email_failed(self, conn: sa.Connection, ids: Sequence[int], error: str) -> None:
        self._upsert(conn, ids, "email", last_error=error, attempts_delta=1)

    def for_alerts(self, conn: sa.Connection, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        """Each alert's deliveries (channel, delivered_at, attempts, last_error, next_attempt_at, failed_at)."""
        if not ids:
            return {}
        rows = conn.execute(
            sa.select(deliveries).where(deliveries.c.alert_id.in_(list(ids))).order_by(deliveries.c.channel)
        ).mappings()
        found: dict[int, list[dict[str, Any]]] = {}
        for r in rows:
            found.setdefault(int(r["alert_id"]), []).append(
                {
                    "channel": r["channel"],
                    "delivered_at": r["delivered_at"],
                    "attempts": int(r["attempts"] or 0),
                    "last_error": r["last_error"],
                    "next_attempt_at": r["next_attempt_at"],
                    "failed_at": r["failed_at"],
                    "unconfirmed": r["claimed_at"] is not None and r["delivered_at"] is None,
                }
            )
        return found
