"""The alert rules of Requirement 3.1 and 3.3 as pure decisions over what the audit log says about recent syncs.

Which syncs count. Both rules look at syncs of kind scheduled, manual and retry: the syncs that try to bring the whole
sheet over. A resync (kind `resync`) is left out: it rewrites a handful of sellers for a parent sync that already
counted, its failure raises its own `resync_failed` alert, and its success says nothing about whether a full sync
works.

Which statuses count. `failed` and `abandoned` (a holder that died with the sync running) are failures; `succeeded`
and `partial` (synced, some rows rejected) are successes and end a failure streak. Three are left out entirely:
- `skipped`: refused because another sync held the lock. Nothing was wrong; the other sync is doing the work, and
  five syncs launched at once must not read as a failure streak.
- `cancelled`: stopped on purpose (an operator pressed Terminate, or a deploy interrupted the run). It is not evidence
  that the pipeline is broken, so it does not extend a streak; it did not bring the sheet over either, so it does not
  end one. A pipeline cancelled over and over is still caught by `no_recent_success`.
- `running`: not decided yet.

One alert per streak, one per silent period. Each alert carries a `rule_key` in its `detail` naming the streak (the
last success before it) or the silent period (its start); a rule whose key was already alerted stays quiet, so the
rules can be evaluated as often as anyone likes — by every finished sync, by sensors and by `alerts check`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from sync_pipeline.domain.alerts import AlertType, Severity
from sync_pipeline.domain.audit import SyncKind, SyncStatus

COUNTED_KINDS: tuple[SyncKind, ...] = (SyncKind.SCHEDULED, SyncKind.MANUAL, SyncKind.RETRY)
FAILURE_STATUSES: tuple[SyncStatus, ...] = (SyncStatus.FAILED, SyncStatus.ABANDONED)
SUCCESS_STATUSES: tuple[SyncStatus, ...] = (SyncStatus.SUCCEEDED, SyncStatus.PARTIAL)
RULE_KEY = "rule_key"  # the key in an alert's detail naming the streak or silent period it was raised for
CONSECUTIVE_FAILURES_RULE = "consecutive_failures"
NO_RECENT_SUCCESS_RULE = "no_recent_success"
MESSAGE_CHARS = 300  # of a failed sync's error quoted in an alert: the audit log keeps the whole text


@dataclass(frozen=True)
class SyncOutcome:
    """One sync as the rules see it (a row of `sync_audit_logs`)."""

    sync_id: str
    kind: SyncKind
    status: SyncStatus
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    run_id: str | None = None
    message: str | None = None

    @property
    def ended_at(self) -> dt.datetime:
        return self.finished_at or self.started_at


@dataclass(frozen=True)
class FailureStreak:
    """The counted failures since the last counted success (or since the beginning when none ever succeeded)."""

    last_success: SyncOutcome | None
    failures: int = 0
    first_failure: SyncOutcome | None = None
    latest_failure: SyncOutcome | None = None

    @property
    def key(self) -> str:
        """Names the streak: a streak only grows until a success ends it, so the success before it identifies it."""
        return f"streak-after:{self.last_success.sync_id if self.last_success else 'none'}"


@dataclass(frozen=True)
class AlertDraft:
    """An alert a rule wants raised; `detail` carries the rule key that makes the rule idempotent."""

    alert_type: AlertType
    severity: Severity
    message: str
    sync_id: str | None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return str(self.detail[RULE_KEY])


@dataclass(frozen=True)
class RuleDecision:
    """What one rule saw (`observation`, for sensors' skip reasons and `alerts check`) and what it wants raised."""

    rule: str
    observation: str
    draft: AlertDraft | None = None


def utc_text(value: dt.datetime, *, seconds: bool = True) -> str:
    """A time as alerts show it, always UTC and without an offset suffix ("2026-03-02 09:00:00"); naive means UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return f"{value:%Y-%m-%d %H:%M:%S}" if seconds else f"{value:%Y-%m-%d %H:%M}"


def _when(value: dt.datetime) -> str:
    return f"{utc_text(value, seconds=False)} UTC"


def _hours(delta: dt.timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"


def _short(text: str | None) -> str:
    text = " ".join((text or "no error message recorded").split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def decide_consecutive_failures(
    streak: FailureStreak, *, threshold: int, alerted_keys: Collection[str]
) -> RuleDecision:
    """Requirement 3.1: the latest `threshold` counted syncs failed ⇒ one critical alert for this streak."""
    rule = CONSECUTIVE_FAILURES_RULE
    since = f"the last success at {_when(streak.last_success.ended_at)}" if streak.last_success else "the first sync"
    if streak.failures < threshold or streak.first_failure is None or streak.latest_failure is None:
        return RuleDecision(
            rule, f"{streak.failures} failed sync(s) since {since}; the alert is raised at {threshold} in a row"
        )
    if streak.key in alerted_keys:
        seen = f"{streak.failures} failed syncs in a row since {since}; this streak is already alerted"
        return RuleDecision(rule, seen)
    first, latest = streak.first_failure, streak.latest_failure
    last_ok = (
        f"The last successful sync was {streak.last_success.sync_id} at {_when(streak.last_success.ended_at)}."
        if streak.last_success
        else "No sync has ever succeeded."
    )
    message = (
        f"{streak.failures} syncs in a row have failed (threshold {threshold}), since {_when(first.started_at)}. "
        f"The latest, {latest.sync_id}, ended {latest.status.value}: {_short(latest.message).rstrip('.')}. {last_ok}"
    )
    detail = {
        RULE_KEY: streak.key,
        "failures": streak.failures,
        "threshold": threshold,
        "since": utc_text(first.started_at),
        "first_failure_sync_id": first.sync_id,
        "latest_failure_sync_id": latest.sync_id,
        "run_id": latest.run_id,
        "last_success_sync_id": streak.last_success.sync_id if streak.last_success else None,
    }
    draft = AlertDraft(AlertType.CONSECUTIVE_FAILURES, Severity.CRITICAL, message, latest.sync_id, detail)
    return RuleDecision(rule, f"{streak.failures} failed syncs in a row since {since}: alert raised", draft)


def silent_period_key(last_success: SyncOutcome | None, first_sync: SyncOutcome | None) -> str | None:
    """Names the silent period: it starts at the last success, or at the first sync when none ever succeeded."""
    if last_success is not None:
        return f"silent-after:{last_success.sync_id}"
    if first_sync is not None:
        return f"silent-since-first:{first_sync.sync_id}"
    return None


def decide_no_recent_success(
    *,
    last_success: SyncOutcome | None,
    first_sync: SyncOutcome | None,
    latest_attempt: SyncOutcome | None,
    hours: float,
    now: dt.datetime,
    alerted_keys: Collection[str],
) -> RuleDecision:
    """Requirement 3.3: no counted sync succeeded within `hours` ⇒ one warning for this silent period."""
    rule = NO_RECENT_SUCCESS_RULE
    key = silent_period_key(last_success, first_sync)
    if key is None or first_sync is None:
        return RuleDecision(rule, "no sync has run yet; there is no silence to measure")
    start = last_success.ended_at if last_success is not None else first_sync.started_at
    since = f"the last success at {_when(start)}" if last_success else f"the first sync at {_when(start)}"
    period = dt.timedelta(hours=hours)
    silent = now - start
    if silent <= period:
        return RuleDecision(rule, f"{_hours(silent)} since {since}, within the {hours:g} h allowed")
    if key in alerted_keys:
        return RuleDecision(rule, f"no success for {_hours(silent)} since {since}; this silence is already alerted")
    attempt = (
        f"The latest attempt, {latest_attempt.sync_id} at {_when(latest_attempt.started_at)}, ended "
        f"{latest_attempt.status.value}."
        if latest_attempt is not None
        else ""
    )
    message = f"No sync has succeeded for {_hours(silent)} (allowed: {hours:g} h), since {since}. {attempt}".strip()
    detail = {
        RULE_KEY: key,
        "hours": hours,
        "since": utc_text(start),
        "silent_hours": round(silent.total_seconds() / 3600, 2),
        "last_success_sync_id": last_success.sync_id if last_success else None,
        "latest_attempt_sync_id": latest_attempt.sync_id if latest_attempt else None,
        "latest_attempt_status": latest_attempt.status.value if latest_attempt else None,
        "run_id": latest_attempt.run_id if latest_attempt else None,
    }
    sync_id = latest_attempt.sync_id if latest_attempt else None
    draft = AlertDraft(AlertType.NO_RECENT_SUCCESS, Severity.WARNING, message, sync_id, detail)
    return RuleDecision(rule, f"no success for {_hours(silent)} since {since}: alert raised", draft)
