"""What the seller assets report to Dagster: materialisation metadata and check results built from a sync's values.

Kept apart from the asset bodies so that each body reads as a short recipe over `SyncRun`.
"""

from collections import Counter
from typing import Any

import dagster as dg

from sync_pipeline.defs.checks import (
    GAPS_REPAIRED,
    SELLERS_TABLE,
    SHEET_COLUMNS_MAPPED,
    SHEET_HEADER_MATCHES,
    SHEET_ROWS_VALID,
    keys_markdown,
    verification_check_results,
    verification_metadata,
)
from sync_pipeline.domain.settings import Settings
from sync_pipeline.domain.sheet import SheetSnapshot, cell_link
from sync_pipeline.domain.verification import SAMPLE_SIZE, Verification
from sync_pipeline.services.feedback import FeedbackReport
from sync_pipeline.services.metrics import SyncMetrics
from sync_pipeline.services.resync import ResyncResult
from sync_pipeline.services.settings import settings_markdown
from sync_pipeline.services.sync import SyncSummary

SELLER_SHEET = "seller_sheet"
SELLER_GAP_RESYNC = "seller_gap_resync"
FAILURE_TABLE_ROWS = 50  # rows of the failure-case table shown on the Checks tab


def sheet_result(
    snapshot: SheetSnapshot, *, sync_id: str | None, retries: int = 0, feedback: FeedbackReport | None = None
) -> dg.MaterializeResult:
    """`seller_sheet`: the figures of the sheet as read, its checks (header, rows, columns) and, after a full sync,
    what the sync did to the sheet's notes (`sheet_feedback`)."""
    header = snapshot.header
    by_rule = Counter(r.rule for r in snapshot.rejections)
    rejected_rows = len({r.sheet_row for r in snapshot.rejections})
    header_check = dg.AssetCheckResult(
        check_name=SHEET_HEADER_MATCHES,
        asset_key=SELLER_SHEET,
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
        check_name=SHEET_ROWS_VALID,
        asset_key=SELLER_SHEET,
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
            "failure_cases": dg.MetadataValue.md(_failure_table(snapshot)),
        },
    )
    unmapped = list(header.unknown)
    columns_check = dg.AssetCheckResult(
        check_name=SHEET_COLUMNS_MAPPED,
        asset_key=SELLER_SHEET,
        passed=not unmapped,
        severity=dg.AssetCheckSeverity.WARN,
        description=None
        if not unmapped
        else f"{len(unmapped)} column(s) synced nowhere (unmapped_columns={snapshot.unmapped_columns}): "
        + ", ".join(unmapped)
        + ". Add them to the sheet contract (sync-pipeline contract show), or set unmapped_columns=keep.",
        metadata={
            "unmapped_columns": dg.MetadataValue.json(unmapped),
            "policy": snapshot.unmapped_columns,
            "dropped_fields": dg.MetadataValue.json(list(header.dropped_fields)),
        },
    )
    return dg.MaterializeResult(
        asset_key=SELLER_SHEET,
        metadata={
            "sync_id": sync_id or "(not synced: seller_sheet alone only reads)",
            "contract": dg.MetadataValue.md(contract_markdown(snapshot)),
            "unmapped_columns": dg.MetadataValue.json(unmapped),
            "source": snapshot.source,
            "rows_read": snapshot.rows_read,
            "valid": len(snapshot.valid),
            "rejected": rejected_rows,
            "header_fingerprint": header.fingerprint,
            "fetch_seconds": float(round(snapshot.fetch_seconds, 4)),
            "validate_seconds": float(round(snapshot.validate_seconds, 4)),
            "retries": retries,
            **_feedback_metadata(feedback),
        },
        check_results=[header_check, rows_check, columns_check],
    )


def _feedback_metadata(feedback: FeedbackReport | None) -> dict[str, Any]:
    """The sync's notes in the sheet (written now or left as they were) and what the feedback step did."""
    if feedback is None:
        return {}
    return {
        "feedback_notes": feedback.notes_written + feedback.notes_unchanged,
        "sheet_feedback": dg.MetadataValue.json(feedback.as_dict()),
    }


def contract_markdown(snapshot: SheetSnapshot) -> str:
    """The sheet contract in force as a Markdown table: field, kind, header found (or expected), stored where."""
    from sync_pipeline.domain.contract import default_contract

    contract = snapshot.contract or default_contract()
    lines = [
        f"Contract: `{contract.source}`",
        "",
        "| field | kind | header in the sheet | aliases | required | stored in |",
        "|---|---|---|---|---|---|",
    ]
    for f in contract.fields:
        found = snapshot.header.mapping.get(f.name)
        header = found if found else f"{f.header} (not in the sheet)"
        stored = "its own column" if f.builtin else "attributes"
        kind = f.kind.value + (f" ({', '.join(f.values)})" if f.values else "")
        lines.append(
            f"| {f.name} | {kind} | {header} | {', '.join(f.aliases)} | {'yes' if f.required else ''} | {stored} |"
        )
    return "\n".join(lines)


def _failure_table(snapshot: SheetSnapshot) -> str:
    rejections = snapshot.rejections
    if not rejections:
        return "No rejected rows."
    lines = ["| row | cell | column | rule | value | what to do |", "|---|---|---|---|---|---|"]
    for r in rejections[:FAILURE_TABLE_ROWS]:
        value = (r.value or "").replace("|", "\\|")[:40]
        url = cell_link(snapshot.cell_url, r.cell)
        cell = f"[{r.cell}]({url})" if url else r.cell or ""
        lines.append(
            f"| {r.sheet_row} | {cell} | {r.column or ''} | {r.rule} | {value} | {r.message.replace('|', '/')} |"
        )
    if len(rejections) > FAILURE_TABLE_ROWS:
        lines.append(f"\n…and {len(rejections) - FAILURE_TABLE_ROWS} more (see `sync-pipeline audit`).")
    return "\n".join(lines)


def table_result(
    summary: SyncSummary, verification: Verification, settings: Settings, metrics: SyncMetrics | None = None
) -> dg.MaterializeResult:
    """`sellers_table`: counts by action, speed, the verification figures, the settings this sync ran with (the
    current ones: they are read when a sync starts), and the three verification checks.

    With the sync's metrics: seconds per phase, throughput and errors by category as numbers the UI plots (P23-P25).
    """
    c = summary.counts
    update_s = float(summary.phases.get("update", 0.0))
    written = c.inserted + c.updated
    return dg.MaterializeResult(
        asset_key=SELLERS_TABLE,
        metadata={
            **(metrics.numeric_metadata() if metrics is not None else {}),
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
            "settings": dg.MetadataValue.md(settings_markdown(settings)),
        },
        check_results=verification_check_results(verification),
    )


def resync_metadata(result: ResyncResult) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "requested": len(result.requested),
        "repaired": len(result.repaired),
        "remaining": len(result.remaining),
        "gaps_resynced": result.gaps_resynced,
        "stale_resynced": result.stale_resynced,
        "not_in_sheet": len(result.not_in_sheet),
        "resync_sync_id": result.sync_id or "",
        "parent_sync_id": result.parent_sync_id or "",
        "skipped": result.skipped or "",
        "remaining_sellers": dg.MetadataValue.md(keys_markdown(result.remaining)),
    }
    if result.not_in_sheet:
        metadata["not_in_sheet_sellers"] = dg.MetadataValue.json(dict(sorted(result.not_in_sheet.items())[:20]))
    if result.verification is not None:
        metadata.update({f"after_{k}": v for k, v in verification_metadata(result.verification).items()})
    return metadata


def resync_result(result: ResyncResult) -> dg.MaterializeResult:
    """`seller_gap_resync`: what was resynced, and whether every gap was repaired."""
    repaired = not result.remaining and result.skipped in {None, "nothing to resync"}
    left = result.remaining if not result.skipped else result.requested
    if repaired:
        description = None
    elif result.skipped:
        description = f"{len(result.requested)} seller(s) not resynced: {result.skipped}"
    else:
        description = f"{len(result.remaining)} seller(s) still missing or stale after the resync"
    check = dg.AssetCheckResult(
        check_name=GAPS_REPAIRED,
        asset_key=SELLER_GAP_RESYNC,
        passed=repaired,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={"remaining": len(left), "sellers": dg.MetadataValue.md(keys_markdown(left))},
    )
    return dg.MaterializeResult(asset_key=SELLER_GAP_RESYNC, metadata=resync_metadata(result), check_results=[check])


def check_evaluations(verification: Verification) -> list[dg.AssetCheckEvaluation]:
    """The verification checks as events an op can log (after an operator's resync, so the Checks tab is current)."""
    return [
        dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(SELLERS_TABLE),
            check_name=r.check_name,
            passed=r.passed,
            metadata=r.metadata,
            severity=r.severity,
            description=r.description,
        )
        for r in verification_check_results(verification)
        if r.check_name is not None
    ]
