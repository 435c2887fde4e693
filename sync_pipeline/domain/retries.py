"""When a failed write of a record counts as a retry (Requirement 7.4): the rule, apart from the queue that keeps it.

A record's first failed write queues it, due again `retry_delay_minutes` later. A later failed write counts as a
retry only when it was made while one was due — at least `retry_delay_minutes` after the last counted attempt —
whichever sync made it (the retry sensor's resync, a scheduled sync, a manual one). A write that fails before then
(a 1-minute schedule, the automatic gap resync right after the sync) changes nothing but the last error: the schedule
cannot use up `retry_max_attempts` before the delay had a chance to help. After the first failure and
`retry_max_attempts` counted retries the record is exhausted, alerted once, and retried only by hand.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryState:
    """A queued record: `attempts` counted failed writes (the first failure included), the next retry due at
    `due_at` (`retry_delay_minutes` after the last counted one)."""

    attempts: int
    due_at: dt.datetime

    @property
    def retries(self) -> int:
        """Counted retries so far (the first failure is not a retry)."""
        return self.attempts - 1

    def is_due(self, now: dt.datetime) -> bool:
        return now >= self.due_at

    def is_exhausted(self, max_attempts: int) -> bool:
        return self.retries >= max_attempts


@dataclass(frozen=True)
class FailedWrite:
    """What one failed write did to a record's state: `counted` when it was the first failure or a retry made
    while one was due; `exhausted_now` when it was the last retry allowed (the moment to alert, once)."""

    state: RetryState
    counted: bool
    exhausted_now: bool


def after_failed_write(
    before: RetryState | None, now: dt.datetime, *, delay_minutes: int, max_attempts: int
) -> FailedWrite:
    """The record's state after a write of it failed at `now` (`before` is None when it was not queued)."""
    delay = dt.timedelta(minutes=delay_minutes)
    if before is None:
        state = RetryState(attempts=1, due_at=now + delay)
        return FailedWrite(state, counted=True, exhausted_now=state.is_exhausted(max_attempts))
    if not before.is_due(now) or before.is_exhausted(max_attempts):
        return FailedWrite(before, counted=False, exhausted_now=False)
    state = RetryState(attempts=before.attempts + 1, due_at=now + delay)
    return FailedWrite(state, counted=True, exhausted_now=state.is_exhausted(max_attempts))
