"""Read-side views of the audit log: a sync's summary (the CLI's JSON), the current status, audit queries."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from sync_pipeline.adapters.store.lock import current_holder
from sync_pipeline.adapters.store.tables import sync_audit_logs, sync_error_logs, sync_record_logs
from sync_pipeline.domain.audit import AuditQuery, SyncKind, SyncStatus
from sync_pipeline.domain.progress import progress_view
from sync_pipeline.domain.recovery import RECOVERY_RULE_PREFIX, is_recovery_rule
from sync_pipeline.services.database import Database
from sync_pipeline.services.rejections import is_rejection, rejection_row
from sync_pipeline.services.sync import PHASES

RECORD_RULES_HIDDEN = frozenset({"recovery:sheet_retry"})  # recovery notes are errors of the log, not rejected rows


def shown_time(value: object) -> str | None:
    """A stored time as a person reads it: in the `sheet_timezone` setting, with its offset (set by `shown_in`)."""
    if not isinstance(value, dt.datetime):
        return None
    zone = _DISPLAY_ZONE.get()
    shown = value.astimezone(zone) if zone is not None and value.tzinfo is not None else value
    return shown.isoformat(sep=" ", timespec="seconds")


# The zone times are shown in, for the duration of one report (a ContextVar, so concurrent reports cannot mix zones).
_DISPLAY_ZONE: contextvars.ContextVar[ZoneInfo | None] = contextvars.ContextVar("display_zone", default=None)


@contextlib.contextmanager
def shown_in(db: Database) -> Iterator[None]:
    """Show times in `db`'s `sheet_timezone` setting within the block (read now: a change applies at once)."""
    token = _DISPLAY_ZONE.set(ZoneInfo(db.settings(write_defaults=False).sheet_timezone))
    try:
        yield
    finally:
        _DISPLAY_ZONE.reset(token)


def sync_summary(db: Database, row: Mapping[Any, Any]) -> dict[str, Any]:
    """The documented summary of one sync, built from its audit row (so a failed sync has one too)."""
    with db.engine.connect() as conn:
        errors = list(
            conn.execute(
                sa.select(sync_error_logs)
                .where(sync_error_logs.c.sync_id == row["sync_id"])
                .order_by(sync_error_logs.c.sheet_row, sync_error_logs.c.id)
            ).mappings()
        )
    phases = row.get("phases") or {}
    rejections = [rejection_row(e) for e in errors if is_rejection(e)]
    problems = [
        {"category": e["category"], "rule": e["rule"], "message": e["message"], "seller_number": e["seller_number"]}
        for e in errors
        if e["sheet_row"] is None
    ]
    return {
        "status": row["status"],
        "sync_id": row["sync_id"],
        "run_id": row["run_id"],
        "kind": row["kind"],
        "source": row["source"],
        "started_at": shown_time(row["started_at"]),
        "finished_at": shown_time(row["finished_at"]),
        "rows_read": row["rows_read"] or 0,
        "valid": row["valid_count"] or 0,
        "rejected": row["rejected_count"] or 0,
        "inserted": row["inserted_count"] or 0,
        "updated": row["updated_count"] or 0,
        "unchanged": row["unchanged_count"] or 0,
        "conflicts": row["conflict_count"] or 0,
        "failed": row["failed_count"] or 0,
        "errors": len(errors),
        "gaps_found": row["gaps_found"] or 0,
        "gaps_resynced": row["gaps_resynced"] or 0,
        "verification_status": row.get("verification_status"),
        "stale_found": row.get("stale_found") or 0,
        # Sellers in the database no longer in the sheet: reported (count and sample), never deleted.
        "orphans_found": row.get("orphans_found") or 0,
        "orphans_sample": list((row.get("verification") or {}).get("orphans") or []),
        "duration_s": round(float(row["duration_s"] or 0.0), 3),
        "phases": {p: round(float(phases.get(p, 0.0)), 4) for p in PHASES},
        "message": row["message"],
        # Header texts of the sheet's columns that no field of the contract names, in sheet order ([] when none).
        "unmapped_columns": list(row.get("unmapped_columns") or []),
        # What the sync did to the sheet's notes (sheet_feedback): None for a resync or a sync that did not complete.
        "sheet_feedback": row.get("sheet_feedback"),
        "rejections": rejections,
        "problems": problems,
    }


def summary_for_run(db: Database, run_id: str) -> dict[str, Any] | None:
    """The summary of the (non-resync) sync a Dagster run started, if it got as far as starting one."""
    with db.engine.connect() as conn:
        row = (
            conn.execute(
                sa.select(sync_audit_logs)
                .where(sync_audit_logs.c.run_id == run_id, sync_audit_logs.c.kind != SyncKind.RESYNC.value)
                .order_by(sync_audit_logs.c.id)
                .limit(1)
            )
            .mappings()
            .first()
        )
    return sync_summary(db, row) if row is not None else None


def current_status(db: Database) -> dict[str, Any]:
    """Idle or running (phase, rows done / to write, time left), the last attempt and the last success (P13, P15)."""
    now = db.clock.now()
    with db.engine.connect() as conn:
        running = db.audit.latest(conn, statuses=[SyncStatus.RUNNING])
        last = (
            conn.execute(
                sa.select(sync_audit_logs)
                .where(sync_audit_logs.c.status != SyncStatus.RUNNING.value)
                .order_by(sync_audit_logs.c.started_at.desc(), sync_audit_logs.c.id.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        success = db.audit.latest(conn, statuses=[SyncStatus.SUCCEEDED, SyncStatus.PARTIAL])
    holder = current_holder(db.engine)
    return {
        "state": "running" if running else "idle",
        # Who holds the sync lock right now (the lock, not the audit log, says whether a sync is alive).
        "lock": None if holder is None else {"holder": holder.holder, "since": shown_time(holder.acquired_at)},
        "running": None if not running else running_view(running, now),
        "last_attempt": sync_summary(db, last) if last else None,
        "last_success": sync_summary(db, success) if success else None,
    }


def running_view(row: Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
    """A running sync as `status` shows it; before the write phase stores progress, its phase comes from the row."""
    view = progress_view(row.get("progress"), now=now, phase=_phase_before_progress(row))
    return {
        "sync_id": row["sync_id"],
        "run_id": row["run_id"],
        "kind": row["kind"],
        "started_at": shown_time(row["started_at"]),
        "running_for_s": round((now - row["started_at"]).total_seconds(), 1),
        "heartbeat_at": shown_time(row.get("heartbeat_at")),
        "phase": view.phase,
        "progress": view.as_dict(),
    }


def _phase_before_progress(row: Mapping[str, Any]) -> str:
    if row.get("verified_at") is not None:
        return "verify"
    return "fetch" if row.get("rows_read") is None else "compare"


def audit_rows(db: Database, query: AuditQuery) -> list[dict[str, Any]]:
    """The matching syncs; filtered by a seller, each with that seller's record logs in it (`records`: action, sheet
    row and detail, which holds the contract attributes it was written with)."""
    with db.engine.connect() as conn:
        rows = db.audit.query(conn, query)
        found = audit_rows_from(rows)
        if query.seller_number is not None and found:
            logs = conn.execute(
                sa.select(
                    sync_record_logs.c.sync_id,
                    sync_record_logs.c.action,
                    sync_record_logs.c.sheet_row,
                    sync_record_logs.c.detail,
                )
                .where(
                    sync_record_logs.c.seller_number == query.seller_number,
                    sync_record_logs.c.sync_id.in_([r["sync_id"] for r in found]),
                )
                .order_by(sync_record_logs.c.id)
            ).all()
            by_sync: dict[str, list[dict[str, Any]]] = {}
            for log in logs:
                entry = {"action": log.action, "sheet_row": log.sheet_row, "detail": log.detail or {}}
                by_sync.setdefault(log.sync_id, []).append(entry)
            for r in found:
                r["records"] = by_sync.get(r["sync_id"], [])
    return found


def audit_rows_from(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "sync_id": r["sync_id"],
            "run_id": r["run_id"],
            "kind": r["kind"],
            "status": r["status"],
            "started_at": shown_time(r["started_at"]),
            "finished_at": shown_time(r["finished_at"]),
            "duration_s": r["duration_s"],
            "inserted": r["inserted_count"],
            "updated": r["updated_count"],
            "rejected": r["rejected_count"],
            "conflicts": r["conflict_count"],
            "failed": r["failed_count"],
            "gaps_found": r["gaps_found"],
            "message": r["message"],
            "sheet_feedback": r.get("sheet_feedback"),  # the notes a full sync wrote into the sheet (None: resync)
        }
        for r in rows
    ]


def _event(e: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": e["id"],
        "sync_id": e["sync_id"],
        "at": shown_time(e["created_at"]),
        "category": e["category"],
        "rule": e["rule"],
        "recovery": is_recovery_rule(e["rule"]),
        "seller_number": e["seller_number"],
        "sheet_row": e["sheet_row"],
        "cell": e["cell"],
        "message": e["message"],
    }


def sync_events(db: Database, sync_id: str) -> dict[str, Any] | None:
    """One sync's audit row and its error log, recovery actions (rule `recovery:*`, P31) included, in order."""
    with db.engine.connect() as conn:
        row = db.audit.get(conn, sync_id)
        if row is None:
            return None
        errors = db.audit.errors(conn, sync_id)
    return {
        "sync": audit_rows_from([row])[0],
        "events": [_event(e) for e in errors],
    }


def recovery_events(db: Database, query: AuditQuery) -> list[dict[str, Any]]:
    """Recovery actions across syncs (P31), most recent first, filtered by time and seller number."""
    conditions: list[sa.ColumnElement[bool]] = [sync_error_logs.c.rule.like(RECOVERY_RULE_PREFIX + "%")]
    if query.since is not None:
        conditions.append(sync_error_logs.c.created_at >= query.since)
    if query.until is not None:
        conditions.append(sync_error_logs.c.created_at < query.until)
    if query.seller_number is not None:
        conditions.append(sync_error_logs.c.seller_number == query.seller_number)
    statement = (
        sa.select(sync_error_logs)
        .where(*conditions)
        .order_by(sync_error_logs.c.created_at.desc(), sync_error_logs.c.id.desc())
        .limit(query.limit)
    )
    with db.engine.connect() as conn:
        return [_event(dict(e)) for e in conn.execute(statement).mappings()]
