"""The content hash of a seller record: the one fingerprint the diff and the verification compare.

The database computes the same hash in SQL (see `adapters.store.sellers.db_content_hash`), so the canonical text
below is chosen to be what both SQLite and Postgres produce when a stored value is cast to text: dates as
`YYYY-MM-DD`, timestamps cut to `YYYY-MM-DD HH:MM:SS`, whole numbers in decimal, NULL as the empty string.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sync_pipeline.domain.fields import FIELD_BY_NAME, FIELDS, FieldKind
from sync_pipeline.domain.kinds import decimal_text

try:  # CPython's own MD5: for a row of a few hundred bytes, setting up OpenSSL's context costs more than the hashing
    from _md5 import md5 as _md5
except ImportError:  # pragma: no cover - an interpreter built without it
    _md5 = hashlib.md5

# A contract's own fields (stored in `sellers.attributes`) extend the text after the eleven built-in ones, one part
# per present value, `SEPARATOR name:literal` in name order, so a row without such values hashes exactly as before
# contracts existed. The literal is the value's JSON text, which both databases return unchanged for a stored value
# (`attributes -> 'name'`): see `adapters.store.sellers.content_hash_expression`.
ATTRIBUTE_LABEL = "{name}:"
UNMAPPED_LABEL = "_unmapped.{header}:"  # `unmapped_columns = keep`: one part per kept cell, by header text
SEPARATOR = "\x1f"  # ASCII unit separator: never survives normalisation inside a cell, so fields cannot run together
HASH_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS)
TIMESTAMP_TEXT_LENGTH = 19  # "YYYY-MM-DD HH:MM:SS": sheets carry no sub-second precision
HASH_BATCH_ROWS = 65_536  # rows joined and hashed at once: big enough for Arrow to pay off, small enough to stay cheap
_TEXT = pa.large_string()
_SEPARATOR = pa.scalar(SEPARATOR, _TEXT)


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


def canonical_values(values: np.ndarray[Any, Any], kind: FieldKind) -> pa.Array:
    """`canonical_text` of each value of an object array, as Arrow text (a value that is not one of the kind's,
    such as a normaliser's Invalid, counts as missing: such a row is rejected, never hashed)."""
    if kind in _DATE_UNITS:
        known = np.array([isinstance(v, dt.date) for v in values], dtype=bool)
    elif kind is FieldKind.AMOUNT:
        known = np.array([isinstance(v, int | np.integer) for v in values], dtype=bool)
    else:
        known = np.array([isinstance(v, str) for v in values], dtype=bool)
    plain = values
    if not known.all():
        plain = values.copy()
        plain[~known] = None
    return _canonical_column(pd.Series(plain, dtype=object), kind)


def json_literal(value: object) -> str:
    """The JSON text of an attribute value as it is stored and hashed: numbers in plain decimal notation (never an
    exponent, no trailing zeros: what Postgres' jsonb and SQLite keep as written), dates `YYYY-MM-DD`, moments
    `YYYY-MM-DDTHH:MM:SSZ` (UTC), text as JSON strings with the characters as they are."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, decimal.Decimal):
        return decimal_text(value)
    if isinstance(value, dt.datetime):
        return json.dumps(value.strftime("%Y-%m-%dT%H:%M:%SZ"))
    if isinstance(value, dt.date):
        return json.dumps(value.isoformat())
    return json.dumps(str(value), ensure_ascii=False)


def hash_rows(
    columns: Sequence[tuple[pa.Array, np.ndarray[Any, Any]]],
    rows: int,
    suffixes: Sequence[tuple[pa.Array, np.ndarray[Any, Any]]] = (),
) -> np.ndarray[Any, Any]:
    """md5 hex (an object ndarray) of `rows` records given column by column in `HASH_FIELDS` order, each as the
    canonical text of its distinct values (null: empty) and, per row, the position of the row's value among them
    (-1: empty); then `suffixes` in the same form, appended as they are (null: nothing), the attribute parts.

    The rows are joined and hashed a slice at a time, so that a million rows never hold their text twice over.
    """
    digests = np.empty(rows, dtype=object)
    for start in range(0, rows, HASH_BATCH_ROWS):
        stop = min(start + HASH_BATCH_ROWS, rows)
        parts = [text.take(pa.array(at[start:stop], mask=at[start:stop] < 0)) for text, at in columns]
        joined = pc.binary_join_element_wise(*parts, _SEPARATOR, null_handling="replace", null_replacement="")
        if suffixes:
            extra = [text.take(pa.array(at[start:stop], mask=at[start:stop] < 0)) for text, at in suffixes]
            empty = pa.scalar("", _TEXT)
            joined = pc.binary_join_element_wise(joined, *extra, empty, null_handling="replace", null_replacement="")
        digests[start:stop] = _md5_hex(joined)  # an empty value (null) joins as ''
    return digests


def _md5_hex(joined: pa.Array) -> list[str]:
    # hashlib has no vectorised form; one C call per row (over the UTF-8 bytes Arrow already holds) is the cheapest
    # way to an md5 the database can reproduce.
    return [_md5(data).hexdigest() for data in joined.cast(pa.large_binary()).to_pylist()]


def row_hashes(records: pd.DataFrame) -> pd.Series:
    """md5 hex of each record's canonical text, aligned with `records.index`."""
    if records.empty:
        return pd.Series([], index=records.index, dtype=object)
    parts = [_canonical_column(records[name], FIELD_BY_NAME[name].kind) for name in HASH_FIELDS]
    digests = _md5_hex(pc.binary_join_element_wise(*parts, _SEPARATOR))
    return pd.Series(digests, index=records.index, dtype=object)


def record_hash(record: dict[str, object]) -> str:
    """md5 hex of one record (a mapping of field name to value)."""
    text = SEPARATOR.join(canonical_text(record.get(name), FIELD_BY_NAME[name].kind) for name in HASH_FIELDS)
    return hashlib.md5(text.encode("utf-8")).hexdigest()
