"""Timestamps with their zone, one metrics row per sync, archive tables for retention, indexes for the dashboard.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

- Every timestamp becomes `timestamptz` on Postgres; existing values were written as naive UTC, so they are read
  `AT TIME ZONE 'UTC'` (the downgrade converts back the same way). SQLite has no zones: its rows already hold the UTC
  wall time as text, which is what `tables.UtcDateTime` keeps writing, so nothing is rewritten there.
- `sync_metrics` changes from name/value rows to one row per sync with a column per figure (the dashboard reads a
  few columns of the last N syncs). The old table was never written by any released code, so it is dropped and
  created again rather than converted; the downgrade does the same in reverse.
- `*_archive` tables (the live columns, plus `archive_id` and `archived_at`) receive rows older than the retention.

Frozen copy of sync_pipeline/adapters/store/tables.py at this revision, like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every timestamp column of revision 0001 (sync_metrics.recorded_at goes with the old metrics table).
TIMESTAMPS: dict[str, tuple[str, ...]] = {
    "sellers": ("sheet_updated_at", "synced_at", "created_at", "updated_at"),
    "properties": ("created_at", "updated_at"),
    "sync_audit_logs": ("started_at", "finished_at", "heartbeat_at", "verified_at"),
    "sync_record_logs": ("created_at",),
    "sync_error_logs": ("created_at",),
    "sync_alerts": ("created_at", "acknowledged_at", "emailed_at"),
    "sync_config": ("updated_at",),
    "sync_locks": ("acquired_at", "expires_at"),
    "sync_retry_queue": ("due_at", "created_at"),
}
NOT_NULL = {
    ("sellers", "created_at"),
    ("sellers", "updated_at"),
    ("properties", "created_at"),
    ("properties", "updated_at"),
    ("sync_audit_logs", "started_at"),
    ("sync_record_logs", "created_at"),
    ("sync_error_logs", "created_at"),
    ("sync_alerts", "created_at"),
    ("sync_config", "updated_at"),
    ("sync_locks", "acquired_at"),
    ("sync_locks", "expires_at"),
    ("sync_retry_queue", "due_at"),
    ("sync_retry_queue", "created_at"),
}
ARCHIVES = (
    "sync_alerts_archive",
    "sync_metrics_archive",
    "sync_error_logs_archive",
    "sync_record_logs_archive",
    "sync_audit_logs_archive",
)


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id_column() -> sa.Column[int]:
    return sa.Column("id", _id(), autoincrement=True, nullable=False)


def _convert_timestamps(*, with_zone: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: the stored text is the UTC wall time before and after
    for table, columns in TIMESTAMPS.items():
        for column in columns:
            # Names are the constants above, never data. timestamp AT TIME ZONE 'UTC' -> timestamptz, and back.
            op.alter_column(
                table,
                column,
                type_=sa.DateTime(timezone=with_zone),
                existing_type=sa.DateTime(timezone=not with_zone),
                existing_nullable=(table, column) not in NOT_NULL,
                postgresql_using=f"{column} AT TIME ZONE 'UTC'",
            )


def upgrade() -> None:
    _convert_timestamps(with_zone=True)

    op.drop_index(op.f("ix_sync_metrics_sync_id"), table_name="sync_metrics")
    op.drop_index(op.f("ix_sync_metrics_name_recorded_at"), table_name="sync_metrics")
    op.drop_table("sync_metrics")
    op.create_index(op.f("ix_sync_audit_logs_verified_at"), "sync_audit_logs", ["verified_at"], unique=False)
    op.create_table(
        "sync_metrics",
        _id_column(),
        sa.Column("sync_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("fetch_s", sa.Float(), nullable=True),
        sa.Column("validate_s", sa.Float(), nullable=True),
        sa.Column("compare_s", sa.Float(), nullable=True),
        sa.Column("update_s", sa.Float(), nullable=True),
        sa.Column("verify_s", sa.Float(), nullable=True),
        sa.Column("resync_s", sa.Float(), nullable=True),
        sa.Column("rows_read", sa.Integer(), nullable=True),
        sa.Column("rows_written", sa.Integer(), nullable=True),
        sa.Column("rows_per_s", sa.Float(), nullable=True),
        sa.Column("error_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("errors_by_category", sa.JSON(), nullable=True),
        sa.Column("slow", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_metrics")),
        sa.UniqueConstraint("sync_id", name=op.f("uq_sync_metrics_sync_id")),
    )
    op.create_index(op.f("ix_sync_metrics_started_at"), "sync_metrics", ["started_at"], unique=False)

    op.create_table(
        "sync_audit_logs_archive",
        sa.Column("archive_id", _id(), autoincrement=True, nullable=False),
        sa.Column("id", _id(), nullable=False),
        sa.Column("sync_id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("parent_sync_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=128), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
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
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
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
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("archive_id", name=op.f("pk_sync_audit_logs_archive")),
    )
    op.create_index(
        op.f("ix_sync_audit_logs_archive_started_at"), "sync_audit_logs_archive", ["started_at"], unique=False
    )
    op.create_index(op.f("ix_sync_audit_logs_archive_sync_id"), "sync_audit_logs_archive", ["sync_id"], unique=False)

    op.create_table(
        "sync_record_logs_archive",
        sa.Column("archive_id", _id(), autoincrement=True, nullable=False),
        sa.Column("id", _id(), nullable=False),
        sa.Column("sync_id", sa.String(length=36), nullable=False),
        sa.Column("seller_number", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("sheet_row", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("archive_id", name=op.f("pk_sync_record_logs_archive")),
    )
    op.create_index(
        op.f("ix_sync_record_logs_archive_seller_number"), "sync_record_logs_archive", ["seller_number"], unique=False
    )
    op.create_index(op.f("ix_sync_record_logs_archive_sync_id"), "sync_record_logs_archive", ["sync_id"], unique=False)

    op.create_table(
        "sync_error_logs_archive",
        sa.Column("archive_id", _id(), autoincrement=True, nullable=False),
        sa.Column("id", _id(), nullable=False),
        sa.Column("sync_id", sa.String(length=36), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("seller_number", sa.String(length=64), nullable=True),
        sa.Column("sheet_row", sa.Integer(), nullable=True),
        sa.Column("cell", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("archive_id", name=op.f("pk_sync_error_logs_archive")),
    )
    op.create_index(
        op.f("ix_sync_error_logs_archive_seller_number"), "sync_error_logs_archive", ["seller_number"], unique=False
    )
    op.create_index(op.f("ix_sync_error_logs_archive_sync_id"), "sync_error_logs_archive", ["sync_id"], unique=False)

    op.create_table(
        "sync_metrics_archive",
        sa.Column("archive_id", _id(), autoincrement=True, nullable=False),
        sa.Column("id", _id(), nullable=False),
        sa.Column("sync_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("fetch_s", sa.Float(), nullable=True),
        sa.Column("validate_s", sa.Float(), nullable=True),
        sa.Column("compare_s", sa.Float(), nullable=True),
        sa.Column("update_s", sa.Float(), nullable=True),
        sa.Column("verify_s", sa.Float(), nullable=True),
        sa.Column("resync_s", sa.Float(), nullable=True),
        sa.Column("rows_read", sa.Integer(), nullable=True),
        sa.Column("rows_written", sa.Integer(), nullable=True),
        sa.Column("rows_per_s", sa.Float(), nullable=True),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("errors_by_category", sa.JSON(), nullable=True),
        sa.Column("slow", sa.Boolean(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("archive_id", name=op.f("pk_sync_metrics_archive")),
    )
    op.create_index(op.f("ix_sync_metrics_archive_sync_id"), "sync_metrics_archive", ["sync_id"], unique=False)

    op.create_table(
        "sync_alerts_archive",
        sa.Column("archive_id", _id(), autoincrement=True, nullable=False),
        sa.Column("id", _id(), nullable=False),
        sa.Column("alert_type", sa.String(length=48), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("sync_id", sa.String(length=36), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=128), nullable=True),
        sa.Column("emailed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_attempts", sa.Integer(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("archive_id", name=op.f("pk_sync_alerts_archive")),
    )
    op.create_index(op.f("ix_sync_alerts_archive_created_at"), "sync_alerts_archive", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sync_audit_logs_verified_at"), table_name="sync_audit_logs")
    for table in ARCHIVES:
        op.drop_table(table)  # drops its indexes with it

    op.drop_index(op.f("ix_sync_metrics_started_at"), table_name="sync_metrics")
    op.drop_table("sync_metrics")
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

    _convert_timestamps(with_zone=False)
