"""Verification maths (Requirement 1, 8): does the database hold what the sheet says? Computed from keys and hashes.

The language is DESIGN.md's "Sync semantics", the same rules as `domain.diff`:

- a *gap* is a valid sheet key absent from the database;
- a *kept conflict* is a row whose content differs from the sheet, edited outside the sync (version or `updated_at`
  moved on since the sync wrote it) no earlier than the sheet row's 更新日時 — the sync keeps it, so verification
  reports it and never repairs it (otherwise the two would flap);
- a *stale* row differs from the sheet and is not a kept conflict (a raw SQL edit that bumped nothing, a deleted
  property record, a write that failed): the resync repairs it;
- an *orphan* is in the database but not in the sheet: reported, never deleted;
- *integrity issues* are database rows that break a rule of Requirement 8 (required field empty, seller-number
  format, property record missing).

Everything here is set operations and column operations on the frames the store hands over; nothing touches a
database or loops over rows in Python (issues are rare and are the only objects built one by one).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sync_pipeline.domain.diff import (
    STATE_COLUMNS,
    edited_outside,
    is_in,
    positions,
    sheet_newer,
    text_array,
    text_series,
)
from sync_pipeline.domain.fields import FIELD_BY_NAME, KEY_FIELD
from sync_pipeline.domain.schema import seller_number_regex
from sync_pipeline.domain.sheet import CellLinks, a1

SAMPLE_SIZE = 20  # seller numbers quoted per figure in the audit row, check metadata and alert messages

# What the store hands over, in two parts so that the one covering every seller stays narrow: each database seller's
# key, stored-content hash (computed by the database in the canonical text of domain.hashing), whether the sync ever
# wrote it and whether its property record exists (SellerStore.verification_hashes)…
HASH_COLUMNS: tuple[str, ...] = ("seller_number", "db_hash", "synced_version", "has_property")
# …and the sync bookkeeping (domain.diff.STATE_COLUMNS) of at least the sellers whose hash differs from the sheet.
SHEET_COLUMNS: tuple[str, ...] = ("seller_number", "row_hash", "sheet_updated_at", "sheet_row")
# Required fields found empty in the database: one row per (seller, field) (see SellerStore.missing_required).
MISSING_COLUMNS: tuple[str, ...] = ("seller_number", "field", "sheet_row")


class VerificationStatus(enum.StrEnum):
    CLEAN = "clean"
    GAPS = "gaps"
    STALE = "stale"
    INTEGRITY = "integrity"
    FAILED = "failed"  # verification itself could not run


class IntegrityRule(enum.StrEnum):
    """Rules of the database rows; named apart from ingestion's rejection rules ("required", "seller_number_format"),
    which are about sheet cells, so that the error log tells the two apart."""

    REQUIRED = "required_in_database"  # Property 32
    SELLER_NUMBER_FORMAT = "seller_number_format_in_database"  # Property 33
    PROPERTY_MISSING = "property_missing"  # Property 34


@dataclass(frozen=True)
class IntegrityIssue:
    """One database row breaking one integrity rule, with where the office finds it in the sheet (Property 35)."""

    seller_number: str
    rule: IntegrityRule
    field: str | None
    message: str
    sheet_row: int | None = None
    cell: str | None = None


@dataclass(frozen=True)
class Verification:
    """The verdict on one sheet snapshot against the database, with the seller numbers behind every figure."""

    sheet_valid_count: int
    db_matched_count: int  # database sellers whose key is a valid sheet key
    db_total_count: int
    gaps: frozenset[str]
    stale: frozenset[str]
    kept_conflicts: frozenset[str]
    orphans: frozenset[str]
    integrity: tuple[IntegrityIssue, ...] = ()
    seconds: float = 0.0
    sheet_rows: Mapping[str, int] = field(default_factory=dict, compare=False)  # sheet row of each gap / stale key

    @property
    def status(self) -> VerificationStatus:
        if self.gaps:
            return VerificationStatus.GAPS
        if self.stale:
            return VerificationStatus.STALE
        if self.integrity:
            return VerificationStatus.INTEGRITY
        return VerificationStatus.CLEAN

    @property
    def clean(self) -> bool:
        return self.status is VerificationStatus.CLEAN

    @property
    def counts_match(self) -> bool:
        return self.sheet_valid_count == self.db_matched_count

    @property
    def repair_keys(self) -> frozenset[str]:
        """What a resync must rewrite from the sheet: the gaps and the stale rows (never kept conflicts)."""
        return self.gaps | self.stale

    @property
    def integrity_keys(self) -> frozenset[str]:
        return frozenset(i.seller_number for i in self.integrity)

    def integrity_by_rule(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for issue in self.integrity:
            counts[issue.rule.value] = counts.get(issue.rule.value, 0) + 1
        return counts

    def figures(self) -> dict[str, int]:
        """The counts, as stored on the audit row and shown as numeric metadata."""
        return {
            "sheet_valid_count": self.sheet_valid_count,
            "db_matched_count": self.db_matched_count,
            "gaps_found": len(self.gaps),
            "stale_found": len(self.stale),
            "conflicts_kept": len(self.kept_conflicts),
            "orphans_found": len(self.orphans),
            "integrity_issues": len(self.integrity),
        }

    def as_dict(self, sample_size: int = SAMPLE_SIZE) -> dict[str, Any]:
        """JSON-able figures with a sorted sample of the seller numbers behind each (the audit row's `verification`)."""
        return {
            "status": self.status.value,
            **self.figures(),
            "db_total_count": self.db_total_count,
            "seconds": round(self.seconds, 6),
            "gaps": sample(self.gaps, sample_size),
            "stale": sample(self.stale, sample_size),
            "kept_conflicts": sample(self.kept_conflicts, sample_size),
            "orphans": sample(self.orphans, sample_size),
            "integrity_by_rule": self.integrity_by_rule(),
            "integrity": [
                {"seller_number": i.seller_number, "rule": i.rule.value, "field": i.field, "cell": i.cell}
                for i in sorted(self.integrity, key=lambda i: (i.seller_number, i.rule.value, i.field or ""))[
                    :sample_size
                ]
            ],
        }


def sample(keys: Iterable[str], size: int = SAMPLE_SIZE) -> list[str]:
    """The first `size` seller numbers in sorted order: stable from run to run, so two samples can be compared."""
    return sorted(keys)[:size]


def quote_keys(keys: Iterable[str], total: int | None = None) -> str:
    """Seller numbers for a message: a sorted sample, and how many more there are (of `total`, when given)."""
    every = sorted(set(keys))
    shown = every[:SAMPLE_SIZE]
    more = (len(every) if total is None else total) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def gap_links(v: Verification, keys: Iterable[str], links: CellLinks) -> dict[str, str]:
    """The link to the seller-number cell of each of `keys` (gaps, valid in the sheet) on its sheet row, for an alert
    to open in one click; sellers whose row or key column is unknown get none."""
    found: dict[str, str] = {}
    for key in keys:
        row = v.sheet_rows.get(key)
        cell = links.key_cell(row) if row is not None else None
        if cell is not None:
            found[key] = links.url(cell)
    return found


def integrity_links(v: Verification, keys: Iterable[str], links: CellLinks) -> dict[str, str]:
    """The link to the sheet cell of each of `keys`'s integrity issues: its first issue that names a cell, in the
    order `as_dict` lists them (by rule, then field), so the link and the audit row's sample point at the same cell."""
    wanted = set(keys)
    found: dict[str, str] = {}
    for issue in sorted(
        (i for i in v.integrity if i.cell and i.seller_number in wanted),
        key=lambda i: (i.seller_number, i.rule.value, i.field or ""),
    ):
        if issue.cell and issue.seller_number not in found:
            found[issue.seller_number] = links.url(issue.cell)
    return {key: found[key] for key in sorted(found)}


@dataclass(frozen=True)
class IntegrityRules:
    """The integrity rules in force (from Settings: seller_number_pattern, required_fields)."""

    seller_number_pattern: str
    required_fields: tuple[str, ...] = field(default_factory=tuple)


def match_hashes(sheet: pd.DataFrame, hashes: pd.DataFrame) -> pd.DataFrame:
    """The sheet's sellers that are in the database: key, sheet row hash and stored-content hash, with the row of
    each side (`sheet_position`, `db_position`: positions in `sheet` and `hashes`)."""
    # Keys are unique on both sides (ingestion rejects duplicates, the table has a unique constraint): paired by a hash
    # join in Arrow, with no Python object per key.
    keys = text_array(sheet[KEY_FIELD])
    at = positions(keys, text_array(hashes[KEY_FIELD]))
    inside = np.flatnonzero(at >= 0)
    return pd.DataFrame(
        {
            KEY_FIELD: text_series(keys.take(pa.array(inside))),
            "row_hash": text_series(text_array(sheet["row_hash"]).take(pa.array(inside))),
            "db_hash": text_series(text_array(hashes["db_hash"]).take(pa.array(at[inside]))),
            "sheet_position": inside,
            "db_position": at[inside],
        }
    )


def differing_keys(matched: pd.DataFrame) -> frozenset[str]:
    """Of `match_hashes`' sellers, those whose stored content hash differs from the sheet row's hash."""
    return frozenset(matched.loc[_differs(matched), KEY_FIELD])


def _differs(both: pd.DataFrame) -> np.ndarray:
    equal = pc.equal(text_array(both["db_hash"]), text_array(both["row_hash"]))
    return ~np.asarray(pc.fill_null(equal, False).to_numpy(), dtype=bool)  # a missing hash differs


def unconfirmed_keys(hashes: pd.DataFrame, matched: pd.DataFrame) -> frozenset[str]:
    """Database sellers whose content is not known to equal a valid sheet row: those whose hash differs from their
    sheet row's and those the valid rows do not have. Only these can break a rule the sheet's validation enforces
    (required fields, seller-number format): a row whose stored content hashes to a valid row's hash holds that
    row's values, which passed the same rules."""
    in_sheet = np.zeros(len(hashes), dtype=bool)
    in_sheet[matched["db_position"].to_numpy()[~_differs(matched)]] = True
    return _keys_at(hashes, ~in_sheet)


def _keys_at(frame: pd.DataFrame, where: np.ndarray) -> frozenset[str]:
    return frozenset(text_array(frame[KEY_FIELD]).filter(pa.array(where)).to_pylist()) if where.any() else frozenset()


def compare(
    sheet: pd.DataFrame,
    hashes: pd.DataFrame,
    state: pd.DataFrame,
    *,
    not_orphans: frozenset[str] = frozenset(),
    matched: pd.DataFrame | None = None,
) -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str], int]:
    """Gaps, stale rows, kept conflicts, orphans and the matched count of `sheet` (SHEET_COLUMNS) against the database.

    `hashes` has HASH_COLUMNS for every database seller; `state` has STATE_COLUMNS for at least the sellers whose
    hash differs (a differing seller missing from `state` counts as not edited outside, hence stale). `not_orphans`
    are keys the sheet still has on rows that failed validation: the database keeps what it had for them
    (DESIGN.md), so they are not orphans. `matched` is `match_hashes(sheet, hashes)` when the caller has it already.
    """
    both = match_hashes(sheet, hashes) if matched is None else matched
    in_sheet = np.zeros(len(sheet), dtype=bool)
    in_sheet[both["sheet_position"].to_numpy()] = True
    in_db = np.zeros(len(hashes), dtype=bool)
    in_db[both["db_position"].to_numpy()] = True
    gaps = _keys_at(sheet, ~in_sheet)
    orphans = _keys_at(hashes, ~in_db) - not_orphans

    differs = _differs(both)
    if not differs.any():
        return gaps, frozenset(), frozenset(), orphans, len(both)
    # The sellers whose content differs: few, so plain pandas from here (keys as objects on both sides of the merge).
    changed = pd.DataFrame(
        {
            KEY_FIELD: both.loc[differs, KEY_FIELD].astype(object).to_numpy(),
            "sheet_updated_at": sheet["sheet_updated_at"].iloc[both.loc[differs, "sheet_position"]].to_numpy(),
        }
    )
    bookkeeping = state.loc[:, [c for c in STATE_COLUMNS if c != "row_hash"]].astype({KEY_FIELD: object})
    changed = changed.merge(bookkeeping, on=KEY_FIELD, how="left")
    outside = edited_outside(changed.loc[:, ["version", "synced_version", "updated_at", "synced_at"]])
    outside &= changed["version"].notna()  # no bookkeeping for it: cannot have been edited outside
    # The same tie-break as domain.diff.classify: the sheet wins only when its 更新日時 is strictly newer.
    kept = outside.to_numpy(dtype=bool) & ~sheet_newer(changed["sheet_updated_at"], changed["updated_at"])
    kept_keys = frozenset(changed.loc[kept, KEY_FIELD])
    stale_keys = frozenset(changed.loc[~kept, KEY_FIELD])
    return gaps, stale_keys, kept_keys, orphans, len(both)


def integrity_issues(
    hashes: pd.DataFrame,
    missing_required: pd.DataFrame,
    rules: IntegrityRules,
    *,
    sheet_rows: pd.Series | None = None,
    columns: Mapping[str, int] | None = None,
    format_checked: pd.Index | np.ndarray | None = None,
) -> tuple[IntegrityIssue, ...]:
    """Every integrity issue of the database rows (Requirement 8), with the sheet cell to look at where known.

    `missing_required` has MISSING_COLUMNS (required fields empty in the database). The seller-number format is
    checked here on the keys the store returned; the property rule applies to sellers the sync wrote. `sheet_rows`
    (sheet row by seller number, for at least the sellers with an issue) and `columns` (field -> 0-based column)
    locate the cell to fix. `format_checked` are keys already matched against the same pattern (the sheet's valid
    keys: ingestion checked them, and a database key equal to one of them is the same text), or a mask of the
    `hashes` rows holding one, so only the others go through the regular expression.
    """
    if format_checked is None or not len(format_checked):
        unchecked = np.ones(len(hashes), dtype=bool)
    elif isinstance(format_checked, np.ndarray) and format_checked.dtype == bool:
        unchecked = ~format_checked
    else:
        unchecked = ~is_in(hashes[KEY_FIELD], format_checked)
    pattern = seller_number_regex(rules.seller_number_pattern)  # compiled as ingestion applies it: ASCII digits only
    candidates = text_array(hashes[KEY_FIELD]).filter(pa.array(unchecked)).to_pylist() if unchecked.any() else []
    bad_format = [key for key in candidates if key is None or not pattern.fullmatch(key)]
    no_property = _keys_without_property(hashes)
    no_property_keys = set(no_property)

    rows = sheet_rows if sheet_rows is not None else pd.Series(dtype=object)
    cols = dict(columns or {})

    def where(key: str, field_name: str | None, db_row: object = None) -> tuple[int | None, str | None]:
        found = rows.get(key)
        row = None if found is None or pd.isna(found) else int(found)
        if row is None and db_row is not None and not pd.isna(db_row):  # type: ignore[call-overload]
            row = int(db_row)  # type: ignore[call-overload]
        if row is None or field_name is None or field_name not in cols:
            return row, None
        return row, a1(row, cols[field_name])

    issues: list[IntegrityIssue] = []
    for key in bad_format:
        row, cell = where(key, KEY_FIELD)
        issues.append(
            IntegrityIssue(
                seller_number=str(key),
                rule=IntegrityRule.SELLER_NUMBER_FORMAT,
                field=KEY_FIELD,
                sheet_row=row,
                cell=cell,
                message=f"seller number {key!r} in the database does not match the format "
                f"{rules.seller_number_pattern}; correct it in the application or the sheet"
                + (f" (sheet cell {cell})" if cell else ""),
            )
        )
    for key in no_property:
        row, cell = where(key, "property_address")
        issues.append(
            IntegrityIssue(
                seller_number=str(key),
                rule=IntegrityRule.PROPERTY_MISSING,
                field=None,
                sheet_row=row,
                cell=cell,
                message=f"seller {key} has no property record in the database; a resync of {key} recreates it "
                "from the sheet" + (f" (row {row})" if row else ""),
            )
        )
    required = set(rules.required_fields)
    missing = missing_required[missing_required["field"].isin(required)] if len(missing_required) else missing_required
    for key, field_name, db_row in zip(missing[KEY_FIELD], missing["field"], missing["sheet_row"], strict=True):
        if FIELD_BY_NAME[field_name].table.value == "properties" and key in no_property_keys:
            continue  # already reported as property_missing: one issue per cause
        row, cell = where(key, field_name, db_row)
        header = FIELD_BY_NAME[field_name].header
        issues.append(
            IntegrityIssue(
                seller_number=str(key),
                rule=IntegrityRule.REQUIRED,
                field=field_name,
                sheet_row=row,
                cell=cell,
                message=f"seller {key}: required field {field_name} ({header}) is empty in the database; "
                f"fill it in the sheet{f' at {cell}' if cell else ''} and resync, or correct it in the application",
            )
        )
    return tuple(issues)


def verify_frames(
    sheet: pd.DataFrame,
    hashes: pd.DataFrame,
    state: pd.DataFrame,
    missing_required: pd.DataFrame,
    rules: IntegrityRules,
    *,
    columns: Mapping[str, int] | None = None,
    not_orphans: frozenset[str] = frozenset(),
    seconds: float = 0.0,
    matched: pd.DataFrame | None = None,
) -> Verification:
    """The whole verdict: `compare` plus `integrity_issues`, as one frozen Verification.

    `sheet` holds the valid rows of a snapshot ingested under the same `rules`: its keys already match the pattern.
    """
    matched = match_hashes(sheet, hashes) if matched is None else matched
    gaps, stale, kept, orphans, matched_count = compare(sheet, hashes, state, not_orphans=not_orphans, matched=matched)
    # The sheet row of the sellers that may be reported (gaps, stale rows, integrity suspects) and only of those:
    # a lookup table of every sheet key would cost more than the whole comparison.
    reported = set(gaps | stale) | set(_keys_without_property(hashes))
    if len(missing_required):
        reported |= set(missing_required[KEY_FIELD].astype(object))
    located = is_in(sheet[KEY_FIELD], reported)
    sheet_rows = pd.Series(
        sheet["sheet_row"].to_numpy()[located],
        index=pd.Index(text_array(sheet[KEY_FIELD]).filter(pa.array(located)).to_pylist(), dtype=object),
        dtype=object,
    )
    format_checked = np.zeros(len(hashes), dtype=bool)  # a key equal to a valid sheet key passed the same pattern
    format_checked[matched["db_position"].to_numpy()] = True
    issues = integrity_issues(
        hashes, missing_required, rules, sheet_rows=sheet_rows, columns=columns, format_checked=format_checked
    )
    repair = gaps | stale
    return Verification(
        sheet_valid_count=len(sheet),
        db_matched_count=matched_count,
        db_total_count=len(hashes),
        gaps=gaps,
        stale=stale,
        kept_conflicts=kept,
        orphans=orphans,
        integrity=issues,
        seconds=seconds,
        sheet_rows={
            str(k): int(r)
            for k, r in zip(sheet_rows.index.tolist(), sheet_rows.to_numpy().tolist(), strict=True)
            if k in repair
        },
    )


def _keys_without_property(hashes: pd.DataFrame) -> list[str]:
    """Sellers the sync wrote whose property record is missing (Property 34)."""
    synced = hashes["synced_version"].notna().to_numpy(dtype=bool)
    has_property = hashes["has_property"].fillna(False).to_numpy(dtype=bool)
    lacking = synced & ~has_property
    return text_array(hashes[KEY_FIELD]).filter(pa.array(lacking)).to_pylist() if lacking.any() else []


def empty_hash_frame() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in HASH_COLUMNS})


def empty_missing_frame() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in MISSING_COLUMNS})
