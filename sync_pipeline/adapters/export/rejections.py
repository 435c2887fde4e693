"""Rejected rows as `.xlsx` (offending cells filled and commented) or `.csv` (UTF-8 with BOM, for Excel)."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# (JSON key, header the office reads, column width in characters)
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("row", "row", 6),
    ("cell", "cell", 7),
    ("column", "field/column", 16),
    ("value", "cell text", 24),
    ("rule", "rule", 22),
    ("seller_number", "seller number", 14),
    ("message", "message", 80),
)
VALUE_COLUMN = 4  # 1-based column of the cell text: the one filled and commented
FILL_RGB = "FFC7CE"  # Excel's own "light red fill" of conditional formatting
COMMENT_AUTHOR = "sync-pipeline"
CSV_ENCODING = "utf-8-sig"  # the BOM tells Excel in a Japanese locale the file is UTF-8, not Shift_JIS
SUFFIXES = (".xlsx", ".csv")


def _cells(r: Mapping[str, Any]) -> list[Any]:
    column = r.get("column") or r.get("field")
    return [column if key == "column" else r.get(key) for key, _, _ in COLUMNS]


def write_rejections(path: Path, rows: Sequence[Mapping[str, Any]], *, sheet_title: str = "rejections") -> None:
    """Write `rows` to `path`, as a workbook or a CSV by its suffix (one of SUFFIXES)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open("w", encoding=CSV_ENCODING, newline="") as f:
            writer = csv.writer(f)
            writer.writerow([header for _, header, _ in COLUMNS])
            writer.writerows(_cells(r) for r in rows)
        return
    if suffix != ".xlsx":
        raise ValueError(f"{path}: the export is .xlsx or .csv")
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = sheet_title[:31]  # Excel's limit on a worksheet title
    sheet.append([header for _, header, _ in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    fill = PatternFill(fill_type="solid", start_color=FILL_RGB, end_color=FILL_RGB)
    for r in rows:
        sheet.append(_cells(r))
        offending = sheet.cell(row=sheet.max_row, column=VALUE_COLUMN)
        offending.fill = fill
        offending.comment = Comment(str(r.get("message") or ""), COMMENT_AUTHOR, width=300, height=100)
    for position, (_, _, width) in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(position)].width = width
    sheet.freeze_panes = "A2"
    book.save(path)
