"""The sync use case: start a sync, read and validate the sheet, apply the diff in chunks under the lock, close it.

The steps are separate calls so that Dagster can run them as two assets (`seller_sheet`, `sellers_table`), and
`services.resync.sync_verify_repair` chains them (with verification and repair) for callers without Dagster, and
`SyncService.preview` is the dry run. Every step writes to the audit log.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd
import sqlalchemy as sa

from sync_pipeline.adapters.retry import RetriesExhaustedError, retry_call
from sync_pipeline.adapters.sheets.base import RetryEvent, SheetSource
from sync_pipeline.domain.audit import ErrorLog, RecordAction, RecordLog, SyncCounts, SyncKind, SyncStatus
from sync_pipeline.domain.diff import Action, classify, mark_missing
from sync_pipeline.domain.errors import ErrorCategory, HeaderError, SyncError, SyncRefusedError
from sync_pipeline.domain.ingest import IngestRules, ingest_sheet
from sync_pipeline.domain.progress import progress_record
from sync_pipeline.domain.settings import Settings
from sync_pipeline.domain.sheet import Rejection, SheetSnapshot
from sync_pipeline.services.database import Database

log = logging.getLogger(__name__)

ProgressListener = Callable[[str, int, int], None]  # phase, records done, records total
PHASES: tuple[str, ...] = ("fetch", "validate", "compare", "update", "verify")
# Rejection rules that are integrity rules (Requirement 8) rather than unparseable values.
INTEGRITY_RULES = frozenset({"required", "seller_number_format", "duplicate_seller_number"})
SAMPLE_SIZE = 20  # seller numbers quoted in messages and metadata when there are many


@dataclass(frozen=True)
class WriteProgress:
    """Where the write phase will stand once a chunk commits: rows done and to write, and when the phase began."""

    done: int
    total: int
    started_at: dt.datetime


@dataclass
class SheetRead:
    """What the first step hands to the second: the sync it belongs to and the sheet as that sync saw it."""

    sync_id: str
    kind: SyncKind
    started_at: dt.datetime
    settings: Settings
    snapshot: SheetSnapshot
    phases: dict[str, float] = field(default_factory=dict)
    retries: list[RetryEvent] = field(default_factory=list)


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
            "rejections": [
                {
                    "row": r.sheet_row,
                    "cell": r.cell,
                    "column": r.column,
                    "rule": r.rule,
                    "value": r.value,
                    "seller_number": r.seller_number,
                    "message": r.message,
                }
                for r in self.rejections
            ],
            "conflict_details": [dict(c) for c in self.conflicts],
            "failures": dict(self.failures),
            **(
                {"would_insert": list(self.would_insert), "would_update": list(self.would_update)}
                if self.dry_run
                else {}
            ),
        }


class SyncService:
    """The seller sync against one database."""

    def __init__(
        self, db: Database, *, progress: ProgressListener | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.db = db
        self.progress = progress or (lambda phase, done, total: None)
        self.sleep = sleep  # the waits between reconnection attempts (tests do not wait)

    # -- step 1: start ------------------------------------------------------------------------------------------
    def begin(
        self,
        *,
        kind: SyncKind,
        source: str,
        trigger: str | None = None,
        run_id: str | None = None,
        parent_sync_id: str | None = None,
    ) -> tuple[str, Settings, dt.datetime]:
        """Open a sync in the audit log (P6) with the settings in force; close syncs that died without closing (P9)."""
        now = self.db.clock.now()
        sync_id = str(uuid.uuid4())
        with self.db.engine.begin() as conn:
            settings = self.db.config.load(conn, now=now)
            stale_before = now - dt.timedelta(seconds=settings.lock_lease_seconds)
            closed = self.db.audit.close_abandoned(conn, stale_before=stale_before, now=now, closed_by=sync_id)
            self.db.audit.start(
                conn,
                sync_id=sync_id,
                kind=kind,
                started_at=now,
                run_id=run_id,
                trigger=trigger,
                source=source,
                settings=settings.as_strings(),
                parent_sync_id=parent_sync_id,
            )
        for old in closed:
            log.warning("closed abandoned sync %s as failed", old)
        return sync_id, settings, now

    # -- step 1: read -------------------------------------------------------------------------------------------
    def read(
        self, source: SheetSource, *, sync_id: str, kind: SyncKind, settings: Settings, started_at: dt.datetime
    ) -> SheetRead:
        """Fetch the sheet once, normalise and validate it, and log every rejected row (P7, P8, P35).

        Raises SheetReadError when the sheet cannot be read completely and HeaderError when its header row does not
        map onto the seller fields; the sync is then closed as failed and nothing is written.
        """
        retries: list[RetryEvent] = []

        def on_retry(event: RetryEvent) -> None:
            retries.append(event)
            self._log_errors(
                sync_id,
                [
                    ErrorLog(
                        ErrorCategory.NETWORK,
                        f"recovery: retry {event.attempt} of "
                        f"{event.operation} after {event.reason}; waiting "
                        f"{event.wait_seconds:.1f}s",
                        rule="retry",
                    )
                ],
            )

        self.progress("fetch", 0, 0)
        t0 = time.perf_counter()
        raw = source.read(on_retry=on_retry)
        fetch_s = time.perf_counter() - t0
        self.progress("validate", 0, len(raw.values))
        snapshot = ingest_sheet(raw, IngestRules.from_settings(settings, previous_mapping=self.previous_mapping()))
        snapshot = replace(snapshot, fetch_seconds=fetch_s)
        phases = {"fetch": fetch_s, "validate": snapshot.validate_seconds}
        now = self.db.clock.now()
        with self.db.engine.begin() as conn:
            self.db.audit.update(
                conn,
                sync_id,
                rows_read=snapshot.rows_read,
                valid_count=len(snapshot.valid),
                rejected_count=len({r.sheet_row for r in snapshot.rejections}),
                source=raw.source,  # a Google source knows its worksheet's title only once it has read it
                header_mapping=dict(snapshot.header.mapping),
                header_fingerprint=snapshot.header.fingerprint,
                heartbeat_at=now,
                phases={k: round(v, 6) for k, v in phases.items()},
            )
            if not snapshot.header.ok:
                self.db.audit.log_errors(
                    conn,
                    sync_id,
                    [
                        ErrorLog(ErrorCategory.CONFIGURATION, issue.message, rule=issue.rule)
                        for issue in snapshot.header.issues
                    ],
                    now,
                )
            else:
                self.db.audit.log_records(conn, sync_id, rejected_row_logs(snapshot.rejections), now)
                self.db.audit.log_errors(conn, sync_id, [rejection_error(r) for r in snapshot.rejections], now)
        self.progress("validate", len(snapshot.valid), len(snapshot.valid))
        return SheetRead(
            sync_id=sync_id,
            kind=kind,
            started_at=started_at,
            settings=settings,
            snapshot=snapshot,
            phases=phases,
            retries=retries,
        )

    def previous_mapping(self) -> Mapping[str, str] | None:
        """The header mapping of the last successful sync, to notice a column that disappeared since."""
        with self.db.engine.connect() as conn:
            last = self.db.audit.latest(
                conn,
                statuses=[SyncStatus.SUCCEEDED, SyncStatus.PARTIAL],
                kinds=[SyncKind.SCHEDULED, SyncKind.MANUAL, SyncKind.RETRY],
            )
        return (last or {}).get("header_mapping") or None

    # -- step 2: apply ------------------------------------------------------------------------------------------
    def apply(
        self,
        read: SheetRead,
        *,
        dry_run: bool = False,
        only_keys: frozenset[str] | None = None,
        force_keys: frozenset[str] = frozenset(),
    ) -> ApplyResult:
        """Diff the valid rows against the database and write the changes in chunks under the sync lock.

        `only_keys` limits the sync to those sellers (a resync); `force_keys` rewrites them even when their hash says
        unchanged. Each chunk is one transaction with its record logs, so a cancelled sync leaves whole chunks only.
        """
        snapshot = read.snapshot
        if not snapshot.header.ok:
            raise HeaderError(ErrorCategory.CONFIGURATION, "; ".join(i.message for i in snapshot.header.issues))
        settings = read.settings
        sheet = snapshot.valid
        if only_keys is not None:
            sheet = sheet[sheet["seller_number"].isin(only_keys)]
        else:
            self._guard_sheet_size(snapshot, settings)
        t0 = time.perf_counter()
        with self.db.engine.connect() as conn:
            state = self.db.sellers.load_state(conn, keys=None if only_keys is None else sorted(only_keys))
        plan = classify(sheet, state, force_keys=force_keys)
        planned_inserts = plan.loc[plan["action"] == Action.INSERT.value, "seller_number"].tolist()
        if planned_inserts:
            with self.db.engine.connect() as conn:
                written_before = self.db.audit.written_before(conn, planned_inserts)
            plan = mark_missing(plan, written_before, force_keys=force_keys)
        compare_s = time.perf_counter() - t0
        to_write = plan[plan["action"].map(lambda a: Action(a).writes)]
        if dry_run:
            return self._result(
                plan, frozenset(), {}, {"compare": compare_s, "update": 0.0}, snapshot, dry_run=True, lost=frozenset()
            )

        holder = read.sync_id
        lease = dt.timedelta(seconds=settings.lock_lease_seconds)
        if not self.db.lock.acquire(holder, now=self.db.clock.now(), lease=lease):
            other = self.db.lock.holder(now=self.db.clock.now())
            raise SyncRefusedError(
                ErrorCategory.CONFLICT,
                f"another sync ({other}) is applying changes; this sync "
                "was refused before writing anything. It will run again on the next schedule.",
            )
        t1 = time.perf_counter()
        written: set[str] = set()
        failures: dict[str, str] = {}
        try:
            total = len(to_write)
            phase_started = self.db.clock.now()
            with self.db.engine.begin() as conn:  # status shows the rows to write before the first chunk commits
                self.db.audit.update(
                    conn,
                    read.sync_id,
                    progress=progress_record("update", 0, total, started_at=phase_started, now=phase_started),
                )
            self.progress("update", 0, total)
            done = 0
            for chunk in _chunks(to_write, settings.chunk_size):
                # Progress is cumulative over the whole write, stored in each chunk's own transaction (P15).
                after = WriteProgress(done + len(chunk), total, phase_started)
                applied, failed = self._apply_chunk(read.sync_id, chunk, holder, lease, after)
                written |= applied
                failures.update(failed)
                done += len(chunk)
                self.progress("update", done, total)
            self._log_kept_conflicts(read.sync_id, plan)
        finally:
            self.db.lock.release(holder)
        update_s = time.perf_counter() - t1
        lost = frozenset(set(to_write["seller_number"]) - written - set(failures))
        return self._result(
            plan,
            frozenset(written),
            failures,
            {"compare": compare_s, "update": update_s},
            snapshot,
            dry_run=False,
            lost=lost,
        )

    def _log_kept_conflicts(self, sync_id: str, plan: pd.DataFrame) -> None:
        """Rows the application edited after the sheet's 更新日時: kept as they are, logged with both sides (P41)."""
        kept = plan[plan["action"] == Action.CONFLICT_DB_WINS]
        if kept.empty:
            return
        logs = [
            RecordLog(r["seller_number"], RecordAction.CONFLICT, int(r["sheet_row"]), _conflict_detail(r, frozenset()))
            for r in kept.to_dict("records")
        ]
        with self.db.engine.begin() as conn:
            self.db.audit.log_records(conn, sync_id, logs, self.db.clock.now())

    def _guard_sheet_size(self, snapshot: SheetSnapshot, settings: Settings) -> None:
        """Refuse a sheet that reads as empty or far smaller than what the database holds from it (a partial read)."""
        with self.db.engine.connect() as conn:
            held = self.db.sellers.count_from_sheet(conn)
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

    def _apply_chunk(
        self, sync_id: str, chunk: pd.DataFrame, holder: str, lease: dt.timedelta, progress: WriteProgress
    ) -> tuple[set[str], dict[str, str]]:
        """One chunk in one transaction; when the chunk fails, retry its rows one by one to isolate the bad ones."""
        try:
            return self._write_reconnecting(sync_id, chunk, holder, lease, progress), {}
        except sa.exc.DBAPIError as exc:
            if len(chunk) == 1:
                return set(), {chunk["seller_number"].iloc[0]: _db_message(exc)}
            log.warning("chunk of %d rows failed (%s); retrying them one by one", len(chunk), _db_message(exc))
        written: set[str] = set()
        failures: dict[str, str] = {}
        for i in range(len(chunk)):
            row = chunk.iloc[[i]]
            try:
                written |= self._write_reconnecting(sync_id, row, holder, lease, progress)
            except sa.exc.DBAPIError as exc:
                failures[row["seller_number"].iloc[0]] = _db_message(exc)
        if failures:
            now = self.db.clock.now()
            failed_rows = chunk[chunk["seller_number"].isin(failures)]
            with self.db.engine.begin() as conn:
                self.db.audit.log_records(
                    conn,
                    sync_id,
                    [
                        RecordLog(key, RecordAction.FAILED, int(r), {"error": failures[key]})
                        for key, r in zip(failed_rows["seller_number"], failed_rows["sheet_row"], strict=True)
                    ],
                    now,
                )
                self.db.audit.log_errors(
                    conn,
                    sync_id,
                    [
                        ErrorLog(
                            ErrorCategory.DATABASE,
                            f"seller {key} could not be written: {failures[key]}",
                            rule="write_failed",
                            seller_number=key,
                            sheet_row=int(r),
                        )
                        for key, r in zip(failed_rows["seller_number"], failed_rows["sheet_row"], strict=True)
                    ],
                    now,
                )
        return written, failures

    def _write_reconnecting(
        self, sync_id: str, chunk: pd.DataFrame, holder: str, lease: dt.timedelta, progress: WriteProgress
    ) -> set[str]:
        """Requirement 7.2: when the connection is lost mid-chunk, the pool opens a new one and the chunk's transaction
        (rolled back with the old connection) is retried, with backoff, each retry logged as a recovery action."""

        def on_retry(event: RetryEvent) -> None:
            try:
                self._log_errors(
                    sync_id,
                    [
                        ErrorLog(
                            ErrorCategory.DATABASE,
                            f"recovery: reconnected and retried the "
                            f"{event.operation} after {event.reason} (retry {event.attempt})",
                            rule="reconnect",
                        )
                    ],
                )
            except sa.exc.SQLAlchemyError:  # the database is still unreachable: the retry itself will tell
                log.warning("could not log the reconnection of sync %s", sync_id)

        return retry_call(
            lambda: self._write(sync_id, chunk, holder, lease, progress),
            operation=f"write of {len(chunk)} seller(s)",
            is_transient=is_lost_connection,
            describe=_describe_db_failure,
            on_retry=on_retry,
            sleep=self.sleep,
        )

    def _write(
        self, sync_id: str, chunk: pd.DataFrame, holder: str, lease: dt.timedelta, progress: WriteProgress
    ) -> set[str]:
        now = self.db.clock.now()
        with self.db.engine.begin() as conn:
            if not self.db.lock.renew(conn, holder, now=now, lease=lease):
                raise SyncError(
                    ErrorCategory.CONFLICT,
                    "the sync lock was lost (lease expired and taken over); "
                    "stopped before writing more. Raise lock_lease_seconds if chunks are slow.",
                )
            written = self.db.sellers.apply_chunk(conn, chunk, now)
            self.db.audit.log_records(conn, sync_id, _record_logs(chunk, written), now)
            record = progress_record("update", progress.done, progress.total, started_at=progress.started_at, now=now)
            self.db.audit.update(conn, sync_id, heartbeat_at=now, progress=record)
        return written

    def _result(
        self,
        plan: pd.DataFrame,
        written: frozenset[str],
        failures: dict[str, str],
        phases: dict[str, float],
        snapshot: SheetSnapshot,
        *,
        dry_run: bool,
        lost: frozenset[str],
    ) -> ApplyResult:
        actions = plan["action"]
        keys = plan["seller_number"]
        if dry_run:
            inserted = int((actions == Action.INSERT).sum())
            updated = int(actions.isin([Action.UPDATE, Action.CONFLICT_SHEET_WINS]).sum())
        else:
            inserted = int(((actions == Action.INSERT) & keys.isin(written)).sum())
            updated = int((actions.isin([Action.UPDATE, Action.CONFLICT_SHEET_WINS]) & keys.isin(written)).sum())
        conflict_rows = plan[actions.isin([Action.CONFLICT_SHEET_WINS, Action.CONFLICT_DB_WINS]) | keys.isin(lost)]
        conflicts = tuple(_conflict_detail(r, lost) for r in conflict_rows.to_dict("records"))
        counts = SyncCounts(
            rows_read=snapshot.rows_read,
            valid=len(snapshot.valid),
            rejected=len({r.sheet_row for r in snapshot.rejections}),
            inserted=inserted,
            updated=updated,
            unchanged=int((actions == Action.UNCHANGED).sum()),
            conflicts=len(conflicts),
            failed=len(failures),
        )
        return ApplyResult(
            counts=counts,
            phases=phases,
            written=written,
            conflicts=conflicts,
            failures=dict(failures),
            plan=plan,
            dry_run=dry_run,
        )

    # -- step 3: close ------------------------------------------------------------------------------------------
    def complete(
        self,
        read: SheetRead,
        result: ApplyResult,
        *,
        extra_phases: Mapping[str, float] | None = None,
        gaps_found: int = 0,
        gaps_resynced: int = 0,
    ) -> SyncSummary:
        """Close the sync with its final status, counts, phases and duration (P9)."""
        now = self.db.clock.now()
        phases = {**read.phases, **result.phases, **(extra_phases or {})}
        counts = result.counts
        with self.db.engine.connect() as conn:
            errors = len(self.db.audit.errors(conn, read.sync_id))
        counts = replace(counts, errors=errors)
        status = SyncStatus.PARTIAL if (counts.rejected or counts.failed) else SyncStatus.SUCCEEDED
        with self.db.engine.begin() as conn:
            self.db.audit.finish(conn, read.sync_id, status=status, finished_at=now, counts=counts, phases=phases)
            row = self.db.audit.get(conn, read.sync_id)
        assert row is not None
        return SyncSummary(
            status=status,
            sync_id=read.sync_id,
            run_id=row["run_id"],
            counts=counts,
            duration_s=float(row["duration_s"] or 0.0),
            phases=phases,
            gaps_found=gaps_found,
            gaps_resynced=gaps_resynced,
            rejections=read.snapshot.rejections,
            conflicts=result.conflicts,
            failures=result.failures,
        )

    def fail(
        self, sync_id: str, exc: BaseException, *, phases: Mapping[str, float] | None = None, log_error: bool = True
    ) -> SyncStatus:
        """Close a sync that raised: cancelled for an interruption (a BaseException), failed otherwise (P9).

        `log_error=False` when the cause is already in the error log (a header problem, logged per header by read).
        """
        status = SyncStatus.FAILED if isinstance(exc, Exception) else SyncStatus.CANCELLED
        cause = exc.__cause__ if isinstance(exc, RetriesExhaustedError) else exc
        category = (
            cause.category
            if isinstance(cause, SyncError)
            else (ErrorCategory.DATABASE if isinstance(cause, sa.exc.SQLAlchemyError) else ErrorCategory.UNKNOWN)
        )
        message = str(exc) or type(exc).__name__
        if status is SyncStatus.CANCELLED:
            message = f"cancelled ({type(exc).__name__}); every chunk written so far is complete"
        now = self.db.clock.now()
        with self.db.engine.begin() as conn:
            errors = [
                ErrorLog(
                    category,
                    message,
                    rule=type(exc).__name__,
                    seller_number=getattr(exc, "seller_number", None),
                    sheet_row=getattr(exc, "sheet_row", None),
                    cell=getattr(exc, "cell", None),
                )
            ]
            self.db.audit.log_errors(conn, sync_id, errors if log_error else [], now)
            self.db.audit.finish(conn, sync_id, status=status, finished_at=now, message=message, phases=phases)
        return status

    def _log_errors(self, sync_id: str, errors: list[ErrorLog]) -> None:
        with self.db.engine.begin() as conn:
            self.db.audit.log_errors(conn, sync_id, errors, self.db.clock.now())

    # -- all steps ----------------------------------------------------------------------------------------------
    def preview(self, source: SheetSource) -> SyncSummary:
        """A dry run: read, validate and diff, and write nothing at all (no audit row, not even default settings)."""
        started = self.db.clock.now()
        with self.db.engine.connect() as conn:
            settings = self.db.config.load(conn, now=started)
            conn.rollback()  # load() writes first-start defaults; a dry run keeps the database as it was
        t0 = time.perf_counter()
        raw = source.read()
        fetch_s = time.perf_counter() - t0
        snapshot = ingest_sheet(raw, IngestRules.from_settings(settings, previous_mapping=self.previous_mapping()))
        read = SheetRead(
            sync_id="dry-run",
            kind=SyncKind.MANUAL,
            started_at=started,
            settings=settings,
            snapshot=replace(snapshot, fetch_seconds=fetch_s),
            phases={"fetch": fetch_s, "validate": snapshot.validate_seconds},
        )
        result = self.apply(read, dry_run=True)
        plan = result.plan
        phases = {**read.phases, **result.phases}
        return SyncSummary(
            status=SyncStatus.SUCCEEDED,
            sync_id=read.sync_id,
            run_id=None,
            counts=result.counts,
            duration_s=sum(phases.values()),
            phases=phases,
            rejections=snapshot.rejections,
            conflicts=result.conflicts,
            dry_run=True,
            would_insert=tuple(plan.loc[plan["action"] == Action.INSERT, "seller_number"]),
            would_update=tuple(
                plan.loc[plan["action"].isin([Action.UPDATE, Action.CONFLICT_SHEET_WINS]), "seller_number"]
            ),
            gaps_found=int((plan["action"] == Action.MISSING).sum()),
            message="dry run: nothing was written",
        )


def rejected_row_logs(rejections: Sequence[Rejection]) -> list[RecordLog]:
    """One record log per rejected row (a row may break several rules: they are listed together)."""
    by_row: dict[int, list[Rejection]] = {}
    for r in rejections:
        by_row.setdefault(r.sheet_row, []).append(r)
    return [
        RecordLog(
            next((r.seller_number for r in rs if r.seller_number), None),
            RecordAction.REJECTED,
            row,
            {"rules": [r.rule for r in rs], "cells": [r.cell for r in rs if r.cell]},
        )
        for row, rs in sorted(by_row.items())
    ]


def rejection_error(r: Rejection) -> ErrorLog:
    category = ErrorCategory.INTEGRITY if r.rule in INTEGRITY_RULES else ErrorCategory.VALIDATION
    return ErrorLog(category, r.message, rule=r.rule, seller_number=r.seller_number, sheet_row=r.sheet_row, cell=r.cell)


def _chunks(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), size):
        yield frame.iloc[start : start + size]


def _record_logs(chunk: pd.DataFrame, written: set[str]) -> list[RecordLog]:
    logs: list[RecordLog] = []
    for key, action, row, expected in zip(
        chunk["seller_number"], chunk["action"], chunk["sheet_row"], chunk["expected_version"], strict=True
    ):
        if key not in written:
            logs.append(
                RecordLog(
                    key,
                    RecordAction.CONFLICT,
                    int(row),
                    {
                        "reason": "changed underneath the sync (version moved on); not overwritten, next sync retries",
                        "expected_version": expected,
                    },
                )
            )
        elif action == Action.INSERT:
            logs.append(RecordLog(key, RecordAction.INSERTED, int(row)))
        elif action == Action.CONFLICT_SHEET_WINS:
            detail = _conflict_detail(chunk.loc[chunk["seller_number"] == key].iloc[0].to_dict(), frozenset())
            logs.append(RecordLog(key, RecordAction.CONFLICT, int(row), detail))
        else:
            logs.append(RecordLog(key, RecordAction.UPDATED, int(row)))
    return logs


def _conflict_detail(row: Mapping[Any, Any], lost: frozenset[str]) -> dict[str, Any]:
    key = row["seller_number"]
    if key in lost:
        resolution = "skipped_changed_underneath"
    else:
        resolution = "sheet_wins" if row["action"] == Action.CONFLICT_SHEET_WINS else "db_wins"
    return {
        "seller_number": key,
        "sheet_row": int(row["sheet_row"]),
        "resolution": resolution,
        "sheet_updated_at": _iso(row.get("sheet_updated_at")),
        "db_updated_at": _iso(row.get("db_updated_at")),
        "db_version": None if pd.isna(row.get("db_version")) else int(row["db_version"]),
    }


def _iso(value: object) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[call-overload]
        return None
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


def is_lost_connection(exc: BaseException) -> bool:
    """A database error that means the connection is gone (SQLAlchemy invalidated it), so a retry may succeed."""
    return isinstance(exc, sa.exc.DBAPIError) and bool(exc.connection_invalidated)


def _describe_db_failure(exc: BaseException) -> str:
    return f"lost database connection ({_db_message(exc)})" if isinstance(exc, sa.exc.DBAPIError) else repr(exc)


def _db_message(exc: sa.exc.DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
