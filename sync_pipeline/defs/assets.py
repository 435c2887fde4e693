"""The seller assets: the sheet as read and validated, and the database tables it is synced into."""

from collections import Counter

import dagster as dg

from sync_pipeline.defs.checks import SELLERS_TABLE_CHECKS, verification_check_results, verification_metadata
from sync_pipeline.defs.resources import SellerSheet, SyncDatabase
from sync_pipeline.domain.audit import SyncKind
from sync_pipeline.domain.errors import ErrorCategory, HeaderError
from sync_pipeline.services.sync import SAMPLE_SIZE, ProgressListener, SheetRead, SyncService
from sync_pipeline.services.verify import verify_and_record

GROUP = "sellers"
POOL = "seller_sync"  # dagster.yaml limits this pool to one run at a time (Requirement 9.3)
FAILURE_TABLE_ROWS = 50  # rows of the failure-case table shown on the Checks tab


def sync_kind(context: dg.AssetExecutionContext) -> tuple[SyncKind, str]:
    """Scheduled, retry or manual, and what triggered it, from the run's tags."""
    tags = context.run.tags
    if "dagster/schedule_name" in tags:
        return SyncKind.SCHEDULED, f"schedule:{tags['dagster/schedule_name']}"
    if "dagster/sensor_name" in tags:
        return SyncKind.RETRY, f"sensor:{tags['dagster/sensor_name']}"
    if "dagster/parent_run_id" in tags:
        return SyncKind.RETRY, f"re-execution of {tags['dagster/parent_run_id']}"
    return SyncKind.MANUAL, tags.get("sync_pipeline/trigger", "dagster")


def progress_logger(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> ProgressListener:
    """Requirement 4.3: the phase and records done / total, in the run's event log (once per chunk)."""

    def report(phase: str, done: int, total: int) -> None:
        context.log.info(f"progress: phase={phase} records={done}/{total}")

    return report


@dg.asset(
    group_name=GROUP,
    pool=POOL,
    kinds={"python", "pandas"},
    check_specs=[
        dg.AssetCheckSpec(
            "sheet_header_matches",
            asset="seller_sheet",
            blocking=True,
            description="Every required column and every column the last successful sync used is present exactly "
            "once. When this fails nothing is written: restore or rename the header it names.",
        ),
        dg.AssetCheckSpec(
            "sheet_rows_valid",
            asset="seller_sheet",
            description="Every non-blank row is a valid seller. Failures list the row, cell, column and rule so the "
            "office can fix the sheet; valid rows are synced regardless.",
        ),
    ],
)
def seller_sheet(
    context: dg.AssetExecutionContext, database: SyncDatabase, sheet: SellerSheet
):  # no return annotation: Dagster would type the output as Nothing (checks make it multi-output)
    """The seller spreadsheet as this sync read it: the valid seller records, and every rejected row with its reason.

    Read once (one request for the whole sheet), normalised (NFKC, trimmed, dates and amounts parsed) and validated
    against the seller schema. This is where every sync starts: it opens the sync's audit record.
    """
    service = SyncService(database.open(), progress=progress_logger(context))
    source = sheet.build()
    kind, trigger = sync_kind(context)
    sync_id, settings, started = service.begin(
        kind=kind, source=source.description, trigger=trigger, run_id=context.run_id
    )
    try:
        read = service.read(source, sync_id=sync_id, kind=kind, settings=settings, started_at=started)
    except BaseException as exc:
        service.fail(sync_id, exc)
        raise
    snapshot = read.snapshot
    header = snapshot.header
    if not header.ok:
        message = "; ".join(i.message for i in header.issues)
        service.fail(sync_id, HeaderError(ErrorCategory.CONFIGURATION, message), log_error=False)
    by_rule = Counter(r.rule for r in snapshot.rejections)
    rejected_rows = len({r.sheet_row for r in snapshot.rejections})
    header_check = dg.AssetCheckResult(
        check_name="sheet_header_matches",
        passed=header.ok,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None if header.ok else " ".join(i.message for i in header.issues),
        metadata={
            "mapping": dg.MetadataValue.json(dict(header.mapping)),
            "unknown_columns": dg.MetadataValue.json(list(header.unknown)),
            "issues": dg.MetadataValue.json(
                [{"rule": i.rule, "field": i.field, "message": i.message} for i in header.issues]
            ),
        },
    )
    rows_check = dg.AssetCheckResult(
        check_name="sheet_rows_valid",
        passed=not snapshot.rejections,
        severity=dg.AssetCheckSeverity.WARN,
        description=None
        if not snapshot.rejections
        else f"{rejected_rows} sheet row(s) not synced until fixed ("
        + ", ".join(f"{rule}: {n}" for rule, n in by_rule.most_common())
        + "); failure_cases lists each row, cell and what to do",
        metadata={
            "rejected_rows": rejected_rows,
            "failures_by_rule": dg.MetadataValue.json(dict(by_rule)),
            "failure_cases": dg.MetadataValue.md(_failure_table(read)),
        },
    )
    return dg.MaterializeResult(
        value=read,
        metadata={
            "sync_id": sync_id,
            "source": source.description,
            "rows_read": snapshot.rows_read,
            "valid": len(snapshot.valid),
            "rejected": rejected_rows,
            "header_fingerprint": header.fingerprint,
            "fetch_seconds": float(round(snapshot.fetch_seconds, 4)),
            "validate_seconds": float(round(snapshot.validate_seconds, 4)),
            "retries": len(read.retries),
        },
        check_results=[header_check, rows_check],
    )


def _failure_table(read: SheetRead) -> str:
    rejections = read.snapshot.rejections
    if not rejections:
        return "No rejected rows."
    lines = ["| row | cell | column | rule | value | what to do |", "|---|---|---|---|---|---|"]
    for r in rejections[:FAILURE_TABLE_ROWS]:
        value = (r.value or "").replace("|", "\\|")[:40]
        lines.append(
            f"| {r.sheet_row} | {r.cell or ''} | {r.column or ''} | {r.rule} | {value} | "
            f"{r.message.replace('|', '/')} |"
        )
    if len(rejections) > FAILURE_TABLE_ROWS:
        lines.append(f"\n…and {len(rejections) - FAILURE_TABLE_ROWS} more (see `sync-pipeline audit`).")
    return "\n".join(lines)


@dg.asset(group_name=GROUP, pool=POOL, kinds={"sqlalchemy"}, check_specs=SELLERS_TABLE_CHECKS)
def sellers_table(
    context: dg.AssetExecutionContext, seller_sheet: SheetRead, database: SyncDatabase
):  # no return annotation: Dagster would type the output as Nothing (checks make it multi-output)
    """The `sellers` and `properties` tables, kept in step with the sheet.

    Applies the diff (insert / update / unchanged / conflict) in chunked transactions under the sync lock: upserts
    keyed by seller number, optimistic locking on a version column, and the newer side winning when the
    application edited a row after the sheet's 更新日時. Rejected sheet rows never touch these tables.

    Then verifies the result against the sheet: the figures go on the sync's audit row and into the checks
    `counts_match_sheet`, `no_gaps` and `integrity`; what is missing is left to seller_gap_resync.
    """
    service = SyncService(database.open(), progress=progress_logger(context))
    read = seller_sheet
    try:
        result = service.apply(read)
        verification = verify_and_record(service.db, read).verification
        summary = service.complete(
            read, result, extra_phases={"verify": verification.seconds}, gaps_found=len(verification.gaps)
        )
    except BaseException as exc:
        service.fail(read.sync_id, exc, phases=read.phases)
        raise
    c = summary.counts
    update_s = float(summary.phases.get("update", 0.0))
    written = c.inserted + c.updated
    context.log.info(
        f"sync {summary.sync_id} {summary.status.value}: {c.inserted} inserted, {c.updated} updated, "
        f"{c.unchanged} unchanged, {c.conflicts} conflicts, {c.failed} failed, {c.rejected} rejected rows"
    )
    return dg.MaterializeResult(
        value=summary.as_dict(),
        metadata={
            "sync_id": summary.sync_id,
            "status": summary.status.value,
            "inserted": c.inserted,
            "updated": c.updated,
            "unchanged": c.unchanged,
            "conflicts": c.conflicts,
            "failed": c.failed,
            "update_seconds": round(update_s, 4),
            "rows_per_second": float(round(written / update_s, 1)) if update_s > 0 else 0.0,
            "duration_seconds": float(round(summary.duration_s, 4)),
            "conflict_sample": dg.MetadataValue.json([d["seller_number"] for d in summary.conflicts[:SAMPLE_SIZE]]),
            **verification_metadata(verification),
        },
        check_results=verification_check_results(verification),
    )
