"""The values a sync produces and the pure-ish planning steps the lifecycle (`services.lifecycle.SyncRun`) runs.

`SheetRead` is the sheet as one sync saw it, `ApplyResult` what applying the diff did, `SyncSummary` what the sync
ends with (the CLI's --json object). `plan_changes` diffs the valid rows against the database; `summarise` turns a
plan and what was written into counts. None of these opens or closes a sync: only `SyncRun` does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sync_pipeline.domain.audit import SyncCounts, SyncKind, SyncStatus, conflict_detail
from sync_pipeline.domain.diff import DIFF_COLUMNS, WRITING_ACTIONS, Action, classify, is_in, mark_missing
from sync_pipeline.domain.errors import ErrorCategory, SyncError
from sync_pipeline.domain.settings import Settings
from sync_pipeline.domain.sheet import Rejection, SheetSnapshot, cell_link
from sync_pipeline.services.database import Database
from sync_pipeline.services.feedback import FeedbackReport

ProgressListener = Callable[[str, int, int], None]  # phase, records done, records total
PHASES: tuple[str, ...] = ("fetch", "validate", "compare", "update", "verify")


@dataclass
class SheetRead:
    """The sheet as one sync saw it, with the settings in force for that sync and its phase timings so far."""

    sync_id: str
    kind: SyncKind
    started_at: dt.datetime
    settings: Settings
    snapshot: SheetSnapshot
    phases: dict[str, float] = field(default_factory=dict)
    retries: int = 0


@dataclass(frozen=True)
class ApplyResult:
    """What the apply step did; `plan` keeps the action of every valid row (for dry runs and summaries)."""

    counts: SyncCounts
    phases: Mapping[str, float]
    written: frozenset[str]
    conflicts: tuple[Mapping[str, Any], ...]
    failures: Mapping[str, str]  # seller number -> error message
    plan: pd.DataFrame
    dry_run: bool = False


@dataclass(frozen=True)
class SyncSummary:
    """The summary a sync ends with (Requirement 4.4); `as_dict()` is the CLI's --json object."""

    status: SyncStatus
    sync_id: str
    run_id: str | None
    counts: SyncCounts
    duration_s: float
    phases: Mapping[str, float]
    gaps_found: int = 0
    gaps_resynced: int = 0
    message: str | None = None
    rejections: tuple[Rejection, ...] = ()
    conflicts: tuple[Mapping[str, Any], ...] = ()
    failures: Mapping[str, str] = field(default_factory=dict)
    dry_run: bool = False
    would_insert: tuple[str, ...] = ()
    would_update: tuple[str, ...] = ()
    unmapped_columns: tuple[str, ...] = ()  # header texts no field of the contract names, in sheet order
    cell_url: str | None = None  # the sheet's cell-link template (Google sources): each rejection's `url`
    sheet_feedback: FeedbackReport | None = None  # the notes written into the sheet (full syncs only)

    def as_dict(self) -> dict[str, Any]:
        c = self.counts
        return {
            "status": self.status.value,
            "sync_id": self.sync_id,
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "rows_read": c.rows_read,
            "valid": c.valid,
            "rejected": c.rejected,
            "inserted": c.inserted,
            "updated": c.updated,
            "unchanged": c.unchanged,
            "conflicts": c.conflicts,
            "failed": c.failed,
            "errors": c.errors,
            "gaps_found": self.gaps_found,
            "gaps_resynced": self.gaps_resynced,
            "duration_s": round(self.duration_s, 3),
            "phases": {p: round(float(self.phases.get(p, 0.0)), 4) for p in PHASES},
            "message": self.message,
            "unmapped_columns": list(self.unmapped_columns),
            "rejections": [
                {
                    "row": r.sheet_row,
                    "cell": r.cell,
                    "column": r.column,
                    "rule": r.rule,
                    "value": r.value,
                    "seller_number": r.seller_number,
                    "message": r.message,
                    "url": cell_link(self.cell_url, r.cell),
                }
                for r in self.rejections
            ],
            "sheet_feedback": self.sheet_feedback.as_dict() if self.sheet_feedback is not None else None,
            "conflict_details": [dict(c) for c in self.conflicts],
            "failures": dict(self.failures),
            **(
                {"would_insert": list(self.would_insert), "would_update": list(self.would_update)}
                if self.dry_run
                else {}
            ),
        }


def plan_changes(
    db: Database, valid: pd.DataFrame, *, only_keys: frozenset[str] | None, force_keys: frozenset[str]
) -> pd.DataFrame:
    """The action of every valid row against the database now (insert, update, unchanged, conflict, missing)."""
    sheet = valid if only_keys is None else valid[is_in(valid["seller_number"], only_keys)]
    keys = None if only_keys is None else sorted(only_keys)
    with db.engine.connect() as conn:
        # Every row's key, hash and version; the sync bookkeeping only of the rows whose hash differs (or forced).
        state = db.sellers.load_state(conn, keys=keys, columns=DIFF_COLUMNS)
        plan = classify(
            sheet, state, force_keys=force_keys, load_bookkeeping=lambda wanted: db.sellers.load_state(conn, wanted)
        )
    planned_inserts = plan.loc[plan["action"] == Action.INSERT.value, "seller_number"].tolist()
    if planned_inserts:
        with db.engine.connect() as conn:
            written_before = db.audit.written_before(conn, planned_inserts)
        plan = mark_missing(plan, written_before, force_keys=force_keys)
    return plan


def guard_sheet_size(db: Database, snapshot: SheetSnapshot, settings: Settings) -> None:
    """Refuse a sheet that reads as empty or far smaller than what the database holds from it (a partial read)."""
    with db.engine.connect() as conn:
        held = db.sellers.count_from_sheet(conn)
    valid = len(snapshot.valid)
    if snapshot.rows_read == 0:
        raise SyncError(
            ErrorCategory.VALIDATION,
            f"the sheet {snapshot.source} has no seller rows; nothing was "
            "synced. Check that the right worksheet is configured and that it is not filtered.",
        )
    if held and valid < settings.min_sheet_ratio * held:
        raise SyncError(
            ErrorCategory.VALIDATION,
            f"the sheet has {valid} valid sellers but the database holds "
            f"{held} from it (below min_sheet_ratio {settings.min_sheet_ratio:g}); nothing was synced."
            " If rows were removed on purpose, lower min_sheet_ratio with `sync-pipeline settings "
            "set min_sheet_ratio=…`.",
        )


def summarise(
    plan: pd.DataFrame,
    snapshot: SheetSnapshot,
    *,
    written: frozenset[str],
    failures: Mapping[str, str],
    phases: Mapping[str, float],
    dry_run: bool,
) -> ApplyResult:
    """Counts by action: for a dry run what would be written, else what was (a row changed underneath is lost)."""
    actions = plan["action"].to_numpy()
    keys = plan["seller_number"]
    writes = np.isin(actions, WRITING_ACTIONS)
    done = writes if dry_run else is_in(keys, written)
    # A planned write neither written nor failed was changed underneath the sync (skipped by the optimistic lock).
    lost_rows = np.zeros(len(plan), dtype=bool) if dry_run else writes & ~done & ~is_in(keys, failures)
    lost = frozenset(keys[lost_rows])
    inserted = int(((actions == Action.INSERT.value) & done).sum())
    updated = int((np.isin(actions, [Action.UPDATE.value, Action.CONFLICT_SHEET_WINS.value]) & done).sum())
    conflicted = np.isin(actions, [Action.CONFLICT_SHEET_WINS.value, Action.CONFLICT_DB_WINS.value])
    conflict_rows = plan[conflicted | lost_rows]
    conflicts = tuple(conflict_detail(r, lost) for r in conflict_rows.to_dict("records"))
    counts = SyncCounts(
        rows_read=snapshot.rows_read,
        valid=len(snapshot.valid),
        rejected=len({r.sheet_row for r in snapshot.rejections}),
        inserted=inserted,
        updated=updated,
        unchanged=int((actions == Action.UNCHANGED.value).sum()),
        conflicts=len(conflicts),
        failed=len(failures),
    )
    return ApplyResult(
        counts=counts,
        phases=dict(phases),
        written=written,
        conflicts=conflicts,
        failures=dict(failures),
        plan=plan,
        dry_run=dry_run,
    )
