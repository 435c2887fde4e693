"""The rejected rows of one sync, read back from the audit log: what `sync-pipeline rejections` exports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from sync_pipeline.adapters.store.tables import sync_error_logs
from sync_pipeline.domain.audit import SyncStatus
from sync_pipeline.services.database import Database
from sync_pipeline.services.schedule import FULL_SYNC_KINDS
from sync_pipeline.services.verify import VERIFICATION_RULES

REJECTION_CATEGORIES = frozenset({"validation", "integrity"})


class NoSuchSyncError(LookupError):
    """No sync with that id (or no full sync at all) in the audit log."""


def is_rejection(error: Mapping[Any, Any]) -> bool:
    """A rejected sheet row: a validation or integrity error of a sheet row, not a finding about the database."""
    return (
        error["category"] in REJECTION_CATEGORIES
        and error["sheet_row"] is not None
        and error["rule"] not in VERIFICATION_RULES
    )


def rejection_row(error: Mapping[Any, Any]) -> dict[str, Any]:
    """One rejection as the summaries and the export show it."""
    detail = error.get("detail") or {}
    return {
        "row": error["sheet_row"],
        "cell": error["cell"],
        "field": detail.get("field"),
        "column": detail.get("column"),
        "value": detail.get("value"),
        "rule": error["rule"],
        "seller_number": error["seller_number"],
        "message": error["message"],
        "url": detail.get("url"),  # opens the cell, for a Google source
    }


def sync_rejections(db: Database, sync_id: str | None = None) -> tuple[Mapping[str, Any], list[dict[str, Any]]]:
    """The audit row of `sync_id` (default: the latest full sync that read the sheet) and its rejected rows."""
    statuses = [SyncStatus.SUCCEEDED, SyncStatus.PARTIAL, SyncStatus.FAILED]
    with db.engine.connect() as conn:
        row = (
            db.audit.get(conn, sync_id)
            if sync_id is not None
            else db.audit.latest(conn, statuses=statuses, kinds=list(FULL_SYNC_KINDS))
        )
        if row is None:
            raise NoSuchSyncError(f"no sync {sync_id}" if sync_id else "no full sync yet")
        errors = conn.execute(
            sa.select(sync_error_logs)
            .where(sync_error_logs.c.sync_id == row["sync_id"])
            .order_by(sync_error_logs.c.sheet_row, sync_error_logs.c.id)
        ).mappings()
        return row, [rejection_row(e) for e in errors if is_rejection(e)]
