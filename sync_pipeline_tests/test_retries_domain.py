"""The retry-counting rule of domain/retries.py over random schedules and failure sequences (Requirement 7.4).

Pure: a record's failed writes at random times (as often as a 1-minute schedule, or hours apart, or several in the
same minute as the automatic gap resync) are fed to `after_failed_write` in order. Does not touch a database,
Dagster or the retry queue's SQL (test_faults_records.py does, end to end).
"""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import given
from hypothesis import strategies as st

from sync_pipeline.domain.retries import FailedWrite, RetryState, after_failed_write

START = dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.UTC)

# Seconds between one failed write and the next: the same step (0), a 1-minute schedule, up to a few hours.
gaps = st.lists(st.integers(min_value=0, max_value=4 * 3600), min_size=1, max_size=60)
delays = st.integers(min_value=0, max_value=120)
limits = st.integers(min_value=0, max_value=6)


def replay(gap_seconds: list[int], delay: int, limit: int) -> tuple[list[dt.datetime], list[FailedWrite]]:
    times: list[dt.datetime] = []
    t = START
    for gap in gap_seconds:
        t += dt.timedelta(seconds=gap)
        times.append(t)
    state: RetryState | None = None
    outcomes = []
    for now in times:
        outcome = after_failed_write(state, now, delay_minutes=delay, max_attempts=limit)
        outcomes.append(outcome)
        state = outcome.state
    return times, outcomes


@given(gaps, delays, limits)
def test_counted_retries_are_at_least_the_delay_apart_and_never_more_than_the_limit(
    gap_seconds: list[int], delay: int, limit: int
) -> None:
    times, outcomes = replay(gap_seconds, delay, limit)
    counted = [t for t, o in zip(times, outcomes, strict=True) if o.counted]
    assert counted[0] == times[0]  # the first failure always counts (it queues the record)
    for earlier, later in itertools.pairwise(counted):
        assert later - earlier >= dt.timedelta(minutes=delay)
    assert len(counted) <= limit + 1  # the first failure and at most retry_max_attempts retries
    assert [o.state.attempts for o in outcomes][-1] == len(counted)


@given(gaps, delays, limits)
def test_every_failure_made_while_a_retry_was_due_counts(gap_seconds: list[int], delay: int, limit: int) -> None:
    """The rule does not waste a due attempt: a failure counts exactly when it is the first, or made at least
    `delay` after the last counted one while retries are left."""
    times, outcomes = replay(gap_seconds, delay, limit)
    last_counted: dt.datetime | None = None
    count = 0
    for now, outcome in zip(times, outcomes, strict=True):
        due = last_counted is None or (now - last_counted >= dt.timedelta(minutes=delay) and count <= limit)
        assert outcome.counted is due
        if due:
            last_counted, count = now, count + 1
            assert outcome.state.due_at == now + dt.timedelta(minutes=delay)


@given(gaps, delays, limits)
def test_exhaustion_is_announced_once_at_the_last_allowed_retry(gap_seconds: list[int], delay: int, limit: int) -> None:
    _times, outcomes = replay(gap_seconds, delay, limit)
    announced = [i for i, o in enumerate(outcomes) if o.exhausted_now]
    counted = [i for i, o in enumerate(outcomes) if o.counted]
    if len(counted) == limit + 1:
        assert announced == [counted[-1]]
        assert all(o.state == outcomes[counted[-1]].state for o in outcomes[counted[-1] :])  # frozen from then on
    else:
        assert announced == [] and len(counted) < limit + 1


@given(st.integers(min_value=1, max_value=30), limits, st.integers(min_value=0, max_value=240))
def test_a_one_minute_schedule_gets_one_retry_per_delay(delay: int, limit: int, minutes: int) -> None:
    """A record refused on every sync of a 1-minute schedule is retried once per `delay` minutes, not once a minute."""
    _, outcomes = replay([0] + [60] * minutes, delay, limit)
    retries = sum(o.counted for o in outcomes) - 1
    assert retries == min(limit, minutes // delay)
