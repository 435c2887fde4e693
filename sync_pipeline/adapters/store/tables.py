"""The database schema as SQLAlchemy Core tables: one definition for SQLite and Postgres, mirrored by sql/ migrations.

Every timestamp is a `UtcDateTime`: UTC with its zone (timestamptz on Postgres), read back as an aware UTC datetime on
both backends. Table names are constants so that raw SQL (COPY, the lock) never interpolates data.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa


class UtcDateTime(sa.TypeDecorator[dt.datetime]):
    """A moment in UTC: `timestamptz` on Postgres; on SQLite the UTC wall time as text (SQLite has no zones).

    Writes accept aware datetimes in any zone (converted to UTC) and naive ones, which mean UTC (the convention of
    every row written before revision 0002). Reads always return aware UTC, so Python compares like with like.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        # SQLite's DATETIME would drop the zone anyway; dropping it here keeps the stored text exactly as before.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Attributes(sa.TypeDecorator[Any]):
    """`sellers.attributes`: JSONB on Postgres, JSON text on SQLite. Bound as JSON text already written (the sync's
    own serialisation, `domain.hashing.json_literal`) or as a dict; read back as a dict."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(sa.JSON())

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        return json.loads(value) if isinstance(value, str) else value


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

SELLERS = "sellers"
PROPERTIES = "properties"

# BigInteger ids on Postgres, INTEGER PRIMARY KEY (the rowid alias) on SQLite.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

sellers = sa.Table(
    SELLERS,
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("seller_number", sa.String(32), nullable=False, unique=True),
    sa.Column("name", sa.Text),
    sa.Column("phone", sa.String(64)),
    sa.Column("email", sa.String(320)),
    sa.Column("address", sa.Text),
    sa.Column("status", sa.String(128)),
    sa.Column("inquiry_date", sa.Date),
    sa.Column("sheet_updated_at", UtcDateTime()),
    # The sheet contract's own fields by name, typed JSON (and `_unmapped` columns kept by header); NULL when none.
    # The sync writes the JSON text itself (domain.ingest), so the column stores exactly what was hashed.
    sa.Column("attributes", Attributes()),
    sa.Column("sheet_row", sa.Integer),
    # What the sync last applied, to tell its own writes from other people's (DESIGN.md, "Sync semantics").
    sa.Column("row_hash", sa.String(32)),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),  # optimistic lock, bumped by every writer
    sa.Column("synced_version", sa.Integer),  # the version the sync wrote
    sa.Column("synced_at", UtcDateTime()),
    sa.Column("created_at", UtcDateTime(), nullable=False, server_default=sa.func.current_timestamp()),
    sa.Column("updated_at", UtcDateTime(), nullable=False, server_default=sa.func.current_timestamp()),
)

properties = sa.Table(
    PROPERTIES,
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("seller_id", Id, sa.ForeignKey("sellers.id", ondelete="CASCADE"), nullable=False, unique=True),
    sa.Column("property_address", sa.Text),
    sa.Column("property_type", sa.String(128)),
    sa.Column("assessed_amount", sa.BigInteger),
    sa.Column("created_at", UtcDateTime(), nullable=False, server_default=sa.func.current_timestamp()),
    sa.Column("updated_at", UtcDateTime(), nullable=False, server_default=sa.func.current_timestamp()),
)

# One row per sync (kind: scheduled | manual | resync | retry). Status: running | succeeded | partial | failed |
# cancelled. The verification of the sync is stored on the same row (exactly one per completed sync, Property 1).
sync_audit_logs = sa.Table(
    "sync_audit_logs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("sync_id", sa.String(36), nullable=False, unique=True),
    sa.Column("run_id", sa.String(64)),
    sa.Column("parent_sync_id", sa.String(36)),  # a resync points at the sync whose gaps it repairs
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("trigger", sa.String(128)),
    sa.Column("source", sa.Text),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime()),
    sa.Column("heartbeat_at", UtcDateTime()),
    sa.Column("duration_s", sa.Float),
    sa.Column("settings", sa.JSON),
    sa.Column("header_mapping", sa.JSON),  # field -> header text, for the disappeared-column check
    sa.Column("header_fingerprint", sa.String(32)),
    sa.Column("unmapped_columns", sa.JSON),  # header texts no field of the contract names, in sheet order
    sa.Column("rows_read", sa.Integer),
    sa.Column("valid_count", sa.Integer),
    sa.Column("rejected_count", sa.Integer),
    sa.Column("inserted_count", sa.Integer),
    sa.Column("updated_count", sa.Integer),
    sa.Column("unchanged_count", sa.Integer),
    sa.Column("conflict_count", sa.Integer),
    sa.Column("failed_count", sa.Integer),
    sa.Column("error_count", sa.Integer),
    sa.Column("phases", sa.JSON),  # phase -> seconds
    sa.Column("progress", sa.JSON),  # {"phase": ..., "done": n, "total": m} while running
    sa.Column("message", sa.Text),
    # Verification (Requirement 1)
    sa.Column("verified_at", UtcDateTime()),
    sa.Column("verification_status", sa.String(16)),  # clean | gaps | stale | integrity | failed
    sa.Column("sheet_valid_count", sa.Integer),
    sa.Column("db_matched_count", sa.Integer),
    sa.Column("gaps_found", sa.Integer),
    sa.Column("stale_found", sa.Integer),
    sa.Column("conflicts_kept", sa.Integer),
    sa.Column("orphans_found", sa.Integer),
    sa.Column("integrity_issues", sa.Integer),
    sa.Column("gaps_resynced", sa.Integer),
    sa.Column("verification", sa.JSON),  # samples of the keys behind each figure
    # What a full sync did to the sheet's notes (services.feedback.FeedbackReport; revision 0009); NULL for resyncs.
    sa.Column("sheet_feedback", sa.JSON),
    sa.Index(None, "started_at"),
    sa.Index(None, "status", "started_at"),
    sa.Index(None, "run_id"),
    sa.Index(None, "verified_at"),  # the current gap count is the latest verification's (revision 0002)
)

# Every inserted / updated / rejected / conflict / failed record (unchanged ones are only counted).
sync_record_logs = sa.Table(
    "sync_record_logs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("sync_id", sa.String(36), nullable=False),
    sa.Column("seller_number", sa.String(64)),
    sa.Column("action", sa.String(16), nullable=False),  # inserted | updated | rejected | conflict | failed | resynced
    sa.Column("sheet_row", sa.Integer),
    sa.Column("detail", sa.JSON),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Index(None, "sync_id"),
    sa.Index(None, "seller_number", "created_at"),
)

sync_error_logs = sa.Table(
    "sync_error_logs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("sync_id", sa.String(36)),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("rule", sa.String(64)),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("seller_number", sa.String(64)),
    sa.Column("sheet_row", sa.Integer),
    sa.Column("cell", sa.String(16)),
    sa.Column("detail", sa.JSON),  # a rejected cell's field, column (header text) and value (cell text)
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Index(None, "sync_id"),
    sa.Index(None, "category", "created_at"),
    sa.Index(None, "seller_number"),
)

sync_alerts = sa.Table(
    "sync_alerts",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("alert_type", sa.String(48), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),  # info | warning | critical
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("sync_id", sa.String(36)),
    sa.Column("detail", sa.JSON),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("acknowledged_at", UtcDateTime()),
    sa.Column("acknowledged_by", sa.String(128)),
    sa.Column("emailed_at", UtcDateTime()),  # outbox: NULL while an e-mail is still owed
    sa.Column("email_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Index(None, "created_at"),
    sa.Index(None, "alert_type", "created_at"),
)

# Delivery of an alert to one channel (email, slack, teams, webhook): the outbox of each channel is its alerts
# without a row here, or with one that is neither delivered nor failed. `claimed_at` is written before a chat post
# (services.chat_delivery): a claim left behind by a process that died during the post is never posted again.
sync_alert_deliveries = sa.Table(
    "sync_alert_deliveries",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("alert_id", Id, sa.ForeignKey("sync_alerts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("delivered_at", UtcDateTime()),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("next_attempt_at", UtcDateTime()),
    sa.Column("claimed_at", UtcDateTime()),
    sa.Column("failed_at", UtcDateTime()),  # refused for good (a 4xx other than 429): never retried
    sa.UniqueConstraint("alert_id", "channel"),
    sa.Index(None, "channel", "delivered_at"),
)

# One row per sync (written when it closes): its phases, throughput and errors by category, for the health trends and
# the slow-sync check. Columns rather than name/value rows: the dashboard reads a few columns of the last N syncs.
PHASE_COLUMNS: tuple[str, ...] = ("fetch_s", "validate_s", "compare_s", "update_s", "verify_s", "resync_s")
sync_metrics = sa.Table(
    "sync_metrics",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("sync_id", sa.String(36), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.Column("duration_s", sa.Float),
    *(sa.Column(name, sa.Float) for name in PHASE_COLUMNS),
    sa.Column("rows_read", sa.Integer),
    sa.Column("rows_written", sa.Integer),
    sa.Column("rows_per_s", sa.Float),  # rows read / whole duration: comparable whether or not anything changed
    sa.Column("error_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("errors_by_category", sa.JSON),  # category -> count
    sa.Column("slow", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index(None, "started_at"),
)

sync_config = sa.Table(
    "sync_config",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("updated_by", sa.String(128)),
)

# Every change of a setting (Requirement 10): who changed which key from what to what, and when.
sync_config_history = sa.Table(
    "sync_config_history",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("old_value", sa.Text),  # NULL when the setting had never been stored
    sa.Column("new_value", sa.Text, nullable=False),
    sa.Column("changed_at", UtcDateTime(), nullable=False),
    sa.Column("changed_by", sa.String(128)),
    sa.Index(None, "changed_at"),
    sa.Index(None, "key", "changed_at"),
)

# The label of a held lock (adapters.store.lock): who holds the lock `name` and since when. The lock itself is a
# Postgres advisory lock or a file lock that dies with its holder; the row decides nothing.
sync_locks = sa.Table(
    "sync_locks",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("acquired_at", UtcDateTime(), nullable=False),
)

# Records that failed to write, due again at `due_at` (Requirement 7.4).
sync_retry_queue = sa.Table(
    "sync_retry_queue",
    metadata,
    sa.Column("seller_number", sa.String(64), primary_key=True),
    sa.Column("sync_id", sa.String(36)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("due_at", UtcDateTime(), nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Index(None, "due_at"),
)


def _archive_of(table: sa.Table, *indexed: str) -> sa.Table:
    """The archive of a live table (retention): the same columns, no constraints, plus when the row was archived.

    The live `id` is kept but is not the key: SQLite may hand out an archived id again once the newest rows are gone.
    """
    columns = [sa.Column(c.name, c.type, nullable=c.nullable) for c in table.c]
    return sa.Table(
        f"{table.name}_archive",
        metadata,
        sa.Column("archive_id", Id, primary_key=True, autoincrement=True),
        *columns,
        sa.Column("archived_at", UtcDateTime(), nullable=False),
        *(sa.Index(None, name) for name in indexed),
    )


sync_audit_logs_archive = _archive_of(sync_audit_logs, "sync_id", "started_at")
sync_record_logs_archive = _archive_of(sync_record_logs, "sync_id", "seller_number")
sync_error_logs_archive = _archive_of(sync_error_logs, "sync_id", "seller_number")
sync_metrics_archive = _archive_of(sync_metrics, "sync_id")
sync_alerts_archive = _archive_of(sync_alerts, "created_at")
ARCHIVES: dict[str, sa.Table] = {
    t.name: a
    for t, a in (
        (sync_audit_logs, sync_audit_logs_archive),
        (sync_record_logs, sync_record_logs_archive),
        (sync_error_logs, sync_error_logs_archive),
        (sync_metrics, sync_metrics_archive),
        (sync_alerts, sync_alerts_archive),
    )
}
