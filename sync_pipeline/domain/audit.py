"""Audit vocabulary (Requirement 2): sync kinds and statuses, record actions, the log entries that cross layers, and
the builders that turn a sync's findings (rejected rows, written chunks, conflicts) into those entries."""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sync_pipeline.domain.diff import Action
from sync_pipeline.domain.errors import ErrorCategory
from sync_pipeline.domain.sheet import Rejection, cell_link

# Rejection rules that are integrity rules (Requirement 8) rather than unparseable values.
INTEGRITY_RULES = frozenset({"required", "seller_number_format", "duplicate_seller_number"})
# The record-log reason of a planned write skipped because the row's version moved on after the diff read it (P40).
CONFLICT_UNDERNEATH_REASON = "changed underneath the sync (version moved on); not overwritten, next sync retries"


class SyncKind(enum.StrEnum):
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    RESYNC = "resync"
    RETRY = "retry"


class SyncStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # synced, but some rows were rejected, failed or left in conflict
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # refused because another sync held the lock: nothing was attempted, not a failure
    ABANDONED = "abandoned"  # left running by a holder that died; closed by a later sync, counts as a failure

    @property
    def completed(self) -> bool:
        """A sync that got as far as writing: it has a verification (Property 1)."""
        return self in {SyncStatus.SUCCEEDED, SyncStatus.PARTIAL}


class RecordAction(enum.StrEnum):
    INSERTED = "inserted"
    UPDATED = "updated"
    REJECTED = "rejected"
    CONFLICT = "conflict"
    FAILED = "failed"


@dataclass(frozen=True)
class RecordLog:
    """One record the sync acted on (unchanged records are counted, not logged: Requirement 2.2)."""

    seller_number: str | None
    action: RecordAction
    sheet_row: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ErrorLog:
    """One error with its category and, where there is one, the seller number and the sheet cell (Requirement 2.3)."""

    category: ErrorCategory
    message: str
    rule: str | None = None
    seller_number: str | None = None
    sheet_row: int | None = None
    cell: str | None = None
    detail: Mapping[str, Any] | None = None  # a rejected cell's field, column header and cell text


@dataclass(frozen=True)
class SyncCounts:
    rows_read: int = 0
    valid: int = 0
    rejected: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    conflicts: int = 0
    failed: int = 0
    errors: int = 0


@dataclass(frozen=True)
class AuditQuery:
    """Filters of the audit log, combined with AND (Property 10); None means any."""

    since: dt.datetime | None = None  # inclusive, on the sync's start time
    until: dt.datetime | None = None  # exclusive
    status: SyncStatus | None = None
    seller_number: str | None = None  # syncs that logged a record or an error for this seller
    limit: int = 100
    include_archive: bool = False  # also the syncs moved to the archive tables by retention


def rejected_row_logs(rejections: Sequence[Rejection]) -> list[RecordLog]:
    """One record log per rejected row (a row may break several rules: they are listed together)."""
    by_row: dict[int, list[Rejection]] = {}
    for r in rejections:
        by_row.setdefault(r.sheet_row, []).append(r)
    return [
        RecordLog(
            next((r.seller_number for r in rs if r.seller_number), None),
            RecordAction.REJECTED,
            row,
            {"rules": [r.rule for r in rs], "cells": [r.cell for r in rs if r.cell]},
        )
        for row, rs in sorted(by_row.items())
    ]


def rejection_error(r: Rejection, cell_url: str | None = None) -> ErrorLog:
    """The error-log entry of one rejected cell: validation, or integrity for the key and required-field rules."""
    category = ErrorCategory.INTEGRITY if r.rule in INTEGRITY_RULES else ErrorCategory.VALIDATION
    detail = {"field": r.field, "column": r.column, "value": r.value, "url": cell_link(cell_url, r.cell)}
    return ErrorLog(
        category,
        r.message,
        rule=r.rule,
        seller_number=r.seller_number,
        sheet_row=r.sheet_row,
        cell=r.cell,
        detail=detail,
    )


def chunk_record_logs(chunk: pd.DataFrame, written: set[str]) -> list[RecordLog]:
    """The record logs of a written chunk of the plan: what was inserted, updated, or skipped as changed underneath."""
    logs: list[RecordLog] = []
    # Column by column, not chunk.to_dict("records"): a whole row as a dict is needed for sheet-wins conflicts only,
    # and building one per row cost more than writing the chunk.
    columns = (chunk["seller_number"], chunk["action"], chunk["sheet_row"], chunk["expected_version"])
    attributes = chunk["attributes"].tolist() if "attributes" in chunk.columns else [None] * len(chunk)
    for position, (key, action, row, expected) in enumerate(zip(*(c.tolist() for c in columns), strict=True)):
        sheet_row = int(row)
        if key not in written:
            detail = {"reason": CONFLICT_UNDERNEATH_REASON, "expected_version": expected}
            logs.append(RecordLog(key, RecordAction.CONFLICT, sheet_row, detail))
        elif action == Action.INSERT:
            logs.append(RecordLog(key, RecordAction.INSERTED, sheet_row, attributes_detail(attributes[position])))
        elif action == Action.CONFLICT_SHEET_WINS:
            whole = chunk.iloc[position].to_dict()
            logs.append(RecordLog(key, RecordAction.CONFLICT, sheet_row, conflict_detail(whole, frozenset())))
        else:
            logs.append(RecordLog(key, RecordAction.UPDATED, sheet_row, attributes_detail(attributes[position])))
    return logs


def attributes_detail(attributes: object) -> dict[str, Any]:
    """A written record's log detail: the contract attributes it was written with (`{}` when it has none)."""
    if not isinstance(attributes, str):
        return {}
    return {"attributes": json.loads(attributes)}


def conflict_detail(row: Mapping[Any, Any], lost: frozenset[str]) -> dict[str, Any]:
    """Both sides of a conflict and how it was resolved (P41)."""
    key = row["seller_number"]
    if key in lost:
        resolution = "skipped_changed_underneath"
    else:
        resolution = "sheet_wins" if row["action"] == Action.CONFLICT_SHEET_WINS else "db_wins"
    return {
        "seller_number": key,
        "sheet_row": int(row["sheet_row"]),
        "resolution": resolution,
        "sheet_updated_at": _iso(row.get("sheet_updated_at")),
        "db_updated_at": _iso(row.get("db_updated_at")),
        "db_version": None if pd.isna(row.get("db_version")) else int(row["db_version"]),
    }


def _iso(value: object) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[call-overload]
        return None
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)
