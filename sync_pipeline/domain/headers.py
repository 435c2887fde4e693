"""Maps the sheet's header row onto the seller fields by name (with aliases), never by position."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

from sync_pipeline.domain.sheet import HeaderIssue, HeaderReport, RawSheet, column_letter

if TYPE_CHECKING:
    from sync_pipeline.domain.contract import SheetContract

NO_HEADER_ROW: Final = 0  # HeaderReport.header_row when the sheet has no non-blank row at all
# When the first non-blank row names no field at all it is taken for a title ("売主一覧 2025年度") and the next few
# rows are tried; beyond this many a sheet is not laid out as a table with a header.
MAX_TITLE_ROWS: Final = 5

# Spaces, underscores, hyphens and dashes (not ー, which is part of words), dots, middle dots and required-markers
# (*, ※) carry no meaning in a header: "Seller_Number", "seller-number", "売主・番号", "*売主番号" name one column.
_HEADER_NOISE = re.compile(r"[\s_\-\u2010-\u2015\u2212.・･*※]")
# A trailing note in brackets: 売主番号（必須）, 電話番号(ハイフンあり), 更新日時【自動】. NFKC has already turned
# full-width brackets into ASCII ones where a compatibility form exists.
_TRAILING_NOTE = re.compile(r"[(\[【〔<〈《「『][^()\[\]【】〔〕<>〈〉《》「」『』]*[)\]】〕>〉》」』]$")
# A note that states a unit (査定額（万円）) changes what the numbers mean: such a header is left unmatched rather
# than read as whole yen and synced ten thousand times too small.
_UNIT_NOTE = re.compile(r"[万千億]")
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ud800-\udfff]")


def normalise_header(text: str) -> str:
    """The comparison form of a header: NFKC, casefolded, trailing note and spacing/punctuation noise removed."""
    folded = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text)).strip()
    note = _TRAILING_NOTE.search(folded)
    if note and not _UNIT_NOTE.search(note.group()) and note.start() > 0:
        folded = folded[: note.start()].rstrip()
    return _HEADER_NOISE.sub("", folded).casefold()


def _contract(contract: SheetContract | None) -> SheetContract:
    from sync_pipeline.domain.contract import default_contract  # the contract module builds on normalise_header

    return default_contract() if contract is None else contract


def field_for_header(text: str, contract: SheetContract | None = None) -> str | None:
    """The field a header names under `contract` (default: the built-in fields), or None."""
    return _contract(contract).alias_index.get(normalise_header(text))


def _display(cell: object) -> str:
    return _INVISIBLE.sub("", cell).strip() if isinstance(cell, str) else ""


def _is_blank_row(row: Sequence[object]) -> bool:
    return not any(_display(cell) for cell in row)


def find_header_row(values: Sequence[Sequence[object]], contract: SheetContract | None = None) -> int | None:
    """0-based index of the header row: the first non-blank row, unless it names no field and one of the next
    rows does (a title above the table). None when every row is blank."""
    # Lazily: only the first few non-blank rows matter, and a sheet can have a million.
    non_blank = list(
        itertools.islice((i for i, row in enumerate(values) if not _is_blank_row(row)), MAX_TITLE_ROWS + 1)
    )
    if not non_blank:
        return None
    for i in non_blank:
        if any(field_for_header(_display(cell), contract) for cell in values[i]):
            return i
    return non_blank[0]


def _alternatives(contract: SheetContract, field: str) -> str:
    return ", ".join(contract.field(field).aliases)


def _fingerprint(mapping: Mapping[str, str]) -> str:
    text = json.dumps(sorted(mapping.items()), ensure_ascii=False)
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def map_headers(
    raw: RawSheet,
    required_fields: Sequence[str],
    previous_mapping: Mapping[str, str] | None = None,
    contract: SheetContract | None = None,
) -> HeaderReport:
    """How the header row maps onto the contract's fields, with every blocking issue (missing, ambiguous,
    disappeared). A field of the previous mapping that the contract no longer has is not a vanished column: it is
    listed in `HeaderReport.dropped_fields` (its stored values are kept), never an issue."""
    contract = _contract(contract)
    index = find_header_row(raw.values, contract)
    if index is None:
        issue = HeaderIssue(
            "no_header",
            None,
            f"{raw.source} is empty: it has no header row. Put the headers (売主番号, 氏名, …) in the first row.",
        )
        return HeaderReport(mapping={}, columns={}, header_row=NO_HEADER_ROW, issues=(issue,))
    header_row = raw.first_row + index

    candidates: dict[str, list[tuple[int, str]]] = {}
    unknown: list[str] = []
    for col, cell in enumerate(raw.values[index]):
        text = _display(cell)
        if not text:
            continue
        field = field_for_header(text, contract)
        if field is None:
            if text not in unknown:
                unknown.append(text)
        else:
            candidates.setdefault(field, []).append((col, text))

    previous = {f: h for f, h in (previous_mapping or {}).items() if f in contract.by_name}
    dropped = tuple(f for f in (previous_mapping or {}) if f not in contract.by_name)
    mapping: dict[str, str] = {}
    columns: dict[str, int] = {}
    issues: list[HeaderIssue] = []
    for spec in contract.fields:  # sheet-independent order, so that issues read the same every run
        found = candidates.get(spec.name)
        if not found:
            continue
        keep = _preferred(contract, found, spec.name, previous.get(spec.name))
        mapping[spec.name], columns[spec.name] = keep[1], keep[0]
        if len(found) > 1:
            issues.append(_ambiguous(contract, spec.name, found, keep, header_row))

    for field, header in previous.items():
        if field not in mapping:
            issues.append(
                HeaderIssue(
                    "disappeared",
                    field,
                    f"The column headed {header} (field {field}), used by the last successful sync, is gone from "
                    f"row {header_row}: restore the column headed {header}. Nothing is synced until it is back.",
                )
            )
    for field in required_fields:
        if field in contract.by_name and field not in mapping and field not in previous:
            spec = contract.field(field)
            others = f" (or one of: {_alternatives(contract, field)})" if spec.aliases else ""
            issues.append(
                HeaderIssue(
                    "missing_required",
                    field,
                    f"No column for the required field {field}: add a column headed {spec.header}"
                    f"{others} to row {header_row}.",
                )
            )
    return HeaderReport(
        mapping=mapping,
        columns=columns,
        header_row=header_row,
        unknown=tuple(unknown),
        issues=tuple(issues),
        fingerprint=_fingerprint(mapping),
        unknown_columns={text: col for col, text in _unknown_columns(raw.values[index], contract)},
        dropped_fields=dropped,
    )


def _unknown_columns(row: Sequence[object], contract: SheetContract) -> list[tuple[int, str]]:
    """(column, header text) of the headed columns no field names, the first column of each text, in sheet order."""
    found: dict[str, int] = {}
    for col, cell in enumerate(row):
        text = _display(cell)
        if text and text not in found and field_for_header(text, contract) is None:
            found[text] = col
    return [(col, text) for text, col in found.items()]


def _preferred(
    contract: SheetContract, found: list[tuple[int, str]], field: str, previous_header: str | None
) -> tuple[int, str]:
    """Of several columns naming one field, the one to keep: the one the last sync used, else the one with the
    canonical header, else the leftmost."""
    canonical = normalise_header(contract.field(field).header)
    for col, text in found:
        if previous_header is not None and text == previous_header:
            return col, text
    for col, text in found:
        if normalise_header(text) == canonical:
            return col, text
    return found[0]


def _ambiguous(
    contract: SheetContract, field: str, found: list[tuple[int, str]], keep: tuple[int, str], header_row: int
) -> HeaderIssue:
    listed = " and ".join(f"{text} ({column_letter(col)}{header_row})" for col, text in found)
    others = ", ".join(f"{column_letter(col)} ({text})" for col, text in found if (col, text) != keep)
    label = f"{contract.field(field).header} ({field})"
    return HeaderIssue(
        "ambiguous",
        field,
        f"{len(found)} columns are headed as {label}: {listed}. Rename or delete column {others} so that only "
        f"column {column_letter(keep[0])} ({keep[1]}) is read as {label}.",
    )
