"""Alert delivery per channel: `sync_alert_deliveries` (e-mail, Slack, Teams, plain webhook).

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-07

The e-mail deliveries recorded so far (`sync_alerts.emailed_at`, `email_attempts`) are copied in as channel
`email`; the downgrade drops the table (e-mail's own columns were kept, and still hold its outbox).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sync_alert_deliveries",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("alert_id", _ID, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["sync_alerts.id"],
            name=op.f("fk_sync_alert_deliveries_alert_id_sync_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_alert_deliveries")),
        sa.UniqueConstraint("alert_id", "channel", name=op.f("uq_sync_alert_deliveries_alert_id_channel")),
    )
    op.create_index(
        op.f("ix_sync_alert_deliveries_channel_delivered_at"), "sync_alert_deliveries", ["channel", "delivered_at"]
    )
    op.execute(
        "INSERT INTO sync_alert_deliveries (alert_id, channel, delivered_at, attempts) "
        "SELECT id, 'email', emailed_at, email_attempts FROM sync_alerts "
        "WHERE emailed_at IS NOT NULL OR email_attempts > 0"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sync_alert_deliveries_channel_delivered_at"), table_name="sync_alert_deliveries")
    op.drop_table("sync_alert_deliveries")
