"""Metrics per sync (Requirements 6.1-6.3, 6.5): one `sync_metrics` row when a sync ends, and the slow-sync alert.

`record_sync_metrics` is called by `SyncRun._after_close` once a sync has closed (and again for the parent when its
gap resync closes). Calling it again for the same sync rewrites the row (the resync seconds have grown) and never
raises the slow-sync alert twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa

from sync_pipeline.adapters.store.tables import PHASE_COLUMNS, sync_audit_logs, sync_error_logs, sync_metrics
from sync_pipeline.domain.alerts import AlertType, Severity
from sync_pipeline.domain.audit import SyncKind, SyncStatus
from sync_pipeline.domain.metrics import (
    ATTEMPT_STATUSES,
    MEASURED_KINDS,
    SLOW_SYNC_BASELINE,
    SlowVerdict,
    SyncSample,
    baseline_durations,
    slow_sync,
)
from sync_pipeline.services.alerts import raise_alert
from sync_pipeline.services.database import Database

PHASE_NAMES: tuple[str, ...] = tuple(c.removesuffix("_s") for c in PHASE_COLUMNS)  # fetch … verify, resync


class SyncStillRunningError(RuntimeError):
    """Metrics are a sync's final figures: record them when it has closed."""


@dataclass(frozen=True)
class SyncMetrics:
    """The figures of one ended sync, as stored in `sync_metrics` (P23 phases, P24 throughput, P25 errors)."""

    sync_id: str
    kind: str
    status: str
    started_at: dt.datetime
    duration_s: float | None
    phases: Mapping[str, float]  # fetch, validate, compare, update, verify, resync -> seconds (0 when not reached)
    rows_read: int
    rows_written: int
    rows_per_s: float | None  # rows read / duration; None when the sync read nothing or took no time
    errors_by_category: Mapping[str, int] = field(default_factory=dict)
    slow: SlowVerdict | None = None  # None for kinds and statuses that are not judged (resyncs, skipped)

    @property
    def error_count(self) -> int:
        return sum(self.errors_by_category.values())

    def numeric_metadata(self) -> dict[str, float | int]:
        """Int and float figures only: what the Dagster UI plots over time for a materialisation.

        `rows_read_per_second` is the sync's throughput over its whole duration (P24); the sellers_table's own
        `rows_per_second` is the write rate of its update phase.
        """
        figures: dict[str, float | int] = {f"{p}_seconds": float(round(s, 4)) for p, s in self.phases.items()}
        figures["duration_seconds"] = float(round(self.duration_s or 0.0, 4))
        figures["rows_read_per_second"] = float(round(self.rows_per_s or 0.0, 1))
        figures["error_count"] = self.error_count
        figures.update({f"errors_{c}": n for c, n in sorted(self.errors_by_category.items())})
        return figures


def record_sync_metrics(db: Database, sync_id: str) -> SyncMetrics | None:
    """Write (or rewrite) the metrics row of ended sync `sync_id`; raise a `slow_sync` warning when it was slow (P27).

    Returns None for a skipped sync (refused by the lock: nothing ran, nothing to measure).
    """
    settings = db.settings()
    now = db.clock.now()
    with db.engine.begin() as conn:
        row = db.audit.get(conn, sync_id)
        if row is None:
            raise KeyError(f"no sync {sync_id} in the audit log")
        if row["status"] == SyncStatus.RUNNING.value:
            raise SyncStillRunningError(f"sync {sync_id} is still running; record its metrics when it has closed")
        if row["status"] == SyncStatus.SKIPPED.value:
            return None
        metrics = _measure(conn, row)
        if row["kind"] in MEASURED_KINDS and row["status"] in ATTEMPT_STATUSES and metrics.duration_s is not None:
            verdict = slow_sync(
                metrics.duration_s,
                _baseline(conn, row["started_at"]),
                factor=settings.slow_sync_factor,
                min_samples=settings.slow_sync_min_samples,
            )
            metrics = SyncMetrics(**{**metrics.__dict__, "slow": verdict})
        existed = conn.execute(sa.delete(sync_metrics).where(sync_metrics.c.sync_id == sync_id)).rowcount > 0
        conn.execute(sync_metrics.insert().values(**_row(metrics, now)))
        if metrics.slow is not None and metrics.slow.slow and not existed:
            raise_alert(
                conn,
                AlertType.SLOW_SYNC,
                Severity.WARNING,
                _slow_message(metrics, settings.slow_sync_factor),
                now=now,
                sync_id=sync_id,
                detail={
                    "duration_s": metrics.duration_s,
                    "median_s": metrics.slow.median_s,
                    "threshold_s": metrics.slow.threshold_s,
                    "samples": metrics.slow.samples,
                    "phases": dict(metrics.phases),
                },
            )
    return metrics


def _measure(conn: sa.Connection, row: Mapping[str, object]) -> SyncMetrics:
    sync_id = str(row["sync_id"])
    stored = dict(row["phases"] or {})  # type: ignore[call-overload]
    phases = {name: float(stored.get(name) or 0.0) for name in PHASE_NAMES}
    if not phases["resync"] and row["kind"] != SyncKind.RESYNC.value:
        # The gap resync is a sync of its own (parent_sync_id): its whole duration is this sync's resync phase.
        resync_s = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(sync_audit_logs.c.duration_s), 0.0)).where(
                sync_audit_logs.c.parent_sync_id == sync_id
            )
        ).scalar_one()
        phases["resync"] = float(resync_s)
    errors = {
        str(category): int(n)
        for category, n in conn.execute(
            sa.select(sync_error_logs.c.category, sa.func.count())
            .where(sync_error_logs.c.sync_id == sync_id)
            .group_by(sync_error_logs.c.category)
        )
    }
    duration = None if row["duration_s"] is None else float(row["duration_s"])  # type: ignore[arg-type]
    rows_read = int(row["rows_read"] or 0)  # type: ignore[call-overload]
    return SyncMetrics(
        sync_id=sync_id,
        kind=str(row["kind"]),
        status=str(row["status"]),
        started_at=row["started_at"],  # type: ignore[arg-type]
        duration_s=duration,
        phases=phases,
        rows_read=rows_read,
        rows_written=int(row["inserted_count"] or 0) + int(row["updated_count"] or 0),  # type: ignore[call-overload]
        rows_per_s=rows_read / duration if duration and rows_read else None,
        errors_by_category=errors,
    )


def _baseline(conn: sa.Connection, started_at: dt.datetime) -> list[float]:
    """Durations of the 7 days before `started_at` (filtered in SQL by time, by the domain rule for the rest)."""
    rows = conn.execute(
        sa.select(sync_metrics.c.started_at, sync_metrics.c.status, sync_metrics.c.kind, sync_metrics.c.duration_s)
        .where(sync_metrics.c.started_at >= started_at - SLOW_SYNC_BASELINE)
        .where(sync_metrics.c.started_at < started_at)
    )
    samples = [SyncSample(started_at=r.started_at, status=r.status, kind=r.kind, duration_s=r.duration_s) for r in rows]
    return baseline_durations(samples, started_at)


def _row(m: SyncMetrics, now: dt.datetime) -> dict[str, object]:
    return {
        "sync_id": m.sync_id,
        "kind": m.kind,
        "status": m.status,
        "started_at": m.started_at,
        "recorded_at": now,
        "duration_s": m.duration_s,
        **{f"{p}_s": m.phases[p] for p in PHASE_NAMES},
        "rows_read": m.rows_read,
        "rows_written": m.rows_written,
        "rows_per_s": m.rows_per_s,
        "error_count": m.error_count,
        "errors_by_category": dict(m.errors_by_category) or None,
        "slow": bool(m.slow and m.slow.slow),
    }


def _slow_message(m: SyncMetrics, factor: float) -> str:
    assert m.slow is not None and m.slow.median_s is not None
    slowest = max(m.phases.items(), key=lambda item: item[1])
    return (
        f"sync {m.sync_id} took {m.duration_s:.1f}s, more than {factor:g} x the median {m.slow.median_s:.1f}s of the "
        f"{m.slow.samples} successful syncs of the last 7 days; its slowest phase was {slowest[0]} "
        f"({slowest[1]:.1f}s). Check the sheet's size and the database's load."
    )
