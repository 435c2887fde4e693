"""Audit vocabulary (Requirement 2): sync kinds and statuses, record actions, and the log entries that cross layers."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sync_pipeline.domain.errors import ErrorCategory


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
    SKIPPED = "skipped"
    ABANDONED = "abandoned"

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
