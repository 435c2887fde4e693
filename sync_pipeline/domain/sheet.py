"""What a sheet source hands to ingestion (the displayed cell text) and what ingestion hands to the sync."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pyarrow as pa

from sync_pipeline.domain.fields import KEY_FIELD
from sync_pipeline.domain.textcols import TEXT, to_arrow


def column_letter(index: int) -> str:
    """Spreadsheet column letters for a 0-based column index: 0 → A, 25 → Z, 26 → AA."""
    if index < 0:
        raise ValueError(f"column index must be >= 0, got {index}")
    letters = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def a1(row: int, col_index: int) -> str:
    """A1 reference of a cell: 1-based sheet row, 0-based column index."""
    return f"{column_letter(col_index)}{row}"


class ColumnRows(Sequence[list[str]]):
    """Sheet rows held as Arrow text columns of one length ("" for an empty cell), as a fast reader hands them over.

    Indexing gives a row as a list, like the row-wise sources; slicing stays columnar, so ingestion reads the columns
    without ever building a million row lists.
    """

    def __init__(self, columns: Iterable[pa.Array | pa.ChunkedArray]) -> None:
        self.columns: tuple[pa.Array | pa.ChunkedArray, ...] = tuple(columns)

    def __len__(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    @overload
    def __getitem__(self, item: int) -> list[str]: ...

    @overload
    def __getitem__(self, item: slice) -> Sequence[list[str]]: ...

    def __getitem__(self, item: int | slice) -> list[str] | Sequence[list[str]]:
        if isinstance(item, slice):
            start, stop, step = item.indices(len(self))
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            return ColumnRows(c.slice(start, max(stop - start, 0)) for c in self.columns)
        position = item + len(self) if item < 0 else item
        if not 0 <= position < len(self):
            raise IndexError(item)
        return [c[position].as_py() for c in self.columns]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


def _text_column(cells: Sequence[object]) -> pa.Array:
    """One column of cells as Arrow text; a source's non-text cell (a test's int) is shown as text, None is missing."""
    try:
        return pa.array(cells, type=TEXT)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return to_arrow([c if c is None or isinstance(c, str) else str(c) for c in cells])
    except UnicodeEncodeError:
        return to_arrow(cells)


def text_columns(rows: Sequence[Sequence[Any]]) -> list[pa.Array | pa.ChunkedArray]:
    """The rows as Arrow text columns, ragged rows padded with missing cells (zero-copy for `ColumnRows`)."""
    if isinstance(rows, ColumnRows):
        return list(rows.columns)
    width = max((len(r) for r in rows), default=0)
    padded = [r if len(r) == width else [*r, *([None] * (width - len(r)))] for r in rows]
    return [_text_column(column) for column in zip(*padded, strict=True)] if padded else []


@dataclass(frozen=True)
class RawSheet:
    """The displayed text of every cell of one worksheet, read in one request.

    `values[0]` is sheet row `first_row` (1 for a whole-sheet read). Rows may be ragged (trailing empty cells are
    omitted by the Sheets API) and may be entirely blank. Formulas arrive as their displayed value.
    """

    source: str  # what was read, for messages: a file path or "gsheet:KEY/worksheet"
    values: Sequence[Sequence[str]]
    first_row: int = 1
    cell_url: str | None = None  # a link to one cell, `{cell}` standing for its A1 reference (Google sources)


@dataclass(frozen=True)
class Rejection:
    """A sheet row that will not be synced, and why: the office fixes `cell` and the next sync picks it up."""

    sheet_row: int
    rule: str  # required | seller_number_format | duplicate_seller_number | invalid_date | invalid_amount | ...
    message: str  # says what to fix
    cell: str | None = None  # A1 reference of the offending cell
    column: str | None = None  # the header text of that column, as the office sees it
    field: str | None = None  # canonical field name
    value: str | None = None  # the cell text as read (truncated for huge cells)
    seller_number: str | None = None  # normalised, when the row has a readable one


@dataclass(frozen=True)
class HeaderIssue:
    """A header problem that must stop the sync before anything is written."""

    rule: str  # missing_required | ambiguous | disappeared | no_header
    field: str | None
    message: str  # names the header to restore or rename


@dataclass(frozen=True)
class HeaderReport:
    """How the header row mapped onto the seller fields."""

    mapping: Mapping[str, str]  # field name -> header text found in the sheet
    columns: Mapping[str, int]  # field name -> 0-based column index
    header_row: int  # 1-based sheet row of the header
    unknown: tuple[str, ...] = ()  # headers that map to no field (ignored, reported once)
    issues: tuple[HeaderIssue, ...] = ()
    fingerprint: str = ""  # stable hash of the mapping, kept per sync
    unknown_columns: Mapping[str, int] = field(default_factory=dict)  # header text -> its (first) column, in order
    dropped_fields: tuple[str, ...] = ()  # fields of the last sync's mapping the contract no longer has

    @property
    def ok(self) -> bool:
        return not self.issues


@dataclass(frozen=True)
class SheetSnapshot:
    """The sheet as one sync saw it: the valid seller records and every rejected row with its reason.

    `valid` has one row per seller number, the columns of `FIELD_NAMES` (normalised, typed: text as str or None,
    dates as `datetime.date`, `sheet_updated_at` as naive UTC `datetime`, amounts as int or None) plus `sheet_row`
    (int) and `row_hash` (the content hash of `domain.hashing`).
    """

    source: str
    rows_read: int  # non-blank data rows below the header
    valid: pd.DataFrame
    rejections: tuple[Rejection, ...]
    header: HeaderReport
    fetch_seconds: float = 0.0
    validate_seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)
    contract: Any = None  # the `SheetContract` the sheet was read with (None: the built-in fields)
    unmapped_columns: str = "report"  # the setting in force: report | keep | refuse
    cell_url: str | None = None  # the RawSheet's link template: `{cell}` stands for an A1 reference

    @property
    def attribute_layout(self) -> tuple[tuple[str, ...], bool]:
        """The attributes the sheet owns (the contract's own fields, sorted) and whether kept unmapped columns are
        among them: what the writer replaces and the database hash covers."""
        extras: tuple[str, ...] = self.contract.extras if self.contract is not None else ()
        return extras, self.unmapped_columns == "keep"

    @property
    def valid_keys(self) -> frozenset[str]:
        return frozenset(self.valid["seller_number"]) if len(self.valid) else frozenset()

    @property
    def cell_links(self) -> CellLinks | None:
        """How to link this sheet's cells (a Google source); None for a file, whose cells no URL opens."""
        if self.cell_url is None:
            return None
        return CellLinks(self.cell_url, self.header.columns.get(KEY_FIELD))


@dataclass(frozen=True)
class CellLinks:
    """What links a seller to its cell in the sheet, for messages sent away from the sheet (alerts): the sheet's
    `cell_url` template and the column of the seller number (0-based; None when the header has none)."""

    template: str
    key_column: int | None = None

    def url(self, cell: str) -> str:
        return self.template.replace("{cell}", cell)

    def key_cell(self, sheet_row: int) -> str | None:
        """The A1 reference of the seller-number cell on `sheet_row`."""
        return None if self.key_column is None else a1(sheet_row, self.key_column)


def cell_link(template: str | None, cell: str | None) -> str | None:
    """The link that opens `cell` in the sheet (a `cell_url` template filled in), None without either."""
    if template is None or not cell:
        return None
    return template.replace("{cell}", cell)


def linked_cell(url: str) -> str | None:
    """The A1 reference a cell link opens (its `range` parameter, in the fragment as Google writes it, or the query),
    so that a link kept without its cell can still be labelled with it; None when the URL names no cell."""
    parts = urlsplit(url)
    for params in (parts.fragment, parts.query):
        found = parse_qs(params).get("range")
        if found and found[0]:
            return found[0]
    return None
