"""Turns one read of the sheet into a SheetSnapshot: headers mapped, cells normalised, rows validated."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from sync_pipeline.domain import textcols as tc
from sync_pipeline.domain.fields import (
    DEFAULT_REQUIRED_FIELDS,
    DEFAULT_SELLER_NUMBER_PATTERN,
    FIELD_BY_NAME,
    FIELD_NAMES,
)
from sync_pipeline.domain.hashing import HASH_FIELDS, hash_rows
from sync_pipeline.domain.headers import map_headers
from sync_pipeline.domain.normalise import DistinctColumn, read_distinct, validation_records
from sync_pipeline.domain.schema import find_rejections
from sync_pipeline.domain.settings import Settings
from sync_pipeline.domain.sheet import HeaderReport, RawSheet, Rejection, SheetSnapshot, text_columns

VALID_COLUMNS: tuple[str, ...] = (*FIELD_NAMES, "sheet_row", "row_hash")
DEFAULT_TIMEZONE = Settings.sheet_timezone  # one default, owned by Settings


@dataclass(frozen=True)
class IngestRules:
    """What ingestion needs from the settings and from the last successful sync."""

    seller_number_pattern: str = DEFAULT_SELLER_NUMBER_PATTERN
    required_fields: tuple[str, ...] = DEFAULT_REQUIRED_FIELDS
    timezone: str = DEFAULT_TIMEZONE  # 更新日時 typed without a zone is local time here
    previous_mapping: Mapping[str, str] | None = None  # field -> header text of the last successful sync

    @classmethod
    def from_settings(cls, settings: Settings, previous_mapping: Mapping[str, str] | None = None) -> IngestRules:
        return cls(
            seller_number_pattern=settings.seller_number_pattern,
            required_fields=tuple(settings.required_fields),
            timezone=settings.sheet_timezone,
            previous_mapping=dict(previous_mapping) if previous_mapping is not None else None,
        )


def empty_valid_frame() -> pd.DataFrame:
    """A `valid` frame with no rows and the agreed columns."""
    return pd.DataFrame({name: pd.Series([], dtype=object) for name in VALID_COLUMNS})


def ingest_sheet(raw: RawSheet, rules: IngestRules) -> SheetSnapshot:
    """Map headers, normalise and validate one read of the sheet.

    Never raises on sheet content: header problems come back in `header.issues` with an empty `valid` frame (the
    caller refuses to write); bad rows come back as rejections, sorted by sheet row.
    """
    started = time.perf_counter()
    header = map_headers(raw, rules.required_fields, rules.previous_mapping)
    if header.header_row == 0:  # no header row at all: nothing below it to read
        return _snapshot(raw, header, 0, empty_valid_frame(), (), started)

    below = header.header_row + 1  # the first data row, as a sheet row
    columns = text_columns(raw.values[below - raw.first_row :])
    rows = len(columns[0]) if columns else 0
    field_at = {col: name for name, col in header.columns.items()} if header.ok else {}
    typed: dict[str, DistinctColumn] = {}
    non_blank = np.zeros(rows, dtype=bool)
    for col, column in enumerate(columns):  # one pass per column: cleaned, read and checked for blankness at once
        name = field_at.get(col)
        read = read_distinct(column, FIELD_BY_NAME[name].kind if name else None, rules.timezone)
        non_blank |= tc.spread(read.present, read.indices, missing=False)
        if name is not None:
            typed[name] = read
    rows_read = int(non_blank.sum())
    notes = _notes(header)
    if not header.ok:
        return _snapshot(raw, header, rows_read, empty_valid_frame(), (), started, notes)

    positions = np.flatnonzero(non_blank)  # the non-blank rows, as positions below the header
    index = pd.Index(positions + below)
    records = validation_records(typed, positions, index)
    raw_fields = pd.DataFrame(  # the cell text as read, for the rejections' messages (Arrow-backed: no copies)
        {
            name: pd.Series(pd.arrays.ArrowExtensionArray(columns[col]), index=pd.RangeIndex(below, below + rows))
            for name, col in header.columns.items()
            if col < len(columns)
        },
        index=pd.RangeIndex(below, below + rows),
    )
    rejections = find_rejections(records, raw_fields, header, rules.seller_number_pattern, rules.required_fields)
    del records, raw_fields  # a million rows' worth, not needed for the valid frame
    if rejections:
        rejected = np.isin(positions + below, np.fromiter({r.sheet_row for r in rejections}, dtype=np.int64))
        positions = positions[~rejected]
    valid = _valid_frame(typed, positions, below)
    ordered = tuple(sorted(rejections, key=lambda r: (r.sheet_row, header.columns.get(r.field or "", -1), r.rule)))
    return _snapshot(raw, header, rows_read, valid, ordered, started, notes)


def _valid_frame(typed: Mapping[str, DistinctColumn], positions: np.ndarray[Any, Any], below: int) -> pd.DataFrame:
    """The `valid` frame of the rows at `positions`: plain Python values in object columns, and each row's hash."""
    if not len(positions):
        return empty_valid_frame()
    missing = np.full(len(positions), None, dtype=object)
    hashed: list[tuple[pa.Array, np.ndarray[Any, Any]]] = []
    for name in HASH_FIELDS:
        column = typed.get(name)
        if column is None:
            hashed.append((pa.array([], type=pa.large_string()), np.full(len(positions), -1)))
        else:
            hashed.append((column.canonical, column.indices[positions]))
    values = {name: typed[name].rows(positions) if name in typed else missing for name in FIELD_NAMES}
    values["sheet_row"] = (positions + below).astype(object)  # Python ints
    values["row_hash"] = hash_rows(hashed, len(positions))
    columns = {name: pd.Series(values[name], dtype=object, copy=False) for name in VALID_COLUMNS}
    return pd.DataFrame(columns, copy=False)  # the columns as they are, not copied into one block


def _notes(header: HeaderReport) -> tuple[str, ...]:
    notes: list[str] = []
    if header.unknown:
        notes.append(f"columns not synced (no field has these headers): {', '.join(header.unknown)}")
    return tuple(notes)


def _snapshot(
    raw: RawSheet,
    header: HeaderReport,
    rows_read: int,
    valid: pd.DataFrame,
    rejections: tuple[Rejection, ...],
    started: float,
    notes: tuple[str, ...] = (),
) -> SheetSnapshot:
    return SheetSnapshot(
        source=raw.source,
        rows_read=rows_read,
        valid=valid,
        rejections=rejections,
        header=header,
        validate_seconds=time.perf_counter() - started,
        notes=notes,
    )
