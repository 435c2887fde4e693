"""Exercises the column fast paths of ingestion (Arrow kernels, RE2 forms, Arrow's CSV reader) against the plain Python
they replace: same cleaned text, same seller numbers, same dates and amounts, same rows, for arbitrary input.

The oracles here are the straightforward Python definitions (str.translate, unicodedata NFKC, str.strip/split/upper,
the Python date forms, the csv module). Pure: no database, no Dagster; the CSV comparison writes temporary files only.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import example, given
from hypothesis import strategies as st

from sync_pipeline.adapters.sheets.file import FileSheetSource
from sync_pipeline.domain import dates, textcols
from sync_pipeline.domain.amounts import _parse_amounts_python, parse_amounts
from sync_pipeline.domain.fields import FieldKind
from sync_pipeline.domain.normalise import (
    CONTROL_CHARACTERS,
    INVISIBLE_CHARACTERS,
    clean_cells,
    normalise_raw,
    normalise_value,
)

_CLEANING = {**{c: " " for c in CONTROL_CHARACTERS}, **{c: None for c in INVISIBLE_CHARACTERS}}
_RUN = re.compile(r"\s+")
FULL_WIDTH_OFFSET = 0xFEE0


def python_clean(text: str | None) -> str | None:
    """The reference definition of a cleaned cell."""
    if text is None:
        return None
    cleaned = unicodedata.normalize("NFKC", text.translate(_CLEANING)).strip()
    return cleaned or None


def python_key(text: str | None) -> str | None:
    cleaned = python_clean(text)
    return None if cleaned is None else (_RUN.sub("", cleaned).upper() or None)


def python_text(text: str | None) -> str | None:
    cleaned = python_clean(text)
    return None if cleaned is None else (_RUN.sub(" ", cleaned) or None)


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + FULL_WIDTH_OFFSET) if "!" <= c <= "~" else c for c in text)


# Characters where Arrow and Python part ways: case mappings of one to many (ß, ﬁ, İ), code points Unicode 14 leaves
# unassigned but Arrow's newer Unicode decomposes (U+0558, U+209D, U+1E030), supplementary planes, every space.
TRICKY = st.sampled_from(
    ["ß", "ﬁ", "İ", "ǅ", "\u0558", "\u209d", "\ua7f1", "\U0001e030", "\U0001d400", "㍻", "①", "ｶ", "ﾞ", "\u3000", "\xa0"]
    + [chr(c) for c in textcols.WHITESPACE_CODES]
)
ANY_TEXT = st.text(st.one_of(st.characters(), TRICKY), max_size=16)


@st.composite
def written_keys(draw: st.DrawFn) -> str:
    """A seller number as someone might type it: full-width, lower case, spaces of any kind anywhere."""
    key = draw(st.from_regex(r"[A-Z]{2}[0-9]{5}", fullmatch=True))
    chars = list(key.lower() if draw(st.booleans()) else key)
    if draw(st.booleans()):
        chars = list(full_width("".join(chars)))
    for _ in range(draw(st.integers(0, 4))):
        chars.insert(draw(st.integers(0, len(chars))), draw(st.sampled_from([" ", "\u3000", "\xa0", "\t", "\u200b"])))
    return "".join(chars)


def test_whitespace_is_exactly_what_python_strips() -> None:
    assert {chr(c) for c in range(0x110000) if chr(c).isspace()} == set(textcols.WHITESPACE)
    assert {chr(c) for c in range(0x110000) if re.fullmatch(r"\s", chr(c))} == set(textcols.WHITESPACE)


def test_arrow_normalises_every_safe_character_as_python_does() -> None:
    chars = [chr(c) for lo, hi in textcols.ARROW_SAFE_RANGES for c in range(lo, hi + 1)]
    assert pc.utf8_normalize(pa.array(chars), form="NFKC").to_pylist() == [
        unicodedata.normalize("NFKC", c) for c in chars
    ]


@given(st.lists(st.one_of(written_keys(), ANY_TEXT), min_size=1, max_size=30))
@example(["ａａ ００１２３", " aa00123 ", "AA\u200b00123", "ß", None])  # type: ignore[list-item]
def test_property_33_seller_number_scalar_equals_column_path(texts: list[str | None]) -> None:
    """normalise_value(·, KEY), THE scalar normalisation of a seller number, is the column path for every text."""
    column, _ = normalise_raw(textcols.to_arrow(texts), FieldKind.KEY, "Asia/Tokyo")
    assert list(column) == [normalise_value(t, FieldKind.KEY) for t in texts] == [python_key(t) for t in texts]


@given(st.lists(st.one_of(ANY_TEXT, st.none()), min_size=1, max_size=30))
def test_cleaning_and_text_equal_the_python_definitions(texts: list[str | None]) -> None:
    series = pd.Series(texts, dtype=object)
    assert clean_cells(series).tolist() == [python_clean(t) for t in texts]
    column, present = normalise_raw(textcols.to_arrow(texts), FieldKind.TEXT, "Asia/Tokyo")
    assert list(column) == [python_text(t) for t in texts]
    assert list(present) == [python_clean(t) is not None for t in texts]


DATE_PIECES = st.sampled_from(
    ["2025", "1999", "0000", "R", "r", "H", "S", "令和", "平成", "昭和", "元", "7", "01", "1", "12", "13", "31", "40",
     "/", ".", "-", "年", "月", "日", " ", "  ", "T", ":", "30", "59", "60", "(日)", "(月)", "Z", "UTC", "+09:00",
     "-0500", ".5", "45000", "45000.25", "20250105", "٣", "\u3000"]
)  # fmt: skip


@given(st.lists(st.lists(DATE_PIECES, max_size=12).map("".join), min_size=1, max_size=20))
@example(["2025年1月5日10:30", "2025年1月5日(日)10:30", "2025年1月5日(日) 10:30", "R7.1.5 9:05+09:00", "2025/1-5"])
def test_date_forms_in_re2_read_what_the_python_forms_read(texts: list[str]) -> None:
    cleaned = clean_cells(pd.Series(texts, dtype=object))
    fast = dates._date_parts(cleaned)
    reference = dates._python_parts(cleaned)

    def plain(frame: pd.DataFrame) -> list[list[object]]:  # NaN and None alike mean "no such part"
        return frame.astype(object).where(frame.notna(), None).values.tolist()

    assert plain(fast) == plain(reference)


AMOUNT_PIECES = st.sampled_from(
    ["0", "1", "12", "200", "000", "1234", ",", ".", ".0", "¥", "\\", "JPY", "円", "万", "億", "千", "-", "▲", "(", ")",
     " ", "99999999999999999", "٣"]
)  # fmt: skip


@given(st.lists(st.lists(AMOUNT_PIECES, max_size=8).map("".join), min_size=1, max_size=20))
def test_amount_forms_in_re2_read_what_the_python_forms_read(texts: list[str]) -> None:
    cleaned = clean_cells(pd.Series(texts, dtype=object))
    fast, reference = parse_amounts(cleaned).tolist(), _parse_amounts_python(cleaned).tolist()
    assert fast == reference
    assert [type(v) for v in fast] == [type(v) for v in reference]


CSV_CELLS = st.text(st.sampled_from([*'ab,"\r\n 東京', "\u3000"]), max_size=6)


@given(st.integers(2, 4).flatmap(lambda w: st.lists(st.lists(CSV_CELLS, min_size=w, max_size=w), min_size=1)))
def test_arrow_csv_reads_what_the_csv_module_reads(rows: list[list[str]]) -> None:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    data = buffer.getvalue().encode("utf-8")
    expected = [list(r) for r in csv.reader(io.StringIO(data.decode("utf-8"), newline=""))]
    from sync_pipeline.adapters.sheets.file import _read_csv_columns

    fast = _read_csv_columns(data, ",")
    assert fast is None or list(fast) == expected


def test_the_file_source_hands_over_columns_for_a_plain_export(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "s.csv"
    path.write_bytes("\ufeff売主番号,氏名\r\nTK00001,山田\r\n".encode())
    values = FileSheetSource(path).read().values
    assert list(values) == [["売主番号", "氏名"], ["TK00001", "山田"]]
    assert type(values).__name__ == "ColumnRows"
