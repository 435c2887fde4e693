"""Cell normalisation and typed parsing for the seller sheet: pure, column-wise, and every bad cell gets a reason.

Each reader takes a column of cleaned cell text (str or None) and returns a column of the same length holding the
typed value, None for an empty cell, or an `Invalid` carrying the reason the cell could not be read. The schema
(`domain.schema`) turns those `Invalid` values into rejections; nothing here decides whether a row is synced.

The work is done on Arrow string columns (`domain.textcols`), once per distinct cell; `normalise_value` sends one
cell through the very same code, so that a seller number typed by an operator is read as the sheet's would be.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sync_pipeline.domain import textcols as tc
from sync_pipeline.domain.amounts import (
    BIG_UNITS,
    MAX_AMOUNT_YEN,
    SMALL_UNITS,
    parse_amounts,
)
from sync_pipeline.domain.dates import (
    ERA_FIRST_YEAR,
    FIRST_ERA_YEAR_WORD,
    HEISEI_FIRST_YEAR,
    MAX_DATE_SERIAL,
    MAX_YEAR,
    MIN_DATE_SERIAL,
    MIN_YEAR,
    REIWA_FIRST_YEAR,
    SECONDS_PER_DAY,
    SERIAL_ORIGIN,
    SHOWA_FIRST_YEAR,
    parse_dates,
    parse_datetimes,
)
from sync_pipeline.domain.fields import FIELD_BY_NAME, FIELD_NAMES, FieldKind
from sync_pipeline.domain.values import Invalid

__all__ = [
    "BIG_UNITS",
    "ERA_FIRST_YEAR",
    "FIRST_ERA_YEAR_WORD",
    "HEISEI_FIRST_YEAR",
    "MAX_AMOUNT_YEN",
    "MAX_DATE_SERIAL",
    "MAX_YEAR",
    "MIN_DATE_SERIAL",
    "MIN_YEAR",
    "REIWA_FIRST_YEAR",
    "SECONDS_PER_DAY",
    "SERIAL_ORIGIN",
    "SHOWA_FIRST_YEAR",
    "SMALL_UNITS",
    "Invalid",
    "clean_cells",
    "clean_text",
    "normalise_column",
    "normalise_value",
    "parse_amounts",
    "parse_dates",
    "parse_datetimes",
    "read_column",
    "read_records",
]

# --- cleaning every cell --------------------------------------------------------------------------------------

# Invisible characters that survive NFKC and that spreadsheets and web forms leave behind: soft hyphen, zero-width
# space/joiners, direction marks and embeddings, word joiner, invisible operators, isolates, BOM. Lone surrogates
# cannot be encoded (the content hash is md5 of UTF-8), so they go too (`textcols.to_arrow` drops them).
INVISIBLE_CHARACTERS: Final = (
    0x00AD,
    0xFEFF,
    *range(0x200B, 0x2010),
    *range(0x202A, 0x202F),
    *range(0x2060, 0x2065),
    *range(0x2066, 0x206A),
    *range(0xD800, 0xE000),
)
# Control characters become spaces: a tab or newline inside a cell separates words; others (incl. \x1f, the
# separator of the content hash) must never reach the database.
CONTROL_CHARACTERS: Final = (*range(0x00, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)
_CONTROL: Final = tc.char_class(CONTROL_CHARACTERS)
_INVISIBLE: Final = tc.char_class(c for c in INVISIBLE_CHARACTERS if not 0xD800 <= c < 0xE000)


def clean_text(raw: pa.Array) -> pa.Array:
    """NFKC, invisible characters removed, control characters as spaces, trimmed; empty → null (Arrow in and out).

    The order is that of str.translate then str.normalize then str.strip, which it reproduces exactly.
    """
    text = tc.replace(tc.replace(raw, _CONTROL, " "), _INVISIBLE, "")
    return tc.null_if_empty(tc.strip(tc.nfkc(text)))


def _series(values: np.ndarray[Any, Any], index: pd.Index) -> pd.Series:
    return pd.Series(values, index=index, dtype=object)


def clean_cells(series: pd.Series) -> pd.Series:
    """`clean_text` of an object column: str or None."""
    return _series(tc.to_objects(clean_text(tc.to_arrow(series.to_numpy(dtype=object)))), series.index)


# --- text kinds -----------------------------------------------------------------------------------------------

# Hyphen look-alikes typed in phone numbers: hyphen, non-breaking hyphen, figure dash, en/em dash, horizontal bar,
# minus sign, katakana prolonged sound mark (ー, the usual IME slip), its half-width form, small/full-width hyphen.
_HYPHEN_LIKE: Final = tc.char_class(((0x2010, 0x2015), 0x2212, 0x30FC, 0xFF70, 0xFE63, 0xFF0D, 0x2043, 0x02D7))

# Deliberately loose: one @, something before it, a dotted domain after it, no spaces. Deliverability is not ours
# to judge; this catches a name or a phone number typed into the e-mail column. (Python's [^@\s.]+@… spelled out.)
_NOT_AT_OR_SPACE: Final = tc.char_class((0x40, *tc.WHITESPACE_CODES), negate=True)
_NOT_AT_SPACE_OR_DOT: Final = tc.char_class((0x40, 0x2E, *tc.WHITESPACE_CODES), negate=True)
_EMAIL: Final = f"{_NOT_AT_OR_SPACE}+@{_NOT_AT_SPACE_OR_DOT}+(?:\\.{_NOT_AT_SPACE_OR_DOT}+)+"
_EMAIL_REASON: Final = "it is not an e-mail address"
_EMAIL_INVALID: Final = Invalid(_EMAIL_REASON)


def _text(cleaned: pa.Array) -> np.ndarray[Any, Any]:
    """Free text: internal runs of whitespace collapsed to one space."""
    return tc.to_objects(tc.null_if_empty(tc.replace(cleaned, tc.WHITESPACE_RUN, " ")))


def _seller_number(cleaned: pa.Array) -> np.ndarray[Any, Any]:
    """The key: every space removed and upper-cased (ＡＡ００１２３ and 'aa 00123' → AA00123); zeros kept."""
    return tc.to_objects(tc.null_if_empty(tc.upper(tc.replace(cleaned, tc.WHITESPACE_RUN, ""))))


def _phone(cleaned: pa.Array) -> np.ndarray[Any, Any]:
    """Phone numbers stay text (leading zeros survive); hyphen look-alikes become '-', spaces collapse."""
    text = tc.replace(tc.replace(cleaned, _HYPHEN_LIKE, "-"), tc.WHITESPACE_RUN, " ")
    return tc.to_objects(tc.null_if_empty(text))


def _email(cleaned: pa.Array) -> np.ndarray[Any, Any]:
    """E-mail: the domain lower-cased (it is case-insensitive; the local part is left alone); others Invalid."""
    present = cleaned.is_valid().to_numpy(zero_copy_only=False)
    ok = tc.fullmatch(cleaned, _EMAIL)
    result = np.full(len(cleaned), None, dtype=object)
    result[present] = _EMAIL_INVALID
    if pc.any(ok).as_py():
        parts = pc.extract_regex(cleaned.filter(ok), "^(?P<local>[^@]+)@(?P<domain>.+)$")
        joined = pc.binary_join_element_wise(parts.field(0), tc.lower(parts.field(1)), pa.scalar("@", tc.TEXT))
        result[ok.to_numpy(zero_copy_only=False)] = tc.to_objects(joined)
    return result


# --- one column, one frame ------------------------------------------------------------------------------------


def read_text(cleaned: pa.Array, kind: FieldKind, timezone: str) -> np.ndarray[Any, Any]:
    """Read one Arrow column of cleaned cell text (see `clean_text`) as `kind`: an object ndarray."""
    if kind is FieldKind.KEY:
        return _seller_number(cleaned)
    if kind is FieldKind.PHONE:
        return _phone(cleaned)
    if kind is FieldKind.EMAIL:
        return _email(cleaned)
    if kind in (FieldKind.DATE, FieldKind.DATETIME, FieldKind.AMOUNT):
        series = pd.Series(tc.to_objects(cleaned), dtype=object)
        if kind is FieldKind.DATE:
            parsed = parse_dates(series)
        elif kind is FieldKind.DATETIME:
            parsed = parse_datetimes(series, timezone)
        else:
            parsed = parse_amounts(series)
        return parsed.to_numpy(dtype=object)
    return _text(cleaned)


def read_column(cleaned: pd.Series, kind: FieldKind, timezone: str) -> pd.Series:
    """Read one column of cleaned cell text (see `clean_cells`) as `kind`."""
    return _series(read_text(tc.to_arrow(cleaned.to_numpy(dtype=object)), kind, timezone), cleaned.index)


def normalise_raw(
    raw: pa.Array, kind: FieldKind | None, timezone: str
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """One raw column (Arrow text) cleaned and read as `kind`, once per distinct cell.

    Returns the typed values (None when `kind` is None) and whether each cell is non-blank once cleaned.
    """

    distinct, indices = tc.distinct(raw)
    cleaned = clean_text(distinct)
    present = tc.spread(cleaned.is_valid().to_numpy(zero_copy_only=False), indices, missing=False)
    if kind is None:
        return np.full(len(raw), None, dtype=object), present
    return tc.spread(read_text(cleaned, kind, timezone), indices), present


def normalise_column(raw: pd.Series, kind: FieldKind, timezone: str) -> pd.Series:
    """Clean one column of raw cell text and read it as `kind`."""
    values, _ = normalise_raw(tc.to_arrow(raw.to_numpy(dtype=object)), kind, timezone)
    return _series(values, raw.index)


def read_records(cleaned: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """The typed record frame (columns `FIELD_NAMES`, object dtype) from cleaned cell text keyed by field name.

    Fields absent from `cleaned` come out as all-None columns; the index (the sheet row) is kept.
    """
    columns: dict[str, pd.Series] = {}
    for name in FIELD_NAMES:
        if name in cleaned.columns:
            columns[name] = read_column(cleaned[name], FIELD_BY_NAME[name].kind, timezone)
        else:
            columns[name] = pd.Series(None, index=cleaned.index, dtype=object)
    return pd.DataFrame(columns, index=cleaned.index)


def records_frame(values: Mapping[str, np.ndarray[Any, Any]], index: pd.Index) -> pd.DataFrame:
    """The typed record frame from typed columns by field name; absent fields are all None."""
    missing = np.full(len(index), None, dtype=object)
    return pd.DataFrame(
        {name: pd.Series(values.get(name, missing), index=index, dtype=object) for name in FIELD_NAMES},
        index=index,
    )


# --- one value (for callers outside the hot path: an operator's seller number, tests) -------------------------

ParsedValue = str | int | dt.date | dt.datetime | Invalid | None


def normalise_value(text: str | None, kind: FieldKind, timezone: str = "Asia/Tokyo") -> ParsedValue:
    """One cell through the same code as a whole column: the typed value, None when empty, or Invalid.

    `normalise_value(text, FieldKind.KEY)` is THE normalisation of a seller number typed anywhere.
    """
    value = normalise_column(pd.Series([text], dtype=object), kind, timezone).iloc[0]
    if isinstance(value, np.integer):
        return int(value)
    return value  # type: ignore[no-any-return]
