"""Test helpers for sheets: an in-memory sheet source and a plain seller-row builder with predictable values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sync_pipeline.adapters.sheets.base import RetryListener
from sync_pipeline.domain.fields import FIELDS
from sync_pipeline.domain.sheet import RawSheet

HEADER: list[str] = [f.header for f in FIELDS]


def seller_row(
    key: str,
    *,
    name: str = "山田太郎",
    phone: str = "090-1234-5678",
    email: str = "taro@example.com",
    address: str = "東京都新宿区西新宿1-1-1",
    property_address: str = "東京都世田谷区北沢2-2-2",
    property_type: str = "戸建",
    status: str = "査定中",
    inquiry_date: str = "2025-01-05",
    amount: str = "12000000",
    updated: str = "2025-01-05 10:30",
) -> list[str]:
    """One sheet row in canonical header order, with values that normalise to themselves."""
    return [key, name, phone, email, address, property_address, property_type, status, inquiry_date, amount, updated]


@dataclass
class MemorySheetSource:
    """A SheetSource over rows held in memory (header first); counts its reads."""

    rows: Sequence[Sequence[str]]
    description: str = "memory:test"
    reads: int = field(default=0)

    def read(self, on_retry: RetryListener | None = None) -> RawSheet:
        self.reads += 1
        return RawSheet(source=self.description, values=[list(r) for r in self.rows])


def sheet(rows: Sequence[Sequence[str]]) -> MemorySheetSource:
    return MemorySheetSource([HEADER, *rows])
