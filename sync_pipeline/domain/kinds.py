"""Cell readers for the kinds only a sheet contract's own fields have: integer, decimal, boolean and choice."""

from __future__ import annotations

import decimal
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from sync_pipeline.domain.values import Invalid

# The whole numbers an integer field holds: those of a Postgres BIGINT, so that one can be cast or indexed as such.
MIN_INTEGER: Final = -(2**63)
MAX_INTEGER: Final = 2**63 - 1
# A decimal field keeps at most this many digits (its integer digits, leading zeros aside, and its fractional ones,
# trailing zeros aside): the precision of Python's default decimal context, under which `Decimal.normalize` (as the
# content hash calls it) would round a longer number; no area, rate or score is written with more.
MAX_DECIMAL_DIGITS: Final = 28
# Minus signs: '-' and U+2212 (MINUS SIGN, which NFKC keeps; some input methods and copied documents give it). The
# full-width '－' has already become '-' under NFKC.
_MINUS_SIGNS: Final = "-\u2212"
_SIGN_CHARACTERS: Final = f"+{re.escape(_MINUS_SIGNS)}"  # escaped: a bare '+-−' would be a range, digits and all
_SIGN: Final = f"[{_SIGN_CHARACTERS}]?"
# Whole digits: either ungrouped, or grouped by thousands with commas (1,234,567; not 1,23 nor 12,34,567). A grouped
# number does not start with 0 (0,5 is a European half, not five hundred). ASCII digits only: NFKC has turned
# full-width ones into ASCII, and other scripts' digits (which NFKC keeps) are not what an office types.
_WHOLE: Final = r"(?:[1-9][0-9]{0,2}(?:,[0-9]{3})+|[0-9]+)"
_INTEGER: Final = re.compile(f"(?P<sign>{_SIGN})(?P<whole>{_WHOLE})", re.ASCII)
_DECIMAL: Final = re.compile(
    f"(?P<sign>{_SIGN})(?:(?P<whole>{_WHOLE})(?:\\.(?P<fraction>[0-9]+))?|\\.(?P<bare_fraction>[0-9]+))", re.ASCII
)
# What looks like a number with misplaced commas (so the reason can say so), and a number with an exponent.
_BAD_GROUPING: Final = re.compile(f"{_SIGN}[0-9][0-9,]*,[0-9,]*(?:\\.[0-9]+)?", re.ASCII)
_EXPONENT: Final = re.compile(f"{_SIGN}(?:[0-9][0-9,]*(?:\\.[0-9]*)?|\\.[0-9]+)[eE]{_SIGN}[0-9]+", re.ASCII)

_NOT_WHOLE: Final = "it is not a whole number"
_DECIMAL_POINT: Final = "it has a decimal point"
_BAD_COMMAS: Final = "its commas do not separate thousands"
_TOO_LARGE: Final = f"it is larger than {MAX_INTEGER:,}"
_TOO_SMALL: Final = f"it is smaller than {MIN_INTEGER:,}"
_NOT_A_NUMBER: Final = "it is not a number"
_WITH_EXPONENT: Final = "it is written with an exponent"
_TOO_MANY_DIGITS: Final = f"it has more than {MAX_DECIMAL_DIGITS} digits"

# Boolean cells as Japanese offices mark them, compared after NFKC and casefolding (so ＴＲＵＥ, True and true are
# one): ○ (U+25CB WHITE CIRCLE) and ◯ (U+25EF LARGE CIRCLE) for yes, × (U+00D7 MULTIPLICATION SIGN) for no. Other
# look-alikes (〇, ✕, x) are refused rather than guessed: a mark we do not know could mean either.
BOOLEAN_TRUE: Final = ("○", "◯", "はい", "有", "true", "1")
BOOLEAN_FALSE: Final = ("×", "いいえ", "無", "false", "0")
_BOOLEANS: Final[Mapping[str, bool]] = {**dict.fromkeys(BOOLEAN_TRUE, True), **dict.fromkeys(BOOLEAN_FALSE, False)}
_NOT_BOOLEAN: Final = "it is not one of ○/×, はい/いいえ, 有/無, TRUE/FALSE, 1/0"

# The "what to do" clause of each kind's rejection ("… Please <hint>."); a choice's reason already lists its values.
FIX_HINTS: Final[Mapping[str, str]] = {
    "integer": "write a whole number like 1,234",
    "decimal": "write a number like 85.5 or 1,234.25",
    "boolean": "write ○ or ×",
    "choice": "write one of the allowed values",
}
# The rule each kind's rejections are filed under.
RULES: Final[Mapping[str, str]] = {
    "integer": "invalid_integer",
    "decimal": "invalid_decimal",
    "boolean": "invalid_boolean",
    "choice": "invalid_choice",
}


def _per_distinct(cells: np.ndarray[Any, Any], read: Callable[[str], object]) -> np.ndarray[Any, Any]:
    """`read` applied once per distinct non-empty cell; None stays None. An object ndarray as long as `cells`."""
    codes, uniques = pd.factorize(np.asarray(cells, dtype=object), use_na_sentinel=True)
    table = np.empty(len(uniques) + 1, dtype=object)  # the last slot, which code -1 picks, is the empty cell's None
    table[:-1] = [read(cell) for cell in uniques]
    table[-1] = None
    return table[codes]


def _negative(sign: str) -> bool:
    return sign != "" and sign in _MINUS_SIGNS


def _integer(text: str) -> int | Invalid:
    match = _INTEGER.fullmatch(text)
    if match is None:
        parts = _DECIMAL.fullmatch(text)
        if parts is not None:
            fraction = parts["fraction"] or parts["bare_fraction"]
            return Invalid(_DECIMAL_POINT if fraction.strip("0") == "" else _NOT_WHOLE)
        return Invalid(_BAD_COMMAS if _BAD_GROUPING.fullmatch(text) else _NOT_WHOLE)
    digits = match["whole"].replace(",", "").lstrip("0") or "0"
    negative = _negative(match["sign"])
    # Checked on the text first: int() of thousands of digits is slow, and beyond 4,300 refused by Python itself.
    if len(digits) > len(str(MAX_INTEGER)):
        return Invalid(_TOO_SMALL if negative else _TOO_LARGE)
    value = -int(digits) if negative else int(digits)
    if value > MAX_INTEGER:
        return Invalid(_TOO_LARGE)
    if value < MIN_INTEGER:
        return Invalid(_TOO_SMALL)
    return value


def _decimal(text: str) -> decimal.Decimal | Invalid:
    match = _DECIMAL.fullmatch(text)
    if match is None:
        if _EXPONENT.fullmatch(text):
            return Invalid(_WITH_EXPONENT)
        return Invalid(_BAD_COMMAS if _BAD_GROUPING.fullmatch(text) else _NOT_A_NUMBER)
    whole = (match["whole"] or "").replace(",", "").lstrip("0")
    fraction = (match["fraction"] or match["bare_fraction"] or "").rstrip("0")
    if len(whole) + len(fraction) > MAX_DECIMAL_DIGITS:
        return Invalid(_TOO_MANY_DIGITS)
    if not whole and not fraction:
        return decimal.Decimal(0)  # -0 and 0.00 alike: zero has no sign
    sign = "-" if _negative(match["sign"]) else ""
    # Built from the canonical text, which Decimal() reads exactly whatever the context: 100.00 is Decimal('100'),
    # never Decimal('1E+2') nor Decimal('100.00').
    return decimal.Decimal(f"{sign}{whole or '0'}{'.' if fraction else ''}{fraction}")


def read_integer(cells: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Whole numbers as int: 1234, 1,234, -5, +7 (１，２３４ once cleaned); a fractional part, misplaced commas or a
    number outside a BIGINT is Invalid."""
    return _per_distinct(cells, _integer)


def read_decimal(cells: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Numbers as Decimal, without trailing zeros: 85.5 (８５．５ once cleaned), 1,234.25, 100.00 (= 100), -0.5, .5;
    an exponent (1e5), NaN, Infinity, misplaced commas or more than `MAX_DECIMAL_DIGITS` digits is Invalid."""
    return _per_distinct(cells, _decimal)


def _boolean(text: str) -> bool | Invalid:
    value = _BOOLEANS.get(unicodedata.normalize("NFKC", text).casefold())
    return Invalid(_NOT_BOOLEAN) if value is None else value


def read_boolean(cells: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """○/◯/はい/有/TRUE/1 as True, ×/いいえ/無/FALSE/0 as False (TRUE and FALSE in any case); anything else Invalid."""
    return _per_distinct(cells, _boolean)


def choice_key(text: str) -> str:
    """What two spellings of one choice share: NFKC, casefolded, then NFKC again (casefolding can leave a character
    decomposed: ǰ folds to j and a combining caron). Two allowed values with one key would be ambiguous."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def read_choice(cells: np.ndarray[Any, Any], values: Sequence[str]) -> np.ndarray[Any, Any]:
    """Each cell as the allowed value it spells, exactly as `values` writes it (Ａ and a are A), compared by
    `choice_key`; a cell that spells none of them is Invalid naming every allowed value. Should two values share a
    key (the contract check refuses that), the first wins."""
    allowed: dict[str, str] = {}
    for value in values:
        allowed.setdefault(choice_key(value), value)
    invalid = Invalid(f"it is not one of {', '.join(values)}" if values else "no value is allowed")

    def choose(text: str) -> str | Invalid:
        return allowed.get(choice_key(text), invalid)

    return _per_distinct(cells, choose)


def decimal_text(value: decimal.Decimal) -> str:
    """The canonical plain text of a finite Decimal, as stored and hashed (a JSON number literal): no exponent, no
    trailing zeros, zero as '0': Decimal('85.50') → '85.5', Decimal('1E+2') → '100', Decimal('-0.0') → '0'."""
    if not value.is_finite():
        raise ValueError(f"{value!r} has no plain text")
    if value.is_zero():
        return "0"
    # normalize() rounds to its context's precision: given one as precise as the value, it only strips zeros.
    exact = decimal.Context(prec=max(len(value.as_tuple().digits), 1), Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
    return format(value.normalize(exact), "f")
