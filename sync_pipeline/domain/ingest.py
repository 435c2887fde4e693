"""Turns one read of the sheet into a SheetSnapshot: headers mapped, cells normalised, rows validated."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sync_pipeline.domain import textcols as tc
from sync_pipeline.domain.contract import UNMAPPED, ContractError, SheetContract, default_contract, effective
from sync_pipeline.domain.fields import (
    DEFAULT_REQUIRED_FIELDS,
    DEFAULT_SELLER_NUMBER_PATTERN,
    FIELD_NAMES,
    FieldKind,
)
from sync_pipeline.domain.hashing import (
    ATTRIBUTE_LABEL,
    HASH_FIELDS,
    SEPARATOR,
    UNMAPPED_LABEL,
    hash_rows,
    json_literal,
)
from sync_pipeline.domain.headers import map_headers
from sync_pipeline.domain.normalise import DistinctColumn, read_distinct, validation_records
from sync_pipeline.domain.schema import find_rejections
from sync_pipeline.domain.settings import UNMAPPED_KEEP, UNMAPPED_REFUSE, UNMAPPED_REPORT, Settings
from sync_pipeline.domain.sheet import HeaderIssue, HeaderReport, RawSheet, Rejection, SheetSnapshot, text_columns

# `attributes`: the JSON text of the row's contract-only fields (and kept unmapped columns), None when it has none.
VALID_COLUMNS: tuple[str, ...] = (*FIELD_NAMES, "attributes", "sheet_row", "row_hash")
DEFAULT_TIMEZONE = Settings.sheet_timezone  # one default, owned by Settings
_TEXT = pa.large_string()
_EMPTY = pa.scalar("", _TEXT)


@dataclass(frozen=True)
class IngestRules:
    """What ingestion needs from the settings and from the last successful sync."""

    seller_number_pattern: str = DEFAULT_SELLER_NUMBER_PATTERN
    required_fields: tuple[str, ...] = DEFAULT_REQUIRED_FIELDS
    timezone: str = DEFAULT_TIMEZONE  # 更新日時 typed without a zone is local time here
    previous_mapping: Mapping[str, str] | None = None  # field -> header text of the last successful sync
    contract: SheetContract = field(default_factory=default_contract)
    unmapped_columns: str = UNMAPPED_REPORT  # report | keep | refuse: what a column no field names does

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        previous_mapping: Mapping[str, str] | None = None,
        contract: SheetContract | None = None,
    ) -> IngestRules:
        """The rules in force: the contract combined with the settings (`contract.effective`); ContractError when
        the two cannot work together (a required field the contract lacks, two seller-number formats)."""
        contract = contract or default_contract()
        rules = effective(contract, settings.required_fields, settings.seller_number_pattern)
        if rules.problems:
            raise ContractError(contract.source, rules.problems)
        return cls(
            seller_number_pattern=rules.seller_number_pattern,
            required_fields=rules.required_fields,
            timezone=settings.sheet_timezone,
            previous_mapping=dict(previous_mapping) if previous_mapping is not None else None,
            contract=contract,
            unmapped_columns=settings.unmapped_columns,
        )

    @property
    def keeps_unmapped(self) -> bool:
        return self.unmapped_columns == UNMAPPED_KEEP


def empty_valid_frame() -> pd.DataFrame:
    """A `valid` frame with no rows and the agreed columns."""
    return pd.DataFrame({name: pd.Series([], dtype=object) for name in VALID_COLUMNS})


def ingest_sheet(raw: RawSheet, rules: IngestRules) -> SheetSnapshot:
    """Map headers, normalise and validate one read of the sheet.

    Never raises on sheet content: header problems come back in `header.issues` with an empty `valid` frame (the
    caller refuses to write); bad rows come back as rejections, sorted by sheet row.
    """
    started = time.perf_counter()
    contract = rules.contract
    header = map_headers(raw, rules.required_fields, rules.previous_mapping, contract)
    if header.unknown and rules.unmapped_columns == UNMAPPED_REFUSE:
        header = replace(header, issues=(*header.issues, _refused(header)))
    if header.header_row == 0:  # no header row at all: nothing below it to read
        return _snapshot(raw, header, 0, empty_valid_frame(), (), started, rules=rules)

    below = header.header_row + 1  # the first data row, as a sheet row
    columns = text_columns(raw.values[below - raw.first_row :])
    rows = len(columns[0]) if columns else 0
    field_at = {col: name for name, col in header.columns.items()} if header.ok else {}
    kept_at = {col: text for text, col in header.unknown_columns.items()} if rules.keeps_unmapped else {}
    typed: dict[str, DistinctColumn] = {}
    kept: dict[str, DistinctColumn] = {}
    non_blank = np.zeros(rows, dtype=bool)
    for col, column in enumerate(columns):  # one pass per column: cleaned, read and checked for blankness at once
        name = field_at.get(col)
        spec = contract.field(name) if name else None
        kind = spec.kind if spec else (FieldKind.TEXT if col in kept_at else None)
        read = read_distinct(column, kind, rules.timezone, spec.values if spec else ())
        non_blank |= tc.spread(read.present, read.indices, missing=False)
        if name is not None:
            typed[name] = read
        elif col in kept_at:
            kept[kept_at[col]] = read
    rows_read = int(non_blank.sum())
    notes = _notes(header)
    if not header.ok:
        return _snapshot(raw, header, rows_read, empty_valid_frame(), (), started, notes, rules)

    positions = np.flatnonzero(non_blank)  # the non-blank rows, as positions below the header
    index = pd.Index(positions + below)
    records = validation_records(typed, positions, index, contract)
    raw_fields = pd.DataFrame(  # the cell text as read, for the rejections' messages (Arrow-backed: no copies)
        {
            name: pd.Series(pd.arrays.ArrowExtensionArray(columns[col]), index=pd.RangeIndex(below, below + rows))
            for name, col in header.columns.items()
            if col < len(columns)
        },
        index=pd.RangeIndex(below, below + rows),
    )
    rejections = find_rejections(
        records, raw_fields, header, rules.seller_number_pattern, rules.required_fields, contract
    )
    del records, raw_fields  # a million rows' worth, not needed for the valid frame
    if rejections:
        rejected = np.isin(positions + below, np.fromiter({r.sheet_row for r in rejections}, dtype=np.int64))
        positions = positions[~rejected]
    valid = _valid_frame(typed, positions, below, contract.extras, kept)
    ordered = tuple(sorted(rejections, key=lambda r: (r.sheet_row, header.columns.get(r.field or "", -1), r.rule)))
    return _snapshot(raw, header, rows_read, valid, ordered, started, notes, rules)


def _valid_frame(
    typed: Mapping[str, DistinctColumn],
    positions: np.ndarray[Any, Any],
    below: int,
    extras: tuple[str, ...] = (),
    kept: Mapping[str, DistinctColumn] | None = None,
) -> pd.DataFrame:
    """The `valid` frame of the rows at `positions`: plain Python values in object columns, the attributes' JSON
    text and each row's hash."""
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
    values: dict[str, np.ndarray[Any, Any]] = {
        name: typed[name].rows(positions) if name in typed else missing for name in FIELD_NAMES
    }
    attributes, suffixes = _attributes(typed, positions, extras, kept or {})
    values["attributes"] = attributes if attributes is not None else missing
    values["sheet_row"] = (positions + below).astype(object)  # Python ints
    values["row_hash"] = hash_rows(hashed, len(positions), suffixes)
    columns = {name: pd.Series(values[name], dtype=object, copy=False) for name in VALID_COLUMNS}
    return pd.DataFrame(columns, copy=False)  # the columns as they are, not copied into one block


def _attributes(
    typed: Mapping[str, DistinctColumn],
    positions: np.ndarray[Any, Any],
    extras: tuple[str, ...],
    kept: Mapping[str, DistinctColumn],
) -> tuple[np.ndarray[Any, Any] | None, list[tuple[pa.Array, np.ndarray[Any, Any]]]]:
    """Per row, the JSON text of its attributes (None when it has none) and the hash parts they add.

    Built column by column in Arrow from each field's distinct values: the JSON member text (`"name": literal`) and
    the hash part (`SEPARATOR name:literal`, `domain.hashing`) once per distinct value, then taken per row and joined,
    nulls skipped. Extras in name order, then the kept columns under `_unmapped` in header order (by code point:
    the order both databases sort them in).
    """
    members: list[pa.Array] = []
    suffixes: list[tuple[pa.Array, np.ndarray[Any, Any]]] = []
    for name in extras:
        column = typed.get(name)
        if column is None:
            continue
        literal = _literals(column)  # the JSON literal of each distinct value (null: empty or invalid)
        member = pc.binary_join_element_wise(pa.scalar(", " + json.dumps(name) + ": ", _TEXT), literal, _EMPTY)
        part = pc.binary_join_element_wise(
            pa.scalar(SEPARATOR + ATTRIBUTE_LABEL.format(name=name), _TEXT), literal, pa.scalar("", _TEXT)
        )
        at = column.indices[positions]
        members.append(member.take(pa.array(at, mask=at < 0)))
        suffixes.append((part, at))
    kept_members: list[pa.Array] = []
    for header_text in sorted(kept):
        column = kept[header_text]
        text = column.canonical  # the cleaned text (kind text)
        quoted = pa.array([None if t is None else json_literal(t) for t in text.to_pylist()], type=_TEXT)
        key = ", " + json.dumps(header_text, ensure_ascii=False) + ": "
        member = pc.binary_join_element_wise(pa.scalar(key, _TEXT), quoted, _EMPTY)
        part = pc.binary_join_element_wise(
            pa.scalar(SEPARATOR + UNMAPPED_LABEL.format(header=header_text), _TEXT), text, pa.scalar("", _TEXT)
        )
        at = column.indices[positions]
        kept_members.append(member.take(pa.array(at, mask=at < 0)))
        suffixes.append((part, at))
    if kept_members:
        inner = _json_object(kept_members)
        members.append(pc.binary_join_element_wise(pa.scalar(f', "{UNMAPPED}": ', _TEXT), inner, _EMPTY))
    if not members:
        return None, suffixes
    return tc.to_objects(_json_object(members)), suffixes


def _json_object(members: Sequence[pa.Array]) -> pa.Array:
    """Per row, `{…}` of the members present (each `, "key": literal` or null); null where none is. (Joined with
    nulls as '' and the first separator cut off: Arrow's null_handling="skip" drops the rows where all are null.)"""
    body = pc.binary_join_element_wise(*members, _EMPTY, null_handling="replace", null_replacement="")
    inner = pc.utf8_slice_codeunits(body, 2)
    wrapped = pc.binary_join_element_wise(pa.scalar("{", _TEXT), inner, pa.scalar("}", _TEXT), _EMPTY)
    return pc.if_else(pc.equal(body, ""), pa.scalar(None, _TEXT), wrapped)


def _literals(column: DistinctColumn) -> pa.Array:
    """The JSON literal of each distinct value of a column (null where empty or invalid), once per distinct value."""
    literals = [
        None if value is None or bad else json_literal(value)
        for value, bad in zip(column.values.tolist(), column.invalid.tolist(), strict=True)
    ]
    return pa.array(literals, type=_TEXT)


def _refused(header: HeaderReport) -> HeaderIssue:
    listed = ", ".join(header.unknown)
    return HeaderIssue(
        "unmapped_columns",
        None,
        f"Columns that no field of the sheet contract names: {listed} (row {header.header_row}). The setting "
        "unmapped_columns=refuse stops the sync before anything is written: add each column to the sheet contract "
        "(SYNC_CONTRACT, see `sync-pipeline contract show`), or remove it from the sheet.",
    )


def _notes(header: HeaderReport) -> tuple[str, ...]:
    notes: list[str] = []
    if header.unknown:
        notes.append(f"columns not synced (no field of the contract has these headers): {', '.join(header.unknown)}")
    if header.dropped_fields:
        notes.append(
            "fields no longer in the contract (their stored values are kept, no longer updated): "
            + ", ".join(header.dropped_fields)
        )
    return tuple(notes)


def _snapshot(
    raw: RawSheet,
    header: HeaderReport,
    rows_read: int,
    valid: pd.DataFrame,
    rejections: tuple[Rejection, ...],
    started: float,
    notes: tuple[str, ...] = (),
    rules: IngestRules | None = None,
) -> SheetSnapshot:
    rules = rules or IngestRules()
    return SheetSnapshot(
        source=raw.source,
        rows_read=rows_read,
        valid=valid,
        rejections=rejections,
        header=header,
        validate_seconds=time.perf_counter() - started,
        notes=notes,
        contract=rules.contract,
        unmapped_columns=rules.unmapped_columns,
        cell_url=raw.cell_url,
    )
