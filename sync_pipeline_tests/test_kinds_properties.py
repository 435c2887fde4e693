"""Exercises domain.kinds: what the contract kinds integer, decimal, boolean and choice accept reads as its value, what
they refuse is Invalid with its reason, and a column keeps its length and its empty cells.

Cells go through the real `normalise.clean_cells` first, as a sheet's do; the schema's messages, the content hash
(beyond `json_literal` agreeing with `decimal_text`), files and databases are not touched.
"""

from __future__ import annotations

import decimal
import unicodedata
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sync_pipeline.domain.hashing import json_literal
from sync_pipeline.domain.kinds import (
    FIX_HINTS,
    MAX_DECIMAL_DIGITS,
    MAX_INTEGER,
    MIN_INTEGER,
    RULES,
    decimal_text,
    read_boolean,
    read_choice,
    read_decimal,
    read_integer,
)
from sync_pipeline.domain.normalise import clean_cells
from sync_pipeline.domain.values import Invalid

# ASCII '!'..'~' and their full-width forms (U+FF01..U+FF5E), which NFKC turns back into ASCII.
FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})
MINUS_SIGN = "\u2212"  # kept by NFKC, accepted as a minus
BOOLEAN_REASON = "it is not one of ○/×, はい/いいえ, 有/無, TRUE/FALSE, 1/0"
# The accepted boolean forms as the issue lists them, before casefolding; ○ and ◯ are U+25CB and U+25EF.
TRUE_FORMS = ("○", "◯", "はい", "有", "TRUE", "1")
FALSE_FORMS = ("×", "いいえ", "無", "FALSE", "0")
BOOLEAN_KEYS = {unicodedata.normalize("NFKC", form).casefold() for form in TRUE_FORMS + FALSE_FORMS}


def cleaned(texts: Sequence[str | None]) -> np.ndarray[Any, Any]:
    """The cells as the readers receive them: through the sheet's own cleaning."""
    return clean_cells(pd.Series(list(texts), dtype=object)).to_numpy(dtype=object)


def read_one(reader: Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]], text: str | None) -> object:
    result = reader(cleaned([text]))
    assert len(result) == 1
    return result[0]


def invalid_reason(value: object) -> str:
    assert isinstance(value, Invalid), f"expected Invalid, got {value!r}"
    return value.reason


def key(text: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


@st.composite
def variant_case(draw: st.DrawFn, text: str) -> str:
    """`text` with each character's case and width drawn: TRUE, tRuE, ｔｒＵＥ."""
    out = []
    for char in text:
        if draw(st.booleans()):
            char = char.swapcase()
        if draw(st.booleans()):
            char = char.translate(FULL_WIDTH)
        out.append(char)
    return "".join(out)


def written_integer(value: int, grouped: bool, plus: bool, leading_zeros: int, minus: str) -> str:
    digits = f"{abs(value):,}" if grouped else "0" * leading_zeros + str(abs(value))
    sign = minus if value < 0 else ("+" if plus else "")
    return sign + digits


# --- integer --------------------------------------------------------------------------------------------------


@given(
    value=st.integers(MIN_INTEGER, MAX_INTEGER) | st.sampled_from([MIN_INTEGER, MAX_INTEGER, 0, -1, 1000]),
    grouped=st.booleans(),
    plus=st.booleans(),
    leading_zeros=st.integers(0, 3),
    minus=st.sampled_from(["-", MINUS_SIGN]),
    full_width=st.booleans(),
)
def test_property_kind_integer_accepted_text_parses_to_its_value(
    value: int, grouped: bool, plus: bool, leading_zeros: int, minus: str, full_width: bool
) -> None:
    text = written_integer(value, grouped, plus, leading_zeros, minus)
    if full_width:
        text = text.translate(FULL_WIDTH)
    result = read_one(read_integer, text)
    assert type(result) is int
    assert result == value


@given(
    value=st.integers(MAX_INTEGER + 1, 10**40) | st.integers(-(10**40), MIN_INTEGER - 1),
    grouped=st.booleans(),
)
def test_property_kind_integer_beyond_a_bigint_is_invalid(value: int, grouped: bool) -> None:
    text = f"{value:,}" if grouped else str(value)
    reason = invalid_reason(read_one(read_integer, text))
    assert reason == ("it is larger than 9,223,372,036,854,775,807" if value > 0 else
                      "it is smaller than -9,223,372,036,854,775,808")  # fmt: skip


@given(whole=st.integers(-(10**9), 10**9), fraction=st.text("0123456789", min_size=1, max_size=6))
def test_property_kind_integer_any_fractional_part_is_invalid(whole: int, fraction: str) -> None:
    reason = invalid_reason(read_one(read_integer, f"{whole}.{fraction}"))
    assert reason in {"it is not a whole number", "it has a decimal point"}
    assert (reason == "it has a decimal point") == (set(fraction) == {"0"})


@given(
    digits=st.text("0123456789", min_size=2, max_size=12).filter(lambda d: d[0] != "0"),
    cuts=st.sets(st.integers(1, 11), min_size=1, max_size=4),
)
def test_property_kind_integer_commas_off_the_thousands_are_invalid(digits: str, cuts: set[int]) -> None:
    cuts = {c for c in cuts if c < len(digits)}
    text = "".join(("," if i in cuts else "") + d for i, d in enumerate(digits))
    assume(cuts and text != f"{int(digits):,}")
    assert invalid_reason(read_one(read_integer, text)) == "its commas do not separate thousands"
    assert invalid_reason(read_one(read_decimal, text)) == "its commas do not separate thousands"


@given(st.text("0123456789,.+-e x" + MINUS_SIGN, max_size=10))
def test_property_kind_integer_only_accepts_text_that_is_that_integer(text: str) -> None:
    result = read_one(read_integer, text)
    if isinstance(result, Invalid) or result is None:
        return
    assert type(result) is int
    assert "." not in text and "e" not in text and " " not in text.strip()
    plain = text.strip().replace(",", "").replace(MINUS_SIGN, "-")
    assert int(plain) == result
    if "," in text:
        assert text.strip().lstrip("+-" + MINUS_SIGN) == f"{abs(result):,}"


# --- decimal --------------------------------------------------------------------------------------------------

DECIMALS = st.decimals(
    min_value=Decimal(-(10**15)), max_value=Decimal(10**15), allow_nan=False, allow_infinity=False, places=6
) | st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-1000, max_value=1000)


@given(
    value=DECIMALS,
    grouped=st.booleans(),
    trailing_zeros=st.integers(0, 3),
    minus=st.sampled_from(["-", MINUS_SIGN]),
    full_width=st.booleans(),
)
def test_property_kind_decimal_text_round_trips_to_its_canonical_text(
    value: Decimal, grouped: bool, trailing_zeros: int, minus: str, full_width: bool
) -> None:
    plain = format(value, "f")
    negative = plain.startswith("-")
    whole, _, fraction = plain.lstrip("-").partition(".")
    text = (minus if negative else "") + (f"{int(whole):,}" if grouped else whole)
    if fraction or trailing_zeros:
        text += "." + fraction + "0" * trailing_zeros
    if full_width:
        text = text.translate(FULL_WIDTH)
    result = read_one(read_decimal, text)
    assert isinstance(result, Decimal)
    assert result == value
    canonical = decimal_text(value)
    assert decimal_text(result) == canonical
    assert format(result, "f") == canonical  # the value itself prints canonically
    assert json_literal(result) == canonical  # and is stored and hashed as that text
    assert "e" not in canonical.lower()
    assert canonical == "0" or not ("." in canonical and canonical.endswith("0"))
    assert canonical != "-0"


@given(
    mantissa=st.sampled_from(["1", "1.5", "-2", "12,000", ".5"]),
    mark=st.sampled_from(["e", "E"]),
    exponent=st.integers(-30, 30).map(str) | st.sampled_from(["+5", "-05"]),
)
def test_property_kind_decimal_with_an_exponent_is_invalid(mantissa: str, mark: str, exponent: str) -> None:
    assert invalid_reason(read_one(read_decimal, mantissa + mark + exponent)) == "it is written with an exponent"


@given(st.sampled_from(["NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "+inf", "∞", "Inf"]))
def test_property_kind_decimal_nan_and_infinity_are_invalid(text: str) -> None:
    assert invalid_reason(read_one(read_decimal, text)) == "it is not a number"


@given(
    whole=st.text("0123456789", min_size=1, max_size=40).filter(lambda d: d[0] != "0"),
    fraction=st.text("0123456789", max_size=20).map(lambda f: f.rstrip("0")),
)
def test_property_kind_decimal_bounds_its_digits(whole: str, fraction: str) -> None:
    text = whole + ("." + fraction if fraction else "")
    result = read_one(read_decimal, text)
    if len(whole) + len(fraction) > MAX_DECIMAL_DIGITS:
        assert invalid_reason(result) == f"it has more than {MAX_DECIMAL_DIGITS} digits"
    else:
        assert result == Decimal(text)


# --- boolean --------------------------------------------------------------------------------------------------


@given(data=st.data(), form=st.sampled_from([(f, True) for f in TRUE_FORMS] + [(f, False) for f in FALSE_FORMS]))
def test_property_kind_boolean_accepted_forms_read_as_their_bool(data: st.DataObject, form: tuple[str, bool]) -> None:
    text, expected = form
    written = data.draw(variant_case(text)) if text.isascii() else text
    assert read_one(read_boolean, written) is expected


@given(st.text(max_size=6))
def test_property_kind_boolean_every_other_text_is_invalid(text: str) -> None:
    (cell,) = cleaned([text])
    assume(cell is not None and unicodedata.normalize("NFKC", cell).casefold() not in BOOLEAN_KEYS)
    assert invalid_reason(read_boolean(np.array([cell], dtype=object))[0]) == BOOLEAN_REASON


def test_kind_boolean_look_alikes_of_the_marks() -> None:
    # The half-width ○ (U+FFEE) is ○ once cleaned; 〇 (ideographic zero), ✕ and x are not marks we guess at.
    assert list(read_boolean(cleaned(["\uffee", "\u25cb", "\u25ef", "ＴＲＵＥ", "１", "０"]))) == [
        True, True, True, True, True, False,
    ]  # fmt: skip
    for text in ("〇", "✕", "x", "yes", "2", "TRUE!", "1.0"):
        assert invalid_reason(read_one(read_boolean, text)) == BOOLEAN_REASON


# --- choice ---------------------------------------------------------------------------------------------------

CHOICE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_あいうえお高中低アイウＡＢＣ"
CHOICE_VALUES = st.lists(st.text(CHOICE_ALPHABET, min_size=1, max_size=5), min_size=1, max_size=6, unique_by=key)


@given(data=st.data(), values=CHOICE_VALUES)
def test_property_kind_choice_case_and_width_variants_read_as_the_allowed_spelling(
    data: st.DataObject, values: list[str]
) -> None:
    value = data.draw(st.sampled_from(values))
    written = data.draw(variant_case(value))
    result = read_one(lambda cells: read_choice(cells, values), written)
    assert result == value


@given(values=CHOICE_VALUES, text=st.text(CHOICE_ALPHABET + " ,.!", max_size=6) | st.text(max_size=4))
def test_property_kind_choice_outside_the_values_is_invalid_naming_every_value(values: list[str], text: str) -> None:
    (cell,) = cleaned([text])
    assume(cell is not None and key(cell) not in {key(v) for v in values})
    reason = invalid_reason(read_choice(np.array([cell], dtype=object), values)[0])
    assert reason == "it is not one of " + ", ".join(values)
    assert all(v in reason for v in values)


# --- every kind -----------------------------------------------------------------------------------------------

READERS: dict[str, Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]] = {
    "integer": read_integer,
    "decimal": read_decimal,
    "boolean": read_boolean,
    "choice": lambda cells: read_choice(cells, ["A", "B", "高"]),
}
CELLS = st.lists(
    st.none() | st.sampled_from(["1", "1,234", "8.5", "○", "a", "Ａ", "高", "x", "-0", " "]) | st.text(max_size=4),
    max_size=30,
)


@given(kind=st.sampled_from(sorted(READERS)), texts=CELLS)
def test_property_kind_readers_keep_length_and_empty_cells_and_read_each_cell_alike(
    kind: str, texts: list[str | None]
) -> None:
    cells = cleaned(texts)
    result = READERS[kind](cells)
    assert isinstance(result, np.ndarray) and result.dtype == object
    assert len(result) == len(cells)
    for cell, value in zip(cells, result, strict=True):
        assert (value is None) == (cell is None)
        if cell is not None:  # a repeated cell reads as it would alone
            assert value == READERS[kind](np.array([cell], dtype=object))[0]


def test_kind_readers_of_an_empty_column_return_an_empty_column() -> None:
    for reader in READERS.values():
        assert len(reader(np.array([], dtype=object))) == 0


# --- the messy cells of issue 18 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reader", "text", "expected"),
    [
        (read_decimal, "８５．５", Decimal("85.5")),
        (read_decimal, "1,234.25", Decimal("1234.25")),
        (read_decimal, "100.00", Decimal("100")),
        (read_decimal, "-0.5", Decimal("-0.5")),
        (read_decimal, "－０．０", Decimal("0")),
        (read_integer, "１，２３４", 1234),
        (read_integer, "−12", -12),
        (read_boolean, "◯", True),
        (read_boolean, "いいえ", False),
        (read_boolean, "有", True),
        (read_boolean, "無", False),
        (lambda cells: read_choice(cells, ["A", "B", "C"]), "Ａ", "A"),
        (lambda cells: read_choice(cells, ["A", "B", "C"]), "b", "B"),
    ],
)
def test_kind_messy_cells_read_as_their_value(reader: Callable[..., Any], text: str, expected: object) -> None:
    result = read_one(reader, text)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("reader", "text", "reason"),
    [
        (read_integer, "1,23", "its commas do not separate thousands"),
        (read_integer, "12,34,567", "its commas do not separate thousands"),
        (read_integer, "5.0", "it has a decimal point"),
        (read_integer, "1.5", "it is not a whole number"),
        (read_integer, "1e5", "it is not a whole number"),
        (read_decimal, "1e5", "it is written with an exponent"),
        (read_decimal, "0,5", "its commas do not separate thousands"),
        (read_decimal, "85.5㎡", "it is not a number"),
        (lambda cells: read_choice(cells, ["A", "B", "C"]), "Z", "it is not one of A, B, C"),
    ],
)
def test_kind_messy_cells_that_are_refused(reader: Callable[..., Any], text: str, reason: str) -> None:
    assert invalid_reason(read_one(reader, text)) == reason


def test_kind_decimal_text_is_plain_for_any_exponent() -> None:
    assert decimal_text(Decimal("1E+2")) == "100"
    assert decimal_text(Decimal("85.50")) == "85.5"
    assert decimal_text(Decimal("-0.0")) == "0"
    assert decimal_text(Decimal("1.5E-7")) == "0.00000015"
    assert decimal_text(Decimal("1" * 40)) == "1" * 40  # no rounding to the context's 28 digits
    with pytest.raises(ValueError):
        decimal_text(Decimal("NaN"))
    with decimal.localcontext(prec=3):  # nor does the caller's context change it
        assert decimal_text(Decimal("123456.789")) == "123456.789"


def test_kind_hints_and_rules_cover_every_contract_kind() -> None:
    assert set(FIX_HINTS) == set(RULES) == set(READERS)
    assert dict(RULES) == {k: f"invalid_{k}" for k in READERS}
