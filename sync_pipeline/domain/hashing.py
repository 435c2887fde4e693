"""The content hash of a seller record: the one fingerprint the diff and the verification compare.

The database computes the same hash in SQL (see `adapters.store.sellers.db_content_hash`), so the canonical text
below is chosen to be what both SQLite and Postgres produce when a stored value is cast to text: dates as
`YYYY-MM-DD`, timestamps cut to `YYYY-MM-DD HH:MM:SS`, whole numbers in decimal, NULL as the empty string.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sync_pipeline.domain.fields import FIELD_BY_NAME, FIELDS, FieldKind

SEPARATOR = "\x1f"  # ASCII unit separator: never survives normalisation inside a cell, so fields cannot run together
HASH_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS)
TIMESTAMP_TEXT_LENGTH = 19  # "YYYY-MM-DD HH:MM:SS": sheets carry no sub-second precision


def canonical_text(value: object, kind: FieldKind) -> str:
    """The text a stored value casts to in SQL; None and NaN/NaT become ''."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[call-overload]
        return ""
    if kind is FieldKind.DATETIME:
        if isinstance(value, dt.datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return str(value)[:TIMESTAMP_TEXT_LENGTH]
    if kind is FieldKind.DATE:
        if isinstance(value, dt.datetime):
            value = value.date()
        if isinstance(value, dt.date):
            return value.isoformat()
        return str(value)
    if kind is FieldKind.AMOUNT:
        return str(int(value))  # type: ignore[call-overload]
    return str(value)


_DATE_UNITS = {FieldKind.DATE: "D", FieldKind.DATETIME: "s"}


def _canonical_column(series: pd.Series, kind: FieldKind) -> pa.Array:
    """`canonical_text` of a whole column as Arrow text, with column operations (the hot path of every sync)."""
    missing = series.isna().to_numpy()
    if kind in _DATE_UNITS:
        # pandas converts Python datetimes in C; numpy floors to the unit (as strftime drops what is below it) and
        # writes ISO text, whose 'T' becomes the space SQL casts use.
        unit = _DATE_UNITS[kind]
        values = pd.Series(series.where(~missing, None).to_numpy(dtype=object), dtype=object)
        moments = pd.to_datetime(values).to_numpy().astype(f"datetime64[{unit}]")
        text = np.datetime_as_string(moments, unit=unit)  # type: ignore[call-overload]
        column = pc.replace_substring(pa.array(text, type=pa.large_string()), "T", " ")
    elif kind is FieldKind.AMOUNT:
        numbers = pa.array(series.where(~missing, None).to_numpy(dtype=object), type=pa.int64(), from_pandas=True)
        column = numbers.cast(pa.large_string())
    else:
        column = pa.array(series.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    return pc.if_else(pa.array(missing), pa.scalar("", pa.large_string()), column)


def row_hashes(records: pd.DataFrame) -> pd.Series:
    """md5 hex of each record's canonical text, aligned with `records.index`."""
    if records.empty:
        return pd.Series([], index=records.index, dtype=object)
    parts = [_canonical_column(records[name], FIELD_BY_NAME[name].kind) for name in HASH_FIELDS]
    joined = pc.binary_join_element_wise(*parts, pa.scalar(SEPARATOR, pa.large_string()))
    # hashlib has no vectorised form; one C call per row (over the UTF-8 bytes Arrow already holds) is the cheapest
    # way to an md5 the database can reproduce.
    digests = [hashlib.md5(data).hexdigest() for data in joined.cast(pa.large_binary()).to_pylist()]
    return pd.Series(digests, index=records.index, dtype=object)


def record_hash(record: dict[str, object]) -> str:
    """md5 hex of one record (a mapping of field name to value)."""
    text = SEPARATOR.join(canonical_text(record.get(name), FIELD_BY_NAME[name].kind) for name in HASH_FIELDS)
    return hashlib.md5(text.encode("utf-8")).hexdigest()
