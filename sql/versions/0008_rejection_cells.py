"""Rejection cells: the error log keeps a rejected cell's field, column header text and cell text (a JSON detail).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

`sync-pipeline rejections` exports them for the office. NULL for every entry written before this revision and for
errors that are not rejected cells, so upgrading rewrites no row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("sync_error_logs", "sync_error_logs_archive"):  # the archive has the live table's columns
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("detail", sa.JSON()))


def downgrade() -> None:
    for table in ("sync_error_logs_archive", "sync_error_logs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("detail")
