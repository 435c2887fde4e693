"""The pandera schema of normalised seller records, and its failures as rejections the office can act on."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pc
from pandas.api.types import infer_dtype

from sync_pipeline.domain import kinds
from sync_pipeline.domain.contract import SheetContract, default_contract
from sync_pipeline.domain.fields import KEY_FIELD, FieldKind
from sync_pipeline.domain.normalise import Invalid
from sync_pipeline.domain.sheet import HeaderReport, Rejection, a1
from sync_pipeline.domain.textcols import fullmatch as tc_fullmatch
from sync_pipeline.domain.textcols import to_arrow, to_objects

if TYPE_CHECKING:  # pandera is imported when a sheet is validated: commands that only read the database skip it
    import pandera.pandas as pa

RULE_REQUIRED: Final = "required"
RULE_SELLER_NUMBER_FORMAT: Final = "seller_number_format"
RULE_DUPLICATE: Final = "duplicate_seller_number"
RULE_INVALID_DATE: Final = "invalid_date"  # 反響日 and 更新日時 alike: the field names which one
RULE_INVALID_AMOUNT: Final = "invalid_amount"
RULE_INVALID_EMAIL: Final = "invalid_email"
RULE_TOO_LONG: Final = "too_long"
RULES: Final = frozenset(
    {
        RULE_REQUIRED,
        RULE_SELLER_NUMBER_FORMAT,
        RULE_DUPLICATE,
        RULE_INVALID_DATE,
        RULE_INVALID_AMOUNT,
        RULE_INVALID_EMAIL,
        RULE_TOO_LONG,
        *kinds.RULES.values(),  # invalid_integer, invalid_decimal, invalid_boolean, invalid_choice
    }
)
_PANDERA_NOT_NULLABLE: Final = "not_nullable"  # pandera's own name for a null in a non-nullable column

# Column sizes of the database tables (adapters/store/tables.py; domain may not import it). A longer value would fail
# its whole write chunk in Postgres, so it is rejected here, with the cell, instead.
MAX_LENGTHS: Final[Mapping[str, int]] = {
    "seller_number": 32,
    "phone": 64,
    "email": 320,
    "status": 128,
    "property_type": 128,
}
VALUE_MAX_CHARS: Final = 200  # Rejection.value keeps this much of a cell: enough to recognise it, not a whole essay
MESSAGE_EXCERPT_CHARS: Final = 60  # the quote of the cell inside a message stays readable on one line
MAX_LISTED_ROWS: Final = 10  # a duplicate's message lists at most this many other rows, then "and N more"
# A seller-number pattern of capital letters then digits (^[A-Z]{2}\d{5}$): RE2 reads it as Python's re (ASCII) does.
_SIMPLE_PATTERN: Final = re.compile(r"\^?\[A-Z\]\{(\d+)\}\\d\{(\d+)\}\$?")
# What pandas' infer_dtype calls a column whose values (missing ones aside) are all of one type that is not Invalid.
_NEVER_INVALID: Final = frozenset({"empty", "string", "integer", "date", "datetime"})

_PARSE_RULES: Final[Mapping[FieldKind, str]] = {
    FieldKind.DATE: RULE_INVALID_DATE,
    FieldKind.DATETIME: RULE_INVALID_DATE,
    FieldKind.AMOUNT: RULE_INVALID_AMOUNT,
    FieldKind.EMAIL: RULE_INVALID_EMAIL,
    **{FieldKind(kind): rule for kind, rule in kinds.RULES.items()},
}
_FIX_HINTS: Final[Mapping[FieldKind, str]] = {
    FieldKind.DATE: "write a date like 2025/1/5 or 令和7年1月5日",
    FieldKind.DATETIME: "write a date and time like 2025/01/05 10:30",
    FieldKind.AMOUNT: "write whole yen like 12,000,000 or 1200万",
    FieldKind.EMAIL: "write it like name@example.com",
    **{FieldKind(kind): hint for kind, hint in kinds.FIX_HINTS.items()},
}


def seller_number_regex(pattern: str) -> re.Pattern[str]:
    """The configured seller-number pattern, compiled as it is applied: ASCII, so that \\d means 0-9 only (NFKC
    turns full-width digits into ASCII ones, but Arabic-Indic or Devanagari digits would otherwise pass)."""
    return re.compile(pattern, re.ASCII)


def _per_value(series: pd.Series, flags: Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]) -> pd.Series:
    """`flags` of each value of the column (an object ndarray in, a bool ndarray out), missing values False. A
    categorical column (as ingestion builds it) is flagged once per category and spread by its codes."""
    if isinstance(series.dtype, pd.ArrowDtype):
        return _per_text(series, lambda text: pyarrow.array(flags(to_objects(text)).astype(bool)))
    if isinstance(series.dtype, pd.CategoricalDtype):
        per_category = np.append(flags(series.cat.categories.to_numpy(dtype=object)).astype(bool), False)
        return pd.Series(per_category[series.cat.codes.to_numpy()], index=series.index, dtype=bool)
    return pd.Series(flags(series.to_numpy(dtype=object)).astype(bool), index=series.index, dtype=bool)


def _invalid_flags(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    if infer_dtype(values, skipna=True) in _NEVER_INVALID:  # one pass in C says every value is of one plain type
        return np.zeros(len(values), dtype=bool)
    return np.array([type(value) is Invalid for value in values], dtype=bool)  # a comprehension: 10x Series.map


def _is_invalid(series: pd.Series) -> pd.Series:
    return _per_value(series, _invalid_flags)


def _per_text(series: pd.Series, flags: Callable[[pyarrow.Array], pyarrow.Array]) -> pd.Series:
    """`flags` (Arrow text in, Arrow bool out) of each value of an Arrow-backed column, missing values False; over
    the dictionary only, when the column is a dictionary (as ingestion builds text columns)."""
    column = series.array.__arrow_array__()  # type: ignore[attr-defined]
    if pyarrow.types.is_dictionary(column.type):
        column = column.combine_chunks() if isinstance(column, pyarrow.ChunkedArray) else column
        result = flags(to_arrow(column.dictionary)).take(column.indices)
    else:
        result = flags(to_arrow(column))
    return pd.Series(pc.fill_null(result, False).to_numpy(zero_copy_only=False), index=series.index, dtype=bool)


def _too_long(series: pd.Series, limit: int) -> pd.Series:
    """Text longer than `limit` characters; None (or an Invalid in the e-mail column) never is. Counted by Arrow."""
    if isinstance(series.dtype, pd.ArrowDtype):  # text as ingestion hands it over: no Python strings at all
        return _per_text(series, lambda text: pc.greater(pc.utf8_length(text), limit))

    def flags(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if infer_dtype(values, skipna=False) == "string":  # all text: Python counts characters as Arrow does
            return np.fromiter(map(len, values), dtype=np.int64, count=len(values)) > limit
        lengths = pc.utf8_length(to_arrow(values))
        return np.asarray(pc.fill_null(pc.greater(lengths, limit), False).to_numpy(zero_copy_only=False))

    return _per_value(series, flags)


def _re2_twin(pattern: str) -> str | None:
    """The configured pattern as an RE2 pattern that matches exactly the same whole texts, when it is one of the
    simple letters-then-digits patterns `describe_pattern` names (the default among them); None for any other."""
    simple = _SIMPLE_PATTERN.fullmatch(pattern)
    return None if simple is None else f"[A-Z]{{{simple.group(1)}}}[0-9]{{{simple.group(2)}}}"


def _full_matches(series: pd.Series, pattern: re.Pattern[str]) -> pd.Series:
    """The configured (Python) pattern matches the whole text; None never does. A comprehension: 2x the .str path;
    for a simple pattern on Arrow text, RE2 over the column."""
    twin = _re2_twin(pattern.pattern)
    if twin is not None and isinstance(series.dtype, pd.ArrowDtype):
        return _per_text(series, lambda text: tc_fullmatch(text, twin))

    def flags(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if infer_dtype(values, skipna=False) == "string":  # all text (as the categories of a key column are)
            return np.array([m is not None for m in map(pattern.fullmatch, values)], dtype=bool)
        result = np.zeros(len(values), dtype=bool)
        text = np.flatnonzero([type(v) is str for v in values])
        result[text] = [m is not None for m in map(pattern.fullmatch, values[text])]
        return result

    return _per_value(series, flags)


def _no_longer_than(limit: int) -> pa.Check:
    import pandera.pandas as pa

    return pa.Check(lambda s: ~_too_long(s, limit), name=RULE_TOO_LONG)


@functools.lru_cache(maxsize=16)
def build_schema(
    seller_number_pattern: str, required_fields: tuple[str, ...], contract: SheetContract | None = None
) -> pa.DataFrameSchema:
    """The schema of the normalised record frame (object columns, index = sheet row) under these settings, one
    column per field of `contract` (default: the eleven built-in fields)."""
    import pandera.pandas as pa

    contract = contract or default_contract()
    key_pattern = seller_number_regex(seller_number_pattern)
    columns: dict[str, pa.Column] = {}
    for spec in contract.fields:
        checks: list[pa.Check] = []
        if spec.name == KEY_FIELD:
            checks.append(
                pa.Check(
                    lambda s: _full_matches(s, key_pattern),
                    name=RULE_SELLER_NUMBER_FORMAT,
                )
            )
            checks.append(pa.Check(lambda s: ~s.duplicated(keep=False), name=RULE_DUPLICATE))
        if spec.kind in _PARSE_RULES:
            checks.append(pa.Check(lambda s: ~_is_invalid(s), name=_PARSE_RULES[spec.kind]))
        if spec.name in MAX_LENGTHS:
            checks.append(_no_longer_than(MAX_LENGTHS[spec.name]))
        columns[spec.name] = pa.Column(
            dtype=None,
            checks=checks,
            nullable=spec.name not in required_fields and spec.name != KEY_FIELD,
            required=True,
        )
    return pa.DataFrameSchema(columns, strict=False, coerce=False, name="seller_records")


def describe_pattern(pattern: str) -> str:
    """The seller-number format in words, for messages: the default reads "two capital letters and five digits
    like AB12345"; any other pattern is quoted."""
    simple = _SIMPLE_PATTERN.fullmatch(pattern)
    if simple is None:
        return f"match the pattern {pattern}"
    letters, digits = int(simple.group(1)), int(simple.group(2))
    example = ("ABCDEFGHIJKLMNOPQRSTUVWXYZ" * letters)[:letters] + ("1234567890" * digits)[:digits]
    return (
        f"{_count(letters)} capital letter{'s' if letters != 1 else ''} and "
        f"{_count(digits)} digit{'s' if digits != 1 else ''} like {example}"
    )


_NUMBER_WORDS: Final = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _count(n: int) -> str:
    return _NUMBER_WORDS[n] if n < len(_NUMBER_WORDS) else str(n)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _excerpt(raw: object) -> str:
    return repr(_truncate(raw, MESSAGE_EXCERPT_CHARS)) if isinstance(raw, str) else "''"


def _rows_text(rows: Sequence[int]) -> str:
    listed = ", ".join(str(r) for r in rows[:MAX_LISTED_ROWS])
    more = len(rows) - MAX_LISTED_ROWS
    return f"{listed} and {more} more" if more > 0 else listed


def find_rejections(
    records: pd.DataFrame,
    raw: pd.DataFrame,
    header: HeaderReport,
    seller_number_pattern: str,
    required_fields: Sequence[str],
    contract: SheetContract | None = None,
) -> tuple[Rejection, ...]:
    """Validate the normalised records (index = sheet row) lazily and return one Rejection per bad cell.

    `raw` holds the cell text as read (same index, columns = mapped field names) for the messages.
    """
    if records.empty:
        return ()
    from pandera.errors import SchemaErrors

    contract = contract or default_contract()
    schema = build_schema(seller_number_pattern, tuple(required_fields), contract)
    try:
        schema.validate(records, lazy=True)
    except SchemaErrors as errors:
        failures = errors.failure_cases
    else:
        return ()

    keys = records[KEY_FIELD]
    readable = keys.where(
        _full_matches(keys, seller_number_regex(seller_number_pattern)) & ~_too_long(keys, MAX_LENGTHS[KEY_FIELD]),
        None,
    )
    duplicated = keys.notna() & keys.duplicated(keep=False)
    rows_by_key: dict[str, list[int]] = {}
    for key, row in zip(keys[duplicated].tolist(), keys[duplicated].index.tolist(), strict=True):
        rows_by_key.setdefault(key, []).append(int(row))

    rejections: list[Rejection] = []
    for failure in failures.itertuples(index=False):
        row_label = failure.index
        if row_label is None or pd.isna(row_label):
            # A column-level failure means the frame was built wrongly, not that the sheet is wrong.
            raise RuntimeError(f"seller record frame failed {failure.check!r} on column {failure.column!r}")
        sheet_row = int(row_label)  # type: ignore[call-overload]
        field = str(failure.column)
        check = str(failure.check)
        rule = RULE_REQUIRED if check == _PANDERA_NOT_NULLABLE else check
        raw_text = raw.at[sheet_row, field] if field in raw.columns else None
        col = header.columns.get(field)
        cell = a1(sheet_row, col) if col is not None else None
        label = header.mapping.get(field, contract.field(field).header)
        key = readable.at[sheet_row]
        written_key = keys.at[sheet_row]
        same_key = rows_by_key.get(written_key, []) if isinstance(written_key, str) else []
        message = _message(
            rule=rule,
            field=field,
            label=label,
            where=cell or f"row {sheet_row}",
            raw_text=raw_text,
            value=failure.failure_case,
            key=written_key,
            other_rows=[r for r in same_key if r != sheet_row],
            pattern=seller_number_pattern,
            required=field in required_fields,
            kind=contract.kind_of(field),
        )
        rejections.append(
            Rejection(
                sheet_row=sheet_row,
                rule=rule,
                message=message,
                cell=cell,
                column=label,
                field=field,
                value=_truncate(raw_text, VALUE_MAX_CHARS) if isinstance(raw_text, str) else None,
                seller_number=key if isinstance(key, str) else None,
            )
        )
    return tuple(rejections)


def _message(
    *,
    rule: str,
    field: str,
    label: str,
    where: str,
    raw_text: object,
    value: object,
    key: object,
    other_rows: Sequence[int],
    pattern: str,
    required: bool,
    kind: FieldKind,
) -> str:
    """What is wrong with one cell and what the office should do about it."""
    shown = _excerpt(raw_text)
    if rule == RULE_REQUIRED:
        return f"{label} in {where} is empty; fill it in (the row is not synced until then)."
    if rule == RULE_SELLER_NUMBER_FORMAT:
        return f"{label} in {where} is {shown}; it must be {describe_pattern(pattern)}."
    if rule == RULE_DUPLICATE:
        rows = "row" if len(other_rows) == 1 else "rows"
        return (
            f"{label} {key} in {where} is also on {rows} {_rows_text(other_rows)}; a seller must be on one row only. "
            "Delete or renumber the extra rows (none of them is synced until then)."
        )
    if rule == RULE_TOO_LONG:
        length = len(raw_text) if isinstance(raw_text, str) else 0
        return (
            f"{label} in {where} is {length} characters long; the database keeps at most "
            f"{MAX_LENGTHS[field]}. Shorten it."
        )
    reason = value.reason if isinstance(value, Invalid) else "it cannot be read"
    hint = _FIX_HINTS.get(kind, "correct it")
    return f"{label} in {where} is {shown}; {reason}. Please {hint}{'' if required else ', or leave it empty'}."
