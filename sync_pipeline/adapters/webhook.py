"""Posting one JSON message to a webhook (Slack, Teams, any bridge) with requests and explicit timeouts.

The URL is a credential: it is never put into an exception, a log line or a return value; callers name the channel
by `alert_chat.redact(url)` (host and ***).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import requests

CONNECT_TIMEOUT_SECONDS: Final = 5.0  # a refused or unroutable host fails fast
READ_TIMEOUT_SECONDS: Final = 15.0  # a hung server must not hold a sensor tick for minutes
ANSWER_CHARS: Final = 300  # of the answer's body kept for the record: enough to read Slack's "invalid_token"
MAX_RETRY_AFTER_SECONDS: Final = 3600  # a Retry-After beyond this is taken as this (never wait a day on one header)


class _HideWebhookPaths(logging.Filter):
    """urllib3 logs every request line at DEBUG (`"POST /services/T…/B…/secret HTTP/1.1" 200`): a webhook's path (and
    a Teams Workflows URL's query, its signature) is the secret, so it becomes `/***` in urllib3's records, whatever
    level logging is configured at. (Found by a parallel implementation's secret scan.)"""

    def __init__(self) -> None:
        super().__init__()
        self.paths: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.paths:
            text = record.getMessage()
            for path in sorted(self.paths, key=len, reverse=True):  # the path with its query first
                text = text.replace(path, "/***")
            record.msg, record.args = text, None
        return True


_hide = _HideWebhookPaths()
logging.getLogger("urllib3.connectionpool").addFilter(_hide)


def _hidden(url: str) -> None:
    parts = urlsplit(url)
    _hide.paths.update(p for p in (parts.path + (f"?{parts.query}" if parts.query else ""), parts.path) if len(p) > 1)


@dataclass(frozen=True)
class PostResult:
    """How a post ended: `ok` (2xx), or `transient` (retry later: 429, 5xx, timeout, refused), or neither
    (a 4xx such as a revoked webhook: retrying will not help)."""

    ok: bool
    transient: bool
    status: int | None
    answer: str  # the server's text (cut), or what went wrong on the way; never the URL
    retry_after_s: float | None = None


def post_json(url: str, payload: Any, *, session: requests.Session | None = None) -> PostResult:
    """POST `payload` as UTF-8 JSON to `url` once."""
    _hidden(url)
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json; charset=utf-8"}
    try:
        answer = (session or requests).post(
            url, data=body, headers=headers, timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)
        )
    except requests.Timeout:
        return PostResult(False, True, None, f"no answer within {READ_TIMEOUT_SECONDS:g} s (timeout)")
    except requests.ConnectionError as exc:
        return PostResult(False, True, None, f"connection failed ({type(exc).__name__})")
    except requests.RequestException as exc:  # an invalid URL, say: not worth retrying
        return PostResult(False, False, None, f"the request could not be made ({type(exc).__name__})")
    text = answer.text[:ANSWER_CHARS].strip()
    status = answer.status_code
    if 200 <= status < 300:
        return PostResult(True, False, status, text)
    if status == 429:
        return PostResult(False, True, status, text or "too many requests", _retry_after(answer))
    # 408 (the server timed the request out) is worth another try, like a 5xx; other 4xx are not.
    return PostResult(False, status >= 500 or status == 408, status, text or answer.reason or "")


def _retry_after(answer: requests.Response) -> float | None:
    value = answer.headers.get("Retry-After", "").strip()
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_SECONDS) if value else None
    except ValueError:  # an HTTP date: rare for webhooks; the backoff applies instead
        return None
