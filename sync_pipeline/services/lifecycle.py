"""The one sync lifecycle: begin, read, apply, verify, complete / fail / cancel, with its audit entry — every face
(the Dagster assets and ops, the CLI, the benchmarks) enters it.

    with SyncRun(db, source, kind=SyncKind.MANUAL, trigger="cli") as run:   # lock taken, audit row opened
        run.read()          # the sheet, fetched once, normalised and validated; rejections logged
        run.apply()         # the diff written in chunks under the lock
        run.verify()        # the database compared with the sheet, recorded once (P1)
        run.complete()      # closed as succeeded / partial; leaving the block without it closes it the same way;
                            # a full sync of a Google sheet first writes its notes (sheet_feedback, services.feedback)
    # an exception closes it as failed, an interruption (Dagster's cancel, Ctrl-C) as cancelled; the lock is released

A resync (`services.resync`) is a `SyncRun` of kind resync with a `parent`: it shares the parent's lock and sheet
snapshot and has an audit entry of its own. Concerns that follow every sync (metrics, alert rules, the retry queue)
hook into `SyncRun._after_close`, the one place every sync ends.

Recovery (issue 11, `services.recovery` and `services.retry_queue`): the lock is taken first and dies with its holder
(a Postgres session advisory lock, an flock beside the SQLite file), so a crashed sync never blocks the next one;
right after taking it every other `running` entry is closed as abandoned; records the database refuses are queued
for retry when the apply ends, and queued records a sync wrote leave the queue when it closes.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType

import numpy as np
import pandas as pd
import sqlalchemy as sa

from sync_pipeline.adapters.retry import RetriesExhaustedError
from sync_pipeline.adapters.sheets.base import RetryEvent, SheetSource, noted_source
from sync_pipeline.adapters.store.lock import SyncLock
from sync_pipeline.adapters.store.sellers import owned_attributes
from sync_pipeline.adapters.store.writer import ChunkWriter
from sync_pipeline.domain.alert_rules import COUNTED_KINDS
from sync_pipeline.domain.audit import (
    ErrorLog,
    RecordAction,
    RecordLog,
    SyncKind,
    SyncStatus,
    conflict_detail,
    rejected_row_logs,
    rejection_error,
)
from sync_pipeline.domain.diff import WRITING_ACTIONS, Action
from sync_pipeline.domain.errors import ErrorCategory, HeaderError, SyncError, SyncRefusedError
from sync_pipeline.domain.progress import progress_record
from sync_pipeline.domain.recovery import RecoveryAction
from sync_pipeline.domain.settings import FEEDBACK_NOTES, Settings
from sync_pipeline.domain.verification import Verification
from sync_pipeline.services.alert_rules import evaluate_after_sync
from sync_pipeline.services.database import Database
from sync_pipeline.services.feedback import FEEDBACK_RULE, STATUS_FAILED, FeedbackReport, write_feedback
from sync_pipeline.services.metrics import SyncMetrics, record_sync_metrics
from sync_pipeline.services.recovery import close_abandoned_syncs, recovery_event, take_sync_lock
from sync_pipeline.services.retry_queue import queue_failures, record_outcome
from sync_pipeline.services.snapshot import FULL_SYNC_KINDS, read_snapshot
from sync_pipeline.services.sync import (
    ApplyResult,
    ProgressListener,
    SheetRead,
    SyncSummary,
    guard_sheet_size,
    plan_changes,
    summarise,
)
from sync_pipeline.services.verify import record_verification, verify_snapshot

log = logging.getLogger(__name__)

COMPLETED = frozenset({SyncStatus.SUCCEEDED, SyncStatus.PARTIAL})


class SyncRun:
    """One sync, from its audit entry's opening to its close. Not reusable: one `with` block per sync."""

    def __init__(
        self,
        db: Database,
        source: SheetSource | None,
        *,
        kind: SyncKind,
        trigger: str | None = None,
        run_id: str | None = None,
        progress: ProgressListener | None = None,
        sleep: Callable[[float], None] = time.sleep,
        parent: SyncRun | None = None,
    ) -> None:
        self.db = db
        self.source = source
        self.kind = kind
        self.trigger = trigger
        self.run_id = run_id
        self.progress: ProgressListener = progress or (lambda phase, done, total: None)
        self.sleep = sleep  # the waits between reconnection attempts (tests do not wait)
        self.parent = parent
        self.sync_id = str(uuid.uuid4())
        self.lock_holder: str = parent.lock_holder if parent is not None else self.sync_id
        self.lock: SyncLock | None = parent.lock if parent is not None else None  # a resync works under its parent's
        self.settings = Settings()
        self.started_at = db.clock.now()
        self.read_result: SheetRead | None = None
        self.result: ApplyResult | None = None
        self.verification: Verification | None = None
        self.summary: SyncSummary | None = None
        self.status: SyncStatus | None = None  # set once the audit entry is closed
        self.metrics: SyncMetrics | None = None  # recorded when it closes
        self.gaps_resynced = 0
        self.phase_started_at: dt.datetime | None = None
        self.full_apply = False  # apply() wrote the whole sheet (not a resync's chosen sellers)
        self.feedback: FeedbackReport | None = None  # the notes written into the sheet, for a full sync

    # -- begin ---------------------------------------------------------------------------------------------------
    def __enter__(self) -> SyncRun:
        now = self.db.clock.now()
        self.started_at = now
        self.settings = self.db.settings()  # the settings in force for this whole sync (P46: read at every start)
        if self.parent is None:
            self._take_lock(now)
        try:
            if self.parent is None:
                # This sync holds the lock, so every other entry still `running` was left by a holder that died (P9).
                close_abandoned_syncs(self.db, self.sync_id)
            with self.db.engine.begin() as conn:
                self._open_entry(conn, now)
        except BaseException:
            self._release_lock()
            raise
        return self

    def _open_entry(self, conn: sa.Connection, now: dt.datetime) -> None:
        """The audit entry of the sync's start (P6): kind, trigger, run, source, the settings in force."""
        if self.source is not None:
            description = self.source.description
        elif self.parent is not None and self.parent.read_result is not None:
            description = self.parent.read_result.snapshot.source
        else:
            description = "unknown"
        self.db.audit.start(
            conn,
            sync_id=self.sync_id,
            kind=self.kind,
            started_at=now,
            run_id=self.run_id,
            trigger=self.trigger,
            source=description,
            settings=self.settings.as_strings(),
            parent_sync_id=self.parent.sync_id if self.parent is not None else None,
        )

    def _take_lock(self, now: dt.datetime) -> None:
        """Take the sync lock for the whole sync; when another sync holds it, record this one as skipped and refuse."""
        try:
            self.lock = take_sync_lock(self.db, self.sync_id)
            return
        except SyncRefusedError as refused:
            message = f"{refused.message} Recorded as skipped."
        with self.db.engine.begin() as conn:
            self._open_entry(conn, now)
            self.db.audit.finish(conn, self.sync_id, status=SyncStatus.SKIPPED, finished_at=now, message=message)
        self.status = SyncStatus.SKIPPED
        raise SyncRefusedError(ErrorCategory.CONFLICT, message)

    # -- read ----------------------------------------------------------------------------------------------------
    def read(self) -> SheetRead:
        """Fetch the sheet once, normalise and validate it, and log every rejected row (P7, P8, P35).

        A sheet whose header does not map onto the seller fields is returned with `snapshot.header.ok` false and its
        issues logged; `apply` then refuses to write. A sheet that cannot be read completely raises SheetReadError.
        """
        if self.source is None:
            raise RuntimeError("this sync has no sheet source: adopt the parent's snapshot instead")
        retries: list[RetryEvent] = []

        def on_retry(event: RetryEvent) -> None:
            retries.append(event)
            self._log_retry(event)

        if self._writes_feedback():
            target = noted_source(self.source)
            if target is not None:
                target.allow_note_writes()  # one sign-in with write access serves the read and the notes
        self.progress("fetch", 0, 0)
        snapshot = read_snapshot(self.db, self.source, self.settings, on_retry=on_retry, progress=self.progress)
        phases = {"fetch": snapshot.fetch_seconds, "validate": snapshot.validate_seconds}
        for note in snapshot.notes:  # columns synced nowhere, fields the contract dropped since the last sync
            log.warning("sync %s: %s", self.sync_id, note)
        now = self.db.clock.now()
        with self.db.engine.begin() as conn:
            self.db.audit.update(
                conn,
                self.sync_id,
                rows_read=snapshot.rows_read,
                valid_count=len(snapshot.valid),
                rejected_count=len({r.sheet_row for r in snapshot.rejections}),
                source=snapshot.source,  # a Google source knows its worksheet's title only once it has read it
                header_mapping=dict(snapshot.header.mapping),
                header_fingerprint=snapshot.header.fingerprint,
                unmapped_columns=list(snapshot.header.unknown),
                heartbeat_at=now,
                phases={k: round(v, 6) for k, v in phases.items()},
            )
            if not snapshot.header.ok:
                issues = [ErrorLog(ErrorCategory.CONFIGURATION, i.message, rule=i.rule) for i in snapshot.header.issues]
                self.db.audit.log_errors(conn, self.sync_id, issues, now)
            else:
                self.db.audit.log_records(conn, self.sync_id, rejected_row_logs(snapshot.rejections), now)
                self.db.audit.log_errors(
                    conn, self.sync_id, [rejection_error(r, snapshot.cell_url) for r in snapshot.rejections], now
                )
        self.read_result = SheetRead(
            sync_id=self.sync_id,
            kind=self.kind,
            started_at=self.started_at,
            settings=self.settings,
            snapshot=snapshot,
            phases=phases,
            retries=len(retries),
        )
        return self.read_result

    def adopt(self, read: SheetRead) -> SheetRead:
        """Work from a sheet snapshot another sync of this process read (a resync from its parent's snapshot)."""
        self.read_result = replace(
            read, sync_id=self.sync_id, kind=self.kind, started_at=self.started_at, settings=self.settings, phases={}
        )
        return self.read_result

    # -- apply ---------------------------------------------------------------------------------------------------
    def apply(
        self, *, only_keys: frozenset[str] | None = None, force_keys: frozenset[str] = frozenset()
    ) -> ApplyResult:
        """Diff the valid rows against the database and write the changes in chunks under the sync lock.

        `only_keys` limits the sync to those sellers (a resync); `force_keys` rewrites them even when their hash says
        unchanged. Each chunk is one transaction with its record logs, so a cancelled sync leaves whole chunks only.
        """
        read = self._require_read()
        snapshot = read.snapshot
        if not snapshot.header.ok:
            raise HeaderError(ErrorCategory.CONFIGURATION, "; ".join(i.message for i in snapshot.header.issues))
        self.full_apply = only_keys is None
        if only_keys is None:
            guard_sheet_size(self.db, snapshot, self.settings)
        t0 = time.perf_counter()
        plan = plan_changes(self.db, snapshot.valid, only_keys=only_keys, force_keys=force_keys)
        compare_s = time.perf_counter() - t0
        to_write = plan[np.isin(plan["action"], WRITING_ACTIONS)]
        total = len(to_write)
        if self.lock is None:
            raise RuntimeError(f"sync {self.sync_id} does not hold the sync lock; enter it with `with SyncRun(...)`")
        writer = ChunkWriter(
            self.db.engine,
            self.db.clock,
            self.lock,
            sync_id=self.sync_id,
            sleep=self.sleep,
            owned_attributes=owned_attributes(*snapshot.attribute_layout),
        )
        t1 = time.perf_counter()
        self.phase_started_at = self.db.clock.now()  # the estimate of the time left is measured from here
        self._report_progress("update", 0, total)
        outcome = writer.write(
            to_write, self.settings.chunk_size, lambda done: self._report_progress("update", done, total)
        )
        queue_failures(self.db, self.sync_id, outcome.failures)  # retried by failed_record_retry_sensor (7.4)
        self._log_kept_conflicts(plan)
        update_s = time.perf_counter() - t1
        self.result = summarise(
            plan,
            snapshot,
            written=frozenset(outcome.written),
            failures=outcome.failures,
            phases={"compare": compare_s, "update": update_s},
            dry_run=False,
        )
        return self.result

    def _report_progress(self, phase: str, done: int, total: int) -> None:
        """Progress over the whole change set (P15), for the run log and for `sync-pipeline status` (which derives
        the percentage and the time left from it: domain.progress). Stored first, so that whoever is told already
        finds the same figures in the audit log."""
        now = self.db.clock.now()
        record = progress_record(phase, done, total, started_at=self.phase_started_at or now, now=now)
        with self.db.engine.begin() as conn:
            self.db.audit.update(conn, self.sync_id, heartbeat_at=now, progress=record)
        self.progress(phase, done, total)

    def _log_kept_conflicts(self, plan: pd.DataFrame) -> None:
        """Rows the application edited after the sheet's 更新日時: kept as they are, logged with both sides (P41)."""
        kept = plan[plan["action"] == Action.CONFLICT_DB_WINS]
        if kept.empty:
            return
        logs = [
            RecordLog(r["seller_number"], RecordAction.CONFLICT, int(r["sheet_row"]), conflict_detail(r, frozenset()))
            for r in kept.to_dict("records")
        ]
        with self.db.engine.begin() as conn:
            self.db.audit.log_records(conn, self.sync_id, logs, self.db.clock.now())

    # -- verify --------------------------------------------------------------------------------------------------
    def verify(self, *, raise_alerts: bool = True) -> Verification:
        """Compare the database with this sync's sheet snapshot and record it on the audit entry, once (P1, P5)."""
        read = self._require_read()
        verification = verify_snapshot(self.db, read.snapshot, self.settings)
        record_verification(
            self.db,
            self.sync_id,
            verification,
            settings=self.settings,
            raise_alerts=raise_alerts,
            cell_links=read.snapshot.cell_links,
        )
        self.verification = verification
        return verification

    # -- close ---------------------------------------------------------------------------------------------------
    def complete(self) -> SyncSummary:
        """Close the sync as succeeded, or partial when rows were rejected or failed, with counts and phases (P9)."""
        read, result = self._require_read(), self.result
        if result is None:
            raise RuntimeError(f"sync {self.sync_id} is being completed without having applied anything")
        self.feedback = self._write_feedback(read) if self._is_full_sync() else None
        now = self.db.clock.now()
        verify_s = self.verification.seconds if self.verification is not None else 0.0
        phases = {**read.phases, **result.phases, "verify": verify_s}
        with self.db.engine.begin() as conn:
            errors = len(self.db.audit.errors(conn, self.sync_id))
            counts = replace(result.counts, errors=errors)
            # The rows alone decide: a failure to write the sheet's notes is one more error, never another status.
            status = SyncStatus.PARTIAL if (counts.rejected or counts.failed) else SyncStatus.SUCCEEDED
            self.db.audit.finish(conn, self.sync_id, status=status, finished_at=now, counts=counts, phases=phases)
            self.db.audit.update(
                conn,
                self.sync_id,
                gaps_resynced=self.gaps_resynced,
                sheet_feedback=self.feedback.as_dict() if self.feedback is not None else None,
            )
            row = self.db.audit.get(conn, self.sync_id)
        assert row is not None
        self.status = status
        self.summary = SyncSummary(
            status=status,
            sync_id=self.sync_id,
            run_id=row["run_id"],
            counts=counts,
            duration_s=float(row["duration_s"] or 0.0),
            phases=phases,
            gaps_found=len(self.verification.gaps) if self.verification is not None else 0,
            gaps_resynced=self.gaps_resynced,
            rejections=read.snapshot.rejections,
            conflicts=result.conflicts,
            failures=result.failures,
            unmapped_columns=read.snapshot.header.unknown,
            cell_url=read.snapshot.cell_url,
            sheet_feedback=self.feedback,
        )
        self._after_close()
        return self.summary

    def fail(self, exc: BaseException) -> SyncStatus:
        """Close a sync that raised: cancelled for an interruption (a BaseException), failed otherwise (P9)."""
        status = SyncStatus.FAILED if isinstance(exc, Exception) else SyncStatus.CANCELLED
        cause = exc.__cause__ if isinstance(exc, RetriesExhaustedError) else exc
        if isinstance(cause, SyncError):
            category = cause.category
        elif isinstance(cause, sa.exc.SQLAlchemyError):
            category = ErrorCategory.DATABASE
        else:
            category = ErrorCategory.UNKNOWN
        message = str(exc) or type(exc).__name__
        if status is SyncStatus.CANCELLED:
            message = f"cancelled ({type(exc).__name__}); every chunk written so far is complete"
        error = ErrorLog(
            category,
            message,
            rule=type(exc).__name__,
            seller_number=getattr(exc, "seller_number", None),
            sheet_row=getattr(exc, "sheet_row", None),
            cell=getattr(exc, "cell", None),
        )
        phases = self.read_result.phases if self.read_result is not None else None
        now = self.db.clock.now()
        with self.db.engine.begin() as conn:
            # A header problem was logged per header by read(); the rest is logged here, once.
            self.db.audit.log_errors(conn, self.sync_id, [] if isinstance(exc, HeaderError) else [error], now)
            self.db.audit.finish(conn, self.sync_id, status=status, finished_at=now, message=message, phases=phases)
        self.status = status
        self._after_close()
        return status

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self.status is None:
                if exc is None:
                    self.complete()
                else:
                    self.fail(exc)
        finally:
            self._release_lock()

    def _release_lock(self) -> None:
        if self.parent is None and self.lock is not None:
            self.lock.release()

    def _after_close(self) -> None:
        """Everything that follows the close of any sync, in one place."""
        log.info("sync %s (%s) closed as %s", self.sync_id, self.kind.value, self.status)
        if self.result is not None and self.read_result is not None and self.status in COMPLETED:
            # Queued sellers this sync wrote leave the retry queue; those no longer valid in the sheet are dropped.
            record_outcome(
                self.db, self.sync_id, written=self.result.written, valid_keys=self.read_result.snapshot.valid_keys
            )
        if self.kind in COUNTED_KINDS:  # a resync neither extends nor ends a failure streak (domain/alert_rules.py)
            evaluate_after_sync(self.db)  # alerts go to the `sync_pipeline.alerts` logger: the run log in Dagster
        self._record_metrics()

    def _record_metrics(self) -> None:
        """The sync's metrics row and slow-sync check (P23-P27); a resync also refreshes its parent's resync phase.

        The sync is closed already: a database error here is logged, not raised, so that it cannot turn a sync
        that succeeded into a failed run (the next sync's health figures show what is missing).
        """
        try:
            self.metrics = record_sync_metrics(self.db, self.sync_id)
            if self.parent is not None and self.parent.status is not None:
                self.parent.metrics = record_sync_metrics(self.db, self.parent.sync_id)
        except sa.exc.SQLAlchemyError:
            log.exception("sync %s: its metrics could not be recorded", self.sync_id)

    # -- feedback to the sheet ------------------------------------------------------------------------------------
    def _writes_feedback(self) -> bool:
        """A full sync (not a resync) with `sheet_feedback = notes`: it asks for write access before it reads."""
        return self.parent is None and self.kind in FULL_SYNC_KINDS and self.settings.sheet_feedback == FEEDBACK_NOTES

    def _is_full_sync(self) -> bool:
        """A sync that read and applied the whole sheet: the ones that report (and may write) the sheet's notes."""
        return self.parent is None and self.kind in FULL_SYNC_KINDS and self.full_apply

    def _write_feedback(self, read: SheetRead) -> FeedbackReport:
        """The sheet's notes brought in line with this sync's rejections (`services.feedback`); a failure is logged
        as an error of the sync with its category and reported, and changes nothing else."""
        report = write_feedback(
            self.source, read.snapshot, self.settings, self.db.clock.now(), on_retry=self._log_retry
        )
        if report.status == STATUS_FAILED:
            log.warning("sync %s: %s", self.sync_id, report.line())
            self._log_errors(
                [ErrorLog(report.category or ErrorCategory.UNKNOWN, report.error or "", rule=FEEDBACK_RULE)]
            )
        return report

    # -- helpers -------------------------------------------------------------------------------------------------
    def _log_retry(self, event: RetryEvent) -> None:
        """A retried Sheets API request, logged as a recovery action of the sync (P31)."""
        self._log_errors(
            [
                recovery_event(
                    RecoveryAction.SHEET_RETRY,
                    f"retry {event.attempt} of {event.operation} after {event.reason}; "
                    f"waiting {event.wait_seconds:.1f}s",
                    ErrorCategory.NETWORK,
                )
            ]
        )

    def _require_read(self) -> SheetRead:
        if self.read_result is None:
            raise RuntimeError(f"sync {self.sync_id} has not read the sheet yet")
        return self.read_result

    def _log_errors(self, errors: list[ErrorLog]) -> None:
        with self.db.engine.begin() as conn:
            self.db.audit.log_errors(conn, self.sync_id, errors, self.db.clock.now())
