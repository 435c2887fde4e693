"""The initial schema: sellers, their properties, and the sync's audit, logs, alerts, metrics, config and lock tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Frozen copy of sync_pipeline/adapters/store/tables.py at this revision: later changes to tables.py need a new
revision, not an edit here. Names are spelled out (op.f) exactly as tables.py's naming convention produces them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine[int]:
    # BIGINT on Postgres; INTEGER on SQLite, where only "INTEGER PRIMARY KEY" is the auto-assigned rowid alias.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id_column() -> sa.Column[int]:
    return sa.Column("id", _id(), autoincrement=True, nullable=False)


def _now() -> sa.TextClause:
    return sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "sellers",
        _id_column(),
        sa.Column("seller_number", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=128), nullable=True),
        sa.Column("inquiry_date", sa.Date(), nullable=True),
        sa.Column("sheet_updated_at", sa.DateTime(), nullable=True),
        sa.Column("sheet_row", sa.Integer(), nullable=True),
        sa.Column("row_hash", sa.String(length=32), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("synced_version", sa.Integer(), nullable=True),
        sa.Column("synced_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), server_default=_now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sellers")),
        sa.UniqueConstraint("seller_number", name=op.f("uq_sellers_seller_number")),
    )

    op.create_table(
        "properties",
        _id_column(),
        sa.Column("seller_id", _id(), nullable=False),
        sa.Column("property_address", sa.Text(), nullable=True),
        sa.Column("property_type", sa.String(length=128), nullable=True),
        sa.Column("assessed_amount", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), server_default=_now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), server_default=_now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["sellers.id"], name=op.f("fk_properties_seller_id_sellers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_properties")),
        sa.UniqueConstraint("seller_id", name=op.f("uq_properties_seller_id")),
    )

    op.create_table(
        "sync_audit_logs",
        _id_column(),
        sa.Column("sync_id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("parent_sync_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=128), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=True),
        sa.Column("header_mapping", sa.JSON(), nullable=True),
        sa.Column("header_fingerprint", sa.String(length=32), nullable=True),
        sa.Column("rows_read", sa.Integer(), nullable=True),
        sa.Column("valid_count", sa.Integer(), nullable=True),
        sa.Column("rejected_count", sa.Integer(), nullable=True),
        sa.Column("inserted_count", sa.Integer(), nullable=True),
        sa.Column("updated_count", sa.Integer(), nullable=True),
        sa.Column("unchanged_count", sa.Integer(), nullable=True),
        sa.Column("conflict_count", sa.Integer(), nullable=True),
        sa.Column("failed_count", sa.Integer(), nullable=True),
        sa.Column("error_count", sa.Integer(), nullable=True),
        sa.Column("phases", sa.JSON(), nullable=True),
        sa.Column("progress", sa.JSON(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("verified_at", sa.DateTime(), nullable=True),
        sa.Column("verification_status", sa.String(length=16), nullable=True),
        sa.Column("sheet_valid_count", sa.Integer(), nullable=True),
        sa.Column("db_matched_count", sa.Integer(), nullable=True),
        sa.Column("gaps_found", sa.Integer(), nullable=True),
        sa.Column("stale_found", sa.Integer(), nullable=True),
        sa.Column("conflicts_kept", sa.Integer(), nullable=True),
        sa.Column("orphans_found", sa.Integer(), nullable=True),
        sa.Column("integrity_issues", sa.Integer(), nullable=True),
        sa.Column("gaps_resynced", sa.Integer(), nullable=True),
        sa.Column("verification", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_audit_logs")),
        sa.UniqueConstraint("sync_id", name=op.f("uq_sync_audit_logs_sync_id")),
    )
    op.create_index(op.f("ix_sync_audit_logs_started_at"), "sync_audit_logs", ["started_at"], unique=False)
    op.create_index(
        op.f("ix_sync_audit_logs_status_started_at"), "sync_audit_logs", ["status", "started_at"], unique=False
    )
    op.create_index(op.f("ix_sync_audit_logs_run_id"), "sync_audit_logs", ["run_id"], unique=False)

    op.create_table(
        "sync_record_logs",
        _id_column(),
        sa.Column("sync_id", sa.String(length=36), nullable=False),
        sa.Column("seller_number", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("sheet_row", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_record_logs")),
    )
    op.create_index(op.f("ix_sync_record_logs_sync_id"), "sync_record_logs", ["sync_id"], unique=False)
    op.create_index(
        op.f("ix_sync_record_logs_seller_number_created_at"),
        "sync_record_logs",
        ["seller_number", "created_at"],
        unique=False,
    )

    op.create_table(
        "sync_error_logs",
        _id_column(),
        sa.Column("sync_id", sa.String(length=36), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("seller_number", sa.String(length=64), nullable=True),
        sa.Column("sheet_row", sa.Integer(), nullable=True),
        sa.Column("cell", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_error_logs")),
    )
    op.create_index(op.f("ix_sync_error_logs_sync_id"), "sync_error_logs", ["sync_id"], unique=False)
    op.create_index(
        op.f("ix_sync_error_logs_category_created_at"), "sync_error_logs", ["category", "created_at"], unique=False
    )
    op.create_index(op.f("ix_sync_error_logs_seller_number"), "sync_error_logs", ["seller_number"], unique=False)

    op.create_table(
        "sync_alerts",
        _id_column(),
        sa.Column("alert_type", sa.String(length=48), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("sync_id", sa.String(length=36), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=128), nullable=True),
        sa.Column("emailed_at", sa.DateTime(), nullable=True),
        sa.Column("email_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_alerts")),
    )
    op.create_index(op.f("ix_sync_alerts_created_at"), "sync_alerts", ["created_at"], unique=False)
    op.create_index(
        op.f("ix_sync_alerts_alert_type_created_at"), "sync_alerts", ["alert_type", "created_at"], unique=False
    )

    op.create_table(
        "sync_metrics",
        _id_column(),
        sa.Column("sync_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_metrics")),
    )
    op.create_index(op.f("ix_sync_metrics_name_recorded_at"), "sync_metrics", ["name", "recorded_at"], unique=False)
    op.create_index(op.f("ix_sync_metrics_sync_id"), "sync_metrics", ["sync_id"], unique=False)

    op.create_table(
        "sync_config",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sync_config")),
    )

    op.create_table(
        "sync_locks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sync_locks")),
    )

    op.create_table(
        "sync_retry_queue",
        sa.Column("seller_number", sa.String(length=64), nullable=False),
        sa.Column("sync_id", sa.String(length=36), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seller_number", name=op.f("pk_sync_retry_queue")),
    )
    op.create_index(op.f("ix_sync_retry_queue_due_at"), "sync_retry_queue", ["due_at"], unique=False)


def downgrade() -> None:
    # Reverse order of upgrade(): properties before sellers, because of its foreign key.
    op.drop_index(op.f("ix_sync_retry_queue_due_at"), table_name="sync_retry_queue")
    op.drop_table("sync_retry_queue")

    op.drop_table("sync_locks")

    op.drop_table("sync_config")

    op.drop_index(op.f("ix_sync_metrics_sync_id"), table_name="sync_metrics")
    op.drop_index(op.f("ix_sync_metrics_name_recorded_at"), table_name="sync_metrics")
    op.drop_table("sync_metrics")

    op.drop_index(op.f("ix_sync_alerts_alert_type_created_at"), table_name="sync_alerts")
    op.drop_index(op.f("ix_sync_alerts_created_at"), table_name="sync_alerts")
    op.drop_table("sync_alerts")

    op.drop_index(op.f("ix_sync_error_logs_seller_number"), table_name="sync_error_logs")
    op.drop_index(op.f("ix_sync_error_logs_category_created_at"), table_name="sync_error_logs")
    op.drop_index(op.f("ix_sync_error_logs_sync_id"), table_name="sync_error_logs")
    op.drop_table("sync_error_logs")

    op.drop_index(op.f("ix_sync_record_logs_seller_number_created_at"), table_name="sync_record_logs")
    op.drop_index(op.f("ix_sync_record_logs_sync_id"), table_name="sync_record_logs")
    op.drop_table("sync_record_logs")

    op.drop_index(op.f("ix_sync_audit_logs_run_id"), table_name="sync_audit_logs")
    op.drop_index(op.f("ix_sync_audit_logs_status_started_at"), table_name="sync_audit_logs")
    op.drop_index(op.f("ix_sync_audit_logs_started_at"), table_name="sync_audit_logs")
    op.drop_table("sync_audit_logs")

    op.drop_table("properties")
    op.drop_table("sellers")
