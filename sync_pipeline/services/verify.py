"""Verification after every sync (Requirement 1, 8): compare the sync's sheet snapshot with the database and record it.

`verify` reads the database with two set-based queries (keys + content hashes computed in SQL, and the required
fields found empty) and leaves the maths to `domain.verification`. `record_verification` writes the verdict where
operators look: the figures and samples on the sync's audit row (P1, P5), each gap and each integrity issue in the
error log by seller number (P2, P35), and alerts (Requirement 3.2, P36).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from sync_pipeline.adapters.sheets.base import SheetSource
from sync_pipeline.domain.alerts import CELL_LINKS, Alert, AlertType, Severity
from sync_pipeline.domain.audit import ErrorLog
from sync_pipeline.domain.diff import empty_state
from sync_pipeline.domain.errors import ErrorCategory
from sync_pipeline.domain.settings import Settings
from sync_pipeline.domain.sheet import CellLinks, SheetSnapshot
from sync_pipeline.domain.verification import (
    SAMPLE_SIZE,
    SHEET_COLUMNS,
    IntegrityRule,
    IntegrityRules,
    Verification,
    differing_keys,
    empty_missing_frame,
    gap_links,
    integrity_links,
    match_hashes,
    quote_keys,
    sample,
    unconfirmed_keys,
    verify_frames,
)
from sync_pipeline.services.alerts import raise_alert
from sync_pipeline.services.database import Database

log = logging.getLogger(__name__)

GAP_RULE = "gap"  # error-log rule of a valid sheet seller absent from the database (Property 2)
STALE_RULE = "stale"  # error-log rule of a database row whose content differs from the sheet
# Every rule the verification logs: the audit summary keeps these apart from the sheet's rejected rows.
VERIFICATION_RULES = frozenset({GAP_RULE, STALE_RULE, *(rule.value for rule in IntegrityRule)})


class AlreadyVerifiedError(RuntimeError):
    """A sync has exactly one verification (Property 1): recording a second one is a bug in the caller."""


def verify_snapshot(db: Database, snapshot: SheetSnapshot, settings: Settings) -> Verification:
    """The verdict on `snapshot` against the database as it is now; reads only.

    At most three set-based queries: every seller's key and stored-content hash; the sync bookkeeping of just the
    sellers whose hash differs from the sheet; the required fields found empty among the sellers not confirmed equal
    to a valid sheet row (none when every hash matches). The comparison is column work in Arrow
    (domain.verification): no Python object per seller unless it is reported.
    """
    t0 = time.perf_counter()
    sheet = snapshot.valid.loc[:, list(SHEET_COLUMNS)]
    with db.engine.connect() as conn:
        hashes = db.sellers.verification_hashes(conn, *snapshot.attribute_layout)
        matched = match_hashes(sheet, hashes)
        differing = differing_keys(matched)
        # (when many differ, the store reads everyone's in bulk rather than through a huge key list)
        state = db.sellers.load_state(conn, keys=sorted(differing)) if differing else empty_state()
        # Required fields only of the sellers not confirmed equal to a valid sheet row (validated under the same
        # settings): none after a sync that wrote everything, so no scan at all.
        unconfirmed = unconfirmed_keys(hashes, matched)
        missing = (
            db.sellers.missing_required(conn, settings.required_fields, keys=sorted(unconfirmed))
            if unconfirmed
            else empty_missing_frame()
        )
    rejected_keys = frozenset(r.seller_number for r in snapshot.rejections if r.seller_number)
    verification = verify_frames(
        sheet,
        hashes,
        state,
        missing,
        IntegrityRules(settings.seller_number_pattern, tuple(settings.required_fields)),
        columns=snapshot.header.columns,
        not_orphans=rejected_keys,
        matched=matched,
    )
    return replace(verification, seconds=time.perf_counter() - t0)


@dataclass(frozen=True)
class RecordedVerification:
    """What recording a verification produced: the alerts it raised."""

    verification: Verification
    alerts: tuple[Alert, ...]


def record_verification(
    db: Database,
    sync_id: str,
    verification: Verification,
    *,
    settings: Settings,
    raise_alerts: bool = True,
    cell_links: CellLinks | None = None,
) -> RecordedVerification:
    """Write the verification of sync `sync_id` to the audit log, log each gap and issue, raise alerts; one transaction.

    Raises AlreadyVerifiedError when the sync already has a verification (Property 1). `raise_alerts=False` is for
    a resync's own verification: the resync raises the one alert that matters (what it could not repair).
    `cell_links` (the snapshot's, a Google source) lets the gap and integrity alerts carry a `cell_links` detail,
    seller number -> URL of its cell for the sellers they quote, so that the e-mail opens each cell in one click.
    """
    v = verification
    now = db.clock.now()
    alerts: list[Alert] = []
    with db.engine.begin() as conn:
        row = db.audit.get(conn, sync_id)
        if row is None:
            raise KeyError(f"no sync {sync_id} in the audit log")
        if row["verified_at"] is not None:
            raise AlreadyVerifiedError(f"sync {sync_id} was already verified at {row['verified_at']:%Y-%m-%d %H:%M:%S}")
        db.audit.update(
            conn,
            sync_id,
            verified_at=now,
            verification_status=v.status.value,
            gaps_resynced=0,
            verification=v.as_dict(),
            **v.figures(),
        )
        db.audit.log_errors(conn, sync_id, _error_logs(v), now)
        if raise_alerts:
            alerts = _raise_alerts(conn, sync_id, v, settings, now, cell_links)
    log.info(
        "verification of sync %s: %s (sheet %d valid, database %d matched, %d gaps, %d stale, %d kept conflicts, "
        "%d orphans, %d integrity issues) in %.3fs",
        sync_id,
        v.status.value,
        v.sheet_valid_count,
        v.db_matched_count,
        len(v.gaps),
        len(v.stale),
        len(v.kept_conflicts),
        len(v.orphans),
        len(v.integrity),
        v.seconds,
    )
    return RecordedVerification(v, tuple(alerts))


def _error_logs(v: Verification) -> list[ErrorLog]:
    logs = [
        ErrorLog(
            ErrorCategory.INTEGRITY,
            f"seller {key} is valid in the sheet{_row(v.sheet_rows.get(key))} but absent from the database",
            rule=GAP_RULE,
            seller_number=key,
            sheet_row=v.sheet_rows.get(key),
        )
        for key in sorted(v.gaps)
    ]
    logs += [
        ErrorLog(
            ErrorCategory.INTEGRITY,
            f"seller {key} differs in the database from the sheet{_row(v.sheet_rows.get(key))} and was not edited "
            "there after the sheet; a resync rewrites it from the sheet",
            rule=STALE_RULE,
            seller_number=key,
            sheet_row=v.sheet_rows.get(key),
        )
        for key in sorted(v.stale)
    ]
    logs += [
        ErrorLog(
            ErrorCategory.INTEGRITY,
            issue.message,
            rule=issue.rule.value,
            seller_number=issue.seller_number,
            sheet_row=issue.sheet_row,
            cell=issue.cell,
        )
        for issue in v.integrity
    ]
    return logs


def _row(sheet_row: int | None) -> str:
    return f" (row {sheet_row})" if sheet_row is not None else ""


def _raise_alerts(
    conn: sa.Connection,
    sync_id: str,
    v: Verification,
    settings: Settings,
    now: dt.datetime,
    cell_links: CellLinks | None = None,
) -> list[Alert]:
    alerts: list[Alert] = []
    if len(v.gaps) > settings.gap_threshold:  # Requirement 3.2
        keys = sample(v.gaps)
        alerts.append(
            raise_alert(
                conn,
                AlertType.GAPS_FOUND,
                Severity.WARNING,
                f"verification of sync {sync_id} found {len(v.gaps)} seller(s) valid in the sheet but absent from "
                f"the database (gap threshold {settings.gap_threshold}): {quote_keys(keys, len(v.gaps))}. "
                + (
                    "Automatic recovery will resync them."
                    if settings.auto_recovery
                    else "Automatic recovery is off: resync them with seller_resync_job."
                ),
                now=now,
                sync_id=sync_id,
                detail={
                    "gaps_found": len(v.gaps),
                    "gap_threshold": settings.gap_threshold,
                    "seller_numbers": keys,
                    **_links_detail(gap_links(v, keys, cell_links) if cell_links else {}),
                },
            )
        )
    if v.integrity:  # Property 36
        keys = sample(v.integrity_keys)
        by_rule = v.integrity_by_rule()
        rules = ", ".join(f"{rule} {count}" for rule, count in sorted(by_rule.items()))
        alerts.append(
            raise_alert(
                conn,
                AlertType.INTEGRITY_ISSUE,
                Severity.WARNING,
                f"verification of sync {sync_id} found {len(v.integrity)} integrity issue(s) in the database "
                f"({rules}): {quote_keys(keys, len(v.integrity_keys))}. Details per seller: "
                f"`sync-pipeline audit --seller NUMBER`.",
                now=now,
                sync_id=sync_id,
                detail={
                    "integrity_issues": len(v.integrity),
                    "by_rule": by_rule,
                    "seller_numbers": keys,
                    **_links_detail(integrity_links(v, keys, cell_links) if cell_links else {}),
                },
            )
        )
    return alerts


def _links_detail(links: dict[str, str]) -> dict[str, Any]:
    """The `cell_links` detail entry, left out when there is nothing to link (a file source, no located cell)."""
    return {CELL_LINKS: links} if links else {}


def verify_source(db: Database, source: SheetSource) -> dict[str, Any]:
    """Read the sheet and verify the database against it without writing anything; JSON-able figures (the CLI)."""
    from sync_pipeline.services.snapshot import read_snapshot  # it builds on this module's neighbours

    t0 = time.perf_counter()
    settings = db.settings(write_defaults=False)
    snapshot = read_snapshot(db, source, settings)
    base: dict[str, Any] = {
        "source": source.description,
        "database": db.url,
        "rows_read": snapshot.rows_read,
        "valid": len(snapshot.valid),
        "rejected": len({r.sheet_row for r in snapshot.rejections}),
    }
    if not snapshot.header.ok:
        return {
            **base,
            "status": "failed",
            "clean": False,
            "message": "the sheet's header does not map onto the seller fields: "
            + "; ".join(i.message for i in snapshot.header.issues),
            "duration_s": round(time.perf_counter() - t0, 3),
        }
    v = verify_snapshot(db, snapshot, settings)
    return {
        **base,
        **v.as_dict(SAMPLE_SIZE),
        "clean": v.clean,
        "repair_needed": len(v.repair_keys),
        "auto_recovery": settings.auto_recovery,
        "duration_s": round(time.perf_counter() - t0, 3),
    }
