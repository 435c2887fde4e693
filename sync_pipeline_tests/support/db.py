"""Test helpers for the real databases: empty every table between Hypothesis examples, read a sync's audit row."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from sync_pipeline.adapters.store.tables import metadata
from sync_pipeline.services.database import Database


def reset_database(engine: sa.Engine) -> None:
    """Delete every row of every table (children first), keeping the migrated schema."""
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


def audit_row(db: Database, sync_id: str) -> dict[str, Any]:
    """The audit row of a sync, which must exist."""
    with db.engine.connect() as conn:
        row = db.audit.get(conn, sync_id)
    assert row is not None, f"no audit row for sync {sync_id}"
    return dict(row)
