"""The content hash of a seller record: the one fingerprint the diff and the verification compare.

The database computes the same hash in SQL (see `adapters.store.sellers.db_content_hash`), so the canonical text
below is chosen to be what both SQLite and Postgres produce when a stored value is cast to text: dates as
`YYYY-MM-DD`, timestamps cut to `YYYY-MM-DD HH:MM:SS`, whole numbers in decimal, NULL as the empty string.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pandas as pd

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


_DATE_FORMATS = {FieldKind.DATE: "%Y-%m-%d", FieldKind.DATETIME: "%Y-%m-%d %H:%M:%S"}


def _canonical_column(series: pd.Series, kind: FieldKind) -> pd.Series:
    """`canonical_text` of a whole column, with column operations (this is on the hot path of every sync)."""
    missing = series.isna()
    if kind in _DATE_FORMATS:
        text = pd.to_datetime(series.where(~missing, None)).dt.strftime(_DATE_FORMATS[kind])
    elif kind is FieldKind.AMOUNT:
        text = series.where(~missing, None).astype("Int64").astype(str)
    else:
        text = series.astype(str)
    return text.where(~missing, "").astype(str)


def row_hashes(records: pd.DataFrame) -> pd.Series:
    """md5 hex of each record's canonical text, aligned with `records.index`."""
    if records.empty:
        return pd.Series([], index=records.index, dtype=object)
    joined = _canonical_column(records[HASH_FIELDS[0]], FIELD_BY_NAME[HASH_FIELDS[0]].kind)
    for name in HASH_FIELDS[1:]:
        joined = joined + SEPARATOR + _canonical_column(records[name], FIELD_BY_NAME[name].kind)
    # hashlib has no vectorised form; one C call per row is the cheapest way to an md5 the database can reproduce.
    return joined.map(lambda text: hashlib.md5(text.encode("utf-8")).hexdigest())


def record_hash(record: dict[str, object]) -> str:
    """md5 hex of one record (a mapping of field name to value)."""
    text = SEPARATOR.join(canonical_text(record.get(name), FIELD_BY_NAME[name].kind) for name in HASH_FIELDS)
    return hashlib.md5(text.encode("utf-8")).hexdigest()
