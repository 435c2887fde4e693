"""Cell normalisation and typed parsing for the seller sheet: pure, vectorised, and every bad cell gets a reason.

Each parser takes a column of cleaned cell text (str or None) and returns a column of the same length holding the
typed value, None for an empty cell, or an `Invalid` carrying the reason the cell could not be read. The schema
(`domain.schema`) turns those `Invalid` values into rejections; nothing here decides whether a row is synced.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

import numpy as np
import pandas as pd

from sync_pipeline.domain.fields import FIELD_BY_NAME, FIELD_NAMES, FieldKind


@dataclass(frozen=True)
class Invalid:
    """A cell that could not be read as its field's kind; `reason` says what is wrong in plain words."""

    reason: str


# --- cleaning every cell --------------------------------------------------------------------------------------

# Invisible characters that survive NFKC and that spreadsheets and web forms leave behind: soft hyphen, zero-width
# space/joiners, direction marks and embeddings, word joiner, invisible operators, isolates, BOM. Lone surrogates
# cannot be encoded (the content hash is md5 of UTF-8), so they go too.
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
# One str.translate pass does both (several times faster than two regex substitutions).
_CLEANING_TABLE: Final[dict[int, str | None]] = {
    **{code: " " for code in CONTROL_CHARACTERS},
    **{code: None for code in INVISIBLE_CHARACTERS},
}
_WHITESPACE_RUN = re.compile(r"\s+")
_NORMAL_FORM: Final = "NFKC"  # full-width letters/digits → ASCII, half-width kana → full-width, NBSP/U+3000 → space


def _none_if_empty(series: pd.Series) -> pd.Series:
    """Object column with None wherever the cell is missing or empty."""
    obj = series.astype(object)
    return obj.where(obj.notna() & (obj != ""), None)


def clean_cells(series: pd.Series) -> pd.Series:
    """NFKC, invisible characters removed, control characters as spaces, trimmed; empty → None."""
    text = series.astype(object).where(series.notna(), None)
    text = text.str.translate(_CLEANING_TABLE).str.normalize(_NORMAL_FORM)
    return _none_if_empty(text.str.strip())


def normalise_text(cleaned: pd.Series) -> pd.Series:
    """Free text: internal runs of whitespace collapsed to one space."""
    return _none_if_empty(cleaned.str.replace(_WHITESPACE_RUN, " ", regex=True))


def normalise_seller_number(cleaned: pd.Series) -> pd.Series:
    """The key: every space removed and upper-cased (ＡＡ００１２３ and 'aa 00123' → AA00123); zeros kept."""
    return _none_if_empty(cleaned.str.replace(_WHITESPACE_RUN, "", regex=True).str.upper())


# Hyphen look-alikes typed in phone numbers: hyphen, non-breaking hyphen, figure dash, en/em dash, horizontal bar,
# minus sign, katakana prolonged sound mark (ー, the usual IME slip), its half-width form, small/full-width hyphen.
_HYPHEN_LIKE = re.compile(r"[\u2010-\u2015\u2212\u30fc\uff70\ufe63\uff0d\u2043\u02d7]")


def normalise_phone(cleaned: pd.Series) -> pd.Series:
    """Phone numbers stay text (leading zeros survive); hyphen look-alikes become '-', spaces collapse."""
    text = cleaned.str.replace(_HYPHEN_LIKE, "-", regex=True)
    return _none_if_empty(text.str.replace(_WHITESPACE_RUN, " ", regex=True))


# Deliberately loose: one @, something before it, a dotted domain after it, no spaces. Deliverability is not ours
# to judge; this catches a name or a phone number typed into the e-mail column.
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")
_EMAIL_REASON: Final = "it is not an e-mail address"


def normalise_email(cleaned: pd.Series) -> pd.Series:
    """E-mail: the domain lower-cased (it is case-insensitive; the local part is left alone)."""
    result = cleaned.astype(object).copy()
    present = cleaned.notna()
    ok = present & cleaned.str.fullmatch(_EMAIL).fillna(False).astype(bool)
    if ok.any():
        parts = cleaned[ok].str.rpartition("@")
        result[ok] = parts[0] + parts[1] + parts[2].str.lower()
    result[present & ~ok] = Invalid(_EMAIL_REASON)
    return result


# --- dates and times ------------------------------------------------------------------------------------------

# Google Sheets and Excel count days from 1899-12-30: Lotus 1-2-3 treated 1900 as a leap year, Excel kept the bug
# for compatibility, and Sheets moved the origin back one day so that serials after 1900-03-01 agree with Excel.
SERIAL_ORIGIN: Final = pd.Timestamp("1899-12-30")
_SERIAL_ORIGIN_SECONDS: Final = np.datetime64("1899-12-30T00:00:00", "s")
SECONDS_PER_DAY: Final = 86_400
# A bare number is read as a serial only inside this window (1950-01-01 .. 2199-12-31): smaller or larger numbers in
# a date column are typos or amounts, not dates anyone in the office typed.
MIN_DATE_SERIAL: Final = (pd.Timestamp("1950-01-01") - SERIAL_ORIGIN).days  # 18264
MAX_DATE_SERIAL: Final = (pd.Timestamp("2199-12-31") - SERIAL_ORIGIN).days + 1  # 109575: up to 2199-12-31 23:59
# Calendar years accepted at all: nothing in a seller sheet predates 1900, and a year past 2199 is a typo.
MIN_YEAR: Final = 1900
MAX_YEAR: Final = 2199

# First Gregorian year of each Japanese era: era year N is FIRST_YEAR + N - 1 ("元年", the first year, is 1).
# Reiwa began 2019-05-01, Heisei 1989-01-08, Showa 1926-12-25. Dates past an era's end (H31.5.1) are still read
# as the obvious Gregorian date: offices keep typing the old era for a while after it changes.
REIWA_FIRST_YEAR: Final = 2019
HEISEI_FIRST_YEAR: Final = 1989
SHOWA_FIRST_YEAR: Final = 1926
ERA_FIRST_YEAR: Final[Mapping[str, int]] = {
    "R": REIWA_FIRST_YEAR,
    "令和": REIWA_FIRST_YEAR,
    "H": HEISEI_FIRST_YEAR,
    "平成": HEISEI_FIRST_YEAR,
    "S": SHOWA_FIRST_YEAR,
    "昭和": SHOWA_FIRST_YEAR,
}
FIRST_ERA_YEAR_WORD: Final = "元"  # 令和元年 = Reiwa 1

_WEEKDAY = r"(?:\s*\([月火水木金土日]\))?"  # 2025/1/5(日): NFKC has already turned （） into ()
_TIME = r"(?:(?:\s*T\s*|\s+|(?<=日)\s*)(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.\d{1,9})?)?)?"
_ZONE = r"(?:\s*(?P<zone>Z|UTC|[+-]\d{2}:?\d{2}))?"
_TAIL = _WEEKDAY + _TIME + _ZONE
_ERA = r"(?P<era>令和|平成|昭和|[RHSrhs])\s*(?P<era_year>\d{1,2}|元)"

# Tried in order; the first that matches a cell wins. Separators must agree (2025/1-5 is not read).
_DATE_FORMS: Final[tuple[re.Pattern[str], ...]] = (
    re.compile(r"(?P<year>\d{4})(?P<sep>[/.\-])(?P<month>\d{1,2})(?P=sep)(?P<day>\d{1,2})" + _TAIL),
    re.compile(r"(?P<year>\d{4})\s*年\s*(?P<month>\d{1,2})\s*月\s*(?P<day>\d{1,2})\s*日" + _TAIL),
    re.compile(_ERA + r"(?P<sep>[/.\-])(?P<month>\d{1,2})(?P=sep)(?P<day>\d{1,2})" + _TAIL),
    re.compile(_ERA + r"\s*年\s*(?P<month>\d{1,2})\s*月\s*(?P<day>\d{1,2})\s*日" + _TAIL),
    re.compile(r"(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})"),  # 20250105, as some systems export
    re.compile(r"(?P<serial>\d{1,6}(?:\.\d+)?)"),  # a serial day number, fraction = time of day
)
_PARTS: Final = ("year", "month", "day", "hour", "minute", "second", "zone", "era", "era_year", "serial")
_TIME_LIMITS: Final = {"hour": 23, "minute": 59, "second": 59}
_MINUTES_PER_HOUR: Final = 60

_NOT_A_DATE: Final = "it is not a date in a form the sync reads"
_NO_SUCH_DATE: Final = "there is no such date"
_NO_SUCH_TIME: Final = "there is no such time of day"
_YEAR_OUT_OF_RANGE: Final = f"the year is outside {MIN_YEAR}–{MAX_YEAR}"
_SERIAL_OUT_OF_RANGE: Final = "the number is not a date serial (1950–2199)"


def _date_parts(cleaned: pd.Series) -> pd.DataFrame:
    """The components of each cell's first matching date form; all-None rows matched nothing."""
    parts = pd.DataFrame(None, index=cleaned.index, columns=list(_PARTS), dtype=object)
    remaining = cleaned.notna()
    for form in _DATE_FORMS:
        if not remaining.any():
            break
        found = cleaned[remaining].str.extract("^" + form.pattern + "$")
        hit = found.notna().any(axis=1)
        if hit.any():
            hits = found[hit]
            for name in hits.columns.intersection(list(_PARTS)):
                parts.loc[hits.index, name] = hits[name]
            remaining[hits.index] = False
    return parts


def _to_number(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column, errors="coerce")


def _moments(cleaned: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Naive timestamps as written, each row's UTC offset in minutes (NaN when none was written), and reasons."""
    parts = _date_parts(cleaned)
    reasons = pd.Series(None, index=cleaned.index, dtype=object)
    reasons[cleaned.notna()] = _NOT_A_DATE

    year = _to_number(parts["year"])
    era_rows = parts["era"].notna()
    if era_rows.any():
        era_first = parts.loc[era_rows, "era"].str.upper().map(ERA_FIRST_YEAR)
        era_year = _to_number(parts.loc[era_rows, "era_year"].replace(FIRST_ERA_YEAR_WORD, "1"))
        year[era_rows] = era_first + era_year - 1
    components = pd.DataFrame(
        {
            "year": year,
            "month": _to_number(parts["month"]),
            "day": _to_number(parts["day"]),
            **{name: _to_number(parts[name]).fillna(0) for name in _TIME_LIMITS},
        }
    )
    calendar = components["year"].notna()
    reasons[calendar] = None
    bad_year = calendar & ~components["year"].between(MIN_YEAR, MAX_YEAR)
    bad_time = calendar & pd.concat([components[name] > limit for name, limit in _TIME_LIMITS.items()], axis=1).any(
        axis=1
    )
    usable = calendar & ~bad_year & ~bad_time
    stamps = pd.Series(pd.NaT, index=cleaned.index, dtype="datetime64[us]")
    if usable.any():
        stamps[usable] = pd.to_datetime(components[usable], errors="coerce")
    reasons[bad_year] = _YEAR_OUT_OF_RANGE
    reasons[bad_time] = _NO_SUCH_TIME
    reasons[usable & stamps.isna()] = _NO_SUCH_DATE

    serial = _to_number(parts["serial"])
    serial_rows = serial.notna()
    in_window = serial_rows & serial.between(MIN_DATE_SERIAL, MAX_DATE_SERIAL)
    if in_window.any():
        # Whole seconds (float days carry sub-second noise), added in second resolution: a nanosecond timedelta
        # overflows past 292 years, well inside the window.
        seconds = np.round(serial[in_window].to_numpy(dtype=float) * SECONDS_PER_DAY).astype("int64")
        moments = _SERIAL_ORIGIN_SECONDS + seconds.astype("timedelta64[s]")
        stamps[in_window] = pd.Series(moments.astype("datetime64[us]"), index=serial[in_window].index)
    reasons[in_window] = None
    reasons[serial_rows & ~in_window] = _SERIAL_OUT_OF_RANGE

    offsets = _zone_offsets(parts["zone"])
    return stamps.dt.floor("s"), offsets, reasons


def _zone_offsets(zone: pd.Series) -> pd.Series:
    """Minutes east of UTC for each written zone (Z, UTC, +09:00, +0900); NaN where none was written."""
    text = zone.astype(object).replace({"Z": "+00:00", "UTC": "+00:00"})
    found = text.str.extract(r"^(?P<sign>[+-])(?P<hours>\d{2}):?(?P<minutes>\d{2})$")
    sign = found["sign"].map({"+": 1, "-": -1})
    hours = _to_number(found["hours"])
    minutes = _to_number(found["minutes"])
    return sign * (hours * _MINUTES_PER_HOUR + minutes)


def _put(column: np.ndarray, mask: pd.Series, values: Iterable[object]) -> None:
    """Place Python objects at the masked positions of an object array.

    Assigning a Series into a masked Series lets pandas re-infer the dtype (ints turn into floats, datetimes into
    Timestamps); the snapshot promises plain Python values, so they are placed positionally instead.
    """
    positions = np.flatnonzero(mask.to_numpy(dtype=bool))
    column[positions] = np.fromiter(values, dtype=object, count=len(positions))


def _with_reasons(index: pd.Index, ok: pd.Series, values: Iterable[object], reasons: pd.Series) -> pd.Series:
    """Object column: the value where `ok`, Invalid(reason) where there is a reason, None elsewhere."""
    column = np.full(len(index), None, dtype=object)
    _put(column, ok, values)
    bad = reasons.notna()
    _put(column, bad, (Invalid(reason) for reason in reasons[bad]))
    return pd.Series(column, index=index, dtype=object)


def parse_dates(cleaned: pd.Series) -> pd.Series:
    """Calendar dates (`datetime.date`): 2025/1/5, 2025-01-05, 2025.1.5, 2025年1月5日, R7.1.5, 令和7年1月5日,
    20250105 and sheet serials. A time of day, if written, is dropped."""
    stamps, _, reasons = _moments(cleaned)
    ok = stamps.notna() & reasons.isna()
    return _with_reasons(cleaned.index, ok, stamps[ok].dt.date, reasons)


def parse_datetimes(cleaned: pd.Series, timezone: str) -> pd.Series:
    """Timestamps as naive UTC `datetime`s: the date forms of `parse_dates`, optionally with HH:MM[:SS] and a zone.
    Without a zone the time is local time in `timezone`."""
    stamps, offsets, reasons = _moments(cleaned)
    utc = pd.Series(pd.NaT, index=cleaned.index, dtype="datetime64[us]")
    ok = stamps.notna() & reasons.isna()
    zoned = ok & offsets.notna()
    if zoned.any():
        utc[zoned] = stamps[zoned] - pd.to_timedelta(offsets[zoned], unit="min")
    local = ok & offsets.isna()
    if local.any():
        # A local time that a clock change skips or repeats is refused rather than guessed (never in Asia/Tokyo).
        placed = stamps[local].dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
        utc[local] = placed.dt.tz_convert("UTC").dt.tz_localize(None)
        reasons[local & utc.isna()] = f"that local time does not exist or is ambiguous in {timezone}; add a zone"
    good = utc.notna() & reasons.isna()
    return _with_reasons(cleaned.index, good, (ts.to_pydatetime() for ts in utc[good]), reasons)


# --- amounts --------------------------------------------------------------------------------------------------

# Largest amount the database column holds (BIGINT); anything bigger cannot be a property valuation anyway.
MAX_AMOUNT_YEN: Final = 2**63 - 1
_MAX_PLAIN_DIGITS: Final = 18  # every 18-digit number fits in int64, so the plain path converts without overflow
# Japanese numeral units in an amount: 1,200万 = 12,000,000; 1.5億 = 150,000,000; 3億2000万; 5千万 = 50,000,000.
BIG_UNITS: Final[Mapping[str, int]] = {"億": 10**8, "万": 10**4}
SMALL_UNITS: Final[Mapping[str, int]] = {"千": 10**3}

# A leading minus sign or the ▲/△ marks Japanese books use for negatives, or (accounting parentheses).
_NEGATIVE = re.compile(r"^(?:[-−▲△]|\((?=.*\)$))")
_ACCOUNTING_CLOSE = re.compile(r"\)$")
# The yen sign (¥; ￥ becomes ¥ under NFKC; in Shift_JIS files it often decodes as a backslash), "円" at the end,
# and the trailing dash of receipts (¥12,000,000-).
_CURRENCY = re.compile(r"^(?:JPY|[¥\\])|(?:円|JPY)?-?$")
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?:\D|$))")
_PLAIN = re.compile(r"\d+(?:\.0+)?")
_WITH_UNITS = re.compile(r"(?:\d+(?:\.\d+)?[億万千]+)+(?:\d+(?:\.\d+)?)?")  # the tokenizer checks the order
_FRACTION = re.compile(r"\d+\.\d+")
_UNIT_TOKEN = re.compile(r"\d+(?:\.\d+)?|[億万千]")

_NOT_AN_AMOUNT: Final = "it is not an amount of yen"
_NEGATIVE_AMOUNT: Final = "it is negative"
_FRACTIONAL_AMOUNT: Final = "it is not a whole number of yen"
_TOO_LARGE_AMOUNT: Final = "it is too large to be an amount of yen"


def _unit_amount(text: str) -> int | Invalid:
    """One amount written with 億/万/千 (rare enough that a per-cell loop is the clear way). Exact arithmetic:
    1.5億 is 150,000,000 and 1.23456万 is not a whole number of yen."""
    total = Fraction(0)
    group = Fraction(0)  # the part before the next big unit, e.g. 5千 in 3億5千万
    pending: Fraction | None = None  # the number just read, waiting for its unit
    last_big: int | None = None
    small_seen = False
    for token in _UNIT_TOKEN.findall(text):
        if token in BIG_UNITS:
            unit = BIG_UNITS[token]
            if (pending is None and not small_seen) or (last_big is not None and unit >= last_big):
                return Invalid(_NOT_AN_AMOUNT)
            total += (group + (pending or 0)) * unit
            group, pending, last_big, small_seen = Fraction(0), None, unit, False
        elif token in SMALL_UNITS:
            if pending is None or small_seen:
                return Invalid(_NOT_AN_AMOUNT)
            group += pending * SMALL_UNITS[token]
            pending, small_seen = None, True
        else:
            pending = Fraction(token)
    total += group + (pending or 0)
    if total.denominator != 1:
        return Invalid(_FRACTIONAL_AMOUNT)
    if total > MAX_AMOUNT_YEN:
        return Invalid(_TOO_LARGE_AMOUNT)
    return int(total)


def parse_amounts(cleaned: pd.Series) -> pd.Series:
    """Whole yen as int: 12,000,000 / ¥12,000,000 / ￥… / 12000000円 / 1,200万 / 1200万円 / 1.5億 / 3億2000万.
    Negative, fractional or non-numeric cells are Invalid."""
    text = cleaned.str.replace(_WHITESPACE_RUN, "", regex=True)
    negative = text.str.contains(_NEGATIVE, regex=True).fillna(False).astype(bool)
    body = text.str.replace(_NEGATIVE, "", regex=True)
    body = body.where(~negative, body.str.replace(_ACCOUNTING_CLOSE, "", regex=True))
    body = body.str.replace(_CURRENCY, "", regex=True).str.replace(_THOUSANDS_COMMA, "", regex=True)

    present = cleaned.notna()
    reasons = pd.Series(None, index=cleaned.index, dtype=object)
    reasons[present] = _NOT_AN_AMOUNT

    plain = present & body.str.fullmatch(_PLAIN).fillna(False).astype(bool)
    digits = body.where(plain).str.replace(r"\.0+$", "", regex=True).str.lstrip("0").replace("", "0")
    fits = plain & (digits.str.len() <= _MAX_PLAIN_DIGITS).fillna(False).astype(bool)
    reasons[fits] = None
    reasons[plain & ~fits] = _TOO_LARGE_AMOUNT
    reasons[present & ~plain & body.str.fullmatch(_FRACTION).fillna(False).astype(bool)] = _FRACTIONAL_AMOUNT
    amounts = np.full(len(cleaned), None, dtype=object)
    _put(amounts, fits, digits[fits].astype("int64").tolist())  # tolist: Python ints, not numpy ones

    with_units = present & ~plain & body.str.fullmatch(_WITH_UNITS).fillna(False).astype(bool)
    if with_units.any():
        parsed = body[with_units].map(_unit_amount)
        failed = parsed.map(lambda v: isinstance(v, Invalid)).astype(bool)
        reasons[parsed[failed].index] = [v.reason for v in parsed[failed]]
        reasons[parsed[~failed].index] = None
        _put(amounts, with_units & ~failed.reindex(cleaned.index, fill_value=True), parsed[~failed])

    reasons[negative & reasons.isna()] = _NEGATIVE_AMOUNT
    ok = present & reasons.isna()
    return _with_reasons(cleaned.index, ok, amounts[ok.to_numpy()], reasons)


# --- one column, one frame ------------------------------------------------------------------------------------


def read_column(cleaned: pd.Series, kind: FieldKind, timezone: str) -> pd.Series:
    """Read one column of cleaned cell text (see `clean_cells`) as `kind`."""
    if kind is FieldKind.KEY:
        return normalise_seller_number(cleaned)
    if kind is FieldKind.PHONE:
        return normalise_phone(cleaned)
    if kind is FieldKind.EMAIL:
        return normalise_email(cleaned)
    if kind is FieldKind.DATE:
        return parse_dates(cleaned)
    if kind is FieldKind.DATETIME:
        return parse_datetimes(cleaned, timezone)
    if kind is FieldKind.AMOUNT:
        return parse_amounts(cleaned)
    return normalise_text(cleaned)


def normalise_column(raw: pd.Series, kind: FieldKind, timezone: str) -> pd.Series:
    """Clean one column of raw cell text and read it as `kind`."""
    return read_column(clean_cells(raw), kind, timezone)


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


def normalise_records(raw: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """`read_records` of raw cell text: every column cleaned first."""
    return read_records(raw.apply(clean_cells) if len(raw.columns) else raw, timezone)


# --- one value (for callers outside the hot path, and for tests) ----------------------------------------------

ParsedValue = str | int | dt.date | dt.datetime | Invalid | None


def normalise_value(text: str | None, kind: FieldKind, timezone: str = "Asia/Tokyo") -> ParsedValue:
    """One cell through the same code as a whole column: the typed value, None when empty, or Invalid."""
    value = normalise_column(pd.Series([text], dtype=object), kind, timezone).iloc[0]
    if isinstance(value, np.integer):
        return int(value)
    return value  # type: ignore[no-any-return]
