"""Exercises domain.normalise: cell cleaning and every messy-but-valid (and invalid) form of each field kind.

Pure functions on single values and small columns; does not touch headers, the pandera schema, files or databases.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from sync_pipeline.domain.fields import FieldKind
from sync_pipeline.domain.normalise import (
    HEISEI_FIRST_YEAR,
    REIWA_FIRST_YEAR,
    SERIAL_ORIGIN,
    SHOWA_FIRST_YEAR,
    Invalid,
    clean_cells,
    normalise_value,
    parse_amounts,
)

TOKYO = "Asia/Tokyo"


def value(text: str | None, kind: FieldKind, timezone: str = TOKYO) -> object:
    return normalise_value(text, kind, timezone)


def reason(text: str, kind: FieldKind) -> str:
    result = value(text, kind)
    assert isinstance(result, Invalid), f"{text!r} should be invalid, got {result!r}"
    return result.reason


# --- every cell -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  佐藤 太郎  ", "佐藤 太郎"),
        ("\u00a0佐藤\u00a0", "佐藤"),  # no-break space
        ("\u3000佐藤\u3000", "佐藤"),  # ideographic space
        ("佐藤\u200b", "佐藤"),  # zero-width space
        ("\ufeff佐藤", "佐藤"),  # BOM pasted from a file
        ("ｻﾄｳ", "サトウ"),  # half-width katakana
        ("ＡＢＣ１２３", "ABC123"),  # full-width ASCII
        ("", None),
        ("   ", None),
        ("\u3000\u00a0\u200b", None),
        (None, None),
    ],
)
def test_clean_cells_nfkc_trims_and_empties_to_none(raw: str | None, expected: str | None) -> None:
    assert clean_cells(pd.Series([raw], dtype=object)).iloc[0] == expected


def test_clean_cells_turns_control_characters_into_spaces() -> None:
    cleaned = clean_cells(pd.Series(["a\x1fb", "a\tb", "x\x00"], dtype=object))
    assert cleaned.tolist() == ["a b", "a b", "x"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("佐藤\u3000\u3000太郎", "佐藤 太郎"),
        ("東京都  世田谷区\n北沢", "東京都 世田谷区 北沢"),
        ("\u00a0佐藤\u00a0 太郎 ", "佐藤 太郎"),
    ],
)
def test_text_collapses_internal_whitespace(raw: str, expected: str) -> None:
    assert value(raw, FieldKind.TEXT) == expected


# --- seller number --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "AA00123",
        "ＡＡ００１２３",
        " AA00123 ",
        "AA 00123",
        "aa00123",
        "ａａ　００１２３",
        "\u00a0AA00123\u3000",
        "AA\u200b00123",
    ],
)
def test_seller_number_variants_normalise_to_one_key(raw: str) -> None:
    assert value(raw, FieldKind.KEY) == "AA00123"


def test_seller_number_keeps_leading_zeros() -> None:
    assert value("TK00001", FieldKind.KEY) == "TK00001"


# --- phone ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("090-1234-5678", "090-1234-5678"),
        ("０９０－１２３４－５６７８", "090-1234-5678"),  # full-width digits and hyphen
        ("090ー1234ー5678", "090-1234-5678"),  # katakana prolonged sound mark
        ("03−1234−5678", "03-1234-5678"),  # minus sign
        ("03‐1234‐5678", "03-1234-5678"),  # hyphen U+2010
        ("03–1234—5678", "03-1234-5678"),  # en and em dash
        ("09012345678", "09012345678"),  # leading zero kept: never parsed as a number
        (" 0312345678 ", "0312345678"),
    ],
)
def test_phone_stays_text_with_hyphens_normalised(raw: str, expected: str) -> None:
    assert value(raw, FieldKind.PHONE) == expected


# --- e-mail ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("taro@example.com", "taro@example.com"),
        ("Taro.Yamada@Example.CO.JP", "Taro.Yamada@example.co.jp"),  # domain lower-cased, local part kept
        (" taro@example.com\u3000", "taro@example.com"),
        ("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｃｏｍ", "taro@example.com"),
    ],
)
def test_email_is_trimmed_with_lower_case_domain(raw: str, expected: str) -> None:
    assert value(raw, FieldKind.EMAIL) == expected


@pytest.mark.parametrize("raw", ["taro", "taro@", "@example.com", "taro@example", "ta ro@example.com", "a@@b.com"])
def test_email_that_is_not_an_address_is_invalid(raw: str) -> None:
    assert "e-mail" in reason(raw, FieldKind.EMAIL)


# --- dates ----------------------------------------------------------------------------------------------------

JAN_5 = dt.date(2025, 1, 5)


@pytest.mark.parametrize(
    "raw",
    [
        "2025/1/5",
        "2025/01/05",
        "2025-01-05",
        "2025.1.5",
        "2025年1月5日",
        "2025 年 1 月 5 日",
        "R7.1.5",
        "R7/1/5",
        "r7.1.5",
        "令和7年1月5日",
        "２０２５／１／５",
        "2025/1/5(日)",
        "2025/1/5（日）",
        "20250105",
        "45662",  # serial day number
        "2025-01-05 00:00:00",  # an XLSX date cell rendered by the file source
    ],
)
def test_date_forms(raw: str) -> None:
    assert value(raw, FieldKind.DATE) == JAN_5


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("H31.4.30", dt.date(2019, 4, 30)),
        ("平成31年4月30日", dt.date(2019, 4, 30)),
        ("令和元年5月1日", dt.date(2019, 5, 1)),  # 元年 = the first year of an era
        ("R1.5.1", dt.date(2019, 5, 1)),
        ("S64.1.7", dt.date(1989, 1, 7)),
        ("昭和50年10月1日", dt.date(1975, 10, 1)),
        ("H1.1.8", dt.date(1989, 1, 8)),
    ],
)
def test_japanese_era_dates(raw: str, expected: dt.date) -> None:
    assert value(raw, FieldKind.DATE) == expected


def test_era_constants_are_the_first_gregorian_years() -> None:
    assert (REIWA_FIRST_YEAR, HEISEI_FIRST_YEAR, SHOWA_FIRST_YEAR) == (2019, 1989, 1926)


def test_serials_across_the_whole_window() -> None:
    # The far end is past what a nanosecond timedelta can hold (292 years): it must still parse, not crash.
    assert value("18264", FieldKind.DATE) == dt.date(1950, 1, 1)
    assert value("109574", FieldKind.DATE) == dt.date(2199, 12, 31)
    assert value("109574.5", FieldKind.DATETIME, "UTC") == dt.datetime(2199, 12, 31, 12, 0)
    assert "serial" in reason("109576", FieldKind.DATE)


def test_serial_origin_matches_sheets_and_excel() -> None:
    # 1900-03-01 is serial 61 in both Excel and Google Sheets (Excel's phantom 1900-02-29 is serial 60).
    assert SERIAL_ORIGIN + pd.Timedelta(days=61) == pd.Timestamp("1900-03-01")
    assert value("45658", FieldKind.DATE) == dt.date(2025, 1, 1)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("2025/13/40", "no such date"),
        ("2025/2/29", "no such date"),
        ("R7.2.30", "no such date"),
        ("0025/1/5", "year"),
        ("1234", "serial"),  # a small number in a date column is not a date
        ("ask", "not a date"),
        ("2025/1-5", "not a date"),  # mixed separators
        ("25/1/5", "not a date"),  # two-digit year: ambiguous
        ("来週", "not a date"),
    ],
)
def test_invalid_dates_carry_a_reason(raw: str, why: str) -> None:
    assert why in reason(raw, FieldKind.DATE)


def test_empty_date_is_none() -> None:
    assert value("\u3000", FieldKind.DATE) is None


# --- 更新日時: local time in the sheet's zone, stored as naive UTC ----------------------------------------------

TEN_THIRTY_TOKYO_AS_UTC = dt.datetime(2025, 1, 5, 1, 30)


@pytest.mark.parametrize(
    "raw",
    [
        "2025/01/05 10:30",
        "2025/1/5 10:30:00",
        "2025-01-05T10:30:00",
        "2025-01-05 10:30:00",
        "2025年1月5日 10:30",
        "45662.4375",  # serial with a fraction: 0.4375 day = 10:30
        "2025-01-05T10:30:00+09:00",
        "2025-01-05T01:30:00Z",
        "2025-01-05T10:30:00.250",  # sub-second part dropped: sheets carry none
    ],
)
def test_datetime_forms_come_out_naive_utc(raw: str) -> None:
    result = value(raw, FieldKind.DATETIME)
    assert result == TEN_THIRTY_TOKYO_AS_UTC
    assert isinstance(result, dt.datetime) and result.tzinfo is None


def test_datetime_without_time_is_local_midnight() -> None:
    assert value("2025/1/5", FieldKind.DATETIME) == dt.datetime(2025, 1, 4, 15, 0)


def test_datetime_uses_the_configured_zone() -> None:
    assert value("2025-07-01 12:00", FieldKind.DATETIME, "Europe/London") == dt.datetime(2025, 7, 1, 11, 0)


@pytest.mark.parametrize(("raw", "why"), [("2025/1/5 24:00", "time"), ("2025/1/5 10:61", "time"), ("zz", "date")])
def test_invalid_datetimes_carry_a_reason(raw: str, why: str) -> None:
    assert why in reason(raw, FieldKind.DATETIME)


def test_nonexistent_local_time_is_refused_not_guessed() -> None:
    # 2025-03-30 01:30 does not happen in London (clocks jump from 01:00 to 02:00).
    result = value("2025-03-30 01:30", FieldKind.DATETIME, "Europe/London")
    assert isinstance(result, Invalid) and "Europe/London" in result.reason


# --- amounts --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12000000", 12_000_000),
        ("12,000,000", 12_000_000),
        ("¥12,000,000", 12_000_000),
        ("￥12,000,000", 12_000_000),
        ("\\12,000,000", 12_000_000),  # the yen sign of a Shift_JIS file read as a backslash
        ("12000000円", 12_000_000),
        ("12,000,000円", 12_000_000),
        ("¥12,000,000-", 12_000_000),  # receipt style
        ("１２，０００，０００円", 12_000_000),
        ("1,200万", 12_000_000),
        ("1200万円", 12_000_000),
        ("1.5億", 150_000_000),
        ("3億2000万", 320_000_000),
        ("3億2,000万円", 320_000_000),
        ("5千万", 50_000_000),
        ("1億5千万", 150_000_000),
        ("12,000,000.00", 12_000_000),
        ("0", 0),
        ("0012", 12),
    ],
)
def test_amount_forms(raw: str, expected: int) -> None:
    result = value(raw, FieldKind.AMOUNT)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("-100", "negative"),
        ("−1,000,000", "negative"),
        ("▲1,000,000", "negative"),  # the Japanese accounting negative mark
        ("(1,000)", "negative"),
        ("ask", "not an amount"),
        ("未定", "not an amount"),
        ("1,2,3", "not an amount"),
        ("万", "not an amount"),
        ("5億万", "not an amount"),  # units out of order
        ("1200万〜1500万", "not an amount"),  # a range is not one amount
        ("1.5", "whole number"),
        ("1.23456万", "whole number"),
        ("99999999999999999999", "too large"),
    ],
)
def test_invalid_amounts_carry_a_reason(raw: str, why: str) -> None:
    assert why in reason(raw, FieldKind.AMOUNT)


def test_amount_column_keeps_python_ints_and_none() -> None:
    column = parse_amounts(clean_cells(pd.Series(["1,200万", None, "12,000,000", "ask"], dtype=object)))
    assert column.dtype == object
    assert [type(v).__name__ for v in column] == ["int", "NoneType", "int", "Invalid"]
