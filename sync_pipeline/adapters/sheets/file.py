"""The sheet as a local CSV or XLSX export: the embedded default source, so the project runs with no Google account."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from sync_pipeline.adapters.sheets.base import RetryListener
from sync_pipeline.domain.errors import ErrorCategory, SheetReadError
from sync_pipeline.domain.sheet import ColumnRows, RawSheet
from sync_pipeline.domain.textcols import TEXT

# Tried in order. utf-8-sig first: it also reads plain UTF-8 and drops the BOM that Excel's "CSV UTF-8" writes.
# cp932 (Microsoft's Shift_JIS) is what Excel on Japanese Windows writes for plain "CSV".
CSV_ENCODINGS: Final = ("utf-8-sig", "cp932")
XLSX_SUFFIXES: Final = frozenset({".xlsx", ".xlsm"})
TSV_SUFFIXES: Final = frozenset({".tsv", ".tab"})
DATETIME_TEXT: Final = "%Y-%m-%d %H:%M:%S"  # what the normaliser reads, and what hashing cuts timestamps to
# Shortest text that reads back as the same float (15 significant digits, as spreadsheets display them).
FLOAT_TEXT: Final = ".15g"
ARROW_BLOCK_BYTES: Final = 16 << 20  # Arrow's CSV block; one row (a huge cell) must fit in one block
SCAN_BLOCK_BYTES: Final = 4 << 20  # bytes looked at at once for blank lines (two bool copies of it)


@dataclass(frozen=True)
class FileSheetSource:
    """A CSV/TSV (UTF-8 or Shift_JIS) or XLSX export of the seller sheet; every cell is read as text."""

    path: Path
    worksheet: str | None = None  # XLSX only: the sheet to read; the first one when None

    def __init__(self, path: str | Path, worksheet: str | None = None) -> None:
        object.__setattr__(self, "path", Path(path))
        object.__setattr__(self, "worksheet", worksheet)

    @property
    def description(self) -> str:
        return f"{self.path}#{self.worksheet}" if self.worksheet else str(self.path)

    def read(self, on_retry: RetryListener | None = None) -> RawSheet:
        """The whole file in one read. A local file has nothing transient to retry, so `on_retry` is never called."""
        if not self.path.is_file():
            raise SheetReadError(
                ErrorCategory.CONFIGURATION,
                f"sheet file {self.path} does not exist (or is not a file); check --source / SYNC_SHEET_SOURCE",
            )
        suffix = self.path.suffix.lower()
        if suffix == ".xls":
            raise SheetReadError(
                ErrorCategory.CONFIGURATION,
                f"{self.path} is an old Excel .xls file; save it as .xlsx or CSV and point the source at that",
            )
        values: Sequence[Sequence[str]]
        if suffix in XLSX_SUFFIXES:
            values = self._read_xlsx()
        else:
            values = self._read_csv(delimiter="\t" if suffix in TSV_SUFFIXES else ",")
        return RawSheet(source=self.description, values=values, first_row=1)

    def _read_csv(self, delimiter: str) -> Sequence[Sequence[str]]:
        data = self._read_bytes()
        fast = _read_csv_columns(data, delimiter)
        if fast is not None:
            return fast
        text = _decode(data, self.path)
        try:
            # newline="" so that line breaks inside quoted cells reach the csv module intact.
            return [list(row) for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]
        except csv.Error as exc:
            raise SheetReadError(
                ErrorCategory.CONFIGURATION, f"{self.path} is not a readable CSV file ({exc}); re-export it"
            ) from exc

    def _read_bytes(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise SheetReadError(
                ErrorCategory.CONFIGURATION, f"cannot read sheet file {self.path}: {exc.strerror or exc}"
            ) from exc

    def _read_xlsx(self) -> list[list[str]]:
        from openpyxl import load_workbook  # imported here: CSV users never pay for it
        from openpyxl.utils.exceptions import InvalidFileException

        try:
            # read_only streams rows; data_only gives each formula's cached value, as the sheet displays it.
            workbook = load_workbook(self.path, read_only=True, data_only=True)
        except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
            raise SheetReadError(
                ErrorCategory.CONFIGURATION, f"{self.path} is not a readable .xlsx workbook ({exc}); re-save it"
            ) from exc
        try:
            if self.worksheet is None:
                sheet = workbook.worksheets[0]
            elif self.worksheet in workbook.sheetnames:
                sheet = workbook[self.worksheet]
            else:
                raise SheetReadError(
                    ErrorCategory.CONFIGURATION,
                    f"{self.path} has no worksheet named {self.worksheet!r}; it has: {', '.join(workbook.sheetnames)}",
                )
            rows = [[render_cell(value) for value in row] for row in sheet.iter_rows(values_only=True)]
        finally:
            workbook.close()
        return _trim(rows)


def _read_csv_columns(data: bytes, delimiter: str) -> ColumnRows | None:
    """The CSV read by Arrow's parser straight into text columns, or None when it must go through the csv module.

    Arrow reads a rectangular UTF-8 file, as Excel and Sheets export it, many times faster than the csv module and
    into columns; anything else (ragged rows, blank lines, one column, Shift_JIS, a cell beyond the block size) is
    refused here and read by the csv module exactly as before. Both read every cell as its text ("" when empty).
    The columns stay in Arrow's blocks (chunks): joining them would copy the whole sheet once more.
    """
    start = len(codecs.BOM_UTF8) if data[: len(codecs.BOM_UTF8)] == codecs.BOM_UTF8 else 0
    body = memoryview(data)[start:]  # no copy of the file
    line_end = data.find(b"\n", start)
    first_line = data[start : line_end if line_end >= 0 else len(data)]
    if first_line.count(delimiter.encode()) < 1 or b'"' in first_line:
        return None  # a single column, or a quoted header: rare enough to leave to the csv module
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(body),
            read_options=pa_csv.ReadOptions(
                autogenerate_column_names=True, block_size=ARROW_BLOCK_BYTES, use_threads=True
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter,
                quote_char='"',
                double_quote=True,
                escape_char=False,
                newlines_in_values=True,
                ignore_empty_lines=False,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={f"f{i}": TEXT for i in range(first_line.count(delimiter.encode()) + 1)},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        return None
    if _has_empty_row(table) and _has_blank_line(body):
        return None  # the csv module reads a blank line as [], Arrow as a row of empty cells
    return ColumnRows(table.columns)


def _has_empty_row(table: pa.Table) -> bool:
    """Whether some row has nothing in any cell: what a blank line becomes in Arrow (a line of commas, too)."""
    empty = None
    for column in table.columns:
        cells = pc.equal(pc.binary_length(column), 0)
        empty = cells if empty is None else pc.and_(empty, cells)
        if not pc.any(empty).as_py():
            return False
    return True


def _has_blank_line(body: bytes | memoryview) -> bool:
    """Whether a line end follows a line end (LF LF, LF CR, CR CR: a blank line, or a line that starts with a CR,
    rare enough to leave to the csv module too). In numpy, a block at a time: three times bytes.find's speed."""
    data = np.frombuffer(body, dtype=np.uint8)
    for start in range(0, max(len(data) - 1, 0), SCAN_BLOCK_BYTES):
        block = data[start : start + SCAN_BLOCK_BYTES + 1]  # one byte of overlap: a pair can straddle two blocks
        lf, cr = block == ord("\n"), block == ord("\r")
        if (lf[:-1] & (lf[1:] | cr[1:])).any() or (cr[:-1] & cr[1:]).any():
            return True
    return False


def _decode(data: bytes, path: Path) -> str:
    for encoding in CSV_ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SheetReadError(
        ErrorCategory.CONFIGURATION,
        f"{path} is neither UTF-8 nor Shift_JIS (cp932) text; export it again as CSV UTF-8",
    )


def render_cell(value: object) -> str:
    """An XLSX cell value as the text the sheet shows: ints without '.0', datetimes as YYYY-MM-DD HH:MM:SS."""
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else format(value, FLOAT_TEXT)
    if isinstance(value, dt.datetime):
        return value.strftime(DATETIME_TEXT)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S")
    return str(value)


def _trim(rows: list[list[str]]) -> list[list[str]]:
    """Trailing empty cells and rows dropped, as the Sheets API does: formatting can stretch an XLSX's used range
    far beyond its data."""
    trimmed = []
    for row in rows:
        end = len(row)
        while end and row[end - 1] == "":
            end -= 1
        trimmed.append(row[:end])
    while trimmed and not trimmed[-1]:
        trimmed.pop()
    return trimmed
