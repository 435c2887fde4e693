"""Reading the Sheets API's answers, pure: spreadsheet keys and URLs, A1 ranges, whether a values answer covers
the whole worksheet (a partial read must never be synced), and the notes of a grid-data answer and the request that
sets one (sheet feedback). No I/O: `gsheet.py` does the calls."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sync_pipeline.domain.errors import ErrorCategory, SheetFeedbackError, SheetReadError
from sync_pipeline.domain.feedback import Cell, NoteChange
from sync_pipeline.domain.sheet import column_letter

MAJOR_DIMENSION = "ROWS"
# The notes of every cell of the worksheet, and nothing else of it (a field mask: Google sends no values, no format).
NOTES_FIELDS = "sheets(properties(sheetId,title),data(startRow,startColumn,rowData(values(note))))"
_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_URL_KEY_RE = re.compile(r"/spreadsheets/d/([A-Za-z0-9_-]+)")
_URL_GID_RE = re.compile(r"[#?&]gid=(\d+)")
_A1_CELL_RE = re.compile(r"([A-Z]+)([0-9]+)")


@dataclass(frozen=True)
class SpreadsheetRef:
    """A spreadsheet key, and the worksheet id (gid) when it was given as a URL that names one."""

    key: str
    gid: int | None = None


def parse_spreadsheet_ref(text: str) -> SpreadsheetRef:
    """The key from a bare key or a URL like https://docs.google.com/spreadsheets/d/KEY/edit#gid=0."""
    text = text.strip()
    if text.startswith(("http://", "https://")):
        match = _URL_KEY_RE.search(text)
        if match is None:
            raise SheetReadError(
                ErrorCategory.CONFIGURATION,
                f"{text!r} is not a Google Sheets URL (expected https://docs.google.com/spreadsheets/d/KEY/...): "
                "copy the URL from the browser's address bar while the spreadsheet is open, or give the bare key",
            )
        gid = _URL_GID_RE.search(text)
        return SpreadsheetRef(match.group(1), int(gid.group(1)) if gid else None)
    if not _KEY_RE.fullmatch(text):
        raise SheetReadError(
            ErrorCategory.CONFIGURATION,
            f"{text!r} is not a spreadsheet key (letters, digits, '-' and '_' only): give the key between /d/ and "
            "/edit in the spreadsheet's URL, or the whole URL",
        )
    return SpreadsheetRef(text)


class IncompleteAnswerError(Exception):
    """The API answered 200 with something that is not the whole answer; another attempt usually gets it."""


def json_object(answer: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(answer, dict):
        raise IncompleteAnswerError(f"the {what} is not a JSON object")
    return answer


def split_range(a1_range: str) -> tuple[str, str]:
    """("Sheet 1", "A1:Z1000") from "'Sheet 1'!A1:Z1000"; a quoted title is unquoted ('' stands for ')."""
    if not a1_range.startswith("'"):
        title, _, cells = a1_range.partition("!")
        return title, cells
    i = 1
    while i < len(a1_range):
        if a1_range[i] == "'":
            if a1_range[i + 1 : i + 2] == "'":
                i += 2
                continue
            return a1_range[1:i].replace("''", "'"), a1_range[i + 1 :].removeprefix("!")
        i += 1
    return a1_range, ""  # unbalanced quote: no title we could match


def cell_position(ref: str) -> tuple[int, int] | None:
    """(1-based row, 1-based column) of an A1 cell reference, or None."""
    match = _A1_CELL_RE.fullmatch(ref)
    if match is None:
        return None
    col = 0
    for letter in match.group(1):
        col = col * 26 + (ord(letter) - ord("A") + 1)
    return int(match.group(2)), col


def checked_values(
    answer: Mapping[str, Any], title: str, row_count: object, column_count: object
) -> tuple[tuple[str, ...], ...]:
    """The values of a whole-worksheet answer, refused unless the answer covers the whole worksheet.

    For a whole-worksheet request the Sheets API answers with the range of the whole grid (e.g. Sheet1!A1:Z1000)
    and the values with trailing empty rows and cells left out. An answer whose range is shorter than the grid
    the metadata describes, or whose values do not fit its range, is a partial read and must not be synced.
    """
    a1_range = answer.get("range")
    if not isinstance(a1_range, str):
        raise IncompleteAnswerError("the values answer has no range")
    answer_title, cells = split_range(a1_range)
    if answer_title != title:
        raise IncompleteAnswerError(f"the values answer is for {a1_range!r}, not worksheet {title!r}")
    start, _, end = cells.partition(":")
    first, last = cell_position(start), cell_position(end or start)
    if first != (1, 1) or last is None:
        raise IncompleteAnswerError(f"the values answer covers {a1_range!r}, not the whole worksheet from A1")
    last_row, last_col = last
    if (
        isinstance(row_count, int)
        and isinstance(column_count, int)
        and (last_row < row_count or last_col < column_count)
    ):
        raise IncompleteAnswerError(
            f"the values answer covers {a1_range!r} but the worksheet has {row_count} rows and "
            f"{column_count} columns (to {column_letter(column_count - 1)}{row_count})"
        )
    if answer.get("majorDimension", MAJOR_DIMENSION) != MAJOR_DIMENSION:
        raise IncompleteAnswerError(f"the values answer is by {answer.get('majorDimension')}, not by rows")
    raw_rows = answer.get("values", [])  # Google leaves "values" out when the worksheet is empty
    if not isinstance(raw_rows, list) or len(raw_rows) > last_row:
        raise IncompleteAnswerError(f"the values answer's rows do not fit its range {a1_range!r}")
    rows: list[tuple[str, ...]] = []
    for raw in raw_rows:
        if not isinstance(raw, list) or len(raw) > last_col or not all(isinstance(c, str) for c in raw):
            raise IncompleteAnswerError(
                f"row {len(rows) + 1} of the values answer is not a list of at most {last_col} text cells"
            )
        rows.append(tuple(raw))
    return tuple(rows)


def notes_of(answer: Mapping[str, Any], sheet_id: int | None) -> dict[Cell, str]:
    """The notes in a grid-data answer, by (1-based row, 0-based column); Google leaves out a GridData's startRow /
    startColumn when 0, a row without cells, and a cell without a note."""
    sheets = answer.get("sheets")
    if not isinstance(sheets, list):
        raise SheetFeedbackError(ErrorCategory.UNKNOWN, "the notes answer of the sheets API has no list of sheets")
    notes: dict[Cell, str] = {}
    for sheet in sheets:
        properties = sheet.get("properties") or {}
        if sheet_id is not None and properties.get("sheetId", sheet_id) != sheet_id:
            continue
        for grid in sheet.get("data") or ():
            first_row = int(grid.get("startRow", 0))
            first_col = int(grid.get("startColumn", 0))
            for i, row in enumerate(grid.get("rowData") or ()):
                for j, cell in enumerate(row.get("values") or ()):
                    note = cell.get("note") if isinstance(cell, dict) else None
                    if isinstance(note, str) and note:
                        notes[(first_row + i + 1, first_col + j)] = note
    return notes


def note_request(sheet_id: int, change: NoteChange) -> dict[str, Any]:
    row, col = change.cell
    return {
        "updateCells": {
            "range": {
                "sheetId": sheet_id,
                "startRowIndex": row - 1,
                "endRowIndex": row,
                "startColumnIndex": col,
                "endColumnIndex": col + 1,
            },
            "rows": [{"values": [{"note": change.note}]}],
            "fields": "note",
        }
    }
