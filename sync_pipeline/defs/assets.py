"""The seller assets: the sheet as read and validated, the database tables synced from it, and the gap resync.

The three are one step (a subsettable multi-asset) over one `SyncRun`: the sheet goes from the read to the write in
memory, never through the IO manager (which would pickle the whole sheet into run storage on every run), and one
lock covers the whole sync — read, write, verify and resync. Each asset can still be materialised on its own.
"""

import time
from collections.abc import Iterator

import dagster as dg

from sync_pipeline.defs.checks import GAP_RESYNC_CHECKS, SELLER_SHEET_CHECKS, SELLERS_TABLE, SELLERS_TABLE_CHECKS
from sync_pipeline.defs.resources import SellerSheet, SyncDatabase
from sync_pipeline.defs.results import SELLER_GAP_RESYNC, SELLER_SHEET, resync_result, sheet_result, table_result
from sync_pipeline.domain.audit import SyncKind
from sync_pipeline.domain.errors import SyncError
from sync_pipeline.domain.sheet import HeaderReport
from sync_pipeline.services.lifecycle import SyncRun
from sync_pipeline.services.resync import repair, repair_from_source
from sync_pipeline.services.snapshot import read_snapshot
from sync_pipeline.services.sync import ProgressListener, SyncSummary

GROUP = "sellers"
POOL = "seller_sync"  # dagster.yaml limits this pool to one run at a time (Requirement 9.3)
PROGRESS_EVERY_SECONDS = 5.0  # the run log gets a progress line at most this often (and at each phase's start/end)


def sync_kind(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> tuple[SyncKind, str]:
    """Scheduled, retry or manual, and what triggered it, from the run's tags."""
    tags = context.run.tags
    if "dagster/schedule_name" in tags:
        return SyncKind.SCHEDULED, f"schedule:{tags['dagster/schedule_name']}"
    if "dagster/sensor_name" in tags:
        return SyncKind.RETRY, f"sensor:{tags['dagster/sensor_name']}"
    if context.run.parent_run_id is not None:  # re-executed from the UI ("from failure", "all steps")
        return SyncKind.RETRY, f"re-execution of {context.run.parent_run_id}"
    return SyncKind.MANUAL, tags.get("sync_pipeline/trigger", "dagster")


def progress_logger(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> ProgressListener:
    """Requirement 4.3: the phase and records done / total in the run's event log, at most every few seconds."""
    last: dict[str, float] = {}

    def report(phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        edge = done == 0 or done >= total
        if edge or now - last.get(phase, 0.0) >= PROGRESS_EVERY_SECONDS:
            last[phase] = now
            context.log.info(f"progress: phase={phase} records={done}/{total}")

    return report


@dg.multi_asset(
    name="seller_sync",
    specs=[
        dg.AssetSpec(
            SELLER_SHEET,
            group_name=GROUP,
            kinds={"python", "pandas"},
            skippable=True,
            description="The seller spreadsheet as a sync read it: read once (one request for the whole sheet), "
            "normalised (NFKC, trimmed, dates and amounts parsed) and validated against the seller schema. "
            "Materialised alone it only reads and checks the sheet; nothing is written.",
        ),
        dg.AssetSpec(
            SELLERS_TABLE,
            group_name=GROUP,
            kinds={"sqlalchemy"},
            deps=[SELLER_SHEET],
            skippable=True,
            description="The `sellers` and `properties` tables, kept in step with the sheet: upserts keyed by "
            "seller number in chunked transactions under the sync lock, optimistic locking on a version column, "
            "the newer side winning when the application edited a row after the sheet's 更新日時. Rejected sheet "
            "rows never touch these tables. Verified against the sheet after every write (the checks below).",
        ),
        dg.AssetSpec(
            SELLER_GAP_RESYNC,
            group_name=GROUP,
            kinds={"sqlalchemy"},
            deps=[SELLERS_TABLE],
            skippable=True,
            description="Automatic recovery after every sync: the sellers verification found missing (gaps) or "
            "differing from the sheet (stale) are rewritten — exactly those, in a resync of their own linked to "
            "the sync — and verified again; what remains raises a critical alert. With `auto_recovery` off "
            "nothing is written: the sellers are reported and alerted. Kept conflicts are never touched.",
        ),
    ],
    check_specs=[*SELLER_SHEET_CHECKS, *SELLERS_TABLE_CHECKS, *GAP_RESYNC_CHECKS],
    can_subset=True,
    pool=POOL,
)
def seller_sync(
    context: dg.AssetExecutionContext, database: SyncDatabase, sheet: SellerSheet
) -> Iterator[dg.MaterializeResult]:
    """The seller sync: read the sheet, write the difference, verify, repair what is missing."""
    selected = {key.to_user_string() for key in context.selected_asset_keys}
    db = database.open()
    source = sheet.build()
    progress = progress_logger(context)
    try:
        if selected == {SELLER_SHEET}:
            snapshot = read_snapshot(db, source, db.settings(write_defaults=False), progress=progress)
            yield sheet_result(snapshot, sync_id=None)
            _stop_unless_header_ok(snapshot.header)
            return
        if SELLERS_TABLE not in selected:  # the resync alone: repair what the database lacks now
            result = repair_from_source(
                db, source, trigger="seller_gap_resync", run_id=context.run.run_id, progress=progress
            )
            yield resync_result(result)
            return
        kind, trigger = sync_kind(context)
        with SyncRun(db, source, kind=kind, trigger=trigger, run_id=context.run.run_id, progress=progress) as run:
            read = run.read()
            try:
                run.apply()  # refuses (HeaderError) when the header check failed: nothing is written
                verification = run.verify()
                summary = run.complete()  # writes the sheet's notes first (sheet_feedback)
            except BaseException:
                if SELLER_SHEET in selected:  # the sheet was read: its figures and checks stand
                    yield sheet_result(read.snapshot, sync_id=run.sync_id, retries=read.retries)
                raise
            if SELLER_SHEET in selected:  # after the close, so that its metadata counts the notes in the sheet
                yield sheet_result(
                    read.snapshot, sync_id=run.sync_id, retries=read.retries, feedback=summary.sheet_feedback
                )
            context.log.info(_summary_line(summary))
            yield table_result(summary, verification, run.settings, run.metrics)
            if SELLER_GAP_RESYNC in selected:
                yield resync_result(repair(run, verification))
    except SyncError as exc:  # our own, already in the audit log: the run fails with the operator's message
        raise dg.Failure(description=f"{exc.category.value}: {exc.message}") from exc


def _stop_unless_header_ok(header: HeaderReport) -> None:
    if not header.ok:
        raise dg.Failure(description="the sheet's header does not map: " + "; ".join(i.message for i in header.issues))


def _summary_line(summary: SyncSummary) -> str:
    c = summary.counts
    return (
        f"sync {summary.sync_id} {summary.status.value}: {c.inserted} inserted, {c.updated} updated, "
        f"{c.unchanged} unchanged, {c.conflicts} conflicts, {c.failed} failed, {c.rejected} rejected rows "
        f"in {summary.duration_s:.1f}s"
    )
