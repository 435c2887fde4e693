"""Amounts of yen as offices write them (12,000,000 / ¥12,000,000 / 1,200万 / 1.5億), read column-wise.

Sync callers run this once per distinct cell (`textcols.distinct`): a sheet has far fewer distinct amounts than rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sync_pipeline.domain import textcols as tc
from sync_pipeline.domain.values import Invalid, put, with_reasons

_WHITESPACE_RUN = re.compile(r"\s+")


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


def _parse_amounts_python(cleaned: pd.Series) -> pd.Series:
    """The reference, for every cell the fast form does not cover (`parse_amounts` says what it reads)."""
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
    put(amounts, fits, digits[fits].astype("int64").tolist())  # tolist: Python ints, not numpy ones

    with_units = present & ~plain & body.str.fullmatch(_WITH_UNITS).fillna(False).astype(bool)
    if with_units.any():
        parsed = body[with_units].map(_unit_amount)
        failed = parsed.map(lambda v: isinstance(v, Invalid)).astype(bool)
        reasons[parsed[failed].index] = [v.reason for v in parsed[failed]]
        reasons[parsed[~failed].index] = None
        put(amounts, with_units & ~failed.reindex(cleaned.index, fill_value=True), parsed[~failed])

    reasons[negative & reasons.isna()] = _NEGATIVE_AMOUNT
    ok = present & reasons.isna()
    return with_reasons(cleaned.index, ok, amounts[ok.to_numpy()], reasons)


# The plain forms in RE2, for cells of ASCII digits (after whitespace is removed, as above): optional yen sign or JPY,
# digits with every comma a thousands separator (so the commas all go) or none, optional 円/JPY and a receipt's dash.
# At most 18 digits, so that every match converts to int64 exactly as the reference does.
_FAST_PLAIN: Final = r"(?:JPY|[¥\\])?(?:[0-9]{1,3}(?:,[0-9]{3}){1,5}|[0-9]{1,18})(?:円|JPY)?-?"
_FAST_DIGITS: Final = r"^(?:JPY|[¥\\])?|,|万?(?:円|JPY)?-?$"
# And the commonest unit form, whole 万 (1,200万 = 12,000,000): at most 14 digits, so that ×10,000 fits int64.
_FAST_MAN: Final = r"(?:JPY|[¥\\])?(?:[0-9]{1,3}(?:,[0-9]{3}){1,3}|[0-9]{1,14})万(?:円|JPY)?-?"
_MAN: Final = 10_000


def parse_amounts(cleaned: pd.Series) -> pd.Series:
    """Whole yen as int: 12,000,000 / ¥12,000,000 / ￥… / 12000000円 / 1,200万 / 1200万円 / 1.5億 / 3億2000万.
    Negative, fractional or non-numeric cells are Invalid."""
    text = tc.replace(tc.to_arrow(cleaned.to_numpy(dtype=object)), tc.WHITESPACE_RUN, "")
    fast = tc.fullmatch(text, _FAST_PLAIN)
    fast_rows = fast.to_numpy(zero_copy_only=False)
    result = np.full(len(cleaned), None, dtype=object)
    if fast_rows.any():
        digits = pc.replace_substring_regex(text.filter(fast), _FAST_DIGITS, "")
        result[fast_rows] = pc.cast(digits, pa.int64()).to_pylist()  # Python ints, not numpy ones
    man = tc.fullmatch(text, _FAST_MAN)
    man_rows = man.to_numpy(zero_copy_only=False)
    if man_rows.any():
        digits = pc.replace_substring_regex(text.filter(man), _FAST_DIGITS, "")
        result[man_rows] = [n * _MAN for n in pc.cast(digits, pa.int64()).to_pylist()]
        fast_rows = fast_rows | man_rows
    rest = cleaned.notna().to_numpy() & ~fast_rows
    if rest.any():
        result[rest] = _parse_amounts_python(cleaned[rest]).to_numpy(dtype=object)
    return pd.Series(result, index=cleaned.index, dtype=object)
