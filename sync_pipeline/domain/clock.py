"""The one clock: aware UTC now, injectable so that tests control time."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FixedClock:
    """A clock that only moves when told to (tests). A naive start means UTC."""

    def __init__(self, start: dt.datetime) -> None:
        self.current = as_utc(start)

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> dt.datetime:
        self.current += dt.timedelta(**delta)
        return self.current


def as_utc(moment: dt.datetime) -> dt.datetime:
    """`moment` as an aware UTC datetime; a naive one is taken to be UTC already (how the sync always wrote them)."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
