"""Resync of chosen sellers (Requirement 1.3, 1.4): rewrite exactly those from the sheet, verify, alert on the rest.

A resync is a sync of its own (kind `resync`, with its own audit row and verification) linked to the sync whose
gaps it repairs (`parent_sync_id`). It rewrites the requested sellers from the same sheet snapshot with force, so a
row whose hash says "unchanged" but whose stored content was altered behind the sync's back is rewritten too.
Automatic repairs (`automatic=True`) respect the `auto_recovery` setting; an operator's resync always runs.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sync_pipeline.adapters.sheets.base import SheetSource
from sync_pipeline.domain.alerts import Alert, AlertType, Severity
from sync_pipeline.domain.audit import ErrorLog, SyncKind
from sync_pipeline.domain.diff import Action
from sync_pipeline.domain.errors import ErrorCategory
from sync_pipeline.domain.recovery import RecoveryAction
from sync_pipeline.domain.verification import Verification, sample
from sync_pipeline.services.alerts import raise_alert
from sync_pipeline.services.database import Database
from sync_pipeline.services.recovery import log_recovery
from sync_pipeline.services.sync import ProgressListener, SheetRead, SyncService, SyncSummary
from sync_pipeline.services.verify import record_verification, verify, verify_and_record

log = logging.getLogger(__name__)

NOT_IN_SHEET_RULE = "not_in_sheet"


@dataclass(frozen=True)
class ResyncResult:
    """What a resync did. `remaining` are requested sellers still missing or stale after it (they were alerted)."""

    requested: frozenset[str]
    sync_id: str | None = None  # the resync's own sync; None when nothing ran (nothing to do, or recovery off)
    parent_sync_id: str | None = None
    skipped: str | None = None  # why nothing was written, when nothing was
    not_in_sheet: Mapping[str, str] = field(default_factory=dict)  # requested key -> why the sheet cannot supply it
    repaired: frozenset[str] = frozenset()
    remaining: frozenset[str] = frozenset()
    failures: Mapping[str, str] = field(default_factory=dict)  # seller number -> database error of the write
    gaps_resynced: int = 0  # requested sellers that were absent from the database and are now present
    stale_resynced: int = 0  # requested sellers that were present but stale and are now in step
    verification: Verification | None = None  # the resync's own verification
    summary: SyncSummary | None = None
    alerts: tuple[Alert, ...] = ()
    error: str | None = None  # set when the resync itself failed (it was closed as failed and re-raised)

    @property
    def ok(self) -> bool:
        return not self.remaining and not self.not_in_sheet and self.error is None and self.skipped is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "sync_id": self.sync_id,
            "parent_sync_id": self.parent_sync_id,
            "requested": len(self.requested),
            "repaired": len(self.repaired),
            "remaining": sample(self.remaining),
            "remaining_count": len(self.remaining),
            "not_in_sheet": dict(sorted(self.not_in_sheet.items())[:20]),
            "failures": dict(sorted(self.failures.items())[:20]),
            "gaps_resynced": self.gaps_resynced,
            "stale_resynced": self.stale_resynced,
            "skipped": self.skipped,
            "verification_status": None if self.verification is None else self.verification.status.value,
            "alert_ids": [a.id for a in self.alerts],
        }


def resync(
    db: Database,
    read: SheetRead,
    keys: Iterable[str],
    *,
    parent_sync_id: str | None,
    trigger: str,
    run_id: str | None = None,
    automatic: bool = True,
    progress: ProgressListener | None = None,
) -> ResyncResult:
    """Rewrite exactly `keys` from the snapshot of `read` in a new sync of kind resync, verify again, alert (P3, P4).

    With `automatic` and the `auto_recovery` setting off, nothing is written: the sellers are reported and alerted.
    Keys the sheet does not have as valid rows are reported in `not_in_sheet`. When the resync raises, it is closed
    as failed, a critical alert names every requested seller, and the exception propagates.
    """
    requested = frozenset(keys)
    if not requested:
        return ResyncResult(requested=requested, parent_sync_id=parent_sync_id, skipped="nothing to resync")
    settings = db.settings()  # read now, so that switching recovery off takes effect on the next step (P46)
    if automatic and not settings.auto_recovery:
        alert = _alert(
            db,
            AlertType.RESYNC_SKIPPED,
            Severity.WARNING,
            f"{len(requested)} seller(s) need a resync but automatic recovery is off: {_quote(requested)}. "
            "Nothing was written. Resync them with seller_resync_job, or switch recovery on with "
            "`sync-pipeline settings set auto_recovery=true`.",
            parent_sync_id,
            {"seller_numbers": sample(requested), "count": len(requested)},
        )
        result = ResyncResult(
            requested=requested, parent_sync_id=parent_sync_id, skipped="auto_recovery is off", alerts=(alert,)
        )
        _note_on_parent(db, result)
        return result

    service = SyncService(db, progress=progress)
    sync_id, settings, started = service.begin(
        kind=SyncKind.RESYNC, source=read.snapshot.source, trigger=trigger, run_id=run_id, parent_sync_id=parent_sync_id
    )
    own = replace(read, sync_id=sync_id, kind=SyncKind.RESYNC, started_at=started, settings=settings, phases={})
    return _resync_with(service, own, requested, parent_sync_id=parent_sync_id)


def resync_from_source(
    db: Database,
    source: SheetSource,
    keys: Iterable[str],
    *,
    trigger: str,
    run_id: str | None = None,
    progress: ProgressListener | None = None,
) -> ResyncResult:
    """An operator's resync of chosen sellers: read the sheet now, then rewrite exactly those sellers from it."""
    # Typed by an operator: the same normalisation as the sheet's key column (NFKC, trimmed, upper case).
    requested = frozenset(unicodedata.normalize("NFKC", k).strip().upper() for k in keys if k.strip())
    service = SyncService(db, progress=progress)
    sync_id, settings, started = service.begin(
        kind=SyncKind.RESYNC, source=source.description, trigger=trigger, run_id=run_id
    )
    try:
        read = service.read(source, sync_id=sync_id, kind=SyncKind.RESYNC, settings=settings, started_at=started)
    except BaseException as exc:
        service.fail(sync_id, exc)
        raise
    return _resync_with(service, read, requested, parent_sync_id=None)


def _resync_with(
    service: SyncService, read: SheetRead, requested: frozenset[str], *, parent_sync_id: str | None
) -> ResyncResult:
    db = service.db
    valid = read.snapshot.valid_keys
    not_in_sheet = {key: _why_not(read, key) for key in sorted(requested - valid)}
    keys = requested & valid
    try:
        log_recovery(
            db,
            parent_sync_id or read.sync_id,
            RecoveryAction.RESYNC,
            f"resync {read.sync_id} rewrites {len(keys)} seller(s) from the sheet: {_quote(keys)}"
            + (f" ({len(not_in_sheet)} requested seller(s) are not valid sheet rows)" if not_in_sheet else ""),
        )
        if not_in_sheet:
            with db.engine.begin() as conn:
                db.audit.log_errors(
                    conn,
                    read.sync_id,
                    [
                        ErrorLog(ErrorCategory.VALIDATION, why, rule=NOT_IN_SHEET_RULE, seller_number=key)
                        for key, why in not_in_sheet.items()
                    ],
                    db.clock.now(),
                )
        result = service.apply(read, only_keys=keys, force_keys=keys)
        # The resync's own counts are about the sellers it was asked for, not the whole sheet: a key it cannot
        # supply counts as rejected (so the resync closes as partial), the sheet's other rejected rows do not.
        counts = replace(result.counts, rows_read=len(requested), valid=len(keys), rejected=len(not_in_sheet))
        result = replace(result, counts=counts)
        verification = verify(db, read)
        record_verification(db, read.sync_id, verification, settings=read.settings, raise_alerts=False)
        remaining = verification.repair_keys & keys
        repaired = keys - remaining
        absent_before = frozenset(result.plan.loc[result.plan["action"] == Action.INSERT, "seller_number"])
        gaps_resynced = len(absent_before & repaired)  # requested sellers that were gaps and are now present
        summary = service.complete(
            read,
            result,
            extra_phases={"verify": verification.seconds},
            gaps_found=len(verification.gaps),
            gaps_resynced=gaps_resynced,
        )
        with db.engine.begin() as conn:
            db.audit.update(conn, read.sync_id, gaps_resynced=gaps_resynced)
    except BaseException as exc:
        service.fail(read.sync_id, exc, phases=read.phases)
        if isinstance(exc, Exception):  # an interruption (cancel) is not a failed repair: it is closed as cancelled
            _alert(
                db,
                AlertType.RESYNC_FAILED,
                Severity.CRITICAL,
                f"resync {read.sync_id} failed ({type(exc).__name__}: {exc}); {len(keys)} seller(s) were not "
                f"repaired: {_quote(keys)}. Fix the cause and run seller_resync_job for them.",
                read.sync_id,
                {"seller_numbers": sample(keys), "count": len(keys), "parent_sync_id": parent_sync_id},
            )
        raise

    failures = {k: v for k, v in result.failures.items() if k in remaining}
    alerts: list[Alert] = []
    if remaining:
        reasons = {k: failures.get(k, "still differs after the resync (changed again meanwhile?)") for k in remaining}
        shown = sample(remaining)
        alerts.append(
            _alert(
                db,
                AlertType.RESYNC_FAILED,
                Severity.CRITICAL,
                f"resync {read.sync_id} could not repair {len(remaining)} of {len(keys)} seller(s): "
                + "; ".join(f"{k} ({reasons[k]})" for k in shown)
                + (f"; and {len(remaining) - len(shown)} more" if len(remaining) > len(shown) else "")
                + ". Fix the cause and run seller_resync_job for them.",
                read.sync_id,
                {"seller_numbers": shown, "count": len(remaining), "reasons": {k: reasons[k] for k in shown}},
            )
        )
    out = ResyncResult(
        requested=requested,
        sync_id=read.sync_id,
        parent_sync_id=parent_sync_id,
        not_in_sheet=not_in_sheet,
        repaired=repaired,
        remaining=remaining,
        failures=failures,
        gaps_resynced=gaps_resynced,
        stale_resynced=len(repaired - absent_before),
        verification=verification,
        summary=summary,
        alerts=tuple(alerts),
    )
    _note_on_parent(db, out)
    log.info(
        "resync %s (parent %s): %d requested, %d repaired, %d remaining, %d not in the sheet",
        read.sync_id,
        parent_sync_id,
        len(requested),
        len(repaired),
        len(remaining),
        len(not_in_sheet),
    )
    return out


def repair(
    db: Database,
    read: SheetRead,
    verification: Verification,
    *,
    trigger: str = "seller_gap_resync",
    run_id: str | None = None,
    progress: ProgressListener | None = None,
) -> ResyncResult:
    """After sync `read` verified as `verification`: resync its gaps and stale rows, exactly those (P3)."""
    return resync(
        db,
        read,
        verification.repair_keys,
        parent_sync_id=read.sync_id,
        trigger=trigger,
        run_id=run_id,
        automatic=True,
        progress=progress,
    )


@dataclass(frozen=True)
class VerifiedSync:
    """A whole sync without Dagster: its summary (gaps found and resynced filled in), verification and repair."""

    summary: SyncSummary
    verification: Verification
    resync: ResyncResult

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.summary.as_dict(),
            "gaps_resynced": self.resync.gaps_resynced,
            "verification": self.verification.as_dict(),
            "resync": self.resync.as_dict(),
        }


def sync_verify_repair(
    db: Database,
    source: SheetSource,
    *,
    kind: SyncKind = SyncKind.MANUAL,
    trigger: str | None = None,
    run_id: str | None = None,
    progress: ProgressListener | None = None,
    after_apply: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> VerifiedSync:
    """Sync, verify, record, close, then repair what verification found: the same steps as the Dagster assets.

    `after_apply` (tests only) is called between applying and verifying, to change the database behind the sync's
    back the way another application might; `sleep` is the wait between reconnection attempts.
    """
    service = SyncService(db, progress=progress, sleep=sleep)
    sync_id, settings, started = service.begin(kind=kind, source=source.description, trigger=trigger, run_id=run_id)
    try:
        read = service.read(source, sync_id=sync_id, kind=kind, settings=settings, started_at=started)
        result = service.apply(read)
        if after_apply is not None:
            after_apply()
        recorded = verify_and_record(db, read)
        v = recorded.verification
        summary = service.complete(read, result, extra_phases={"verify": v.seconds}, gaps_found=len(v.gaps))
    except BaseException as exc:
        service.fail(sync_id, exc)
        raise
    repaired = repair(db, read, v, run_id=run_id, progress=progress)
    summary = replace(summary, gaps_resynced=repaired.gaps_resynced)
    return VerifiedSync(summary=summary, verification=v, resync=repaired)


def _note_on_parent(db: Database, result: ResyncResult) -> None:
    """The parent sync's audit row learns how many of its gaps were resynced, and by which resync."""
    if result.parent_sync_id is None:
        return
    with db.engine.begin() as conn:
        parent = db.audit.get(conn, result.parent_sync_id)
        if parent is None:
            return
        figures = dict(parent.get("verification") or {})
        figures["resync"] = result.as_dict()
        db.audit.update(conn, result.parent_sync_id, gaps_resynced=result.gaps_resynced, verification=figures)


def _why_not(read: SheetRead, key: str) -> str:
    rejections = [r for r in read.snapshot.rejections if r.seller_number == key]
    if rejections:
        r = rejections[0]
        where = r.cell or f"row {r.sheet_row}"
        return f"seller {key} is on a rejected sheet row ({where}: {r.message}); fix the sheet first"
    return f"seller {key} is not in the sheet; nothing to resync it from"


def _alert(
    db: Database,
    alert_type: AlertType,
    severity: Severity,
    message: str,
    sync_id: str | None,
    detail: Mapping[str, Any],
) -> Alert:
    with db.engine.begin() as conn:
        return raise_alert(conn, alert_type, severity, message, now=db.clock.now(), sync_id=sync_id, detail=detail)


def _quote(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    shown = keys[:20]
    return ", ".join(shown) + (f" and {len(keys) - len(shown)} more" if len(keys) > len(shown) else "")
