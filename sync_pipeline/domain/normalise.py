"""Cell normalisation and typed parsing for the seller sheet: pure, column-wise, and every bad cell gets a reason.

Each reader takes a column of cleaned cell text (str or None) and returns a column of the same length holding the
typed value, None for an empty cell, or an `Invalid` carrying the reason the cell could not be read. The schema
(`domain.schema`) turns those `Invalid` values into rejections; nothing here decides whether a row is synced.

The work is done on Arrow string columns (`domain.textcols`), once per distinct cell (or cell by cell, when a column
hardly repeats itself), and only on the cells one scan finds in need of it; `normalise_value` sends one cell through
the very same code, so that a seller number typed by an operator is read as the sheet's would be.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sync_pipeline.domain import kinds
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
    dates_with_text,
    datetimes_with_text,
    parse_dates,
    parse_datetimes,
    read_dates,
    read_datetimes,
)
from sync_pipeline.domain.fields import FIELD_BY_NAME, FIELD_NAMES, FieldKind

if TYPE_CHECKING:
    from sync_pipeline.domain.contract import SheetContract
from sync_pipeline.domain.hashing import canonical_values, json_literal
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

# The characters that cleaning leaves as they are, alone and next to one another: no control or invisible character,
# NFKC-stable, no combining mark, never the second half of a composition (so no neighbour composes with them), and
# inside `textcols.ARROW_SAFE_RANGES` (no Hangul, whose composition is algorithmic). A cell made of these with no
# space at either end is its own cleaned text, so cleaning skips it: most cells of a Japanese sheet are. A test
# derives the list from unicodedata and checks every pair outside the CJK ideograph blocks.
CLEAN_STABLE_RANGES: Final[tuple[int | tuple[int, int], ...]] = (
    (0x0020, 0x007E), (0x00A1, 0x00A7), 0x00A9, (0x00AB, 0x00AC), 0x00AE, (0x00B0, 0x00B1), (0x00B6, 0x00B7), 0x00BB,
    (0x00BF, 0x00FF), 0x2010, (0x2012, 0x2016), (0x2018, 0x2023), 0x2027, (0x2030, 0x2032), 0x2035, (0x2038, 0x203B),
    0x203D, (0x203F, 0x2046), (0x204A, 0x2056), (0x2058, 0x205E), (0x206A, 0x206F), (0x3001, 0x3029), (0x3030, 0x3035),
    0x3037, (0x303B, 0x303F), (0x3041, 0x3096), (0x309D, 0x309E), (0x30A0, 0x30FE), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
)  # fmt: skip
# A cell cleaning may change: a character outside the stable ones, or a space at either end (the only whitespace
# character that is stable is the space itself).
_NEEDS_CLEANING: Final = f"{tc.char_class(CLEAN_STABLE_RANGES, negate=True)}|^ | $"


def clean_text(raw: pa.Array) -> pa.Array:
    """NFKC, invisible characters removed, control characters as spaces, trimmed; empty → null (Arrow in and out).

    The order is that of str.translate then str.normalize then str.strip, which it reproduces exactly.
    """
    text = tc.patch(  # one scan finds the cells with either kind (rare): those get both replacements
        raw,
        tc.matches(raw, f"{_CONTROL}|{_INVISIBLE}"),
        lambda part: pc.replace_substring_regex(pc.replace_substring_regex(part, _CONTROL, " "), _INVISIBLE, ""),
    )
    return tc.null_if_empty(tc.strip(tc.nfkc(text)))


def _series(values: np.ndarray[Any, Any], index: pd.Index) -> pd.Series:
    return pd.Series(values, index=index, dtype=object)


def clean_cells(series: pd.Series) -> pd.Series:
    """`clean_text` of an object column: str or None."""
    return _series(tc.to_objects(clean_text(tc.to_arrow(series.to_numpy(dtype=object)))), series.index)


# The kinds only a sheet contract's own fields have (stored in `sellers.attributes`), read by `domain.kinds`.
CONTRACT_KINDS: Final = frozenset({FieldKind.INTEGER, FieldKind.DECIMAL, FieldKind.BOOLEAN, FieldKind.CHOICE})
READ_BATCH_CELLS: Final = 65_536  # distinct cells read at once (see `read_distinct`)

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


def _text(cleaned: pa.Array) -> pa.Array:
    """Free text: internal runs of whitespace collapsed to one space."""
    return tc.null_if_empty(tc.replace(cleaned, tc.WHITESPACE_RUN, " "))


def _seller_number(cleaned: pa.Array) -> pa.Array:
    """The key: every space removed and upper-cased (ＡＡ００１２３ and 'aa 00123' → AA00123); zeros kept."""
    return tc.null_if_empty(tc.upper(tc.replace(cleaned, tc.WHITESPACE_RUN, "")))


def _phone(cleaned: pa.Array) -> pa.Array:
    """Phone numbers stay text (leading zeros survive); hyphen look-alikes become '-', spaces collapse."""
    return tc.null_if_empty(tc.replace(tc.replace(cleaned, _HYPHEN_LIKE, "-"), tc.WHITESPACE_RUN, " "))


_TEXT_READERS: Final[Mapping[FieldKind | None, Callable[[pa.Array], pa.Array]]] = {
    FieldKind.KEY: _seller_number,
    FieldKind.TEXT: _text,
    FieldKind.PHONE: _phone,
}
# Cells that cleaning or a text reader may change; any other cell is its own value. A seller number is left alone
# when it is printable ASCII with no space and no lower-case letter; other text when it needs no cleaning and has no
# run of spaces (nor, in a phone number, a hyphen look-alike).
_NEEDS_READING: Final[Mapping[FieldKind | None, str]] = {
    FieldKind.KEY: tc.char_class(((0x21, 0x60), (0x7B, 0x7E)), negate=True),
    FieldKind.TEXT: _NEEDS_CLEANING + "|  ",
    FieldKind.PHONE: f"{_NEEDS_CLEANING}|  |{_HYPHEN_LIKE}",
}


def _email(cleaned: pa.Array) -> np.ndarray[Any, Any]:
    """E-mail: the domain lower-cased (it is case-insensitive; the local part is left alone); others Invalid."""
    text, invalid = _email_text(cleaned)
    result = tc.to_objects(text)
    result[invalid] = _EMAIL_INVALID
    return result


def _email_text(cleaned: pa.Array) -> tuple[pa.Array, np.ndarray[Any, Any]]:
    """`_email` as Arrow text (null where empty or not an address) and which cells are not an address."""
    present = cleaned.is_valid().to_numpy(zero_copy_only=False)
    ok = tc.fullmatch(cleaned, _EMAIL)
    if not pc.any(ok).as_py():
        return pa.nulls(len(cleaned), tc.TEXT), present
    text = pc.if_else(ok, cleaned, pa.scalar(None, tc.TEXT))
    # An ASCII address without a capital letter is its own value (its domain is lower case already); only the others
    # are split at the first @ and get their domain lower-cased.
    plain = pc.and_(pc.string_is_ascii(cleaned), pc.equal(pc.ascii_lower(cleaned), cleaned))
    mixed = tc.mask(pc.and_(ok, pc.invert(plain)))
    if pc.any(mixed).as_py():
        parts = pc.extract_regex(cleaned.filter(mixed), "^(?P<local>[^@]+)@(?P<domain>.+)$")
        joined = pc.binary_join_element_wise(parts.field(0), tc.lower(parts.field(1)), pa.scalar("@", tc.TEXT))
        text = pc.replace_with_mask(text, mixed, joined)
    return text, present & ~ok.to_numpy(zero_copy_only=False)


# --- one column, one frame ------------------------------------------------------------------------------------


def read_text(cleaned: pa.Array, kind: FieldKind, timezone: str) -> np.ndarray[Any, Any]:
    """Read one Arrow column of cleaned cell text (see `clean_text`) as `kind`: an object ndarray."""
    if kind in _TEXT_READERS:
        return tc.to_objects(_TEXT_READERS[kind](cleaned))
    if kind is FieldKind.EMAIL:
        return _email(cleaned)
    if kind is FieldKind.DATE:
        return read_dates(cleaned)
    if kind is FieldKind.DATETIME:
        return read_datetimes(cleaned, timezone)
    if kind is FieldKind.AMOUNT:
        return parse_amounts(pd.Series(tc.to_objects(cleaned), dtype=object)).to_numpy(dtype=object)
    raise ValueError(f"no reader for field kind {kind!r}")


def read_column(cleaned: pd.Series, kind: FieldKind, timezone: str) -> pd.Series:
    """Read one column of cleaned cell text (see `clean_cells`) as `kind`."""
    return _series(read_text(tc.to_arrow(cleaned.to_numpy(dtype=object)), kind, timezone), cleaned.index)


def normalise_raw(
    raw: pa.Array, kind: FieldKind | None, timezone: str
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """One raw column (Arrow text) cleaned and read as `kind`, once per distinct cell.

    Returns the typed values (None when `kind` is None) and whether each cell is non-blank once cleaned.
    """
    column = read_distinct(raw, kind, timezone)
    present = tc.spread(column.present, column.indices, missing=False)
    if kind is None:
        return np.full(len(raw), None, dtype=object), present
    return tc.spread(column.values, column.indices), present


@dataclass(frozen=True)
class DistinctColumn:
    """One sheet column read once per distinct cell: `values[indices[i]]` is row i's value (-1: a missing cell)."""

    values: np.ndarray[Any, Any]  # object, per distinct cell: the typed value, None when empty, or Invalid
    present: np.ndarray[Any, Any]  # bool, per distinct cell: non-blank once cleaned
    indices: np.ndarray[Any, Any]  # per row
    canonical: pa.Array  # text, per distinct cell: the value's `hashing.canonical_text`; null for None and Invalid
    invalid: np.ndarray[Any, Any]  # bool, per distinct cell: the value is an Invalid
    repeats: bool = True  # whether cells were found to repeat (and read once each), or were read cell by cell

    def rows(self, positions: np.ndarray[Any, Any] | None = None) -> np.ndarray[Any, Any]:
        """The values of every row, or of the rows at `positions` (an object ndarray)."""
        return tc.spread(self.values, self.indices if positions is None else self.indices[positions])

    def categories(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """The distinct values without repeats (two cells can read alike: 'TK 00001' and 'tk00001'), None left out,
        and per distinct cell the position of its value among them (-1 for None). Found by Arrow over the values'
        canonical text, which tells values of one kind apart exactly as equality does."""
        identity = self.canonical
        if self.invalid.any():
            reasons = [f"\x00{v.reason}" for v in self.values[self.invalid]]
            identity = pc.replace_with_mask(identity, pa.array(self.invalid), pa.array(reasons, type=identity.type))
        _, codes = tc.distinct(identity)
        present = np.flatnonzero(codes >= 0)
        _, first = np.unique(codes[present], return_index=True)  # the first cell of each value stands for it
        return self.values[present[first]], codes


def read_distinct(
    raw: pa.Array | pa.ChunkedArray, kind: FieldKind | None, timezone: str, choices: tuple[str, ...] = ()
) -> DistinctColumn:
    """`normalise_raw`, kept per distinct cell (`textcols.distinct_or_cells`), read `READ_BATCH_CELLS` at a time: the
    temporaries of a batch stay small enough to be reused, where those of a million cells would be fresh memory for
    every step."""
    distinct, indices = tc.distinct_or_cells(raw)
    batches = [
        _read_cells(tc.combined(distinct.slice(start, READ_BATCH_CELLS)), kind, timezone, choices)
        for start in range(0, max(len(distinct), 1), READ_BATCH_CELLS)
    ]
    if len(batches) == 1:
        values, present, canonical, invalid = batches[0]
    else:
        parts = list(zip(*batches, strict=True))
        values, present, invalid = (np.concatenate(parts[i]) for i in (0, 1, 3))
        canonical = pa.concat_arrays(parts[2])
    return DistinctColumn(values, present, indices, canonical, invalid, repeats=len(distinct) < len(raw))


def _needs_cleaning(cells: pa.Array) -> pa.Array:
    """`matches(cells, _NEEDS_CLEANING)`, with the regex spared the cells of printable ASCII (most dates, amounts and
    e-mail addresses): all their characters are stable, so only a space at either end needs cleaning."""
    plain = pc.fill_null(pc.ascii_is_printable(cells), False).to_numpy(zero_copy_only=False)
    if not plain.any():
        return tc.matches(cells, _NEEDS_CLEANING)
    edged = pc.or_(pc.starts_with(cells, " "), pc.ends_with(cells, " "))
    work = plain & pc.fill_null(edged, False).to_numpy(zero_copy_only=False)
    if not plain.all():
        rest = pa.array(~plain)
        work[~plain] = tc.matches(cells.filter(rest), _NEEDS_CLEANING).to_numpy(zero_copy_only=False)
    return pa.array(work)


def _read_contract_kind(cells: np.ndarray[Any, Any], kind: FieldKind, choices: tuple[str, ...]) -> np.ndarray[Any, Any]:
    if kind is FieldKind.INTEGER:
        return kinds.read_integer(cells)
    if kind is FieldKind.DECIMAL:
        return kinds.read_decimal(cells)
    if kind is FieldKind.BOOLEAN:
        return kinds.read_boolean(cells)
    return kinds.read_choice(cells, choices)


def _read_cells(
    cells: pa.Array, kind: FieldKind | None, timezone: str, choices: tuple[str, ...] = ()
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], pa.Array, np.ndarray[Any, Any]]:
    """The values, presence, canonical text and invalidity (see `DistinctColumn`) of some distinct cells. Cells that
    one scan finds clean (`_NEEDS_CLEANING`, or for text kinds `_NEEDS_READING`) are their own value; only the others
    go through cleaning (and reading, for text)."""
    reader = _TEXT_READERS.get(kind)
    work = tc.matches(cells, _NEEDS_READING[kind]) if kind in _NEEDS_READING else _needs_cleaning(cells)
    cleaned = final = cells
    if pc.any(work).as_py():
        part = clean_text(cells.filter(work))
        cleaned = pc.replace_with_mask(cells, work, part)
        final = pc.replace_with_mask(cleaned, work, reader(part)) if reader is not None else cleaned
    cleaned = tc.null_if_empty(cleaned)
    present = cleaned.is_valid().to_numpy(zero_copy_only=False)
    invalid = np.zeros(len(cells), dtype=bool)
    if kind is None:
        return np.full(len(cells), None, dtype=object), present, pa.nulls(len(cells), tc.TEXT), invalid
    if reader is not None:
        canonical = tc.null_if_empty(final)
        values = tc.to_objects(canonical)
    elif kind is FieldKind.EMAIL:
        canonical, invalid = _email_text(cleaned)
        values = tc.to_objects(canonical)
        values[invalid] = _EMAIL_INVALID
    elif kind in (FieldKind.DATE, FieldKind.DATETIME):
        if kind is FieldKind.DATE:
            values, canonical, invalid = dates_with_text(cleaned)
        else:
            values, canonical, invalid = datetimes_with_text(cleaned, timezone)
    elif kind in CONTRACT_KINDS:
        # A contract's own kinds, read per distinct cell in Python (their columns repeat: ranks, flags, areas); the
        # canonical text is the value's JSON literal, the text its attribute is stored and hashed as.
        values = _read_contract_kind(tc.to_objects(cleaned), kind, choices)
        invalid = np.array([type(v) is Invalid for v in values], dtype=bool)
        literals = [None if v is None or bad else json_literal(v) for v, bad in zip(values, invalid, strict=True)]
        canonical = pa.array(literals, type=tc.TEXT)
    else:
        values = read_text(cleaned, kind, timezone)
        invalid = np.array([type(v) is Invalid for v in values], dtype=bool)
        plain = values.copy()
        plain[invalid] = None
        canonical = canonical_values(plain, kind)
        canonical = pc.if_else(pa.array(present & ~invalid), canonical, pa.scalar(None, tc.TEXT))
    return values, present, canonical.cast(tc.TEXT), invalid


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


def validation_records(
    columns: Mapping[str, DistinctColumn],
    positions: np.ndarray[Any, Any],
    index: pd.Index,
    contract: SheetContract | None = None,
) -> pd.DataFrame:
    """The typed record frame (columns `FIELD_NAMES`) of the rows at `positions`, on `index`, as the schema validates
    it, with as few Python objects per cell as each column allows: text as an Arrow dictionary over the column's
    text (no copy), a key that does not repeat as Arrow strings; a column whose cells repeat categorical over its
    values, so that its checks run once per value (object categories: typed values and Invalids); any other column of
    dates, amounts or e-mail addresses as the objects the `valid` frame holds. Absent fields are all missing."""
    frame: dict[str, pd.Series] = {}
    kinds_of = {f.name: f.kind for f in contract.fields} if contract is not None else _BUILTIN_KINDS
    for name, kind in kinds_of.items():
        column = columns.get(name)
        if column is None:
            frame[name] = pd.Series(pd.arrays.ArrowExtensionArray(pa.nulls(len(positions), tc.TEXT)), index=index)
        elif kind in (FieldKind.TEXT, FieldKind.PHONE):  # the text itself is not copied: a dictionary over it
            at = column.indices[positions]
            missing = (at < 0) | ~column.canonical.is_valid().to_numpy(zero_copy_only=False)[at]
            text = pa.DictionaryArray.from_arrays(pa.array(at, mask=missing), column.canonical)
            frame[name] = pd.Series(pd.arrays.ArrowExtensionArray(text), index=index)
        elif kind is FieldKind.KEY and not column.repeats:  # plain text, for pandas to find repeats
            at = column.indices[positions]
            text = column.canonical.take(pa.array(at, mask=at < 0))  # a missing cell (-1) takes a null
            frame[name] = pd.Series(pd.arrays.ArrowExtensionArray(text), index=index)
        elif column.repeats:
            uniques, distinct_codes = column.categories()
            codes = tc.spread(distinct_codes, column.indices[positions], missing=-1)
            dtype = pd.CategoricalDtype(pd.Index(uniques, dtype=object))
            frame[name] = pd.Series(pd.Categorical.from_codes(codes, dtype=dtype, validate=False), index=index)
        else:
            frame[name] = pd.Series(column.rows(positions), index=index, dtype=object)
    return pd.DataFrame(frame, index=index)


_BUILTIN_KINDS: Final[Mapping[str, FieldKind]] = {name: FIELD_BY_NAME[name].kind for name in FIELD_NAMES}

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
