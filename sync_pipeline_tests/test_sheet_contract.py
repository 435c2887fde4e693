"""The sheet contract (issue 18): a YAML file that maps every column of the sheet, and no column dropped silently.

Exercises the contract loader and its refusals (pure), ingestion under a contract, and whole syncs through the sync
lifecycle (`sync_verify_repair`, `verify_snapshot`) against a fresh SQLite and Postgres database: typed attributes,
their content hash (a row without extra fields hashes as before contracts), the diff, verification, the unmapped
columns policies and a contract changed between syncs. The command line runs in a subprocess over the bundled
sample sheet (SQLite only). Does not touch Google or the Dagster UI (the `sheet_columns_mapped` check is exercised
through the job in test_sheet_header_checks.py).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_pipeline.adapters.sheets.file import FileSheetSource
from sync_pipeline.adapters.store.tables import sellers, sync_audit_logs, sync_error_logs
from sync_pipeline.domain.audit import AuditQuery, RecordAction, SyncStatus
from sync_pipeline.domain.clock import FixedClock
from sync_pipeline.domain.contract import (
    ContractError,
    contract_yaml,
    default_contract,
    effective,
    parse_contract,
)
from sync_pipeline.domain.errors import ErrorCategory, HeaderError, SyncError
from sync_pipeline.domain.fields import DEFAULT_REQUIRED_FIELDS, DEFAULT_SELLER_NUMBER_PATTERN, FIELDS
from sync_pipeline.domain.ingest import IngestRules, ingest_sheet
from sync_pipeline.domain.settings import Settings
from sync_pipeline.domain.sheet import RawSheet
from sync_pipeline.services.contracts import read_contract
from sync_pipeline.services.database import Database
from sync_pipeline.services.environment import DEFAULT_SHEET_SOURCE
from sync_pipeline.services.report import audit_rows
from sync_pipeline.services.resync import sync_verify_repair
from sync_pipeline.services.snapshot import read_snapshot
from sync_pipeline.services.sources import ContractedSource
from sync_pipeline.services.verify import verify_snapshot
from sync_pipeline_tests.support.cli import parse_json_stdout, run_cli
from sync_pipeline_tests.support.db import record_logs, reset_database
from sync_pipeline_tests.support.sheets import HEADER, MemorySheetSource, seller_row

START = dt.datetime(2026, 1, 10, 0, 0, tzinfo=dt.UTC)
# The sample sheet's valid rows hashed by the code before contracts existed (dbad30f): upgrading rewrites no row.
SAMPLE_VALID_ROWS = 229
SAMPLE_HASHES_MD5 = "4af4d9ad1c676ab80400b885e83d0f68"  # md5 of the valid rows' hashes joined in sheet order
SAMPLE_FIRST_HASHES = {
    "TK01350": "5e57c4fef220236b3e38ca33b632f020",
    "OS16484": "88724fd0c34dae23c3063121b79a9562",
    "TK51979": "d0cb833a53ce962b9f538dadf0acba89",
}

OFFICE_CONTRACT = """\
# The office's own columns on top of the eleven built-in fields.
extends: default
fields:
  - {name: staff, header: 担当者, aliases: [担当], kind: text}
  - {name: next_contact, header: 次回連絡日, kind: date}
  - {name: land_area, header: 土地面積, kind: decimal}
  - {name: exclusive, header: 専任, kind: boolean}
  - name: rank
    header: ランク
    kind: choice
    values: [A, B, C]
"""
EXTRA_HEADERS = ["担当者", "次回連絡日", "土地面積", "専任", "ランク"]
STAFF = len(HEADER)  # the column of 担当者 in the rows below


def office_rows(note: bool = True) -> list[list[str]]:
    """The messy cells of the issue: full-width decimal, Japanese era date, ○/×, a full-width and a lower-case rank;
    TK00003 breaks every extra kind; TK00004 has none of them."""
    rows = [
        [*HEADER, *EXTRA_HEADERS, *(["備考"] if note else [])],
        [*seller_row("TK00001"), "佐藤", "令和7年1月5日", "８５．５", "○", "Ａ", *(["至急"] if note else [])],
        [*seller_row("TK00002"), "鈴木", "", "1,234.25", "×", "b", *([""] if note else [])],
        [*seller_row("TK00003"), "", "2025/13/40", "abc", "maybe", "Z", *(["x"] if note else [])],
        [*seller_row("TK00004"), "", "", "", "", "", *([""] if note else [])],
    ]
    return rows


@pytest.fixture
def db(engine: sa.Engine) -> Database:
    database = Database(engine=engine, clock=FixedClock(START))
    with engine.begin() as conn:
        database.config.save(conn, {"min_sheet_ratio": "0"}, now=START)
    return database


@pytest.fixture
def office_contract(tmp_path: Path) -> Path:
    path = tmp_path / "office.yaml"
    path.write_text(OFFICE_CONTRACT, encoding="utf-8")
    return path


def source(rows: Sequence[Sequence[str]], contract: Path | None) -> ContractedSource:
    return ContractedSource(MemorySheetSource(rows), str(contract) if contract else None)


def sync(db: Database, rows: Sequence[Sequence[str]], contract: Path | None) -> Any:
    assert isinstance(db.clock, FixedClock)
    db.clock.advance(minutes=10)
    return sync_verify_repair(db, source(rows, contract))


def stored(db: Database) -> dict[str, Any]:
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(sellers.c.seller_number, sellers.c.attributes)).all()
    return {key: attributes for key, attributes in rows}


def set_setting(db: Database, **values: str) -> None:
    with db.engine.begin() as conn:
        db.config.save(conn, values, now=START)


# --- the default contract changes nothing ----------------------------------------------------------------------


def test_the_default_contract_keeps_the_built_in_hashes_pinned() -> None:
    snapshot = ingest_sheet(FileSheetSource(DEFAULT_SHEET_SOURCE).read(), IngestRules.from_settings(Settings()))
    hashes = list(snapshot.valid["row_hash"])
    assert len(hashes) == SAMPLE_VALID_ROWS
    assert hashlib.md5("".join(hashes).encode()).hexdigest() == SAMPLE_HASHES_MD5
    by_key = dict(zip(snapshot.valid["seller_number"], hashes, strict=True))
    assert {k: by_key[k] for k in SAMPLE_FIRST_HASHES} == SAMPLE_FIRST_HASHES
    assert snapshot.valid["attributes"].isna().all()


def test_a_row_without_extra_values_hashes_as_under_the_default_contract(office_contract: Path) -> None:
    rows = office_rows(note=False)
    contract = read_contract(office_contract)
    office = ingest_sheet(RawSheet("t", rows), IngestRules.from_settings(Settings(), contract=contract))
    plain = ingest_sheet(RawSheet("t", [r[:STAFF] for r in rows]), IngestRules.from_settings(Settings()))
    office_hash = dict(zip(office.valid["seller_number"], office.valid["row_hash"], strict=True))
    plain_hash = dict(zip(plain.valid["seller_number"], plain.valid["row_hash"], strict=True))
    assert office_hash["TK00004"] == plain_hash["TK00004"]  # no extra value: the built-in hash exactly
    assert office_hash["TK00001"] != plain_hash["TK00001"]  # extra values are part of the hash


def test_contract_show_prints_a_contract_that_reads_back_to_the_same_fields() -> None:
    rules = effective(default_contract(), DEFAULT_REQUIRED_FIELDS, DEFAULT_SELLER_NUMBER_PATTERN)
    text = contract_yaml(default_contract(), rules)
    again = parse_contract(text, "shown.yaml")
    assert [(f.name, f.header, f.aliases, f.kind) for f in again.fields] == [
        (f.name, f.header, f.aliases, f.kind) for f in FIELDS
    ]
    assert {f.name for f in again.fields if f.required} == set(DEFAULT_REQUIRED_FIELDS)
    assert again.key.pattern == DEFAULT_SELLER_NUMBER_PATTERN


def test_extends_adds_fields_without_restating_the_eleven() -> None:
    contract = parse_contract(OFFICE_CONTRACT, "office.yaml")
    assert contract.names[: len(FIELDS)] == tuple(f.name for f in FIELDS)
    assert contract.extras == ("exclusive", "land_area", "next_contact", "rank", "staff")
    assert contract.field("rank").values == ("A", "B", "C")


# --- refusals ------------------------------------------------------------------------------------------------

FULL_KEY = "  - {name: seller_number, header: 売主番号, kind: key}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "extends: default\nfields:\n  - {name: rank, header: ランク, kind: choise}\n",
            "line 3: field 'rank': kind 'choise'",
        ),
        (
            "extends: default\nfields:\n  - {name: staff, header: 担当者, kind: text}\n"
            "  - {name: staff2, header: 担当者, kind: text}\n",
            "also names field 'staff'",
        ),
        (
            "extends: default\nfields:\n  - {name: staff, header: 担当者, aliases: [氏名], kind: text}\n",
            "header or alias '氏名' also names field 'name'",
        ),
        ("fields:\n  - {name: name, header: 氏名, kind: text}\n", "no key field"),
        ("extends: default\nfields:\n  - {name: code, header: コード, kind: key}\n", "exactly one key field"),
        ("extends: default\nfields:\n  - {name: rank, header: ランク, kind: choice}\n", "a choice needs `values:`"),
        (
            "extends: default\nfields:\n  - {name: assessed_amount, header: 査定額, kind: decimal}\n",
            "built-in column of kind amount and cannot be decimal",
        ),
        ("fields:\n" + FULL_KEY + "  - name: x\n   header: y\n", "line 4: the file is not valid YAML"),
    ],
    ids=[
        "unknown kind",
        "same header",
        "same alias",
        "no key",
        "two keys",
        "choice without values",
        "built-in kind",
        "yaml",
    ],
)
def test_a_contract_that_cannot_work_is_refused_naming_the_problem(text: str, expected: str) -> None:
    with pytest.raises(ContractError) as refused:
        parse_contract(text, "bad.yaml")
    assert expected in str(refused.value)
    assert "bad.yaml" in str(refused.value)


def test_a_required_field_the_contract_lacks_is_refused() -> None:
    settings = replace(Settings(), required_fields=("seller_number", "name", "staff"))
    with pytest.raises(ContractError, match="required_fields names staff"):
        IngestRules.from_settings(settings)


def test_two_seller_number_formats_are_refused() -> None:
    contract = parse_contract(
        "extends: default\nfields:\n"
        "  - {name: seller_number, header: 売主番号, kind: key, pattern: '^[A-Z]{3}[0-9]{4}$'}\n",
        "c.yaml",
    )
    assert IngestRules.from_settings(Settings(), contract=contract).seller_number_pattern == "^[A-Z]{3}[0-9]{4}$"
    with pytest.raises(ContractError, match="seller-number format is set twice"):
        IngestRules.from_settings(replace(Settings(), seller_number_pattern=r"^[A-Z]{4}\d{3}$"), contract=contract)


def test_a_sync_with_a_broken_contract_refuses_before_reading_the_sheet(db: Database, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("extends: default\nfields:\n  - {name: rank, header: ランク, kind: choice}\n", encoding="utf-8")
    memory = MemorySheetSource(office_rows())
    with pytest.raises(SyncError, match="a choice needs") as refused:
        sync_verify_repair(db, ContractedSource(memory, str(broken)))
    assert refused.value.category is ErrorCategory.CONFIGURATION
    assert memory.reads == 0
    with db.engine.connect() as conn:
        [row] = conn.execute(sa.select(sync_audit_logs.c.status)).all()
        categories = {r.category for r in conn.execute(sa.select(sync_error_logs.c.category))}
    assert row.status == SyncStatus.FAILED.value and categories == {"configuration"}
    assert stored(db) == {}


# --- syncs under a contract ------------------------------------------------------------------------------------


def test_contract_fields_are_stored_as_typed_attributes_and_a_second_sync_writes_nothing(
    db: Database, office_contract: Path
) -> None:
    rows = office_rows()
    first = sync(db, rows, office_contract)
    assert first.summary.counts.inserted == 3
    assert stored(db) == {
        "TK00001": {"staff": "佐藤", "next_contact": "2025-01-05", "land_area": 85.5, "exclusive": True, "rank": "A"},
        "TK00002": {"staff": "鈴木", "land_area": 1234.25, "exclusive": False, "rank": "B"},
        "TK00004": None,  # no extra value: nothing stored, and hashed as before contracts
    }
    rejected = {(r.cell, r.rule) for r in first.summary.rejections}
    assert ("P4", "invalid_choice") in rejected and ("M4", "invalid_date") in rejected
    assert ("N4", "invalid_decimal") in rejected and ("O4", "invalid_boolean") in rejected
    [choice] = [r for r in first.summary.rejections if r.cell == "P4"]
    assert "ランク in P4 is 'Z'" in choice.message and "A, B, C" in choice.message
    assert first.summary.unmapped_columns == ("備考",)
    assert first.verification.clean

    second = sync(db, rows, office_contract)
    assert (second.summary.counts.inserted, second.summary.counts.updated) == (0, 0)
    assert second.summary.counts.unchanged == 3 and second.verification.clean

    rows[2][STAFF] = "田中"  # one extra cell edited: exactly that seller is updated
    third = sync(db, rows, office_contract)
    with db.engine.connect() as conn:
        actions = {(r["seller_number"], r["action"]) for r in record_logs(conn, third.summary.sync_id)}
    assert {a for a in actions if a[1] != RecordAction.REJECTED.value} == {("TK00002", RecordAction.UPDATED.value)}
    assert stored(db)["TK00002"]["staff"] == "田中"
    # The record log and `audit --seller` say what the seller was written with, attributes included.
    [audit] = [r for r in audit_rows(db, AuditQuery(seller_number="TK00002")) if r["sync_id"] == third.summary.sync_id]
    assert audit["records"] == [
        {
            "action": RecordAction.UPDATED.value,
            "sheet_row": 3,
            "detail": {"attributes": {"staff": "田中", "land_area": 1234.25, "exclusive": False, "rank": "B"}},
        }
    ]


def test_a_changed_attribute_in_the_database_is_stale(db: Database, office_contract: Path) -> None:
    rows = office_rows()
    sync(db, rows, office_contract)
    with db.engine.begin() as conn:  # the application edits one attribute behind the sync
        conn.execute(
            sellers.update()
            .where(sellers.c.seller_number == "TK00001")
            .values(attributes={**stored(db)["TK00001"], "rank": "C"})
        )
    snapshot = read_snapshot(db, source(rows, office_contract), db.settings())
    verification = verify_snapshot(db, snapshot, db.settings())
    assert verification.stale == frozenset({"TK00001"})


@pytest.mark.parametrize("policy", ["report", "keep", "refuse"])
def test_unmapped_columns_are_reported_kept_or_refused(db: Database, office_contract: Path, policy: str) -> None:
    set_setting(db, unmapped_columns=policy)
    rows = office_rows()
    if policy == "refuse":
        with pytest.raises(HeaderError, match="備考"):
            sync(db, rows, office_contract)
        assert stored(db) == {}
        with db.engine.connect() as conn:
            messages = [r.message for r in conn.execute(sa.select(sync_error_logs.c.message))]
        assert any("add each column to the sheet contract" in m and "remove it from the sheet" in m for m in messages)
        return
    result = sync(db, rows, office_contract)
    assert result.summary.as_dict()["unmapped_columns"] == ["備考"]
    with db.engine.connect() as conn:
        [audit] = conn.execute(sa.select(sync_audit_logs.c.unmapped_columns)).all()
    assert audit.unmapped_columns == ["備考"]
    kept = (stored(db)["TK00001"] or {}).get("_unmapped")
    assert kept == ({"備考": "至急"} if policy == "keep" else None)
    again = sync(db, rows, office_contract)
    assert again.summary.counts.updated == 0 and again.verification.clean


def test_a_field_removed_from_the_contract_keeps_its_stored_values(
    db: Database, office_contract: Path, tmp_path: Path
) -> None:
    rows = office_rows(note=False)
    sync(db, rows, office_contract)
    smaller = tmp_path / "smaller.yaml"  # staff no longer in the contract; its column stays in the sheet
    smaller.write_text(OFFICE_CONTRACT.replace("  - {name: staff, header: 担当者, aliases: [担当], kind: text}\n", ""))
    rows[1][HEADER.index("氏名")] = "山田花子"  # and TK00001 changes, so it is rewritten
    after = sync(db, rows, smaller)
    # The rows whose content definition changed (they had a staff value) are rewritten once, keeping the value.
    assert after.summary.counts.updated == 2
    assert (stored(db)["TK00001"]["staff"], stored(db)["TK00002"]["staff"]) == ("佐藤", "鈴木")  # never deleted
    assert stored(db)["TK00001"]["rank"] == "A"
    assert after.verification.clean
    snapshot = read_snapshot(db, source(rows, smaller), db.settings())
    assert snapshot.header.ok  # a field removed from the contract is not a vanished column
    again = sync(db, rows, smaller)
    assert again.summary.counts.updated == 0 and again.verification.clean


# --- the command line ---------------------------------------------------------------------------------------


def test_the_sample_with_two_new_columns_names_both_on_every_face(tmp_path: Path) -> None:
    with DEFAULT_SHEET_SOURCE.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    rows = [[*rows[0], "担当者", "備考"], *[[*row, "鈴木", "メモ"] for row in rows[1:]]]
    sheet = tmp_path / "sellers.csv"
    with sheet.open("w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows(rows)
    url = f"sqlite:///{tmp_path / 'sync.db'}"
    base = ["sync", "--source", str(sheet), "--database-url", url]

    done = run_cli([*base, "--json"])
    summary = parse_json_stdout(done)
    assert done.returncode == 0 and summary["unmapped_columns"] == ["担当者", "備考"]
    human = run_cli(base)
    assert "columns not synced" in human.stdout and "担当者, 備考" in human.stdout

    contract = tmp_path / "office.yaml"
    contract.write_text("extends: default\nfields:\n  - {name: staff, header: 担当者, kind: text}\n", encoding="utf-8")
    kept = parse_json_stdout(run_cli([*base, "--contract", str(contract), "--json"]))
    assert kept["unmapped_columns"] == ["備考"] and kept["updated"] == summary["inserted"]

    shown = run_cli(["contract", "show", "--contract", str(contract), "--database-url", url])
    assert shown.returncode == 0 and parse_contract(shown.stdout, "shown").extras == ("staff",)
    broken = tmp_path / "broken.yaml"
    broken.write_text("fields:\n  - {name: rank, header: ランク, kind: choise}\n", encoding="utf-8")
    checked = run_cli(["contract", "check", str(broken)])
    assert checked.returncode == 2 and "kind 'choise' is unknown" in checked.stderr and "line 2" in checked.stderr
    refused = run_cli([*base, "--contract", str(broken), "--json"])
    assert refused.returncode == 1 and "choise" in json.dumps(parse_json_stdout(refused), ensure_ascii=False)


def test_a_large_chunk_of_new_sellers_keeps_its_attributes(db: Database, office_contract: Path) -> None:
    """1,200 new sellers: on Postgres they go in by COPY (bulk.COPY_INSERTS_FROM), attributes and record logs too."""
    rows = [[*HEADER, *EXTRA_HEADERS]]
    rows += [[*seller_row(f"TK{i:05d}"), f"担当{i % 7}", "", f"{i}.5", "○", "C"] for i in range(1, 1201)]
    first = sync(db, rows, office_contract)
    assert first.summary.counts.inserted == 1200 and first.verification.clean
    assert stored(db)["TK01200"] == {"staff": "担当3", "land_area": 1200.5, "exclusive": True, "rank": "C"}
    with db.engine.connect() as conn:
        [log] = [r for r in record_logs(conn, first.summary.sync_id) if r["seller_number"] == "TK00007"]
    assert log["detail"] == {"attributes": {"staff": "担当0", "land_area": 7.5, "exclusive": True, "rank": "C"}}
    assert sync(db, rows, office_contract).summary.counts.unchanged == 1200


# --- what a kind rejects never reaches the database (Hypothesis, through a real database) ---------------------

KIND_CELLS = st.one_of(
    st.sampled_from(["○", "×", "はい", "無", "TRUE", "0", "maybe", "A", "ｂ", "Z", "８５．５", "1,234.25", "1,23", ""]),
    st.text(alphabet="0123456789,.-○×ABCabc", max_size=6),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(st.lists(st.tuples(KIND_CELLS, KIND_CELLS, KIND_CELLS), min_size=1, max_size=6))
def test_property_contract_kinds_store_what_they_accept_and_never_what_they_reject(
    engine: sa.Engine, office_contract: Path, cells: list[tuple[str, str, str]]
) -> None:
    reset_database(engine)
    db = Database(engine=engine, clock=FixedClock(START))
    set_setting(db, min_sheet_ratio="0")
    header = [*HEADER, "土地面積", "専任", "ランク"]
    rows = [header, *[[*seller_row(f"TK{i:05d}"), *row] for i, row in enumerate(cells, start=1)]]
    contract = read_contract(office_contract)
    expected = ingest_sheet(RawSheet("t", rows), IngestRules.from_settings(Settings(), contract=contract))
    result = sync(db, rows, office_contract)
    rejected = {r.seller_number for r in expected.rejections}
    in_db = stored(db)
    assert rejected.isdisjoint(in_db)  # a rejected row never reaches the database
    assert set(in_db) == set(expected.valid["seller_number"])
    for key, text in zip(expected.valid["seller_number"], expected.valid["attributes"], strict=True):
        assert in_db[key] == (json.loads(text) if isinstance(text, str) else None)  # stored as parsed
    assert result.verification.clean
