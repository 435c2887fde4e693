"""The sheet source interface: one call that reads the whole used range as displayed text."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from sync_pipeline.domain.feedback import Cell, NoteChange
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


class NotedSource(Protocol):
    """A sheet source whose cells can carry notes the sync writes (a Google worksheet; files cannot)."""

    def allow_note_writes(self) -> None:
        """Ask for write access on the next sign-in: called before the read of a sync that writes notes."""
        ...

    def read_notes(self, on_retry: RetryListener | None = None) -> Mapping[Cell, str]:
        """Every note of the worksheet read last, by cell; raises SheetFeedbackError."""
        ...

    def write_notes(self, changes: Sequence[NoteChange], on_retry: RetryListener | None = None) -> None:
        """All the changes in one request (none for none); raises SheetFeedbackError."""
        ...


def noted_source(source: object) -> NotedSource | None:
    """The source as one that takes notes, or None (a file). Looked up with getattr, not isinstance: since Python
    3.12 a protocol check does not see attributes a wrapper forwards (`services.sources.ContractedSource`)."""
    methods = ("allow_note_writes", "read_notes", "write_notes")
    return cast(NotedSource, source) if all(callable(getattr(source, m, None)) for m in methods) else None
