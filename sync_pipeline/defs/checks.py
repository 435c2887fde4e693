"""The seller assets' checks (Requirement 1, 8): what the Checks tab shows after every sync.

The verification checks of `sellers_table` are evaluated by the step that writes the tables, from the verification
it records on the sync's audit row, so a check and the audit log can never disagree. None of them is blocking: when
gaps fail `no_gaps`, `seller_gap_resync` must still run to repair them. `sheet_header_matches` is: a header that
does not map stops the sync before anything is written.
"""

from collections.abc import Iterable
from typing import Any

import dagster as dg

from sync_pipeline.domain.verification import SAMPLE_SIZE, Verification, sample

SELLERS_TABLE = "sellers_table"
SHEET_HEADER_MATCHES = "sheet_header_matches"
SHEET_ROWS_VALID = "sheet_rows_valid"
SHEET_COLUMNS_MAPPED = "sheet_columns_mapped"
GAPS_REPAIRED = "gaps_repaired"
COUNTS_MATCH_SHEET = "counts_match_sheet"
NO_GAPS = "no_gaps"
INTEGRITY = "integrity"
ISSUE_TABLE_ROWS = 50  # rows of the integrity table shown on the Checks tab

SELLER_SHEET_CHECKS: list[dg.AssetCheckSpec] = [
    dg.AssetCheckSpec(
        SHEET_HEADER_MATCHES,
        asset="seller_sheet",
        blocking=True,
        description="Every required column and every column the last successful sync used is present exactly "
        "once. When this fails nothing is written: restore or rename the header it names.",
    ),
    dg.AssetCheckSpec(
        SHEET_ROWS_VALID,
        asset="seller_sheet",
        description="Every non-blank row is a valid seller. Failures list the row, cell, column and rule so the "
        "office can fix the sheet; valid rows are synced regardless.",
    ),
    dg.AssetCheckSpec(
        SHEET_COLUMNS_MAPPED,
        asset="seller_sheet",
        description="Every column of the sheet is a field of the sheet contract (SYNC_CONTRACT). A failure (a "
        "warning: the sync goes on) lists the columns synced nowhere; add them to the contract, or set "
        "unmapped_columns=keep to store them as text, or refuse to stop the sync.",
    ),
]

GAP_RESYNC_CHECKS: list[dg.AssetCheckSpec] = [
    dg.AssetCheckSpec(
        GAPS_REPAIRED,
        asset="seller_gap_resync",
        description="Every seller the sync's verification found missing or stale was resynced and now matches the "
        "sheet. A failure names the sellers left over; a critical alert was raised for them.",
    )
]

SELLERS_TABLE_CHECKS: list[dg.AssetCheckSpec] = [
    dg.AssetCheckSpec(
        COUNTS_MATCH_SHEET,
        asset=SELLERS_TABLE,
        description="The database holds as many sellers with the sheet's valid seller numbers as the sheet has valid "
        "rows. Orphans (sellers no longer in the sheet) are counted but never deleted.",
    ),
    dg.AssetCheckSpec(
        NO_GAPS,
        asset=SELLERS_TABLE,
        description="Every valid seller in the sheet is in the database with the sheet's content: no missing "
        "sellers (gaps) and no stale rows. Rows the application edited after the sheet's 更新日時 are kept "
        "conflicts: reported, not failures. seller_gap_resync repairs what fails here.",
    ),
    dg.AssetCheckSpec(
        INTEGRITY,
        asset=SELLERS_TABLE,
        description="Every seller row in the database has its required fields, a seller number in the configured "
        "format, and (when the sync wrote it) its property record. Each issue names the seller, the rule and "
        "the sheet cell to look at.",
    ),
]


def keys_markdown(keys: Iterable[str], total: int | None = None, size: int = SAMPLE_SIZE) -> str:
    """Seller numbers as a Markdown list (a sorted sample when there are many)."""
    shown = sample(keys, size)
    if not shown:
        return "None."
    count = total if total is not None else len(shown)
    lines = [f"- `{key}`" for key in shown]
    if count > len(shown):
        lines.append(f"- …and {count - len(shown)} more (`sync-pipeline audit --seller NUMBER`, or the audit row)")
    return "\n".join(lines)


def _integrity_table(v: Verification) -> str:
    if not v.integrity:
        return "No integrity issues."
    lines = ["| seller number | rule | field | sheet cell | what to do |", "|---|---|---|---|---|"]
    issues = sorted(v.integrity, key=lambda i: (i.seller_number, i.rule.value, i.field or ""))
    for issue in issues[:ISSUE_TABLE_ROWS]:
        cells = [issue.seller_number, issue.rule.value, issue.field or "", issue.cell or "", issue.message]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    if len(issues) > ISSUE_TABLE_ROWS:
        lines.append(f"\n…and {len(issues) - ISSUE_TABLE_ROWS} more (see `sync-pipeline audit`).")
    return "\n".join(lines)


def verification_check_results(v: Verification) -> list[dg.AssetCheckResult]:
    """The three checks' results from one verification, with the seller numbers behind each failure."""
    difference = v.sheet_valid_count - v.db_matched_count
    counts = dg.AssetCheckResult(
        check_name=COUNTS_MATCH_SHEET,
        asset_key=SELLERS_TABLE,
        passed=v.counts_match,
        severity=dg.AssetCheckSeverity.WARN,
        description=None
        if v.counts_match
        else f"the sheet has {v.sheet_valid_count} valid sellers, the database {v.db_matched_count} of them "
        f"({difference} missing)",
        metadata={
            "sheet_valid_count": v.sheet_valid_count,
            "db_matched_count": v.db_matched_count,
            "missing": difference,
            "db_total_count": v.db_total_count,
            "orphans_found": len(v.orphans),
            "orphans": dg.MetadataValue.md(keys_markdown(v.orphans)),
        },
    )
    no_gaps = dg.AssetCheckResult(
        check_name=NO_GAPS,
        asset_key=SELLERS_TABLE,
        passed=not v.repair_keys,
        severity=dg.AssetCheckSeverity.WARN,
        description=None
        if not v.repair_keys
        else f"{len(v.gaps)} seller(s) missing from the database and {len(v.stale)} stale; seller_gap_resync "
        "resyncs them when automatic recovery is on",
        metadata={
            "gaps_found": len(v.gaps),
            "stale_found": len(v.stale),
            "conflicts_kept": len(v.kept_conflicts),
            "gaps": dg.MetadataValue.md(keys_markdown(v.gaps)),
            "stale": dg.MetadataValue.md(keys_markdown(v.stale)),
            "kept_conflicts": dg.MetadataValue.md(keys_markdown(v.kept_conflicts)),
        },
    )
    integrity = dg.AssetCheckResult(
        check_name=INTEGRITY,
        asset_key=SELLERS_TABLE,
        passed=not v.integrity,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None
        if not v.integrity
        else f"{len(v.integrity)} integrity issue(s) in {len(v.integrity_keys)} seller(s): "
        + ", ".join(f"{rule} {count}" for rule, count in sorted(v.integrity_by_rule().items())),
        metadata={
            "integrity_issues": len(v.integrity),
            "by_rule": dg.MetadataValue.json(v.integrity_by_rule()),
            "sellers": dg.MetadataValue.md(keys_markdown(v.integrity_keys)),
            "issues": dg.MetadataValue.md(_integrity_table(v)),
        },
    )
    return [counts, no_gaps, integrity]


def verification_metadata(v: Verification) -> dict[str, Any]:
    """The verification figures as numeric materialization metadata (the UI plots them over time)."""
    return {
        "verification_status": v.status.value,
        **v.figures(),
        "verify_seconds": float(round(v.seconds, 4)),
    }
