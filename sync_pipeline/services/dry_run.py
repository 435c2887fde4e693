"""The dry run (`sync-pipeline sync --dry-run`): read, validate and diff like a sync, and write nothing at all."""

from __future__ import annotations

import time

from sync_pipeline.adapters.sheets.base import SheetSource
from sync_pipeline.domain.audit import SyncStatus
from sync_pipeline.domain.diff import Action
from sync_pipeline.domain.errors import ErrorCategory, HeaderError
from sync_pipeline.services.database import Database
from sync_pipeline.services.snapshot import read_snapshot
from sync_pipeline.services.sync import SyncSummary, guard_sheet_size, plan_changes, summarise


def preview(db: Database, source: SheetSource) -> SyncSummary:
    """A dry run: read, validate and diff, and write nothing at all (no audit row, not even default settings)."""
    settings = db.settings(write_defaults=False)
    snapshot = read_snapshot(db, source, settings)
    if not snapshot.header.ok:
        raise HeaderError(ErrorCategory.CONFIGURATION, "; ".join(i.message for i in snapshot.header.issues))
    guard_sheet_size(db, snapshot, settings)
    t0 = time.perf_counter()
    plan = plan_changes(db, snapshot.valid, only_keys=None, force_keys=frozenset())
    phases = {
        "fetch": snapshot.fetch_seconds,
        "validate": snapshot.validate_seconds,
        "compare": time.perf_counter() - t0,
    }
    result = summarise(plan, snapshot, written=frozenset(), failures={}, phases=phases, dry_run=True)
    actions = plan["action"]
    return SyncSummary(
        status=SyncStatus.SUCCEEDED,
        sync_id="dry-run",
        run_id=None,
        counts=result.counts,
        duration_s=sum(phases.values()),
        phases=phases,
        rejections=snapshot.rejections,
        unmapped_columns=snapshot.header.unknown,
        cell_url=snapshot.cell_url,
        conflicts=result.conflicts,
        dry_run=True,
        would_insert=tuple(plan.loc[actions == Action.INSERT, "seller_number"]),
        would_update=tuple(plan.loc[actions.isin([Action.UPDATE, Action.CONFLICT_SHEET_WINS]), "seller_number"]),
        gaps_found=int((actions == Action.MISSING).sum()),
        message="dry run: nothing was written",
    )
