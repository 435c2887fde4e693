"""Settings history: every change of a `sync_config` value with its old and new value, time and author.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Frozen copy of `sync_config_history` in sync_pipeline/adapters/store/tables.py at this revision.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sync_config_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_config_history")),
    )
    op.create_index(op.f("ix_sync_config_history_changed_at"), "sync_config_history", ["changed_at"], unique=False)
    op.create_index(
        op.f("ix_sync_config_history_key_changed_at"), "sync_config_history", ["key", "changed_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sync_config_history_key_changed_at"), table_name="sync_config_history")
    op.drop_index(op.f("ix_sync_config_history_changed_at"), table_name="sync_config_history")
    op.drop_table("sync_config_history")
