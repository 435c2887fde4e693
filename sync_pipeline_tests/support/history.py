"""Test helper: a sync history written straight into the real audit log (and metrics), as syncs would leave it."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from sync_pipeline.adapters.store.tables import sync_audit_logs
from sync_pipeline.services.database import Database
from sync_pipeline.services.metrics import record_sync_metrics


def add_sync(
    db: Database,
    started_at: dt.datetime,
    status: str = "succeeded",
    *,
    kind: str = "scheduled",
    duration_s: float | None = 10.0,
    rows_read: int = 100,
    gaps_found: int | None = None,
    metrics: bool = True,
) -> str:
    """One ended (or running) sync started at `started_at`; its metrics row too unless it is running or skipped."""
    sync_id = str(uuid.uuid4())
    ended = status not in {"running"}
    finished = started_at + dt.timedelta(seconds=duration_s or 0) if ended else None
    with db.engine.begin() as conn:
        conn.execute(
            sa.insert(sync_audit_logs).values(
                sync_id=sync_id,
                kind=kind,
                status=status,
                started_at=started_at,
                finished_at=finished,
                duration_s=duration_s if ended else None,
                rows_read=rows_read,
                inserted_count=0,
                updated_count=0,
                rejected_count=0,
                phases={"fetch": 0.5, "validate": 0.25, "compare": 0.1, "update": 1.0, "verify": 0.2},
                verified_at=finished if gaps_found is not None else None,
                gaps_found=gaps_found,
            )
        )
    if metrics and status not in {"running", "skipped"}:
        record_sync_metrics(db, sync_id)
    return sync_id
