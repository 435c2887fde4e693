"""Dates and times in a seller sheet: every form offices type, read column-wise, with a reason for each bad cell.

Most cells are read by RE2 over the whole column (Arrow): the forms are spelled for cells made of ASCII and the few
kanji the forms use, where `\\d` can only be 0-9 and `\\s` only a space, so they match exactly what the Python forms
match. Any other cell (Arabic-Indic digits, say) goes through the Python forms themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sync_pipeline.domain.textcols import fullmatch, to_arrow
from sync_pipeline.domain.values import with_reasons

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

# The reference forms, tried in order; the first that matches a cell wins. Separators must agree (2025/1-5 is not read).
_DATE_FORMS: Final[tuple[re.Pattern[str], ...]] = (
    re.compile(r"(?P<year>\d{4})(?P<sep>[/.\-])(?P<month>\d{1,2})(?P=sep)(?P<day>\d{1,2})" + _TAIL),
    re.compile(r"(?P<year>\d{4})\s*年\s*(?P<month>\d{1,2})\s*月\s*(?P<day>\d{1,2})\s*日" + _TAIL),
    re.compile(_ERA + r"(?P<sep>[/.\-])(?P<month>\d{1,2})(?P=sep)(?P<day>\d{1,2})" + _TAIL),
    re.compile(_ERA + r"\s*年\s*(?P<month>\d{1,2})\s*月\s*(?P<day>\d{1,2})\s*日" + _TAIL),
    re.compile(r"(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})"),  # 20250105, as some systems export
    re.compile(r"(?P<serial>\d{1,6}(?:\.\d+)?)"),  # a serial day number, fraction = time of day
)

# The same forms in RE2 for cells of FAST_CHARS only (no backreferences or lookbehind in RE2): one pattern per
# separator instead of (?P=sep), and after 日 a time may follow with no space unless a weekday came between
# (the lookbehind (?<=日)); the second spelling of the time's groups ends in 2.
FAST_CHARS: Final = r"[\x{20}-\x{7E}年月日火水木金土令和平成昭元]"
_D = "[0-9]"
_FAST_WEEKDAY = r"(?: *\([月火水木金土日]\))"


def _fast_time(suffix: str) -> str:
    return (
        f"(?P<hour{suffix}>[0-9]{{1,2}}):(?P<minute{suffix}>[0-9]{{2}})"
        f"(?::(?P<second{suffix}>[0-9]{{2}})(?:\\.[0-9]{{1,9}})?)?"
    )


_FAST_ZONE = f"(?: *(?P<zone>Z|UTC|[+-]{_D}{{2}}:?{_D}{{2}}))?"
_FAST_SEP_TAIL = _FAST_WEEKDAY + "?" + f"(?:(?: *T *| +){_fast_time('')})?" + _FAST_ZONE
_FAST_KANJI_TAIL = (
    f"(?:{_FAST_WEEKDAY}(?:(?: *T *| +){_fast_time('')})?|(?:(?: *T *| *){_fast_time('2')})?)" + _FAST_ZONE
)
_FAST_ERA = f"(?P<era>令和|平成|昭和|[RHSrhs]) *(?P<era_year>{_D}{{1,2}}|元)"
_FAST_FORMS: Final[tuple[str, ...]] = (
    *(
        f"(?P<year>{_D}{{4}}){s}(?P<month>{_D}{{1,2}}){s}(?P<day>{_D}{{1,2}}){_FAST_SEP_TAIL}"
        for s in ("/", r"\.", "-")
    ),
    f"(?P<year>{_D}{{4}}) *年 *(?P<month>{_D}{{1,2}}) *月 *(?P<day>{_D}{{1,2}}) *日{_FAST_KANJI_TAIL}",
    *(f"{_FAST_ERA}{s}(?P<month>{_D}{{1,2}}){s}(?P<day>{_D}{{1,2}}){_FAST_SEP_TAIL}" for s in ("/", r"\.", "-")),
    f"{_FAST_ERA} *年 *(?P<month>{_D}{{1,2}}) *月 *(?P<day>{_D}{{1,2}}) *日{_FAST_KANJI_TAIL}",
    f"(?P<year>{_D}{{4}})(?P<month>{_D}{{2}})(?P<day>{_D}{{2}})",
    f"(?P<serial>{_D}{{1,6}}(?:\\.{_D}+)?)",
)
_NUMBER_PARTS: Final = ("year", "month", "day", "hour", "minute", "second", "era_year")
_TEXT_PARTS: Final = ("era", "zone", "serial")
_PARTS: Final = (*_NUMBER_PARTS, *_TEXT_PARTS)
_TIME_LIMITS: Final = {"hour": 23, "minute": 59, "second": 59}
_MINUTES_PER_HOUR: Final = 60

_NOT_A_DATE: Final = "it is not a date in a form the sync reads"
_NO_SUCH_DATE: Final = "there is no such date"
_NO_SUCH_TIME: Final = "there is no such time of day"
_YEAR_OUT_OF_RANGE: Final = f"the year is outside {MIN_YEAR}–{MAX_YEAR}"
_SERIAL_OUT_OF_RANGE: Final = "the number is not a date serial (1950–2199)"


def _to_number(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column, errors="coerce")


def _python_parts(cleaned: pd.Series) -> pd.DataFrame:
    """The reference: each cell's first matching Python form, its numbers converted by pandas."""
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
    era_year = parts["era_year"].where(parts["era_year"] != FIRST_ERA_YEAR_WORD, "1")
    numbers = {name: _to_number(parts[name]) for name in _NUMBER_PARTS if name != "era_year"}
    return pd.DataFrame(
        {**numbers, "era_year": _to_number(era_year), **{name: parts[name] for name in _TEXT_PARTS}},
        index=cleaned.index,
    )


def _fast_parts(text: pa.Array) -> dict[str, np.ndarray[Any, Any]]:
    """The RE2 forms over cells of FAST_CHARS: numbers as float (NaN when absent), era/zone/serial as text or None."""
    n = len(text)
    numbers = {name: np.full(n, np.nan) for name in _NUMBER_PARTS}
    texts = {name: np.full(n, None, dtype=object) for name in _TEXT_PARTS}
    left = np.arange(n)
    for form in _FAST_FORMS:
        if not len(left):
            break
        found = pc.extract_regex(text.take(pa.array(left)), f"^{form}$")
        hit = found.is_valid().to_numpy(zero_copy_only=False)
        if not hit.any():
            continue
        rows = left[hit]
        matched = found.filter(pa.array(hit))
        for index in range(matched.type.num_fields):
            name = matched.type.field(index).name.rstrip("2")
            values = matched.field(index)
            present = pc.not_equal(pc.binary_length(values), 0).to_numpy(zero_copy_only=False)
            if not present.any():
                continue
            if name in numbers:
                digits = pc.replace_substring(values, FIRST_ERA_YEAR_WORD, "1") if name == "era_year" else values
                as_float = pc.cast(pc.if_else(present, digits, "0"), pa.float64()).to_numpy(zero_copy_only=False)
                numbers[name][rows[present]] = as_float[present]
            else:
                texts[name][rows[present]] = np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)[present]
        left = left[~hit]
    return {**numbers, **texts}


def _date_parts(cleaned: pd.Series) -> pd.DataFrame:
    """The components of each cell's first matching date form; rows of all NaN/None matched nothing."""
    text = to_arrow(cleaned.to_numpy(dtype=object))
    fast = fullmatch(text, FAST_CHARS + "*").to_numpy(zero_copy_only=False)
    slow = cleaned.notna().to_numpy() & ~fast
    parts = pd.DataFrame(_fast_parts(text.filter(pa.array(fast))), index=cleaned.index[fast])
    if slow.any():
        parts = pd.concat([parts, _python_parts(cleaned[slow])])
    return parts.reindex(cleaned.index)


def _moments(cleaned: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Naive timestamps as written, each row's UTC offset in minutes (NaN when none was written), and reasons."""
    parts = _date_parts(cleaned)
    reasons = pd.Series(None, index=cleaned.index, dtype=object)
    reasons[cleaned.notna()] = _NOT_A_DATE

    year = parts["year"].astype(float)
    era_rows = parts["era"].notna()
    if era_rows.any():
        era_first = parts.loc[era_rows, "era"].str.upper().map(ERA_FIRST_YEAR)
        year[era_rows] = era_first + parts.loc[era_rows, "era_year"] - 1
    components = pd.DataFrame(
        {
            "year": year,
            "month": parts["month"].astype(float),
            "day": parts["day"].astype(float),
            **{name: parts[name].astype(float).fillna(0) for name in _TIME_LIMITS},
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

    serial = pd.Series(np.nan, index=cleaned.index)
    serial_rows = parts["serial"].notna()
    if serial_rows.any():
        serial[serial_rows] = _to_number(parts.loc[serial_rows, "serial"])
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
    offsets = pd.Series(np.nan, index=zone.index)
    written = zone.notna()
    if not written.any():
        return offsets
    text = zone[written].astype(object).replace({"Z": "+00:00", "UTC": "+00:00"})
    found = text.str.extract(r"^(?P<sign>[+-])(?P<hours>\d{2}):?(?P<minutes>\d{2})$")
    sign = found["sign"].map({"+": 1, "-": -1})
    offsets[written] = sign * (_to_number(found["hours"]) * _MINUTES_PER_HOUR + _to_number(found["minutes"]))
    return offsets


def parse_dates(cleaned: pd.Series) -> pd.Series:
    """Calendar dates (`datetime.date`): 2025/1/5, 2025-01-05, 2025.1.5, 2025年1月5日, R7.1.5, 令和7年1月5日,
    20250105 and sheet serials. A time of day, if written, is dropped."""
    stamps, _, reasons = _moments(cleaned)
    ok = stamps.notna() & reasons.isna()
    days = stamps[ok].to_numpy().astype("datetime64[D]")  # floored to the day, as Timestamp.date() does
    return with_reasons(cleaned.index, ok, days.astype(object), reasons)


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
    return with_reasons(cleaned.index, good, utc[good].to_numpy().astype("datetime64[us]").astype(object), reasons)
