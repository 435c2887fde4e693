"""Typed cell values as the normalisers hand them on: plain Python values, None when empty, Invalid with a reason."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Invalid:
    """A cell that could not be read as its field's kind; `reason` says what is wrong in plain words."""

    reason: str


def put(column: np.ndarray[Any, Any], mask: pd.Series, values: Iterable[object]) -> None:
    """Place Python objects at the masked positions of an object array.

    Assigning a Series into a masked Series lets pandas re-infer the dtype (ints turn into floats, datetimes into
    Timestamps); the snapshot promises plain Python values, so they are placed positionally instead.
    """
    positions = np.flatnonzero(mask.to_numpy(dtype=bool))
    column[positions] = np.fromiter(values, dtype=object, count=len(positions))


def with_reasons(index: pd.Index, ok: pd.Series, values: Iterable[object], reasons: pd.Series) -> pd.Series:
    """Object column: the value where `ok`, Invalid(reason) where there is a reason, None elsewhere."""
    column = np.full(len(index), None, dtype=object)
    put(column, ok, values)
    bad = reasons.notna()
    put(column, bad, (Invalid(reason) for reason in reasons[bad]))
    return pd.Series(column, index=index, dtype=object)
