"""Sheet feedback: each full sync's audit entry keeps what it did to the sheet's notes (`sheet_feedback`).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

A JSON object {status: off|written|failed, notes_written, notes_cleared, notes_unchanged, cells_blocked, requests,
error[, category, reason]}. NULL for every entry written before this revision and for resyncs (which write no notes),
so upgrading rewrites no row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("sync_audit_logs", "sync_audit_logs_archive")  # the archive has the live table's columns


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("sheet_feedback", sa.JSON()))


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("sheet_feedback")
