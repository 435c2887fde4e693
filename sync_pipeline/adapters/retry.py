"""The one retry helper: bounded exponential backoff with jitter for transient I/O failures (Requirement 7.1)."""

from __future__ import annotations

import datetime as dt
import email.utils
import http.client
import random
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
import tenacity
import urllib3.exceptions

from sync_pipeline.adapters.sheets.base import RetryEvent, RetryListener

T = TypeVar("T")

DEFAULT_MAX_RETRIES = 3  # Requirement 7.1: at most 3 retries, so at most 4 attempts in all
BASE_DELAY_SECONDS = 1.0  # Google's backoff guidance for the Sheets API starts at 1 s and doubles
BACKOFF_MULTIPLIER = 2.0
JITTER_SECONDS = 1.0  # Google's guidance adds up to 1 s at random, so that many clients do not retry in step
MAX_BACKOFF_SECONDS = 32.0  # Google's guidance caps the backoff at 32-64 s; we are well under it with 3 retries
# A Retry-After longer than this is capped: Sheets quotas are per minute, so a minute always lets the quota refill,
# and a scheduled sync must not sit idle for longer than its own interval on the word of a proxy.
RETRY_AFTER_CAP_SECONDS = 60.0

# Statuses that a retry can cure: request timeout, rate limit, and the server-side failures that are transient.
# Any other status (400 bad range, 401/403 access, 404 not found, 501 not implemented) fails at once.
TRANSIENT_HTTP_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

TransientPredicate = Callable[[BaseException], bool]
Describer = Callable[[BaseException], str]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; the defaults are Requirement 7.1's."""

    max_retries: int = DEFAULT_MAX_RETRIES
    base_delay: float = BASE_DELAY_SECONDS
    multiplier: float = BACKOFF_MULTIPLIER
    jitter: float = JITTER_SECONDS
    max_delay: float = MAX_BACKOFF_SECONDS
    retry_after_cap: float = RETRY_AFTER_CAP_SECONDS

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if min(self.base_delay, self.jitter, self.max_delay, self.retry_after_cap) < 0:
            raise ValueError("retry delays must be >= 0")

    @property
    def max_attempts(self) -> int:
        return self.max_retries + 1

    def backoff(self, retry_number: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry `retry_number` (1-based): base * multiplier^(n-1) + jitter, capped."""
        if retry_number < 1:
            raise ValueError(f"retry_number is 1-based, got {retry_number}")
        exponential = self.base_delay * self.multiplier ** (retry_number - 1)
        return min(self.max_delay, exponential + self.jitter * rand())

    def wait_for(
        self, retry_number: int, retry_after: float | None, rand: Callable[[], float] = random.random
    ) -> float:
        """The wait before a retry: the server's Retry-After when it gave one (capped), else the backoff."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        return self.backoff(retry_number, rand)


DEFAULT_POLICY = RetryPolicy()


class RetriesExhaustedError(Exception):
    """A transient failure persisted through every allowed attempt; `__cause__` is the last failure."""

    def __init__(self, operation: str, attempts: int, last_error: BaseException, reason: str) -> None:
        super().__init__(f"{operation} failed after {attempts} attempts; last failure: {reason}")
        self.operation = operation
        self.attempts = attempts
        self.last_error = last_error
        self.reason = reason


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def http_status_of(exc: BaseException) -> int | None:
    """The HTTP status of a failed response carried by the exception (requests HTTPError, gspread APIError)."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def parse_retry_after(value: str, now: Callable[[], dt.datetime] = _utc_now) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110); None if unreadable."""
    value = value.strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are always GMT; a zone-less one is read as UTC
        when = when.replace(tzinfo=dt.UTC)
    current = now()
    if current.tzinfo is None:  # the project's clock is naive UTC
        current = current.replace(tzinfo=dt.UTC)
    return max((when - current).total_seconds(), 0.0)


def retry_after_of(exc: BaseException, now: Callable[[], dt.datetime] = _utc_now) -> float | None:
    """The Retry-After the server sent with the failed response carried by `exc`, in seconds, if any."""
    response = getattr(exc, "response", None)
    headers: Any = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        raw = headers.get("Retry-After")
    except AttributeError:
        return None
    return parse_retry_after(raw, now) if isinstance(raw, str) else None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps: requests hides the socket error in args and in urllib3's `reason`."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        stack.extend(item for item in linked if isinstance(item, BaseException))


def is_transient_http_error(exc: BaseException) -> bool:
    """True for failures that a later attempt may not meet: timeouts, dropped or refused connections, a cut-short
    answer, and HTTP 408/429/500/502/503/504. Everything else (4xx, bad credentials, bugs) is not retried."""
    status = http_status_of(exc)
    if status is not None:
        return status in TRANSIENT_HTTP_STATUSES
    # A certificate that does not verify will not verify on the next attempt either.
    if any(isinstance(cause, ssl.SSLCertVerificationError) for cause in _causes(exc)):
        return False
    return isinstance(
        exc,
        (
            requests.exceptions.Timeout,
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            urllib3.exceptions.ProtocolError,
            urllib3.exceptions.TimeoutError,
            http.client.IncompleteRead,
            ConnectionError,  # the builtin: reset, refused, aborted, broken pipe
            TimeoutError,  # the builtin, which socket.timeout is
        ),
    )


def describe_failure(exc: BaseException) -> str:
    """A short reason for logs and RetryEvents: "HTTP 429 (Retry-After 2)", "timed out", "connection dropped"."""
    status = http_status_of(exc)
    if status is not None:
        response = getattr(exc, "response", None)
        raw = getattr(response, "headers", {}).get("Retry-After")
        return f"HTTP {status} (Retry-After {raw})" if raw else f"HTTP {status}"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
        return "timed out waiting for the answer"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | http.client.IncompleteRead):
        return "answer cut short"
    if isinstance(exc, requests.exceptions.ConnectionError | urllib3.exceptions.ProtocolError | ConnectionError):
        if any(isinstance(cause, ConnectionRefusedError) for cause in _causes(exc)):
            return "connection refused"
        return "connection dropped"
    return f"{type(exc).__name__}: {exc}"


def retry_call(
    fn: Callable[[], T],
    *,
    operation: str,
    policy: RetryPolicy = DEFAULT_POLICY,
    is_transient: TransientPredicate = is_transient_http_error,
    describe: Describer = describe_failure,
    on_retry: RetryListener | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    now: Callable[[], dt.datetime] = _utc_now,
) -> T:
    """Call `fn` until it succeeds, retrying only failures `is_transient` accepts, at most `policy.max_retries` times.

    A non-transient failure propagates at once, unchanged. When the retries are used up, RetriesExhaustedError is
    raised from the last failure. `on_retry` hears of every retry before its wait (Requirement 7.5 logs them);
    `sleep`, `rand` and `now` are injectable so that tests neither wait nor depend on chance or the wall clock.
    """

    def wait(state: tenacity.RetryCallState) -> float:
        exc = _failure(state)
        return policy.wait_for(state.attempt_number, retry_after_of(exc, now), rand)

    def report(state: tenacity.RetryCallState) -> None:
        if on_retry is None:
            return
        wait_seconds = state.next_action.sleep if state.next_action is not None else 0.0
        on_retry(
            RetryEvent(
                operation=operation,
                attempt=state.attempt_number,
                wait_seconds=float(wait_seconds),
                reason=describe(_failure(state)),
            )
        )

    retrying = tenacity.Retrying(
        sleep=sleep,
        stop=tenacity.stop_after_attempt(policy.max_attempts),
        wait=wait,
        retry=tenacity.retry_if_exception(is_transient),
        before_sleep=report,
        reraise=False,
    )
    try:
        return retrying(fn)
    except tenacity.RetryError as exhausted:
        last = exhausted.last_attempt.exception()
        if last is None:  # cannot happen: tenacity only gives up on a failed attempt
            raise
        raise RetriesExhaustedError(operation, exhausted.last_attempt.attempt_number, last, describe(last)) from last


def _failure(state: tenacity.RetryCallState) -> BaseException:
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    if exc is None:  # tenacity only waits after a failed attempt when retrying on exceptions
        raise RuntimeError("retry state without a failure")
    return exc
