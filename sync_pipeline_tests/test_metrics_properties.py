"""Properties 19, 26 and 27 on the pure metrics maths (`domain/metrics.py`) over arbitrary histories and windows.

Touches no database: the SQL paths that must agree with these functions are tested in test_health.py.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics

from hypothesis import assume, example, given
from hypothesis import strategies as st

from sync_pipeline.domain.audit import SyncKind, SyncStatus
from sync_pipeline.domain.metrics import (
    ATTEMPT_STATUSES,
    SUCCESS_STATUSES,
    SyncSample,
    aggregate,
    baseline_durations,
    percentile,
    period_stats,
    rate_from_counts,
    slow_sync,
    success_rate,
)

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SPAN_S = 30 * 86400  # histories spread over 30 days

instants = st.integers(0, SPAN_S).map(lambda s: EPOCH + dt.timedelta(seconds=s))
statuses = st.sampled_from([s.value for s in SyncStatus])
kinds = st.sampled_from([k.value for k in SyncKind])
durations = st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False))
samples = st.builds(
    SyncSample, started_at=instants, status=statuses, kind=kinds, duration_s=durations, rows_per_s=durations
)
histories = st.lists(samples, max_size=60)
windows = st.integers(1, SPAN_S).map(lambda s: dt.timedelta(seconds=s))
figures = st.lists(st.floats(0, 1e9, allow_nan=False, allow_infinity=False), max_size=50)


def test_status_vocabulary_is_decided_for_every_status() -> None:
    # skipped and running are neither; every other status is an attempt; success is succeeded or partial.
    assert {SyncStatus.SKIPPED.value, SyncStatus.RUNNING.value}.isdisjoint(ATTEMPT_STATUSES)
    assert ATTEMPT_STATUSES | {"skipped", "running"} == {s.value for s in SyncStatus}
    assert {"succeeded", "partial"} == SUCCESS_STATUSES


@given(histories, instants, windows)
def test_property_19_success_rate_is_successes_over_attempts_in_exactly_the_window(
    history: list[SyncSample], now: dt.datetime, window: dt.timedelta
) -> None:
    rate = success_rate(history, now, window)
    inside = [s for s in history if now - window <= s.started_at < now and s.kind != SyncKind.RESYNC.value]
    attempts = [s for s in inside if s.status not in {"skipped", "running"}]
    successes = [s for s in attempts if s.status in {"succeeded", "partial"}]
    assert (rate.successes, rate.attempts) == (len(successes), len(attempts))
    if attempts:
        assert rate.value == len(successes) / len(attempts)
        assert 0.0 <= rate.value <= 1.0
    else:
        assert rate.value is None


@given(histories, instants, windows)
def test_property_19_rows_just_outside_the_window_do_not_count(
    history: list[SyncSample], now: dt.datetime, window: dt.timedelta
) -> None:
    edge = [
        SyncSample(started_at=now, status="failed"),  # the end is exclusive
        SyncSample(started_at=now - window - dt.timedelta(microseconds=1), status="failed"),
    ]
    assert success_rate(history + edge, now, window) == success_rate(history, now, window)
    start = SyncSample(started_at=now - window, status="succeeded")  # the start is inclusive
    before = success_rate(history, now, window)
    after = success_rate([*history, start], now, window)
    assert (after.successes, after.attempts) == (before.successes + 1, before.attempts + 1)


@given(histories, instants, windows)
def test_property_19_counting_by_status_gives_the_same_rate(
    history: list[SyncSample], now: dt.datetime, window: dt.timedelta
) -> None:
    counts: dict[str, int] = {}
    for s in history:
        if now - window <= s.started_at < now and s.kind != SyncKind.RESYNC.value:
            counts[s.status] = counts.get(s.status, 0) + 1
    assert rate_from_counts(counts) == success_rate(history, now, window)


@given(figures)
@example([0.0, 0.0, 0.0, 365831929.6784459, 365831929.6784459])  # interpolating between equal values overshot max
def test_property_26_aggregate_is_ordered_and_bounded(values: list[float]) -> None:
    agg = aggregate(values)
    assert agg.count == len(values)
    if not values:
        assert (agg.mean, agg.p50, agg.p95, agg.max) == (None, None, None, None)
        return
    assert agg.mean is not None and agg.p50 is not None and agg.p95 is not None
    assert min(values) <= agg.mean <= max(values)
    assert min(values) <= agg.p50 <= agg.p95 <= agg.max == max(values)
    assert math.isclose(agg.p50, statistics.median(values), rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(agg.mean, statistics.fmean(values), rel_tol=1e-9, abs_tol=1e-6)


@given(figures, st.lists(st.none(), max_size=5))
def test_property_26_missing_figures_are_left_out(values: list[float], missing: list[None]) -> None:
    assert aggregate([*values, *missing]) == aggregate(values)


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=40), st.floats(0, 1))
def test_property_26_percentile_has_at_least_q_of_values_at_or_below(values: list[float], q: float) -> None:
    ordered = sorted(values)
    p = percentile(ordered, q)
    below = sum(v <= p for v in ordered)
    assert below >= math.floor(q * (len(ordered) - 1)) + 1


@given(histories, instants, windows)
def test_property_26_period_stats_counts_the_attempts_of_the_period(
    history: list[SyncSample], until: dt.datetime, window: dt.timedelta
) -> None:
    since = until - window
    stats = period_stats(history, since, until)
    attempts = [
        s
        for s in history
        if since <= s.started_at < until and s.kind != SyncKind.RESYNC.value and s.status in ATTEMPT_STATUSES
    ]
    assert stats.rate == success_rate(history, until, window)
    assert stats.duration_s == aggregate(s.duration_s for s in attempts)
    assert stats.rows_per_s.count == sum(s.rows_per_s is not None for s in attempts)


@given(
    st.floats(0.001, 1e5, allow_nan=False),
    st.lists(st.floats(0.001, 1e5, allow_nan=False), max_size=30),
    st.floats(1, 10),
    st.integers(1, 10),
)
def test_property_27_slow_exactly_when_enough_samples_and_above_factor_times_median(
    duration: float, baseline: list[float], factor: float, min_samples: int
) -> None:
    verdict = slow_sync(duration, baseline, factor=factor, min_samples=min_samples)
    if len(baseline) < min_samples:
        assert not verdict.slow and not verdict.judged
    else:
        median = statistics.median(baseline)
        assert verdict.median_s == median
        assert verdict.slow == (duration > factor * median)
    assert verdict.samples == len(baseline)


@given(histories, instants)
def test_property_27_baseline_is_successful_syncs_of_the_seven_days_before(
    history: list[SyncSample], started_at: dt.datetime
) -> None:
    chosen = baseline_durations(history, started_at)
    expected = [
        s.duration_s
        for s in history
        if started_at - dt.timedelta(days=7) <= s.started_at < started_at
        and s.status in {"succeeded", "partial"}
        and s.kind != "resync"
        and s.duration_s is not None
    ]
    assert sorted(chosen) == sorted(expected)


def test_property_27_a_sync_twice_as_slow_as_five_equal_syncs_is_not_slow_but_just_above_is() -> None:
    baseline = [10.0] * 5
    assert not slow_sync(20.0, baseline, factor=2.0, min_samples=5).slow
    assert slow_sync(20.01, baseline, factor=2.0, min_samples=5).slow
    assert not slow_sync(100.0, baseline[:4], factor=2.0, min_samples=5).slow


@given(histories, instants, windows)
def test_property_19_rate_never_counts_skipped_or_running(
    history: list[SyncSample], now: dt.datetime, window: dt.timedelta
) -> None:
    noise = [SyncSample(started_at=now - window, status=s) for s in ("skipped", "running")]
    assume(window > dt.timedelta(0))
    assert success_rate(history + noise, now, window) == success_rate(history, now, window)
