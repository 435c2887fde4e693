"""Unit tests of the retry helper (Requirement 7.1): backoff, jitter, Retry-After, the transient predicate; no I/O."""

from __future__ import annotations

import datetime as dt
import http.client
import ssl
from typing import Any

import pytest
import requests
import urllib3.exceptions
from hypothesis import given
from hypothesis import strategies as st

from sync_pipeline.adapters.retry import (
    DEFAULT_MAX_RETRIES,
    RETRY_AFTER_CAP_SECONDS,
    RetriesExhaustedError,
    RetryPolicy,
    describe_failure,
    is_transient_http_error,
    parse_retry_after,
    retry_after_of,
    retry_call,
)
from sync_pipeline.adapters.sheets.base import RetryEvent

NOW = dt.datetime(2026, 1, 5, 9, 0, 0, tzinfo=dt.UTC)
NO_POOL: Any = None  # urllib3's exceptions name the pool they came from; these never came from one


def http_error(status: int, retry_after: str | None = None) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return requests.HTTPError(f"HTTP {status}", response=response)


class Flaky:
    """A callable that raises the given failures in turn, then returns "ok"."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


# --- Retry-After --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("2", 2.0),
        (" 17 ", 17.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Mon, 05 Jan 2026 09:00:30 GMT", 30.0),
        ("Monday, 05-Jan-26 09:01:00 GMT", 60.0),  # RFC 850, which RFC 9110 still asks recipients to accept
        ("Mon, 05 Jan 2026 08:59:00 GMT", 0.0),  # already past: retry now
        ("", None),
        ("soon", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_http_date(header: str, expected: float | None) -> None:
    assert parse_retry_after(header, now=lambda: NOW) == expected


def test_retry_after_accepts_the_projects_naive_utc_clock() -> None:
    naive_now = NOW.replace(tzinfo=None)
    assert parse_retry_after("Mon, 05 Jan 2026 09:00:10 GMT", now=lambda: naive_now) == 10.0


def test_retry_after_comes_from_the_failed_response() -> None:
    assert retry_after_of(http_error(429, "3")) == 3.0
    assert retry_after_of(http_error(429)) is None
    assert retry_after_of(requests.ConnectionError("reset")) is None
    assert retry_after_of(ValueError("no response at all")) is None


def test_retry_after_is_honoured_but_capped() -> None:
    policy = RetryPolicy()
    assert policy.wait_for(1, 7.0) == 7.0
    assert policy.wait_for(3, 0.0) == 0.0  # the server said now: do not add our own backoff on top
    assert policy.wait_for(1, 3600.0) == RETRY_AFTER_CAP_SECONDS


# --- backoff and jitter -------------------------------------------------------------------------------------------


@given(retry_number=st.integers(min_value=1, max_value=12), rand=st.floats(min_value=0.0, max_value=0.999999))
def test_backoff_is_exponential_with_bounded_jitter(retry_number: int, rand: float) -> None:
    policy = RetryPolicy()
    exponential = policy.base_delay * policy.multiplier ** (retry_number - 1)
    wait = policy.backoff(retry_number, rand=lambda: rand)
    assert wait <= policy.max_delay
    assert min(exponential, policy.max_delay) <= wait <= min(exponential + policy.jitter, policy.max_delay)


def test_backoff_doubles_and_jitter_spreads_it() -> None:
    policy = RetryPolicy(base_delay=1.0, jitter=1.0, max_delay=100.0)
    assert [policy.backoff(n, rand=lambda: 0.0) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert [policy.backoff(n, rand=lambda: 0.5) for n in (1, 2, 3)] == [1.5, 2.5, 4.5]
    assert policy.backoff(20, rand=lambda: 0.0) == 100.0


def test_without_retry_after_the_wait_is_the_backoff() -> None:
    policy = RetryPolicy()
    assert policy.wait_for(2, None, rand=lambda: 0.25) == policy.backoff(2, rand=lambda: 0.25)


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=-1.0)
    with pytest.raises(ValueError):
        RetryPolicy().backoff(0)


# --- what is transient --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status: int) -> None:
    assert is_transient_http_error(http_error(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 501])
def test_other_statuses_are_not(status: int) -> None:
    assert not is_transient_http_error(http_error(status))


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectTimeout("connect timed out"),
        requests.exceptions.ConnectionError("Connection aborted"),
        requests.exceptions.ChunkedEncodingError("IncompleteRead"),
        urllib3.exceptions.ProtocolError("Connection broken"),
        urllib3.exceptions.ReadTimeoutError(NO_POOL, "/", "read timed out"),
        http.client.IncompleteRead(b"partial", 100),
        ConnectionResetError(104, "Connection reset by peer"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_network_failures_are_transient(exc: BaseException) -> None:
    assert is_transient_http_error(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bug"),
        KeyError("values"),
        FileNotFoundError("credentials.json"),  # an OSError, like requests' exceptions, but not a network one
        requests.exceptions.InvalidURL("http://"),
        requests.exceptions.MissingSchema("127.0.0.1"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_other_failures_are_not_transient(exc: BaseException) -> None:
    assert not is_transient_http_error(exc)


def test_a_certificate_that_does_not_verify_is_not_retried() -> None:
    cert_failure = ssl.SSLCertVerificationError(1, "certificate verify failed")
    wrapped = urllib3.exceptions.MaxRetryError(NO_POOL, "/", reason=urllib3.exceptions.SSLError(cert_failure))
    assert not is_transient_http_error(requests.exceptions.SSLError(wrapped))
    assert is_transient_http_error(requests.exceptions.SSLError("EOF occurred in violation of protocol"))


def test_failures_are_described_for_the_operator() -> None:
    assert describe_failure(http_error(429, "2")) == "HTTP 429 (Retry-After 2)"
    assert describe_failure(http_error(503)) == "HTTP 503"
    assert describe_failure(requests.exceptions.ReadTimeout()) == "timed out waiting for the answer"
    assert describe_failure(requests.exceptions.ConnectionError("aborted")) == "connection dropped"
    refused = requests.exceptions.ConnectionError(ConnectionRefusedError(111, "refused"))
    assert describe_failure(refused) == "connection refused"
    assert describe_failure(requests.exceptions.ChunkedEncodingError()) == "answer cut short"


# --- retry_call ---------------------------------------------------------------------------------------------------


def test_non_transient_failures_fail_at_once() -> None:
    fn = Flaky(http_error(404))
    waits: list[float] = []
    events: list[RetryEvent] = []
    with pytest.raises(requests.HTTPError) as raised:
        retry_call(fn, operation="read", sleep=waits.append, on_retry=events.append)
    assert raised.value.response.status_code == 404
    assert (fn.calls, waits, events) == (1, [], [])


def test_transient_failures_are_retried_and_reported() -> None:
    fn = Flaky(http_error(429, "2"), requests.ConnectionError("reset"))
    waits: list[float] = []
    events: list[RetryEvent] = []
    result = retry_call(fn, operation="read sheet X", sleep=waits.append, on_retry=events.append, rand=lambda: 0.5)
    assert result == "ok"
    assert fn.calls == 3
    assert waits == [2.0, 2.5]  # Retry-After first, then the second backoff step (2 s) plus half the jitter
    assert events == [
        RetryEvent("read sheet X", 1, 2.0, "HTTP 429 (Retry-After 2)"),
        RetryEvent("read sheet X", 2, 2.5, "connection dropped"),
    ]


def test_retries_are_bounded() -> None:
    fn = Flaky(*[http_error(503) for _ in range(10)])
    waits: list[float] = []
    with pytest.raises(RetriesExhaustedError) as raised:
        retry_call(fn, operation="read sheet X", sleep=waits.append)
    assert fn.calls == DEFAULT_MAX_RETRIES + 1 == raised.value.attempts
    assert len(waits) == DEFAULT_MAX_RETRIES
    assert isinstance(raised.value.__cause__, requests.HTTPError)
    assert raised.value.reason == "HTTP 503"
    assert "after 4 attempts" in str(raised.value)


@given(
    failures=st.lists(st.sampled_from([408, 429, 500, 502, 503, 504, "drop", "timeout"]), max_size=8),
    max_retries=st.integers(min_value=0, max_value=5),
)
def test_property_28_k_transient_failures_need_k_retries_up_to_the_limit(
    failures: list[int | str], max_retries: int
) -> None:
    def failure(kind: int | str) -> BaseException:
        if kind == "drop":
            return requests.ConnectionError("Connection aborted")
        if kind == "timeout":
            return requests.exceptions.ReadTimeout("read timed out")
        assert isinstance(kind, int)
        return http_error(kind)

    fn = Flaky(*[failure(kind) for kind in failures])
    waits: list[float] = []
    events: list[RetryEvent] = []
    policy = RetryPolicy(max_retries=max_retries)
    if len(failures) <= max_retries:
        assert retry_call(fn, operation="op", policy=policy, sleep=waits.append, on_retry=events.append) == "ok"
        assert fn.calls == len(failures) + 1
    else:
        with pytest.raises(RetriesExhaustedError):
            retry_call(fn, operation="op", policy=policy, sleep=waits.append, on_retry=events.append)
        assert fn.calls == max_retries + 1
    assert [e.attempt for e in events] == list(range(1, fn.calls))
    assert [e.wait_seconds for e in events] == waits
    assert all(0 <= w <= policy.max_delay for w in waits)


def test_a_caller_brings_its_own_predicate_and_name() -> None:
    """What the database layer will do: retry a lost connection, nothing else, under its own operation name."""

    class LostConnection(Exception):
        pass

    fn = Flaky(LostConnection("server closed the connection"))
    events: list[RetryEvent] = []
    result = retry_call(
        fn,
        operation="apply chunk 3",
        is_transient=lambda exc: isinstance(exc, LostConnection),
        describe=lambda exc: "connection lost",
        sleep=lambda _: None,
        on_retry=events.append,
        rand=lambda: 0.0,
    )
    assert result == "ok"
    assert events == [RetryEvent("apply chunk 3", 1, 1.0, "connection lost")]
    with pytest.raises(http.client.HTTPException):  # not its kind of failure: not retried
        retry_call(Flaky(http.client.HTTPException()), operation="x", is_transient=lambda exc: False)
