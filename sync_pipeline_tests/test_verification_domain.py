"""The verification maths of `domain.verification` on generated frames: gaps, stale rows, kept conflicts, orphans.

Pure domain (pandas only): no database, no sheet source, no Dagster. The database-side tests of the same properties
(on SQLite and Postgres) are in test_verification.py and test_resync.py.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from sync_pipeline.domain.diff import STATE_COLUMNS, empty_state
from sync_pipeline.domain.verification import (
    HASH_COLUMNS,
    MISSING_COLUMNS,
    IntegrityRule,
    IntegrityRules,
    Verification,
    VerificationStatus,
    differing_keys,
    empty_hash_frame,
    empty_missing_frame,
    match_hashes,
    unconfirmed_keys,
    verify_frames,
)

SYNCED_AT = dt.datetime(2025, 1, 10, 9, 0, 0)
SHEET_TIME = dt.datetime(2025, 1, 5, 12, 0, 0)  # the sheet row's 更新日時, before the sync wrote it
DB_COLUMNS = tuple(dict.fromkeys((*HASH_COLUMNS, *STATE_COLUMNS)))  # one test row carries both parts
RULES = IntegrityRules(seller_number_pattern=r"^[A-Z]{2}\d{5}$", required_fields=("seller_number", "name"))

# What happened to a sheet seller in the database since the sync wrote it; each maps to one expected verdict.
STATES = (
    "in_step",  # what the sync wrote, untouched
    "absent",  # deleted behind the sync's back: a gap
    "raw_edit",  # content changed by SQL that bumped neither version nor updated_at: stale
    "app_edit",  # changed by the application after the sheet's 更新日時: a kept conflict
    "app_edit_older",  # changed by the application, but the sheet row is newer: stale (the sheet wins)
    "app_touch",  # the application bumped the version without changing content: in step
    "property_deleted",  # property record deleted (content differs): stale, and an integrity issue
)


def _key(i: int) -> str:
    return f"AB{i:05d}"


def _frames(states: dict[str, str], orphans: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    sheet_rows = []
    db_rows = []
    for row, (key, state) in enumerate(sorted(states.items()), start=2):
        sheet_hash = f"h-{key}"
        sheet_rows.append(
            {"seller_number": key, "row_hash": sheet_hash, "sheet_updated_at": SHEET_TIME, "sheet_row": row}
        )
        if state == "absent":
            continue
        db = {
            "seller_number": key,
            "db_hash": sheet_hash,
            "row_hash": sheet_hash,
            "version": 1,
            "synced_version": 1,
            "updated_at": SYNCED_AT,
            "synced_at": SYNCED_AT,
            "has_property": True,
        }
        if state == "raw_edit":
            db["db_hash"] = "edited"
        elif state == "app_edit":
            db.update(db_hash="edited", version=2, updated_at=SYNCED_AT + dt.timedelta(hours=1))
        elif state == "app_edit_older":
            db.update(db_hash="edited", version=2)
            sheet_rows[-1]["sheet_updated_at"] = SYNCED_AT + dt.timedelta(days=1)
        elif state == "app_touch":
            db.update(version=3, updated_at=SYNCED_AT + dt.timedelta(hours=2))
        elif state == "property_deleted":
            db.update(db_hash="no-property", has_property=False)
        db_rows.append(db)
    for key in orphans:
        db_rows.append(_orphan(key))
    sheet = pd.DataFrame(sheet_rows, columns=["seller_number", "row_hash", "sheet_updated_at", "sheet_row"])
    db_frame = pd.DataFrame(db_rows, columns=list(DB_COLUMNS)) if db_rows else pd.DataFrame(columns=list(DB_COLUMNS))
    return sheet, db_frame.astype(object)


def run(sheet: pd.DataFrame, db: pd.DataFrame, missing: pd.DataFrame | None = None, **kwargs: object) -> Verification:
    """Verify as the service does: hashes of every row, bookkeeping of the differing rows only."""
    hashes = db.loc[:, list(HASH_COLUMNS)]
    differing = differing_keys(match_hashes(sheet, hashes))
    state = db.loc[db["seller_number"].isin(list(differing)), list(STATE_COLUMNS)] if differing else empty_state()
    missing = empty_missing_frame() if missing is None else missing
    return verify_frames(sheet, hashes, state, missing, RULES, **kwargs)  # type: ignore[arg-type]


def _orphan(key: str) -> dict[str, object]:
    return {
        "seller_number": key,
        "db_hash": "x",
        "row_hash": "x",
        "version": 1,
        "synced_version": 1,
        "updated_at": SYNCED_AT,
        "synced_at": SYNCED_AT,
        "has_property": True,
    }


@given(
    states=st.dictionaries(st.integers(0, 500).map(_key), st.sampled_from(STATES), max_size=40),
    orphan_ids=st.sets(st.integers(600, 700), max_size=5),
)
def test_property_02_gap_maths_classifies_every_seller_like_the_sync_rules(
    states: dict[str, str], orphan_ids: set[int]
) -> None:
    orphans = sorted(_key(i) for i in orphan_ids)
    sheet, db = _frames(states, orphans)
    v = run(sheet, db)

    def having(*wanted: str) -> frozenset[str]:
        return frozenset(k for k, s in states.items() if s in wanted)

    assert v.gaps == frozenset(sheet["seller_number"]) - frozenset(db["seller_number"])
    assert v.gaps == having("absent")
    assert v.stale == having("raw_edit", "app_edit_older", "property_deleted")
    assert v.kept_conflicts == having("app_edit")
    assert v.orphans == frozenset(orphans)
    assert v.repair_keys == having("absent", "raw_edit", "app_edit_older", "property_deleted")
    assert v.sheet_valid_count == len(states)
    assert v.db_matched_count == len(states) - len(having("absent"))
    assert v.counts_match == (not having("absent"))
    assert {i.seller_number for i in v.integrity if i.rule is IntegrityRule.PROPERTY_MISSING} == having(
        "property_deleted"
    )
    expected_status = (
        VerificationStatus.GAPS
        if v.gaps
        else VerificationStatus.STALE
        if v.stale
        else VerificationStatus.INTEGRITY
        if v.integrity
        else VerificationStatus.CLEAN
    )
    assert v.status is expected_status
    assert v.clean == (not v.gaps and not v.stale and not v.integrity)


def test_kept_conflict_ties_go_to_the_database_like_the_diff() -> None:
    """An application edit at exactly the sheet's 更新日時 is kept: the sheet wins only when strictly newer."""
    sheet, db = _frames({"AB00001": "app_edit"}, [])
    sheet.loc[0, "sheet_updated_at"] = db.loc[0, "updated_at"]
    assert run(sheet, db).kept_conflicts == {"AB00001"}
    sheet.loc[0, "sheet_updated_at"] = db.loc[0, "updated_at"] + dt.timedelta(seconds=1)
    assert run(sheet, db).stale == {"AB00001"}
    sheet.loc[0, "sheet_updated_at"] = None  # no 更新日時: the sheet cannot claim to be newer
    assert run(sheet, db).kept_conflicts == {"AB00001"}


def test_rejected_sheet_keys_are_not_orphans() -> None:
    sheet, db = _frames({"AB00001": "in_step"}, ["AB00900", "AB00901"])
    v = run(sheet, db, not_orphans=frozenset({"AB00900"}))
    assert v.orphans == {"AB00901"}


def test_property_33_format_and_32_required_issues_carry_rule_and_cell() -> None:
    sheet, db = _frames({"AB00001": "in_step", "AB00002": "property_deleted"}, [])
    bad = {**_orphan("ab-12"), "sheet_row": None}
    db = pd.concat([db, pd.DataFrame([bad], columns=list(DB_COLUMNS))], ignore_index=True).astype(object)
    missing = pd.DataFrame(
        [
            {"seller_number": "AB00001", "field": "name", "sheet_row": 99},
            {"seller_number": "AB00002", "field": "property_address", "sheet_row": 3},  # no property: one issue only
        ],
        columns=list(MISSING_COLUMNS),
    )
    columns = {"seller_number": 0, "name": 1, "property_address": 5}
    v = run(sheet, db, missing, columns=columns)
    found = {(i.seller_number, i.rule, i.field, i.cell) for i in v.integrity}
    assert found == {
        ("ab-12", IntegrityRule.SELLER_NUMBER_FORMAT, "seller_number", None),
        ("AB00001", IntegrityRule.REQUIRED, "name", "B2"),  # the current sheet row wins over the stored one
        ("AB00002", IntegrityRule.PROPERTY_MISSING, None, "F3"),
    }
    assert v.orphans == {"ab-12"}
    assert v.integrity_by_rule() == {
        "seller_number_format_in_database": 1,
        "required_in_database": 1,
        "property_missing": 1,
    }
    assert all(i.message and i.seller_number in i.message for i in v.integrity)


def test_required_fields_outside_the_setting_are_ignored() -> None:
    sheet, db = _frames({"AB00001": "in_step"}, [])
    missing = pd.DataFrame([{"seller_number": "AB00001", "field": "phone", "sheet_row": 2}])
    assert run(sheet, db, missing).integrity == ()


def test_as_dict_samples_are_sorted_and_bounded() -> None:
    states = {_key(i): "absent" for i in range(50)}
    sheet, db = _frames(states, [])
    summary = run(sheet, db).as_dict(sample_size=5)
    assert summary["gaps_found"] == 50
    assert summary["gaps"] == [_key(i) for i in range(5)]
    assert summary["status"] == "gaps"


def test_empty_sheet_and_empty_database_verify_clean() -> None:
    sheet = pd.DataFrame(columns=["seller_number", "row_hash", "sheet_updated_at", "sheet_row"])
    v = verify_frames(sheet, empty_hash_frame(), empty_state(), empty_missing_frame(), RULES)
    assert v.clean and v.sheet_valid_count == 0 and v.db_total_count == 0


def test_domain_does_not_import_dagster_or_sqlalchemy() -> None:
    code = (
        "import sys, sync_pipeline.domain.verification; "
        "print(sorted(m for m in ('dagster', 'sqlalchemy', 'gspread') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_property_33_format_check_uses_ascii_digits_like_ingestion() -> None:
    sheet, db = _frames({"AB00001": "in_step"}, ["AB٠١٢٣٤"])  # Arabic-Indic digits: \d without re.ASCII accepts them
    v = run(sheet, db)
    assert [(i.seller_number, i.rule) for i in v.integrity] == [("AB٠١٢٣٤", IntegrityRule.SELLER_NUMBER_FORMAT)]


def test_only_rows_not_confirmed_by_a_valid_sheet_row_need_the_required_field_scan() -> None:
    """A database row whose stored content hashes to its valid sheet row's hash holds values that passed the sheet's
    rules; the sellers left to check are those whose hash differs and those the valid rows do not have."""
    sheet, db = _frames({"AB00001": "in_step", "AB00002": "raw_edit", "AB00003": "absent", "AB00004": "app_touch"}, [])
    db = pd.concat([db, pd.DataFrame([_orphan("AB00900")], columns=list(DB_COLUMNS))], ignore_index=True)
    hashes = db.loc[:, list(HASH_COLUMNS)]
    assert unconfirmed_keys(hashes, match_hashes(sheet, hashes)) == {"AB00002", "AB00900"}
    arrow = hashes.astype({"seller_number": "str", "db_hash": "str"})
    assert unconfirmed_keys(arrow, match_hashes(sheet, arrow)) == {"AB00002", "AB00900"}
