"""The sheet as a local CSV or XLSX export: the embedded default source, so the project runs with no Google account."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sync_pipeline.adapters.sheets.base import RetryListener
from sync_pipeline.domain.errors import ErrorCategory, SheetReadError
from sync_pipeline.domain.sheet import RawSheet

# Tried in order. utf-8-sig first: it also reads plain UTF-8 and drops the BOM that Excel's "CSV UTF-8" writes.
# cp932 (Microsoft's Shift_JIS) is what Excel on Japanese Windows writes for plain "CSV".
CSV_ENCODINGS: Final = ("utf-8-sig", "cp932")
XLSX_SUFFIXES: Final = frozenset({".xlsx", ".xlsm"})
TSV_SUFFIXES: Final = frozenset({".tsv", ".tab"})
DATETIME_TEXT: Final = "%Y-%m-%d %H:%M:%S"  # what the normaliser reads, and what hashing cuts timestamps to
# Shortest text that reads back as the same float (15 significant digits, as spreadsheets display them).
FLOAT_TEXT: Final = ".15g"


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
        if suffix in XLSX_SUFFIXES:
            values = self._read_xlsx()
        else:
            values = self._read_csv(delimiter="\t" if suffix in TSV_SUFFIXES else ",")
        return RawSheet(source=self.description, values=values, first_row=1)

    def _read_csv(self, delimiter: str) -> list[list[str]]:
        data = self._read_bytes()
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
