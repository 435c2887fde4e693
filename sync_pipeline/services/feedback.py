"""Feedback to the sheet after a full sync (`sheet_feedback = notes`): read the worksheet's notes, plan, write once.

Runs inside `SyncRun.complete`, under the sync's lock (two syncs never write notes at once), after the rows were
applied and verified and before the audit entry is closed, so that the entry, `--json` and the Dagster metadata all
carry the same figures. Nothing here can change the sync's outcome: every failure to read or write notes (a sheet
shared read-only, quota, the network) becomes a `failed` report, which the sync logs as one of its errors with the
category — its status (succeeded / partial) is decided by its rows alone.

Two requests at most: one `spreadsheets.get` of the worksheet's notes, one `spreadsheets.batchUpdate` with every
change — none when the plan has no change (a second sync of an unchanged sheet sends only the read). Each has the
read's bounded retries. Between the read and the write a person could edit a note the plan is about to change; the
window is one request long, and the next sync puts right what it finds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sync_pipeline.adapters.sheets.base import RetryListener, noted_source
from sync_pipeline.domain.errors import ErrorCategory, SheetFeedbackError
from sync_pipeline.domain.feedback import findings_from, plan_feedback
from sync_pipeline.domain.settings import FEEDBACK_NOTES, Settings
from sync_pipeline.domain.sheet import SheetSnapshot

FEEDBACK_RULE = "sheet_feedback_failed"  # the rule of the sync error a failed feedback is logged as

STATUS_OFF = "off"
STATUS_WRITTEN = "written"
STATUS_FAILED = "failed"
OFF_REASON = "sheet_feedback is off"


@dataclass(frozen=True)
class FeedbackReport:
    """What the feedback step did: the `sheet_feedback` object of `--json`, the audit entry and the metadata."""

    status: str  # off | written | failed
    notes_written: int = 0  # notes added or rewritten
    notes_cleared: int = 0  # the sync's notes removed because they no longer apply
    notes_unchanged: int = 0  # the sync's notes already saying the right thing (left as they are)
    cells_blocked: int = 0  # rejected cells not annotated: a person's note on the cell and on the row's key cell
    requests: int = 0  # Sheets API requests made (0 when off; 1 when nothing changed; 2 with a write)
    error: str | None = None  # why it failed, with Google's own message
    category: ErrorCategory | None = None  # the error's category (a failure only)
    reason: str | None = None  # why it is off

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "notes_written": self.notes_written,
            "notes_cleared": self.notes_cleared,
            "notes_unchanged": self.notes_unchanged,
            "cells_blocked": self.cells_blocked,
            "requests": self.requests,
            "error": self.error,
            **({"category": self.category.value} if self.category is not None else {}),
            **({"reason": self.reason} if self.reason is not None else {}),
        }

    def line(self) -> str:
        """The human summary's line."""
        return feedback_line(self.as_dict())


def feedback_line(report: Mapping[str, Any]) -> str:
    """One line for people: what the sync did to the sheet's notes (a `FeedbackReport.as_dict()` object)."""
    if report["status"] == STATUS_OFF:
        return f"sheet feedback off ({report['reason']})" if report.get("reason") else "sheet feedback off"
    if report["status"] == STATUS_FAILED:
        return f"sheet feedback failed: {report.get('error')}"
    blocked = report.get("cells_blocked") or 0
    return (
        f"sheet feedback: {report['notes_written']} note(s) written, {report['notes_cleared']} cleared, "
        f"{report.get('notes_unchanged', 0)} unchanged"
        + (
            f", {blocked} rejected cell(s) left unannotated (people's notes on the cell and its key cell)"
            if blocked
            else ""
        )
    )


def feedback_off(settings: Settings, source: object) -> FeedbackReport | None:
    """The report of a sync that writes no notes, or None when this one is to write them."""
    if settings.sheet_feedback != FEEDBACK_NOTES:
        return FeedbackReport(STATUS_OFF, reason=OFF_REASON)
    if noted_source(source) is None:
        return FeedbackReport(STATUS_OFF, reason="the source is not a Google sheet: notes go into Google sheets only")
    return None


def write_feedback(
    source: object,
    snapshot: SheetSnapshot,
    settings: Settings,
    now: dt.datetime,
    *,
    on_retry: RetryListener | None = None,
) -> FeedbackReport:
    """Bring the sheet's notes in line with this sync's rejections; never raises for a failure of the sheet's."""
    off = feedback_off(settings, source)
    target = noted_source(source)
    if off is not None or target is None:  # feedback_off is None only for a source that takes notes
        return off or FeedbackReport(STATUS_OFF, reason=OFF_REASON)
    found_at = f"{now.astimezone(ZoneInfo(settings.sheet_timezone)):%Y-%m-%d %H:%M} ({settings.sheet_timezone})"
    requests = 0
    try:
        requests += 1
        current = target.read_notes(on_retry=on_retry)
        plan = plan_feedback(findings_from(snapshot.rejections, snapshot.header), current, found_at=found_at)
        if plan.changes:
            requests += 1
            target.write_notes(plan.changes, on_retry=on_retry)
    except SheetFeedbackError as exc:
        return FeedbackReport(STATUS_FAILED, requests=requests, error=exc.message, category=exc.category)
    except Exception as exc:  # whatever else goes wrong here must not touch the sync's outcome
        error = f"notes not written: {type(exc).__name__}: {exc}"
        return FeedbackReport(STATUS_FAILED, requests=requests, error=error, category=ErrorCategory.UNKNOWN)
    return FeedbackReport(
        STATUS_WRITTEN,
        notes_written=plan.written,
        notes_cleared=plan.cleared,
        notes_unchanged=plan.unchanged,
        cells_blocked=len(plan.blocked),
        requests=requests,
    )
