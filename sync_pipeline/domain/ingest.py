"""Turns one read of the sheet into a SheetSnapshot: headers mapped, cells normalised, rows validated."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from sync_pipeline.domain.fields import DEFAULT_REQUIRED_FIELDS, DEFAULT_SELLER_NUMBER_PATTERN, FIELD_NAMES
from sync_pipeline.domain.hashing import row_hashes
from sync_pipeline.domain.headers import map_headers
from sync_pipeline.domain.normalise import clean_cells, read_records
from sync_pipeline.domain.schema import find_rejections
from sync_pipeline.domain.settings import Settings
from sync_pipeline.domain.sheet import HeaderReport, RawSheet, Rejection, SheetSnapshot

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


def _cell_frame(rows: Sequence[Sequence[object]], first_row: int) -> pd.DataFrame:
    """The data rows as an object frame, padded to a rectangle, indexed by sheet row."""
    index = pd.RangeIndex(first_row, first_row + len(rows))
    if not rows:
        return pd.DataFrame(index=index, dtype=object)
    frame = pd.DataFrame([list(row) for row in rows], index=index, dtype=object)
    for col in frame.columns:
        column = frame[col]
        # Sources hand over text; anything else (a test's int, a None) is shown as text rather than crash.
        if pd.api.types.infer_dtype(column, skipna=True) not in {"string", "empty"}:
            frame[col] = column.map(lambda v: v if v is None or isinstance(v, str) else str(v))
    return frame


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
    cells = _cell_frame(list(raw.values[below - raw.first_row :]), below)
    cleaned = cells.apply(clean_cells) if len(cells.columns) else cells
    non_blank = cleaned.notna().any(axis=1) if len(cleaned.columns) else pd.Series(False, index=cells.index)
    rows_read = int(non_blank.sum())
    notes = _notes(header)
    if not header.ok:
        return _snapshot(raw, header, rows_read, empty_valid_frame(), (), started, notes)

    def by_field(frame: pd.DataFrame) -> pd.DataFrame:
        rows = frame[non_blank]
        missing = pd.Series(None, index=rows.index, dtype=object)
        return pd.DataFrame(
            {field: rows[col] if col in rows.columns else missing for field, col in header.columns.items()},
            index=rows.index,
        )

    raw_fields = by_field(cells)
    records = read_records(by_field(cleaned), rules.timezone)
    rejections = find_rejections(records, raw_fields, header, rules.seller_number_pattern, rules.required_fields)
    rejected_rows = {r.sheet_row for r in rejections}
    valid = records[~records.index.isin(list(rejected_rows))].copy()
    valid["sheet_row"] = pd.Series([int(r) for r in valid.index], index=valid.index, dtype=object)
    valid["row_hash"] = row_hashes(valid[list(FIELD_NAMES)]).astype(object)
    valid = valid.reset_index(drop=True)[list(VALID_COLUMNS)]
    ordered = tuple(sorted(rejections, key=lambda r: (r.sheet_row, header.columns.get(r.field or "", -1), r.rule)))
    return _snapshot(raw, header, rows_read, valid, ordered, started, notes)


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
