"""The lock table says what it is: `sync_locks.expires_at` dropped (every lock dies with its holder now).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

The downgrade restores the column, NOT NULL, filled from `acquired_at` (what the last code that read it wrote).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_locks") as batch:
        batch.drop_column("expires_at")


def downgrade() -> None:
    with op.batch_alter_table("sync_locks") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE sync_locks SET expires_at = acquired_at")
    with op.batch_alter_table("sync_locks") as batch:
        batch.alter_column("expires_at", existing_type=sa.DateTime(timezone=True), nullable=False)
