"""The sheet source interface: one call that reads the whole used range as displayed text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sync_pipeline.domain.sheet import RawSheet


@dataclass(frozen=True)
class RetryEvent:
    """One retry of a transient failure, reported so that the sync logs it as a recovery action (P31)."""

    operation: str  # e.g. "read sheet gsheet:KEY/Sheet1"
    attempt: int  # 1 for the first retry
    wait_seconds: float
    reason: str  # e.g. "HTTP 429 (Retry-After 2)", "connection dropped"


RetryListener = Callable[[RetryEvent], None]


class SheetSource(Protocol):
    """Something that can read the seller sheet: a CSV/XLSX export or a Google worksheet."""

    @property
    def description(self) -> str:
        """What is read, for messages and the audit log (a file path, or gsheet:KEY/worksheet)."""
        ...

    def read(self, on_retry: RetryListener | None = None) -> RawSheet:
        """The whole used range in one request; raises SheetReadError (category network / configuration)."""
        ...
