"""Dates and times in a seller sheet: every form offices type, read column-wise, with a reason for each bad cell.

The commonest shapes (2025/1/5 10:30, 2025-01-05T10:30+09:00, a serial) are recognised by one RE2 scan and their
numbers read from the digits in numpy; most other cells are read by RE2 over the column (Arrow): the forms are spelled
for cells made of ASCII and the few kanji the forms use, where `\\d` can only be 0-9 and `\\s` only a space, so they
match exactly what the Python forms match. Any other cell (Arabic-Indic digits, say) goes through the Python forms
themselves. The calendar, the zones and the serials are then worked out in numpy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sync_pipeline.domain.textcols import fullmatch, to_arrow, to_objects
from sync_pipeline.domain.values import Invalid

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


def _digit_runs(text: pa.Array) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The runs of ASCII digits (at most `_RUN_DIGITS` long) of every cell, read as numbers in numpy over Arrow's
    UTF-8 bytes (no byte of a multi-byte character is an ASCII digit): their values in order, and per cell the
    index of its first run and its number of runs."""
    text = pa.concat_arrays([text.cast(pa.large_string())])  # offsets from zero, no slice to account for
    ends = np.frombuffer(text.buffers()[1], dtype=np.int64)[: len(text) + 1]
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8)[: ends[-1]] if ends[-1] else np.empty(0, np.uint8)
    digit = np.zeros(len(data) + 1, dtype=bool)  # one False past the end, so that every run ends
    digit[:-1] = (data >= ord("0")) & (data <= ord("9"))
    starts_here = digit.copy()
    starts_here[1:] &= ~digit[:-1]
    starts_here[ends[:-1]] = digit[ends[:-1]]  # a cell's first byte starts a run whatever came before it
    starts = np.flatnonzero(starts_here)
    first = np.searchsorted(starts, ends[:-1])
    counts = np.searchsorted(starts, ends[1:]) - first
    values = np.zeros(len(starts), dtype=np.int64)
    going = np.ones(len(starts), dtype=bool)
    for at in range(_RUN_DIGITS):  # Horner's rule, one digit position of every run at a time
        place = np.minimum(starts + at, len(data))  # past the end: the False sentinel of `digit`
        going &= digit[place] & (~starts_here[place] if at else True)  # another run (of the next cell) starts there
        values = np.where(going, values * 10 + data[np.minimum(place, len(data) - 1)].astype(np.int64) - 48, values)
    return values, first, counts


_RUN_DIGITS: Final = 4  # the longest run of digits in `_SHAPES`: the year


# The commonest shapes of a date or time, for which each number is the n-th run of digits: YYYY/M/D (or with - or
# .) or YYYY年M月D日, optionally followed by a space or T and H:MM or H:MM:SS, then optionally Z or ±HH:MM; and a bare
# serial. Each is a case of one of the forms above that no earlier form matches, so it reads the same; but it is read
# without regex captures, in numpy.
_SHAPE_DATE = "|".join(f"{_D}{{4}}{s}{_D}{{1,2}}{s}{_D}{{1,2}}" for s in ("/", "-", r"\."))
_SHAPES: Final = (
    f"(?:{_SHAPE_DATE}|{_D}{{4}}年{_D}{{1,2}}月{_D}{{1,2}}日)"
    f"(?:[ T]{_D}{{1,2}}:{_D}{{2}}(?::{_D}{{2}})?(?:Z|[+-]{_D}{{2}}:{_D}{{2}})?)?"
)
_SERIAL_SHAPE: Final = f"{_D}{{1,6}}(?:\\.{_D}+)?"
_SHAPE_PARTS: Final = ("year", "month", "day", "hour", "minute", "second")
_ZONE_TEXT_LENGTH: Final = len("+09:00")
_RUNS_WITH_ZONE: Final = {7: 5, 8: 6}  # runs of a shape with ±HH:MM -> those before the zone (H:MM, H:MM:SS)


def _shape_parts(
    text: pa.Array, numbers: dict[str, np.ndarray[Any, Any]], texts: dict[str, np.ndarray[Any, Any]]
) -> np.ndarray[Any, Any]:
    """The cells of `_SHAPES` and `_SERIAL_SHAPE`, read into `numbers` and `texts` (by row); returns which rows (a
    fresh bool array)."""
    shaped = np.array(fullmatch(text, _SHAPES).to_numpy(zero_copy_only=False), dtype=bool)
    if shaped.any():
        rows = np.flatnonzero(shaped)
        cells = text.filter(pa.array(shaped))
        values, first, counts = _digit_runs(cells)
        zoned = np.isin(counts, list(_RUNS_WITH_ZONE))
        own = counts.copy()
        for runs, before_zone in _RUNS_WITH_ZONE.items():
            own[counts == runs] = before_zone
        for at, name in enumerate(_SHAPE_PARTS):
            has = own > at
            numbers[name][rows[has]] = values[first[has] + at]
        utc = pc.ends_with(cells, "Z").to_numpy(zero_copy_only=False)
        texts["zone"][rows[utc]] = "Z"
        if zoned.any():
            tail = pc.utf8_slice_codeunits(cells.filter(pa.array(zoned)), start=-_ZONE_TEXT_LENGTH)
            texts["zone"][rows[zoned]] = to_objects(tail)
    rest = np.flatnonzero(~shaped)
    others = text.take(pa.array(rest))
    serial = fullmatch(others, _SERIAL_SHAPE).to_numpy(zero_copy_only=False)
    if serial.any():
        texts["serial"][rest[serial]] = to_objects(others.filter(pa.array(serial)))
        shaped[rest[serial]] = True
    return shaped


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


def _parts(text: pa.Array) -> dict[str, np.ndarray[Any, Any]]:
    """The components of each cell's first matching date form, as `_fast_parts` gives them (NaN/None: no such part;
    a row of nothing but NaN/None matched no form). The common shapes are read first (`_shape_parts`); of the other
    cells, those of FAST_CHARS go through the RE2 forms and the rest through the Python forms."""
    parts = {name: np.full(len(text), np.nan) for name in _NUMBER_PARTS}
    parts.update({name: np.full(len(text), None, dtype=object) for name in _TEXT_PARTS})
    rest = np.flatnonzero(~_shape_parts(text, parts, parts) & text.is_valid().to_numpy(zero_copy_only=False))
    if not len(rest):
        return parts
    cells = text.take(pa.array(rest))
    fast = fullmatch(cells, FAST_CHARS + "*").to_numpy(zero_copy_only=False)
    if fast.any():
        for name, values in _fast_parts(cells.filter(pa.array(fast))).items():
            parts[name][rest[fast]] = values
    slow = rest[~fast]
    if len(slow):
        reference = _python_parts(pd.Series(to_objects(cells.filter(pa.array(~fast))), dtype=object))
        for name in _NUMBER_PARTS:
            parts[name][slow] = reference[name].to_numpy(dtype=float, na_value=np.nan)
        for name in _TEXT_PARTS:
            column = reference[name]
            parts[name][slow] = column.astype(object).where(column.notna(), None).to_numpy(dtype=object)
    return parts


def _date_parts(cleaned: pd.Series) -> pd.DataFrame:
    """`_parts` of an object column, as a frame on its index."""
    return pd.DataFrame(_parts(to_arrow(cleaned.to_numpy(dtype=object))), index=cleaned.index)


def _civil_seconds(
    year: np.ndarray[Any, Any], month: np.ndarray[Any, Any], day: np.ndarray[Any, Any], clock: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Seconds since the epoch of each (year, month, day) plus `clock` seconds, and whether that calendar day exists
    (month 1-12, day 1 up to the month's length): the check pandas' to_datetime makes, done in numpy."""
    plausible = (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)
    y = np.where(plausible, year, 1970).astype("int64")
    m = np.where(plausible, month, 1).astype("int64")
    d = np.where(plausible, day, 1).astype("int64")
    first = ((y - 1970) * 12 + (m - 1)).astype("datetime64[M]")
    days = first.astype("datetime64[D]") + (d - 1).astype("timedelta64[D]")
    exists = plausible & (days.astype("datetime64[M]") == first)
    return days.astype("datetime64[s]").astype("int64") + clock, exists


def _moments(text: pa.Array) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Naive times as written (epoch seconds; meaningful where the reason is None), each row's UTC offset in minutes
    (NaN when none was written), and the reason a present cell is no date (None where it is one, and for nulls)."""
    n = len(text)
    parts = _parts(text)
    reasons = np.full(n, None, dtype=object)
    reasons[text.is_valid().to_numpy(zero_copy_only=False)] = _NOT_A_DATE
    seconds = np.zeros(n, dtype="int64")

    year = parts["year"].copy()
    era = parts["era"]
    era_rows = np.flatnonzero(pd.notna(era))
    if len(era_rows):
        first_year = np.array([ERA_FIRST_YEAR[str(e).upper()] for e in era[era_rows]], dtype=float)
        year[era_rows] = first_year + parts["era_year"][era_rows] - 1
    calendar = ~np.isnan(year)
    time_of_day = {name: np.nan_to_num(parts[name], nan=0.0) for name in _TIME_LIMITS}
    reasons[calendar] = None
    bad_year = calendar & ~((year >= MIN_YEAR) & (year <= MAX_YEAR))
    bad_time = calendar & np.logical_or.reduce([time_of_day[name] > limit for name, limit in _TIME_LIMITS.items()])
    usable = calendar & ~bad_year & ~bad_time
    if usable.any():
        clock = (
            time_of_day["hour"][usable] * 3600 + time_of_day["minute"][usable] * 60 + time_of_day["second"][usable]
        ).astype("int64")
        stamps, exists = _civil_seconds(year[usable], parts["month"][usable], parts["day"][usable], clock)
        seconds[usable] = stamps
        no_such = np.flatnonzero(usable)[~exists]
        reasons[no_such] = _NO_SUCH_DATE
    reasons[bad_year] = _YEAR_OUT_OF_RANGE
    reasons[bad_time] = _NO_SUCH_TIME

    serial_rows = np.flatnonzero(pd.notna(parts["serial"]))
    if len(serial_rows):
        serial = pd.to_numeric(pd.Series(parts["serial"][serial_rows], dtype=object), errors="coerce").to_numpy(
            dtype=float
        )
        in_window = (serial >= MIN_DATE_SERIAL) & (serial <= MAX_DATE_SERIAL)
        # Whole seconds (float days carry sub-second noise), in second resolution: a nanosecond timedelta overflows
        # past 292 years, well inside the window.
        offset = np.round(serial[in_window] * SECONDS_PER_DAY).astype("int64")
        seconds[serial_rows[in_window]] = _SERIAL_ORIGIN_SECONDS.astype("int64") + offset
        reasons[serial_rows[in_window]] = None
        reasons[serial_rows[~in_window & ~np.isnan(serial)]] = _SERIAL_OUT_OF_RANGE

    return seconds, _zone_offsets(parts["zone"]), reasons


def _zone_offsets(zone: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Minutes east of UTC for each written zone (Z, UTC, +09:00, +0900); NaN where none was written."""
    offsets = np.full(len(zone), np.nan)
    written = np.flatnonzero(pd.notna(zone))
    if not len(written):
        return offsets
    distinct = pd.Series(sorted(set(zone[written].tolist())), dtype=object)  # a handful of zones
    text = distinct.replace({"Z": "+00:00", "UTC": "+00:00"})
    found = text.str.extract(r"^(?P<sign>[+-])(?P<hours>\d{2}):?(?P<minutes>\d{2})$")
    sign = found["sign"].map({"+": 1, "-": -1})
    minutes = sign * (_to_number(found["hours"]) * _MINUTES_PER_HOUR + _to_number(found["minutes"]))
    lookup = dict(zip(distinct.tolist(), minutes.to_numpy(dtype=float, na_value=np.nan).tolist(), strict=True))
    offsets[written] = [lookup[z] for z in zone[written].tolist()]
    return offsets


def _column(
    reasons: np.ndarray[Any, Any], good: np.ndarray[Any, Any], values: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Object column: the value where `good`, Invalid(reason) where there is a reason, None elsewhere."""
    column = np.full(len(reasons), None, dtype=object)
    column[good] = values
    bad = np.flatnonzero(pd.notna(reasons))
    if len(bad):
        invalid = {r: Invalid(r) for r in set(reasons[bad].tolist())}
        column[bad] = [invalid[r] for r in reasons[bad].tolist()]
    return column


def read_dates(text: pa.Array) -> np.ndarray[Any, Any]:
    """`parse_dates` of an Arrow column of cleaned cell text: an object ndarray."""
    return dates_with_text(text)[0]


def dates_with_text(text: pa.Array) -> tuple[np.ndarray[Any, Any], pa.Array, np.ndarray[Any, Any]]:
    """`read_dates`, each date as YYYY-MM-DD text (null where there is none) as the content hash writes it, and
    which cells are Invalid."""
    seconds, _, reasons = _moments(text)
    good = text.is_valid().to_numpy(zero_copy_only=False) & pd.isna(reasons)
    days = seconds.astype("datetime64[s]").astype("datetime64[D]")  # floored to the day, as date() does
    iso = pa.array(days, mask=~good).cast(pa.large_string())
    return _column(reasons, good, days[good].astype(object)), iso, pd.notna(reasons)


def read_datetimes(text: pa.Array, timezone: str) -> np.ndarray[Any, Any]:
    """`parse_datetimes` of an Arrow column of cleaned cell text: an object ndarray."""
    return datetimes_with_text(text, timezone)[0]


def datetimes_with_text(text: pa.Array, timezone: str) -> tuple[np.ndarray[Any, Any], pa.Array, np.ndarray[Any, Any]]:
    """`read_datetimes`, each time as YYYY-MM-DD HH:MM:SS text (null where there is none) as the content hash writes
    it, and which cells are Invalid."""
    seconds, offsets, reasons = _moments(text)
    ok = text.is_valid().to_numpy(zero_copy_only=False) & pd.isna(reasons)
    utc = seconds.copy()
    zoned = ok & ~np.isnan(offsets)
    utc[zoned] = seconds[zoned] - (offsets[zoned] * 60).astype("int64")
    good = ok.copy()
    local = ok & np.isnan(offsets)
    if local.any():
        # A local time that a clock change skips or repeats is refused rather than guessed (never in Asia/Tokyo).
        placed = pd.DatetimeIndex(seconds[local].astype("datetime64[s]")).tz_localize(
            timezone, ambiguous="NaT", nonexistent="NaT"
        )
        lost = np.asarray(placed.isna())
        converted = placed.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[s]").astype("int64")
        rows = np.flatnonzero(local)
        utc[rows[~lost]] = converted[~lost]
        good[rows[lost]] = False
        reasons[rows[lost]] = f"that local time does not exist or is ambiguous in {timezone}; add a zone"
    moments = utc.astype("datetime64[s]")
    text_of = pa.array(moments, mask=~good).cast(pa.large_string())
    return _column(reasons, good, moments[good].astype("datetime64[us]").astype(object)), text_of, pd.notna(reasons)


def parse_dates(cleaned: pd.Series) -> pd.Series:
    """Calendar dates (`datetime.date`): 2025/1/5, 2025-01-05, 2025.1.5, 2025年1月5日, R7.1.5, 令和7年1月5日,
    20250105 and sheet serials. A time of day, if written, is dropped."""
    return pd.Series(read_dates(to_arrow(cleaned.to_numpy(dtype=object))), index=cleaned.index, dtype=object)


def parse_datetimes(cleaned: pd.Series, timezone: str) -> pd.Series:
    """Timestamps as naive UTC `datetime`s: the date forms of `parse_dates`, optionally with HH:MM[:SS] and a zone.
    Without a zone the time is local time in `timezone`."""
    return pd.Series(
        read_datetimes(to_arrow(cleaned.to_numpy(dtype=object)), timezone), index=cleaned.index, dtype=object
    )
