"""Resync of chosen sellers (Requirement 1.3, 1.4): rewrite exactly those from the sheet, verify, alert on the rest.

A resync is a `SyncRun` of kind resync with its own audit entry. After a sync, `repair` rewrites the gaps and stale
rows verification found, from the same sheet snapshot and under the same lock (`parent_sync_id` links them); an
operator's `resync_from_source` reads the sheet now. Both rewrite with force, so a row whose hash says "unchanged"
but whose stored content was altered behind the sync's back is rewritten too. Automatic repairs respect the
`auto_recovery` setting; an operator's resync always runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sync_pipeline.adapters.sheets.base import SheetSource
from sync_pipeline.domain.alerts import Alert, AlertType, Severity
from sync_pipeline.domain.audit import ErrorLog, SyncKind
from sync_pipeline.domain.diff import Action
from sync_pipeline.domain.errors import ErrorCategory
from sync_pipeline.domain.fields import FieldKind
from sync_pipeline.domain.normalise import normalise_value
from sync_pipeline.domain.verification import Verification, quote_keys, sample
from sync_pipeline.services.alerts import raise_alert
from sync_pipeline.services.database import Database
from sync_pipeline.services.lifecycle import SyncRun
from sync_pipeline.services.sync import ProgressListener, SyncSummary
from sync_pipeline.services.verify import verify_snapshot

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

    @property
    def ok(self) -> bool:
        return not self.remaining and not self.not_in_sheet and self.skipped is None

    def problems(self) -> list[str]:
        """One line per seller the resync could not repair, saying why."""
        lines = [f"{k}: {why}" for k, why in sorted(self.not_in_sheet.items())]
        lines += [f"{k}: {self.failures.get(k, 'still differs from the sheet')}" for k in sorted(self.remaining)]
        return lines

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


def normalise_seller_numbers(typed: Iterable[str]) -> frozenset[str]:
    """Seller numbers typed by an operator, read exactly as the sheet's key column is (width, case, spaces)."""
    keys = (normalise_value(text, FieldKind.KEY) for text in typed)
    return frozenset(k for k in keys if isinstance(k, str))


def repair(parent: SyncRun, verification: Verification, *, trigger: str = "seller_gap_resync") -> ResyncResult:
    """After `parent` verified as `verification`: resync its gaps and stale rows, exactly those (P3), in a resync of
    its own under the parent's lock and from the parent's snapshot. With `auto_recovery` off nothing is written: the
    sellers are reported and alerted."""
    db = parent.db
    requested = frozenset(verification.repair_keys)
    if not requested:
        return ResyncResult(requested=requested, parent_sync_id=parent.sync_id, skipped="nothing to resync")
    if not db.settings().auto_recovery:  # read now, so that switching recovery off takes effect at once (P46)
        alert = _recovery_off_alert(db, requested, parent.sync_id)
        result = ResyncResult(
            requested=requested, parent_sync_id=parent.sync_id, skipped="auto_recovery is off", alerts=(alert,)
        )
        _note_on_parent(db, result)
        return result
    child = SyncRun(
        db, None, kind=SyncKind.RESYNC, trigger=trigger, run_id=parent.run_id, progress=parent.progress, parent=parent
    )
    with child:
        if parent.read_result is None:
            raise RuntimeError(f"sync {parent.sync_id} has no sheet snapshot to repair from")
        child.adopt(parent.read_result)
        result = _resync_keys(child, requested)
    _note_on_parent(db, result)
    return result


def resync_from_source(
    db: Database,
    source: SheetSource,
    typed: Iterable[str],
    *,
    trigger: str,
    run_id: str | None = None,
    progress: ProgressListener | None = None,
) -> ResyncResult:
    """An operator's resync of chosen sellers: read the sheet now, then rewrite exactly those sellers from it."""
    requested = normalise_seller_numbers(typed)
    with SyncRun(db, source, kind=SyncKind.RESYNC, trigger=trigger, run_id=run_id, progress=progress) as run:
        run.read()
        return _resync_keys(run, requested)


def repair_from_source(
    db: Database,
    source: SheetSource,
    *,
    trigger: str,
    run_id: str | None = None,
    progress: ProgressListener | None = None,
) -> ResyncResult:
    """Read the sheet now and repair what the database lacks against it (gaps and stale rows), when recovery is on:
    `seller_gap_resync` materialised on its own."""
    with SyncRun(db, source, kind=SyncKind.RESYNC, trigger=trigger, run_id=run_id, progress=progress) as run:
        read = run.read()
        keys = frozenset(verify_snapshot(db, read.snapshot, run.settings).repair_keys)
        if keys and not run.settings.auto_recovery:
            alert = _recovery_off_alert(db, keys, run.sync_id)
            _resync_keys(run, frozenset())
            return ResyncResult(requested=keys, sync_id=run.sync_id, skipped="auto_recovery is off", alerts=(alert,))
        return _resync_keys(run, keys)


def _resync_keys(run: SyncRun, requested: frozenset[str]) -> ResyncResult:
    """Inside an open resync: rewrite `requested` from its snapshot, verify, close, and alert on what remains."""
    db = run.db
    read = run.read_result
    assert read is not None
    parent_sync_id = run.parent.sync_id if run.parent is not None else None
    not_in_sheet = {
        key: _why_not(read.snapshot.rejections, key) for key in sorted(requested - read.snapshot.valid_keys)
    }
    keys = requested & read.snapshot.valid_keys
    if not_in_sheet:
        with db.engine.begin() as conn:
            db.audit.log_errors(
                conn,
                run.sync_id,
                [
                    ErrorLog(ErrorCategory.VALIDATION, why, rule=NOT_IN_SHEET_RULE, seller_number=key)
                    for key, why in not_in_sheet.items()
                ],
                db.clock.now(),
            )
    try:
        result = run.apply(only_keys=keys, force_keys=keys)
        # The resync's counts are about the sellers it was asked for, not the whole sheet: a key it cannot supply
        # counts as rejected (so the resync closes as partial), the sheet's other rejected rows do not.
        counts = replace(result.counts, rows_read=len(requested), valid=len(keys), rejected=len(not_in_sheet))
        run.result = result = replace(result, counts=counts)
        verification = run.verify(raise_alerts=False)  # the resync raises the one alert that matters, below
        remaining = verification.repair_keys & keys
        repaired = keys - remaining
        absent_before = frozenset(result.plan.loc[result.plan["action"] == Action.INSERT, "seller_number"])
        run.gaps_resynced = len(absent_before & repaired)
        summary = run.complete()
    except Exception as exc:  # an interruption (a BaseException) is a cancel, not a failed repair: no alert
        run.fail(exc)
        _alert(
            db,
            AlertType.RESYNC_FAILED,
            Severity.CRITICAL,
            f"resync {run.sync_id} failed ({type(exc).__name__}: {exc}); {len(keys)} seller(s) were not "
            f"repaired: {quote_keys(keys)}. Fix the cause and run seller_resync_job for them.",
            run.sync_id,
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
                f"resync {run.sync_id} could not repair {len(remaining)} of {len(keys)} seller(s): "
                + "; ".join(f"{k} ({reasons[k]})" for k in shown)
                + (f"; and {len(remaining) - len(shown)} more" if len(remaining) > len(shown) else "")
                + ". Fix the cause and run seller_resync_job for them.",
                run.sync_id,
                {"seller_numbers": shown, "count": len(remaining), "reasons": {k: reasons[k] for k in shown}},
            )
        )
    log.info(
        "resync %s (parent %s): %d requested, %d repaired, %d remaining, %d not in the sheet",
        run.sync_id,
        parent_sync_id,
        len(requested),
        len(repaired),
        len(remaining),
        len(not_in_sheet),
    )
    return ResyncResult(
        requested=requested,
        sync_id=run.sync_id,
        parent_sync_id=parent_sync_id,
        not_in_sheet=not_in_sheet,
        repaired=repaired,
        remaining=remaining,
        failures=failures,
        gaps_resynced=run.gaps_resynced,
        stale_resynced=len(repaired - absent_before),
        verification=verification,
        summary=summary,
        alerts=tuple(alerts),
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
    after_apply: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> VerifiedSync:
    """Sync, verify, close, then repair what verification found, under one lock: the same steps as the Dagster step.

    `after_apply` (tests only) is called between applying and verifying, to change the database behind the sync's
    back the way another application might; `sleep` is the wait between reconnection attempts.
    """
    with SyncRun(db, source, kind=kind, trigger=trigger, run_id=run_id, progress=progress, sleep=sleep) as run:
        run.read()
        run.apply()
        if after_apply is not None:
            after_apply()
        verification = run.verify()
        summary = run.complete()
        repaired = repair(run, verification)
    return VerifiedSync(
        summary=replace(summary, gaps_resynced=repaired.gaps_resynced), verification=verification, resync=repaired
    )


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


def _why_not(rejections: Iterable[Any], key: str) -> str:
    for r in rejections:
        if r.seller_number == key:
            where = r.cell or f"row {r.sheet_row}"
            return f"seller {key} is on a rejected sheet row ({where}: {r.message}); fix the sheet first"
    return f"seller {key} is not in the sheet; nothing to resync it from"


def _recovery_off_alert(db: Database, keys: frozenset[str], sync_id: str) -> Alert:
    return _alert(
        db,
        AlertType.RESYNC_SKIPPED,
        Severity.WARNING,
        f"{len(keys)} seller(s) need a resync but automatic recovery is off: {quote_keys(keys)}. "
        "Nothing was written. Resync them with seller_resync_job, or switch recovery on with "
        "`sync-pipeline settings set auto_recovery=true`.",
        sync_id,
        {"seller_numbers": sample(keys), "count": len(keys)},
    )


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
