"""Seller attributes: the sheet contract's own fields (and kept unmapped columns), by field name, typed JSON.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

JSONB on Postgres (the content hash reads single members with `->`), JSON (text) on SQLite. Also the audit's
`unmapped_columns` (the header texts no field named, in sheet order). NULL means no attributes:
every row written before this revision, and every row under the default contract, so upgrading rewrites no row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sellers") as batch:
        batch.add_column(sa.Column("attributes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")))
    for table in ("sync_audit_logs", "sync_audit_logs_archive"):  # the archive has the live table's columns
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("unmapped_columns", sa.JSON()))


def downgrade() -> None:
    for table in ("sync_audit_logs_archive", "sync_audit_logs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("unmapped_columns")
    with op.batch_alter_table("sellers") as batch:
        batch.drop_column("attributes")
