"""Retention: rows older than `retention_days` move from the live audit tables into their `*_archive` tables.

What moves: every sync that started before the cut-off (and is not running) with its record, error and metric rows;
error rows of no sync older than the cut-off; acknowledged alerts raised before it (open alerts stay, however old).
Each batch is one short transaction — copy at most `batch_size` rows by id, check that the archive received exactly
those, delete exactly those — so a sync running meanwhile waits milliseconds at most, a failure loses nothing, and an
interrupted run simply continues next time.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from sync_pipeline.adapters.store.tables import (
    ARCHIVES,
    UtcDateTime,
    sync_alerts,
    sync_audit_logs,
    sync_error_logs,
    sync_metrics,
    sync_record_logs,
)
from sync_pipeline.domain.audit import SyncStatus
from sync_pipeline.services.database import Database

log = logging.getLogger(__name__)

ROW_BATCH = 5000  # rows per transaction: a few milliseconds of locks, well under SQLite's bound-parameter limit
SYNC_BATCH = 200  # old syncs handled per round


class ArchiveMismatchError(RuntimeError):
    """The archive did not receive exactly the rows selected: nothing of that batch was deleted (rolled back)."""


@dataclass(frozen=True)
class RetentionResult:
    cutoff: dt.datetime
    moved: dict[str, int] = field(default_factory=dict)  # live table -> rows archived
    batches: int = 0

    @property
    def total(self) -> int:
        return sum(self.moved.values())


def archive_older_than(db: Database, now: dt.datetime | None = None, *, batch_size: int = ROW_BATCH) -> RetentionResult:
    """Archive what is older than `retention_days` before `now` (default: the clock), in short batches."""
    now = now or db.clock.now()
    cutoff = now - dt.timedelta(days=db.settings().retention_days)
    moved = {name: 0 for name in ARCHIVES}
    batches = 0
    audit = sync_audit_logs
    old_sync = sa.and_(audit.c.started_at < cutoff, audit.c.status != SyncStatus.RUNNING.value)
    while True:
        with db.engine.connect() as conn:
            sync_ids = list(
                conn.execute(
                    sa.select(audit.c.sync_id).where(old_sync).order_by(audit.c.started_at).limit(SYNC_BATCH)
                ).scalars()
            )
        if not sync_ids:
            break
        # Children first: an audit row is never archived while rows that name it are still live.
        for table in (sync_record_logs, sync_error_logs, sync_metrics, audit):
            n, b = _move_all(db, table, table.c.sync_id.in_(sync_ids), now, batch_size)
            moved[table.name] += n
            batches += b
    for table, condition in (
        (sync_error_logs, sa.and_(sync_error_logs.c.sync_id.is_(None), sync_error_logs.c.created_at < cutoff)),
        (sync_alerts, sa.and_(sync_alerts.c.acknowledged_at.is_not(None), sync_alerts.c.created_at < cutoff)),
    ):
        n, b = _move_all(db, table, condition, now, batch_size)
        moved[table.name] += n
        batches += b
    result = RetentionResult(cutoff=cutoff, moved=moved, batches=batches)
    log.info("retention: archived %d rows older than %s in %d batches: %s", result.total, cutoff, batches, moved)
    return result


def _move_all(
    db: Database, table: sa.Table, condition: sa.ColumnElement[bool], now: dt.datetime, batch_size: int
) -> tuple[int, int]:
    moved = batches = 0
    while True:
        with db.engine.begin() as conn:
            ids = list(
                conn.execute(sa.select(table.c.id).where(condition).order_by(table.c.id).limit(batch_size)).scalars()
            )
            if not ids:
                return moved, batches
            _move(conn, table, ids, now)
        moved += len(ids)
        batches += 1


def _move(conn: sa.Connection, table: sa.Table, ids: Sequence[int], now: dt.datetime) -> None:
    archive = ARCHIVES[table.name]
    names = [c.name for c in table.c]
    # RETURNING rather than rowcount: psycopg reports no rowcount for INSERT … SELECT through SQLAlchemy here, and
    # the ids say more than a count — the archive received exactly the selected rows.
    copied = conn.execute(
        archive.insert()
        .from_select(
            [*names, "archived_at"],
            sa.select(*table.c, sa.literal(now, UtcDateTime()).label("archived_at")).where(table.c.id.in_(ids)),
        )
        .returning(archive.c.id)
    ).scalars()
    if sorted(copied) != sorted(ids):
        raise ArchiveMismatchError(f"{archive.name} did not receive exactly the {len(ids)} rows of {table.name}")
    deleted = conn.execute(sa.delete(table).where(table.c.id.in_(ids))).rowcount
    if deleted != len(ids):
        raise ArchiveMismatchError(f"{table.name}: deleted {deleted} rows of the {len(ids)} archived; rolled back")
