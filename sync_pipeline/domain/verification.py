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

import pandas as pd

from sync_pipeline.domain.diff import STATE_COLUMNS, edited_outside
from sync_pipeline.domain.fields import FIELD_BY_NAME, KEY_FIELD
from sync_pipeline.domain.schema import seller_number_regex
from sync_pipeline.domain.sheet import a1

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


@dataclass(frozen=True)
class IntegrityRules:
    """The integrity rules in force (from Settings: seller_number_pattern, required_fields)."""

    seller_number_pattern: str
    required_fields: tuple[str, ...] = field(default_factory=tuple)


def match_hashes(sheet: pd.DataFrame, hashes: pd.DataFrame) -> pd.DataFrame:
    """The sheet's sellers that are in the database: key, sheet row hash, 更新日時 and stored-content hash."""
    # Keys are unique on both sides (ingestion rejects duplicates, the table has a unique constraint), so the merge
    # skips pandas' one-to-one validation, which costs more than the merge itself on 100,000 rows.
    return sheet.loc[:, ["seller_number", "row_hash", "sheet_updated_at"]].merge(
        hashes.loc[:, ["seller_number", "db_hash"]], on=KEY_FIELD, how="inner"
    )


def differing_keys(matched: pd.DataFrame) -> frozenset[str]:
    """Of `match_hashes`' sellers, those whose stored content hash differs from the sheet row's hash."""
    return frozenset(matched.loc[_differs(matched), KEY_FIELD])


def _differs(both: pd.DataFrame) -> pd.Series:
    return both["db_hash"].astype(object) != both["row_hash"].astype(object)


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
    sheet_keys = pd.Index(sheet[KEY_FIELD].astype(object))
    db_keys = pd.Index(hashes[KEY_FIELD].astype(object))
    gaps = frozenset(sheet_keys.difference(db_keys))
    orphan_index = db_keys.difference(sheet_keys)
    orphans = frozenset(orphan_index[~orphan_index.isin(list(not_orphans))]) if len(orphan_index) else frozenset()

    both = match_hashes(sheet, hashes) if matched is None else matched
    differs = _differs(both)
    if not differs.any():
        return gaps, frozenset(), frozenset(), orphans, len(both)
    changed = both[differs].merge(state.loc[:, [c for c in STATE_COLUMNS if c != "row_hash"]], on=KEY_FIELD, how="left")
    outside = edited_outside(changed.loc[:, ["version", "synced_version", "updated_at", "synced_at"]])
    outside &= changed["version"].notna()  # no bookkeeping for it: cannot have been edited outside
    # The same tie-break as domain.diff.classify: the sheet wins only when its 更新日時 is strictly newer.
    sheet_newer = (
        (pd.to_datetime(changed["sheet_updated_at"]) > pd.to_datetime(changed["updated_at"])).fillna(False).astype(bool)
    )
    kept = outside & ~sheet_newer
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
    format_checked: pd.Index | None = None,
) -> tuple[IntegrityIssue, ...]:
    """Every integrity issue of the database rows (Requirement 8), with the sheet cell to look at where known.

    `missing_required` has MISSING_COLUMNS (required fields empty in the database). The seller-number format is
    checked here on the keys the store returned; the property rule applies to sellers the sync wrote. `sheet_rows`
    (sheet row by seller number) and `columns` (field -> 0-based column) locate the cell to fix. `format_checked`
    are keys already matched against the same pattern (the sheet's valid keys: ingestion checked them, and a database
    key equal to one of them is the same text), so only the others go through the regular expression.
    """
    keys = hashes[KEY_FIELD].astype(object)
    unchecked = keys[~keys.isin(format_checked)] if format_checked is not None and len(format_checked) else keys
    pattern = seller_number_regex(rules.seller_number_pattern)  # compiled as ingestion applies it: ASCII digits only
    bad_format = hashes.loc[unchecked.index[~unchecked.astype(str).str.fullmatch(pattern).fillna(False).astype(bool)]]
    synced = hashes["synced_version"].notna()
    has_property = hashes["has_property"].fillna(False).astype(bool)
    no_property = hashes.loc[synced & ~has_property]
    no_property_keys = set(no_property[KEY_FIELD])

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
    for key in bad_format[KEY_FIELD]:
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
    for key in no_property[KEY_FIELD]:
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
    gaps, stale, kept, orphans, matched_count = compare(sheet, hashes, state, not_orphans=not_orphans, matched=matched)
    sheet_keys = pd.Index(sheet[KEY_FIELD].to_numpy())
    sheet_rows = pd.Series(sheet["sheet_row"].to_numpy(), index=sheet_keys)
    issues = integrity_issues(
        hashes, missing_required, rules, sheet_rows=sheet_rows, columns=columns, format_checked=sheet_keys
    )
    repair = sheet_rows[sheet_rows.index.isin(list(gaps | stale))]
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
        sheet_rows={str(k): int(r) for k, r in repair.items()},
    )


def empty_hash_frame() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in HASH_COLUMNS})


def empty_missing_frame() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in MISSING_COLUMNS})
