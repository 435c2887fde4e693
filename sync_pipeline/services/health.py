"""Health at a glance (Requirement 5): the figures behind `sync-pipeline health` and the `sync_health` asset.

Every figure is read with a handful of indexed queries (the benchmark holds them under 200 ms with 10,000 syncs);
the counting rules are `domain.metrics`' (what is an attempt, a success, a window).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from sync_pipeline.adapters.store.tables import PHASE_COLUMNS, sync_alerts, sync_audit_logs, sync_metrics
from sync_pipeline.domain.audit import SyncStatus
from sync_pipeline.domain.clock import as_utc
from sync_pipeline.domain.metrics import (
    ATTEMPT_STATUSES,
    DAY,
    MEASURED_KINDS,
    SUCCESS_STATUSES,
    WEEK,
    PeriodStats,
    Rate,
    aggregate,
    rate_from_counts,
)
from sync_pipeline.services.database import Database

RECENT_SYNCS = 10  # rows of the recent-syncs table
OPEN_ALERTS_SHOWN = 10
TREND_POINTS = 50  # syncs in the trend (P22)


@dataclass(frozen=True)
class SyncLine:
    """One recent sync (P21)."""

    sync_id: str
    kind: str
    status: str
    started_at: dt.datetime
    duration_s: float | None
    rows_per_s: float | None
    inserted: int
    updated: int
    rejected: int
    gaps_found: int | None


@dataclass(frozen=True)
class AlertLine:
    id: int
    alert_type: str
    severity: str
    created_at: dt.datetime
    message: str


@dataclass(frozen=True)
class TrendPoint:
    """One sync's figures for the trend (P22): duration, throughput, phases and counts over time."""

    sync_id: str
    started_at: dt.datetime
    status: str
    duration_s: float | None
    rows_per_s: float | None
    rows_read: int | None
    rows_written: int | None
    error_count: int
    phases: Mapping[str, float | None]


@dataclass(frozen=True)
class HealthFigures:
    """The dashboard (P18-P22). Rates are fractions 0..1, None when the window holds no attempt."""

    now: dt.datetime
    timezone: str  # the sheet_timezone setting: how times are shown
    rate_24h: Rate
    rate_7d: Rate
    gap_count: int | None  # of the latest verification; None before the first one
    open_alerts: int
    last_attempt_at: dt.datetime | None
    last_attempt_status: str | None
    last_success_at: dt.datetime | None
    last_duration_s: float | None
    last_rows_per_s: float | None
    running: bool
    recent_syncs: tuple[SyncLine, ...]
    open_alert_list: tuple[AlertLine, ...]
    trend: tuple[TrendPoint, ...]  # oldest first
    week: PeriodStats

    @property
    def success_rate_24h(self) -> float | None:
        return self.rate_24h.value

    @property
    def success_rate_7d(self) -> float | None:
        return self.rate_7d.value

    @property
    def minutes_since_last_success(self) -> float | None:
        if self.last_success_at is None:
            return None
        return (self.now - self.last_success_at).total_seconds() / 60

    def local(self, moment: dt.datetime | None) -> str | None:
        """A moment in the sheet's time zone, to the second, with its offset."""
        if moment is None:
            return None
        return moment.astimezone(ZoneInfo(self.timezone)).isoformat(sep=" ", timespec="seconds")

    def as_dict(self) -> dict[str, Any]:
        """The `health --json` object: the seven headline figures first, then the detail."""
        return {
            "success_rate_24h": self.success_rate_24h,
            "success_rate_7d": self.success_rate_7d,
            "gap_count": self.gap_count,
            "open_alerts": self.open_alerts,
            "minutes_since_last_success": _round(self.minutes_since_last_success, 1),
            "last_duration_s": _round(self.last_duration_s, 3),
            "last_rows_per_s": _round(self.last_rows_per_s, 1),
            "state": "running" if self.running else "idle",
            "now": self.local(self.now),
            "timezone": self.timezone,
            "last_attempt_at": self.local(self.last_attempt_at),
            "last_attempt_status": self.last_attempt_status,
            "last_success_at": self.local(self.last_success_at),
            "attempts_24h": self.rate_24h.attempts,
            "successes_24h": self.rate_24h.successes,
            "attempts_7d": self.rate_7d.attempts,
            "successes_7d": self.rate_7d.successes,
            "stats_7d": self.week.as_dict(),
            "recent_syncs": [
                {**line.__dict__, "started_at": self.local(line.started_at)} for line in self.recent_syncs
            ],
            "open_alert_list": [
                {**line.__dict__, "created_at": self.local(line.created_at)} for line in self.open_alert_list
            ],
            "trend": [
                {**point.__dict__, "started_at": self.local(point.started_at), "phases": dict(point.phases)}
                for point in self.trend
            ],
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def health(db: Database, now: dt.datetime | None = None) -> HealthFigures:
    """The health figures as of `now` (default: the database's clock)."""
    now = as_utc(now) if now is not None else db.clock.now()
    timezone = db.settings(write_defaults=False).sheet_timezone
    a = sync_audit_logs
    measured = a.c.kind.in_(sorted(MEASURED_KINDS))
    with db.engine.connect() as conn:
        in_day = sa.case((a.c.started_at >= now - DAY, 1), else_=0)
        counts = conn.execute(
            sa.select(a.c.status, sa.func.sum(in_day), sa.func.count())
            .where(measured, a.c.started_at >= now - WEEK, a.c.started_at < now)
            .group_by(a.c.status)
        ).all()
        rate_24h = rate_from_counts({status: int(day or 0) for status, day, _ in counts})
        rate_7d = rate_from_counts({status: int(week) for status, _, week in counts})

        last_attempt = _latest(conn, ATTEMPT_STATUSES, now)
        last_success = _latest(conn, SUCCESS_STATUSES, now)
        running = (
            conn.execute(sa.select(a.c.id).where(a.c.status == SyncStatus.RUNNING.value).limit(1)).first() is not None
        )
        gap_count = conn.execute(
            sa.select(a.c.gaps_found).where(a.c.verified_at.is_not(None)).order_by(a.c.verified_at.desc()).limit(1)
        ).scalar()
        open_alerts = conn.execute(
            sa.select(sa.func.count()).select_from(sync_alerts).where(sync_alerts.c.acknowledged_at.is_(None))
        ).scalar_one()
        alert_rows = conn.execute(
            sa.select(sync_alerts)
            .where(sync_alerts.c.acknowledged_at.is_(None))
            .order_by(sync_alerts.c.created_at.desc(), sync_alerts.c.id.desc())
            .limit(OPEN_ALERTS_SHOWN)
        ).mappings()
        open_alert_list = tuple(
            AlertLine(r["id"], r["alert_type"], r["severity"], r["created_at"], r["message"]) for r in alert_rows
        )
        recent = conn.execute(
            sa.select(a, sync_metrics.c.rows_per_s)
            .select_from(a.outerjoin(sync_metrics, sync_metrics.c.sync_id == a.c.sync_id))
            .where(a.c.started_at < now)
            .order_by(a.c.started_at.desc(), a.c.id.desc())
            .limit(RECENT_SYNCS)
        ).mappings()
        recent_syncs = tuple(
            SyncLine(
                r["sync_id"],
                r["kind"],
                r["status"],
                r["started_at"],
                r["duration_s"],
                r["rows_per_s"],
                r["inserted_count"] or 0,
                r["updated_count"] or 0,
                r["rejected_count"] or 0,
                r["gaps_found"],
            )
            for r in recent
        )
        trend = _trend(conn, now)
        week_figures = conn.execute(
            sa.select(sync_metrics.c.duration_s, sync_metrics.c.rows_per_s).where(
                sync_metrics.c.started_at >= now - WEEK,
                sync_metrics.c.started_at < now,
                sync_metrics.c.kind.in_(sorted(MEASURED_KINDS)),
                sync_metrics.c.status.in_(sorted(ATTEMPT_STATUSES)),
            )
        ).all()
        last_metrics = None
        if last_attempt is not None:
            last_metrics = conn.execute(
                sa.select(sync_metrics.c.rows_per_s).where(sync_metrics.c.sync_id == last_attempt["sync_id"])
            ).first()
    week = PeriodStats(
        since=now - WEEK,
        until=now,
        rate=rate_7d,
        duration_s=aggregate(d for d, _ in week_figures),
        rows_per_s=aggregate(r for _, r in week_figures),
    )
    return HealthFigures(
        now=now,
        timezone=timezone,
        rate_24h=rate_24h,
        rate_7d=rate_7d,
        gap_count=None if gap_count is None else int(gap_count),
        open_alerts=int(open_alerts),
        last_attempt_at=None if last_attempt is None else last_attempt["started_at"],
        last_attempt_status=None if last_attempt is None else last_attempt["status"],
        last_success_at=None if last_success is None else (last_success["finished_at"] or last_success["started_at"]),
        last_duration_s=None if last_attempt is None else last_attempt["duration_s"],
        last_rows_per_s=None if last_metrics is None else last_metrics[0],
        running=running,
        recent_syncs=recent_syncs,
        open_alert_list=open_alert_list,
        trend=trend,
        week=week,
    )


def _latest(conn: sa.Connection, statuses: frozenset[str], now: dt.datetime) -> sa.RowMapping | None:
    a = sync_audit_logs
    return (
        conn.execute(
            sa.select(a.c.sync_id, a.c.status, a.c.started_at, a.c.finished_at, a.c.duration_s)
            .where(a.c.status.in_(sorted(statuses)), a.c.kind.in_(sorted(MEASURED_KINDS)), a.c.started_at < now)
            .order_by(a.c.started_at.desc(), a.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )


def _trend(conn: sa.Connection, now: dt.datetime) -> tuple[TrendPoint, ...]:
    m = sync_metrics
    rows = conn.execute(
        sa.select(m)
        .where(m.c.started_at < now, m.c.kind.in_(sorted(MEASURED_KINDS)))
        .order_by(m.c.started_at.desc(), m.c.id.desc())
        .limit(TREND_POINTS)
    ).mappings()
    points = [
        TrendPoint(
            sync_id=r["sync_id"],
            started_at=r["started_at"],
            status=r["status"],
            duration_s=r["duration_s"],
            rows_per_s=r["rows_per_s"],
            rows_read=r["rows_read"],
            rows_written=r["rows_written"],
            error_count=r["error_count"],
            phases={c.removesuffix("_s"): r[c] for c in PHASE_COLUMNS},
        )
        for r in rows
    ]
    return tuple(reversed(points))
