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
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sync_pipeline.adapters.sheets.file import FileSheetSource
from sync_pipeline.domain import dates, schema, textcols
from sync_pipeline.domain.amounts import _parse_amounts_python, parse_amounts
from sync_pipeline.domain.fields import FIELDS, FieldKind
from sync_pipeline.domain.normalise import (
    CLEAN_STABLE_RANGES,
    CONTROL_CHARACTERS,
    INVISIBLE_CHARACTERS,
    clean_cells,
    normalise_raw,
    normalise_value,
)
from sync_pipeline_tests.support.sample_sheet import generate_rows

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


_HYPHENS = re.compile("[\u2010-\u2015\u2212\u30fc\uff70\ufe63\uff0d\u2043\u02d7]")


def python_phone(text: str | None) -> str | None:
    cleaned = python_clean(text)
    return None if cleaned is None else (_RUN.sub(" ", _HYPHENS.sub("-", cleaned)) or None)


def stable_characters() -> list[int]:
    """The definition of `CLEAN_STABLE_RANGES`: inside the Arrow-safe blocks, neither control nor invisible, its own
    NFKC, no combining mark, and never the second character of a canonical composition."""
    secondaries = set()
    for code in range(0x110000):
        decomposition = unicodedata.decomposition(chr(code))
        if decomposition and not decomposition.startswith("<") and len(decomposition.split()) == 2:
            secondaries.add(int(decomposition.split()[1], 16))
    excluded = {*CONTROL_CHARACTERS, *INVISIBLE_CHARACTERS, *secondaries}
    return [
        code
        for lo, hi in textcols.ARROW_SAFE_RANGES
        for code in range(lo, hi + 1)
        if code not in excluded
        and not unicodedata.combining(chr(code))
        and unicodedata.normalize("NFKC", chr(code)) == chr(code)
    ]


def ranges_codes(ranges: tuple[int | tuple[int, int], ...]) -> list[int]:
    return [c for r in ranges for c in (range(r[0], r[1] + 1) if isinstance(r, tuple) else [r])]


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


@given(
    st.lists(
        st.one_of(
            st.text(st.characters(blacklist_categories=("Cs",)), max_size=9),
            st.from_regex(r"[A-Z]{1,3}[0-9]{3,6}\n?", fullmatch=True),
        ),
        min_size=1,
    ),
    st.integers(1, 3),
    st.integers(1, 6),
)
@example(["AB12345", "AB12345\n", "ab12345", "ＡＢ12345", "AB١٢٣٤٥"], 2, 5)
def test_simple_key_patterns_match_in_re2_as_in_python(texts: list[str], letters: int, digits: int) -> None:
    pattern = schema.seller_number_regex(rf"^[A-Z]{{{letters}}}\d{{{digits}}}$")
    column = pd.Series(pd.arrays.ArrowExtensionArray(textcols.to_arrow(texts)))
    assert schema._full_matches(column, pattern).tolist() == [pattern.fullmatch(t) is not None for t in texts]


_PYTHON_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")
EMAIL_PIECES = st.sampled_from(
    ["taro", "Taro", "ß", "ǅ", "@", ".", "example", "EXAMPLE", "Co", "jp", "例え", " ", "\u3000"]
)


def python_email(text: str | None) -> object:
    cleaned = python_clean(text)
    if cleaned is None:
        return None
    if not _PYTHON_EMAIL.fullmatch(cleaned):
        return "invalid"
    local, domain = cleaned.split("@", 1)
    return f"{local}@{domain.lower()}"


@given(st.lists(st.one_of(st.lists(EMAIL_PIECES, max_size=8).map("".join), st.none()), min_size=1, max_size=30))
@example(["taro@example.com", "Taro@Example.COM", "taro@EXAMPLE.com", "ß@ǅ.jp", "a@b@c.jp"])  # type: ignore[list-item]
def test_email_column_reads_as_the_python_definition(texts: list[str | None]) -> None:
    values, _ = normalise_raw(textcols.to_arrow(texts), FieldKind.EMAIL, "Asia/Tokyo")
    assert [v if v is None or isinstance(v, str) else "invalid" for v in values] == [python_email(t) for t in texts]


DATE_PIECES = st.sampled_from(
    ["2025", "1999", "0000", "R", "r", "H", "S", "令和", "平成", "昭和", "元", "7", "01", "1", "12", "13", "31", "40",
     "/", ".", "-", "年", "月", "日", " ", "  ", "T", ":", "30", "59", "60", "(日)", "(月)", "Z", "UTC", "+09:00",
     "-0500", ".5", "45000", "45000.25", "20250105", "٣", "\u3000"]
)  # fmt: skip


def test_clean_stable_characters_are_what_unicodedata_says() -> None:
    assert ranges_codes(CLEAN_STABLE_RANGES) == stable_characters()


def test_cells_of_stable_characters_are_their_own_cleaned_text() -> None:
    """Every pair of stable characters outside the CJK ideographs (which neither decompose nor compose) is NFKC."""
    chars = [chr(c) for c in ranges_codes(CLEAN_STABLE_RANGES) if not 0x3400 <= c <= 0x9FFF]
    assert [a + b for a in chars for b in chars if unicodedata.normalize("NFKC", a + b) != a + b] == []


# Cells mostly of characters cleaning leaves alone (so that the quick path, which skips them, is taken), with the
# spaces, hyphen look-alikes, kana that compose and letters of either case that make the slow path necessary.
STABLE_PIECES = st.sampled_from(
    ["東京都", "世田谷区", "カ", "か", "\u3099", "が", "ー", "−", "‐", "-", "03", "1234", "TK", "tk", "é", "ß", " ",
     "  ", "\u3000", "\t", "\xa0", "\u200b", "ｶ", "ﾞ", "Ａ", "@", ".", "a"]
)  # fmt: skip
MOSTLY_STABLE = st.lists(STABLE_PIECES, max_size=8).map("".join)


@given(st.lists(st.one_of(MOSTLY_STABLE, st.none()), min_size=1, max_size=30))
def test_quick_path_reads_text_keys_and_phones_as_the_python_definitions(texts: list[str | None]) -> None:
    arrow = textcols.to_arrow(texts)
    assert list(normalise_raw(arrow, FieldKind.TEXT, "Asia/Tokyo")[0]) == [python_text(t) for t in texts]
    assert list(normalise_raw(arrow, FieldKind.KEY, "Asia/Tokyo")[0]) == [python_key(t) for t in texts]
    assert list(normalise_raw(arrow, FieldKind.PHONE, "Asia/Tokyo")[0]) == [python_phone(t) for t in texts]
    present = normalise_raw(arrow, None, "Asia/Tokyo")[1]
    assert list(present) == [python_clean(t) is not None for t in texts]


@pytest.mark.parametrize("kind", list(FieldKind))
def test_a_column_reads_the_same_cell_by_cell_as_by_distinct_cell(
    kind: FieldKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A column whose sample is mostly distinct is read cell by cell, others once per distinct cell: same values."""
    rows = generate_rows(textcols.SAMPLE_CELLS + 500, seed=3)[1:]
    builtin = next((f for f in FIELDS if f.kind is kind), None)
    if builtin is None:  # a kind only contracts use (domain.kinds): numbers that hardly repeat, and its own forms
        forms = ["○", "×", "はい", "A", "ｂ", "1,234", "８５．５", "1,23", "-0.50", "TRUE"]
        written = [f"{i:,}.{i % 7}" if i % 3 else forms[i % len(forms)] for i in range(len(rows))]
    else:
        column = list(FIELDS).index(builtin)
        written = [r[column] if len(r) > column else None for r in rows]
    cells = textcols.to_arrow([*written, "TK 00001", "tk00001", "ask", "2025/13/40", ""])
    by_cell = normalise_raw(cells, kind, "Asia/Tokyo")
    monkeypatch.setattr(textcols, "MOSTLY_DISTINCT", 2.0)  # never: always by distinct cell
    by_distinct = normalise_raw(cells, kind, "Asia/Tokyo")
    monkeypatch.setattr(textcols, "MOSTLY_DISTINCT", -1.0)  # always: always cell by cell
    forced = normalise_raw(cells, kind, "Asia/Tokyo")
    assert list(by_cell[0]) == list(by_distinct[0]) == list(forced[0])
    assert list(by_cell[1]) == list(by_distinct[1]) == list(forced[1])


@given(st.lists(st.lists(DATE_PIECES, max_size=12).map("".join), min_size=1, max_size=20))
@example(["2025年1月5日10:30", "2025年1月5日(日)10:30", "2025年1月5日(日) 10:30", "R7.1.5 9:05+09:00", "2025/1-5"])
@example(["2025-01-05T10:30Z", "2025/1/5 9:05:07+09:00", "2025.12.31 23:59-05:00", "2025年1月5日T9:05", "45000.25"])
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


@pytest.mark.parametrize(
    "text",
    ["a,b\r\n,\r\n1,2\r\n", "a,b\n,\n\n1,2\n", "a,b\r\n,\r\n\r\n1,2\r\n", "a,b\r,\r\r1,2\r", 'a,b\n"x\n\ny",2\n,\n'],
)
def test_rows_of_empty_cells_and_blank_lines_read_as_the_csv_module_reads_them(text: str) -> None:
    from sync_pipeline.adapters.sheets.file import _read_csv_columns

    expected = [list(r) for r in csv.reader(io.StringIO(text, newline=""))]
    fast = _read_csv_columns(text.encode(), ",")
    assert fast is None or list(fast) == expected
    if "\n\n" not in text and "\r\r" not in text and "\n\r\n" not in text:
        assert fast is not None  # a line of commas alone is no reason to leave Arrow


@given(st.binary(max_size=40).map(lambda b: b.replace(b"x", b"\n").replace(b"y", b"\r")), st.integers(1, 8))
def test_blank_lines_are_found_across_scan_blocks(data: bytes, block: int) -> None:
    from sync_pipeline.adapters.sheets import file

    expected = any(pair in data for pair in (b"\n\n", b"\n\r", b"\r\r"))
    original = file.SCAN_BLOCK_BYTES
    try:
        file.SCAN_BLOCK_BYTES = block
        assert file._has_blank_line(data) == expected
    finally:
        file.SCAN_BLOCK_BYTES = original


def test_the_file_source_hands_over_columns_for_a_plain_export(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "s.csv"
    path.write_bytes("\ufeff売主番号,氏名\r\nTK00001,山田\r\n".encode())
    values = FileSheetSource(path).read().values
    assert list(values) == [["売主番号", "氏名"], ["TK00001", "山田"]]
    assert type(values).__name__ == "ColumnRows"
