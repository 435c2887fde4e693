"""Metrics maths (Requirements 5 and 6): success rates over a window, period aggregates, slow-sync detection.

Pure: the services load syncs from the audit log as `SyncSample`s (or count them in SQL by status) and ask here.

What counts (Property 19):
- an *attempt* is a sync that ran and ended: succeeded, partial, failed, abandoned (left running by a holder that
  died) or cancelled. A cancelled sync counts: the operator asked for a sync and did not get one.
- a *success* is succeeded or partial (partial means the sheet was applied; only some rows were held back).
- not counted at all: `skipped` (refused by the lock because another sync was running — no sync was attempted) and
  `running` (not ended yet, so neither a success nor a failure).
A sync belongs to the window in which it *started*: [now - window, now), start inclusive, end exclusive.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sync_pipeline.domain.audit import SyncKind, SyncStatus

SUCCESS_STATUSES: frozenset[str] = frozenset({SyncStatus.SUCCEEDED.value, SyncStatus.PARTIAL.value})
FAILURE_STATUSES: frozenset[str] = frozenset(
    {SyncStatus.FAILED.value, SyncStatus.ABANDONED.value, SyncStatus.CANCELLED.value}
)
ATTEMPT_STATUSES: frozenset[str] = SUCCESS_STATUSES | FAILURE_STATUSES
# A resync repairs the gaps of the sync it belongs to (parent_sync_id): counting it as a sync of its own would count
# one run twice in the rates and put its small, fast runs into the duration baseline.
MEASURED_KINDS: frozenset[str] = frozenset(k.value for k in SyncKind if k is not SyncKind.RESYNC)
DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(days=7)
SLOW_SYNC_BASELINE = WEEK  # Requirement 6.5: "the median of the last 7 days"


@dataclass(frozen=True)
class SyncSample:
    """One sync as the metrics see it (from `sync_audit_logs` / `sync_metrics`)."""

    started_at: dt.datetime
    status: str
    kind: str = SyncKind.SCHEDULED.value
    duration_s: float | None = None
    rows_per_s: float | None = None


@dataclass(frozen=True)
class Rate:
    """Successes out of attempts; `value` is None when there was no attempt (no data is not 0 % nor 100 %)."""

    successes: int
    attempts: int

    @property
    def value(self) -> float | None:
        return self.successes / self.attempts if self.attempts else None


def rate_from_counts(counts_by_status: Mapping[str, int]) -> Rate:
    """The rate of syncs already counted by status (the SQL path: GROUP BY status)."""
    return Rate(
        successes=sum(n for s, n in counts_by_status.items() if s in SUCCESS_STATUSES),
        attempts=sum(n for s, n in counts_by_status.items() if s in ATTEMPT_STATUSES),
    )


def in_window(started_at: dt.datetime, now: dt.datetime, window: dt.timedelta) -> bool:
    return now - window <= started_at < now


def success_rate(samples: Iterable[SyncSample], now: dt.datetime, window: dt.timedelta) -> Rate:
    """Property 19: successes / attempts among the measured syncs started in [now - window, now)."""
    counts: dict[str, int] = {}
    for s in samples:
        if s.kind in MEASURED_KINDS and in_window(s.started_at, now, window):
            counts[s.status] = counts.get(s.status, 0) + 1
    return rate_from_counts(counts)


@dataclass(frozen=True)
class Aggregate:
    """count, mean, p50, p95 and max of a set of figures (Property 26); the statistics are None when count is 0."""

    count: int
    mean: float | None
    p50: float | None
    p95: float | None
    max: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return {"count": self.count, "mean": self.mean, "p50": self.p50, "p95": self.p95, "max": self.max}


def percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default and Postgres' percentile_cont); `ordered` sorted."""
    if not ordered:
        raise ValueError("percentile of no values")
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    if not fraction:
        return ordered[low]
    # Either interpolation form can land an ulp outside [a, b] (a*(1-f) + b*f does even when a == b, as Hypothesis
    # found with 365831929.6784459 twice): clamp, so that p50 <= p95 <= max holds exactly.
    value = ordered[low] * (1 - fraction) + ordered[high] * fraction
    return min(max(value, ordered[low]), ordered[high])


def aggregate(values: Iterable[float | None]) -> Aggregate:
    """The aggregate of the figures that exist (None and NaN left out: a sync that failed early has no throughput)."""
    ordered = sorted(v for v in values if v is not None and not math.isnan(v))
    if not ordered:
        return Aggregate(0, None, None, None, None)
    mean = min(max(math.fsum(ordered) / len(ordered), ordered[0]), ordered[-1])  # rounding never leaves [min, max]
    return Aggregate(len(ordered), mean, percentile(ordered, 0.50), percentile(ordered, 0.95), ordered[-1])


@dataclass(frozen=True)
class PeriodStats:
    """What happened over [since, until): attempts, successes and the figures of the syncs that ended (P26)."""

    since: dt.datetime
    until: dt.datetime
    rate: Rate
    duration_s: Aggregate
    rows_per_s: Aggregate

    def as_dict(self) -> dict[str, object]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "attempts": self.rate.attempts,
            "successes": self.rate.successes,
            "success_rate": self.rate.value,
            "duration_s": self.duration_s.as_dict(),
            "rows_per_s": self.rows_per_s.as_dict(),
        }


def period_stats(samples: Iterable[SyncSample], since: dt.datetime, until: dt.datetime) -> PeriodStats:
    """Aggregates over the measured syncs started in [since, until); durations and throughput of attempts only."""
    chosen = [s for s in samples if s.kind in MEASURED_KINDS and since <= s.started_at < until]
    attempts = [s for s in chosen if s.status in ATTEMPT_STATUSES]
    return PeriodStats(
        since=since,
        until=until,
        rate=success_rate(chosen, until, until - since),
        duration_s=aggregate(s.duration_s for s in attempts),
        rows_per_s=aggregate(s.rows_per_s for s in attempts),
    )


@dataclass(frozen=True)
class SlowVerdict:
    """Property 27: whether a sync was markedly slower than its recent norm, and the figures behind the answer."""

    slow: bool
    duration_s: float
    samples: int
    median_s: float | None
    threshold_s: float | None  # factor x median; None when there were too few samples to judge

    @property
    def judged(self) -> bool:
        return self.threshold_s is not None


def baseline_durations(history: Iterable[SyncSample], started_at: dt.datetime) -> list[float]:
    """Durations of the successful measured syncs that started in the 7 days before `started_at`."""
    return [
        s.duration_s
        for s in history
        if s.kind in MEASURED_KINDS
        and s.status in SUCCESS_STATUSES
        and s.duration_s is not None
        and started_at - SLOW_SYNC_BASELINE <= s.started_at < started_at
    ]


def slow_sync(duration_s: float, baseline: Sequence[float], *, factor: float, min_samples: int) -> SlowVerdict:
    """Slow when there are at least `min_samples` baseline durations and `duration_s` > factor x their median.

    The baseline holds successful syncs only: a failure that stopped after a second would drag the median down
    and make every healthy sync look slow.
    """
    if len(baseline) < min_samples or not baseline:
        return SlowVerdict(False, duration_s, len(baseline), None, None)
    median = statistics.median(baseline)
    threshold = factor * median
    return SlowVerdict(duration_s > threshold, duration_s, len(baseline), median, threshold)
