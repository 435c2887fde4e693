"""The audit log repository: sync start and completion, record and error logs, and the combined query (P10)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from sync_pipeline.adapters.store.reads import among
from sync_pipeline.adapters.store.tables import (
    sync_audit_logs,
    sync_audit_logs_archive,
    sync_error_logs,
    sync_error_logs_archive,
    sync_record_logs,
    sync_record_logs_archive,
)
from sync_pipeline.domain.audit import (
    AuditQuery,
    ErrorLog,
    RecordAction,
    RecordLog,
    SyncCounts,
    SyncKind,
    SyncStatus,
)

SyncRow = Mapping[str, Any]
COPY_THRESHOLD = 50  # record logs from which Postgres gets them by COPY (below, an INSERT is as quick)


class AuditStore:
    """SQL for `sync_audit_logs`, `sync_record_logs` and `sync_error_logs`; methods take the caller's connection."""

    def start(
        self,
        conn: sa.Connection,
        *,
        sync_id: str,
        kind: SyncKind,
        started_at: dt.datetime,
        run_id: str | None = None,
        trigger: str | None = None,
        source: str | None = None,
        settings: Mapping[str, str] | None = None,
        parent_sync_id: str | None = None,
    ) -> None:
        conn.execute(
            sync_audit_logs.insert().values(
                sync_id=sync_id,
                run_id=run_id,
                parent_sync_id=parent_sync_id,
                kind=kind.value,
                trigger=trigger,
                source=source,
                status=SyncStatus.RUNNING.value,
                started_at=started_at,
                heartbeat_at=started_at,
                settings=dict(settings or {}),
            )
        )

    def update(self, conn: sa.Connection, sync_id: str, **values: Any) -> None:
        """Set columns of a sync's row (header mapping, progress, heartbeat, verification figures, …)."""
        conn.execute(sync_audit_logs.update().where(sync_audit_logs.c.sync_id == sync_id).values(**values))

    def finish(
        self,
        conn: sa.Connection,
        sync_id: str,
        *,
        status: SyncStatus,
        finished_at: dt.datetime,
        counts: SyncCounts | None = None,
        phases: Mapping[str, float] | None = None,
        message: str | None = None,
    ) -> None:
        """Close a running sync; a sync already closed (for example as abandoned) is left as it is."""
        row = self.get(conn, sync_id)
        if row is None:
            raise KeyError(f"no sync {sync_id} in the audit log")
        values: dict[str, Any] = {
            "status": status.value,
            "finished_at": finished_at,
            "duration_s": (finished_at - row["started_at"]).total_seconds(),
            "progress": None,
        }
        if message is not None:
            values["message"] = message
        if phases is not None:
            values["phases"] = {k: round(v, 6) for k, v in phases.items()}
        if counts is not None:
            values.update(
                rows_read=counts.rows_read,
                valid_count=counts.valid,
                rejected_count=counts.rejected,
                inserted_count=counts.inserted,
                updated_count=counts.updated,
                unchanged_count=counts.unchanged,
                conflict_count=counts.conflicts,
                failed_count=counts.failed,
                error_count=counts.errors,
            )
        conn.execute(
            sync_audit_logs.update()
            .where(sync_audit_logs.c.sync_id == sync_id, sync_audit_logs.c.status == SyncStatus.RUNNING.value)
            .values(**values)
        )

    def close_abandoned(
        self, conn: sa.Connection, *, keep: Collection[str], now: dt.datetime, reason: str
    ) -> list[SyncRow]:
        """Close as abandoned every sync still 'running' except those in `keep`; returns their rows as they were.

        Only the holder of the sync lock may call this: while it holds the lock no other sync can be alive, so every
        other running entry was left by a holder that died (P9). `reason` goes into each entry's message.
        """
        query = sa.select(sync_audit_logs).where(sync_audit_logs.c.status == SyncStatus.RUNNING.value)
        if keep:
            query = query.where(sync_audit_logs.c.sync_id.not_in(list(keep)))
        rows: list[SyncRow] = [dict(r) for r in conn.execute(query.order_by(sync_audit_logs.c.id)).mappings()]
        for row in rows:
            self.finish(conn, row["sync_id"], status=SyncStatus.ABANDONED, finished_at=now, message=reason)
        return rows

    def log_records(self, conn: sa.Connection, sync_id: str, records: Sequence[RecordLog], now: dt.datetime) -> None:
        if not records:
            return
        if conn.dialect.name == "postgresql" and len(records) >= COPY_THRESHOLD:
            self._copy_records(conn, sync_id, records, now)
            return
        if conn.dialect.name == "sqlite" and len(records) >= COPY_THRESHOLD:
            # Plain tuples, in the text the JSON and time types would store: binding each row through SQLAlchemy's
            # type processors took longer than SQLite took to write the rows.
            stamp = (now.astimezone(dt.UTC) if now.tzinfo else now).strftime("%Y-%m-%d %H:%M:%S.%f")  # naive is UTC
            conn.exec_driver_sql(
                "INSERT INTO sync_record_logs (sync_id, seller_number, action, sheet_row, detail, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(sync_id, r.seller_number, r.action.value, r.sheet_row, _json_text(r.detail), stamp) for r in records],
            )
            return
        conn.execute(
            sync_record_logs.insert(),
            [
                {
                    "sync_id": sync_id,
                    "seller_number": r.seller_number,
                    "action": r.action.value,
                    "sheet_row": r.sheet_row,
                    "detail": dict(r.detail) or None,
                    "created_at": now,
                }
                for r in records
            ],
        )

    def _copy_records(self, conn: sa.Connection, sync_id: str, records: Sequence[RecordLog], now: dt.datetime) -> None:
        """The same rows by COPY: one stream instead of one INSERT per seller (the detail as JSON text, as the JSON
        column type would write it; an unquoted empty field is NULL)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        stamp = now.isoformat(sep=" ")
        for r in records:
            detail = json.dumps(dict(r.detail)) if r.detail else None
            writer.writerow((sync_id, r.seller_number, r.action.value, r.sheet_row, detail, stamp))
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        statement = "COPY sync_record_logs (sync_id, seller_number, action, sheet_row, detail, created_at) FROM STDIN"
        with cursor.copy(statement + " WITH (FORMAT csv)") as copy:  # constants, never data
            copy.write(buffer.getvalue())

    def log_errors(
        self, conn: sa.Connection, sync_id: str | None, errors: Sequence[ErrorLog], now: dt.datetime
    ) -> None:
        if not errors:
            return
        conn.execute(
            sync_error_logs.insert(),
            [
                {
                    "sync_id": sync_id,
                    "category": e.category.value,
                    "rule": e.rule,
                    "message": e.message,
                    "seller_number": e.seller_number,
                    "sheet_row": e.sheet_row,
                    "cell": e.cell,
                    "detail": dict(e.detail) if e.detail is not None else None,
                    "created_at": now,
                }
                for e in errors
            ],
        )

    def written_before(self, conn: sa.Connection, keys: Sequence[str]) -> frozenset[str]:
        """Those of `keys` that some sync has inserted or updated, in the live log or the archive: a seller written
        years ago and deleted since is still a gap, not a new seller."""
        written = [RecordAction.INSERTED.value, RecordAction.UPDATED.value]
        found: set[str] = set()
        for table in (sync_record_logs, sync_record_logs_archive):  # one query per table, all the keys in one go
            match = among(table.c.seller_number, keys, conn.dialect.name)
            query = sa.select(table.c.seller_number).where(match, table.c.action.in_(written)).distinct()
            found.update(conn.execute(query).scalars())
        return frozenset(found)

    def get(self, conn: sa.Connection, sync_id: str) -> SyncRow | None:
        row = conn.execute(sa.select(sync_audit_logs).where(sync_audit_logs.c.sync_id == sync_id)).mappings().first()
        return dict(row) if row is not None else None

    def query(self, conn: sa.Connection, q: AuditQuery) -> list[SyncRow]:
        """Syncs matching every given filter, most recent first (Property 10); with the archive when asked."""
        audit: Any = _with_archive(sync_audit_logs, sync_audit_logs_archive) if q.include_archive else sync_audit_logs
        conditions: list[sa.ColumnElement[bool]] = []
        if q.since is not None:
            conditions.append(audit.c.started_at >= q.since)
        if q.until is not None:
            conditions.append(audit.c.started_at < q.until)
        if q.status is not None:
            conditions.append(audit.c.status == q.status.value)
        if q.seller_number is not None:
            sources = [sync_record_logs, sync_error_logs]
            if q.include_archive:
                sources += [sync_record_logs_archive, sync_error_logs_archive]
            logged = sa.union(
                *(sa.select(t.c.sync_id).where(t.c.seller_number == q.seller_number) for t in sources)
            ).scalar_subquery()
            conditions.append(audit.c.sync_id.in_(logged))
        newest_first = (audit.c.started_at.desc(), audit.c.id.desc())
        query = sa.select(audit).where(*conditions).order_by(*newest_first).limit(q.limit)
        return [dict(r) for r in conn.execute(query).mappings()]

    def errors(self, conn: sa.Connection, sync_id: str) -> list[SyncRow]:
        query = sa.select(sync_error_logs).where(sync_error_logs.c.sync_id == sync_id).order_by(sync_error_logs.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]

    def latest(
        self,
        conn: sa.Connection,
        *,
        statuses: Sequence[SyncStatus] | None = None,
        kinds: Sequence[SyncKind] | None = None,
    ) -> SyncRow | None:
        query = sa.select(sync_audit_logs)
        if statuses:
            query = query.where(sync_audit_logs.c.status.in_([s.value for s in statuses]))
        if kinds:
            query = query.where(sync_audit_logs.c.kind.in_([k.value for k in kinds]))
        row = (
            conn.execute(query.order_by(sync_audit_logs.c.started_at.desc(), sync_audit_logs.c.id.desc()).limit(1))
            .mappings()
            .first()
        )
        return dict(row) if row is not None else None


def _json_text(detail: Mapping[str, Any]) -> str | None:
    """A record's detail as the JSON column type writes it (json.dumps), None when empty."""
    return json.dumps(dict(detail)) if detail else None


def _with_archive(live: sa.Table, archive: sa.Table) -> sa.Subquery:
    """The live rows and the archived ones, with the live table's columns (UNION ALL: the two never overlap)."""
    return sa.union_all(sa.select(live), sa.select(*(archive.c[c.name] for c in live.c))).subquery(live.name)
