"""Exercises adapters.sheets.file.FileSheetSource on real files in tmp_path, and the committed sample sheet.

CSV in UTF-8 (with BOM) and Shift_JIS (cp932), XLSX written with openpyxl; ingestion runs on what was read. Does
not touch the Google Sheets source or any database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pytest
from openpyxl import Workbook

from sync_pipeline.adapters.sheets.base import SheetSource
from sync_pipeline.adapters.sheets.file import FileSheetSource
from sync_pipeline.domain.errors import ErrorCategory, SheetReadError
from sync_pipeline.domain.ingest import IngestRules, ingest_sheet
from sync_pipeline_tests.support.sample_sheet import HEADER, SAMPLE_PATH, sample_rows, write_csv

ROW = ["TK00001", "山田 太郎", "090-1234-5678", "taro@example.com", "東京都新宿区西新宿1-1-1",
       "東京都世田谷区北沢2-2-2", "戸建", "査定済", "2025/1/5", "¥12,000,000", "2025/01/05 10:30"]  # fmt: skip


def test_file_source_satisfies_the_protocol(tmp_path: Path) -> None:
    source: SheetSource = FileSheetSource(tmp_path / "x.csv")
    assert source.description == str(tmp_path / "x.csv")


def test_csv_utf8_with_bom_keeps_every_cell_as_text(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "sellers.csv", [HEADER, ROW, ["TK00002", "鈴木", "0312345678"]])
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    raw = FileSheetSource(path).read()
    assert raw.values[0] == HEADER  # the BOM is not part of the first header
    assert raw.values[1] == ROW
    assert raw.values[2] == ["TK00002", "鈴木", "0312345678"]  # leading zero kept, ragged row kept
    assert raw.source == str(path) and raw.first_row == 1


def test_csv_plain_utf8_without_bom(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "sellers.csv", [HEADER, ROW], encoding="utf-8")
    assert FileSheetSource(path).read().values[1] == ROW


def test_csv_shift_jis_from_japanese_excel(tmp_path: Path) -> None:
    row = [*ROW[:9], "\\12,000,000", ROW[10]]  # in Shift_JIS text the yen sign is 0x5C, the backslash
    path = write_csv(tmp_path / "sellers.csv", [HEADER, row], encoding="cp932")
    raw = FileSheetSource(path).read()
    assert raw.values[0] == HEADER
    assert raw.values[1][1] == "山田 太郎"
    snapshot = ingest_sheet(raw, IngestRules())
    assert snapshot.valid.loc[0, "assessed_amount"] == 12_000_000


def test_csv_quoted_cells_with_commas_and_line_breaks(tmp_path: Path) -> None:
    row = [*ROW[:4], "東京都新宿区\n西新宿1-1-1", *ROW[5:9], "12,000,000", ROW[10]]
    path = write_csv(tmp_path / "sellers.csv", [HEADER, row])
    raw = FileSheetSource(path).read()
    assert raw.values[1][4] == "東京都新宿区\n西新宿1-1-1"
    assert raw.values[1][9] == "12,000,000"


def test_tsv_is_read_with_tabs(tmp_path: Path) -> None:
    path = tmp_path / "sellers.tsv"
    path.write_text("\n".join("\t".join(r) for r in [HEADER, ROW]), encoding="utf-8")
    assert FileSheetSource(path).read().values[1] == ROW


def test_undecodable_csv_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "sellers.csv"
    path.write_bytes(b"\x81\x00\xff\xfe\x80")
    with pytest.raises(SheetReadError) as caught:
        FileSheetSource(path).read()
    assert caught.value.category is ErrorCategory.CONFIGURATION
    assert str(path) in caught.value.message


def _xlsx(path: Path, rows: Sequence[Sequence[object]], title: str = "売主一覧", extra: str | None = None) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = title
    for row in rows:
        sheet.append(row)
    if extra:
        workbook.create_sheet(extra).append(["other"])
    workbook.save(path)
    return path


def test_xlsx_cells_render_as_the_sheet_shows_them(tmp_path: Path) -> None:
    rows: list[Sequence[object]] = [
        HEADER,
        ["TK00001", "山田 太郎", "09012345678", None, None, "東京都", "戸建", "査定済",
         dt.datetime(2025, 1, 5), 12000000, dt.datetime(2025, 1, 5, 10, 30)],
        ["TK00002", "鈴木 花子", "0312345678", None, None, "大阪府", "土地", "査定済",
         dt.date(2025, 1, 6), 12000000.0, 45662.4375],
    ]  # fmt: skip
    path = _xlsx(tmp_path / "sellers.xlsx", rows)
    raw = FileSheetSource(path).read()
    assert raw.values[0] == HEADER
    first, second = raw.values[1], raw.values[2]
    assert first[2] == "09012345678"  # a text cell keeps its leading zero
    assert first[8] == "2025-01-05 00:00:00"
    assert first[9] == "12000000"  # an int, not "12000000.0"
    assert first[10] == "2025-01-05 10:30:00"
    assert second[9] == "12000000"  # a whole float without ".0"
    assert second[10] == "45662.4375"
    snapshot = ingest_sheet(raw, IngestRules())
    assert len(snapshot.valid) == 2, snapshot.rejections
    assert snapshot.valid["inquiry_date"].tolist() == [dt.date(2025, 1, 5), dt.date(2025, 1, 6)]
    assert snapshot.valid["sheet_updated_at"].tolist() == [dt.datetime(2025, 1, 5, 1, 30)] * 2


def test_xlsx_formulas_come_as_their_cached_values(tmp_path: Path) -> None:
    # openpyxl writes no cached values, so a formula cell written by it reads back empty with data_only=True:
    # what matters is that the formula text itself never reaches ingestion.
    path = _xlsx(tmp_path / "sellers.xlsx", [HEADER, [*ROW[:9], "=1000*12000", ROW[10]]])
    assert FileSheetSource(path).read().values[1][9] == ""  # never the formula text "=1000*12000"


def test_xlsx_named_worksheet_and_missing_worksheet(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "sellers.xlsx", [HEADER, ROW], title="売主一覧", extra="集計")
    assert FileSheetSource(path, worksheet="集計").read().values == [["other"]]
    assert FileSheetSource(path).read().values[1] == ROW  # the first worksheet by default
    with pytest.raises(SheetReadError) as caught:
        FileSheetSource(path, worksheet="Sheet9").read()
    assert "Sheet9" in caught.value.message and "売主一覧" in caught.value.message


def test_xlsx_trailing_empty_cells_and_rows_are_trimmed(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "sellers.xlsx", [HEADER, ["TK00001", "山田", None, None], [None, None], [None]])
    assert FileSheetSource(path).read().values == [HEADER, ["TK00001", "山田"]]


def test_corrupt_xlsx_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "sellers.xlsx"
    path.write_bytes(b"not a zip file")
    with pytest.raises(SheetReadError) as caught:
        FileSheetSource(path).read()
    assert caught.value.category is ErrorCategory.CONFIGURATION


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "sellers.csv"
    with pytest.raises(SheetReadError) as caught:
        FileSheetSource(path).read()
    assert caught.value.category is ErrorCategory.CONFIGURATION
    assert str(path) in caught.value.message
    assert not caught.value.transient


def test_committed_sample_matches_its_generator() -> None:
    rows, _ = sample_rows()
    assert FileSheetSource(SAMPLE_PATH).read().values == rows


def test_committed_sample_ingests_with_exactly_the_deliberate_rejections() -> None:
    _, bad = sample_rows()
    snapshot = ingest_sheet(FileSheetSource(SAMPLE_PATH).read(), IngestRules())
    assert snapshot.header.ok and snapshot.header.unknown == ()
    assert (snapshot.rows_read, len(snapshot.valid)) == (235, 229)
    assert sorted({(r.sheet_row, r.rule) for r in snapshot.rejections}) == [(b.sheet_row, b.rule) for b in bad]
    assert all(r.cell and r.message for r in snapshot.rejections)
