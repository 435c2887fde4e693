"""The seller sheet's checks through the real Dagster job: `sheet_header_matches` (blocking) and `sheet_rows_valid`
(warn), and the shipped sample sheet synced end to end.

Exercises seller_sync_job.execute_in_process with the real resources over CSV files in tmp_path and a fresh migrated
database (SQLite; Postgres too where the database_url fixture is used): the check evaluations and their metadata,
which assets are materialised, the sync's audit row and the seller tables. Does not touch Google (see
test_google_sync.py), the command line, DAGSTER_HOME (ephemeral instances) or the project's var/ database.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from sync_pipeline.adapters.store.tables import properties, sellers, sync_audit_logs
from sync_pipeline.definitions import defs
from sync_pipeline.defs.resources import SellerSheet, SyncDatabase
from sync_pipeline.domain.headers import field_for_header
from sync_pipeline.services.database import Database, open_database
from sync_pipeline_tests.support.sample_sheet import SAMPLE_PATH, write_csv
from sync_pipeline_tests.support.sheets import HEADER, seller_row

HEADER_CHECK = "sheet_header_matches"
ROWS_CHECK = "sheet_rows_valid"
GOOD_ROWS = [seller_row(f"TK{n:05d}", name=f"売主 {n}号") for n in range(1, 6)]
NAME, PHONE = HEADER.index("氏名"), HEADER.index("電話番号")

# data/README.md: the sample gives 235 rows read, 229 valid, 6 rejected, each bad row with its cell.
SAMPLE_ROWS_READ, SAMPLE_VALID, SAMPLE_REJECTED = 235, 229, 6
SAMPLE_REJECTIONS = {
    (26, "B26", "required"),
    (42, "A42", "duplicate_seller_number"),
    (187, "A187", "duplicate_seller_number"),
    (80, "A80", "seller_number_format"),
    (134, "I134", "invalid_date"),
    (238, "J238", "invalid_amount"),
}


# --- fixtures and helpers -----------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh migrated SQLite database, for the tests that need not run on both databases."""
    path = tmp_path / "sync.db"
    path.write_bytes(sqlite_template.read_bytes())
    return f"sqlite:///{path}"


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def run_job(instance: dg.DagsterInstance, database_url: str, source: Path) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("seller_sync_job").execute_in_process(
        resources={"database": SyncDatabase(url=database_url), "sheet": SellerSheet(source=str(source))},
        raise_on_error=False,
        instance=instance,
    )


def sheet_file(tmp_path: Path, rows: Sequence[Sequence[str]], name: str = "sellers.csv") -> Path:
    return write_csv(tmp_path / name, rows)


def without_column(rows: Sequence[Sequence[str]], index: int) -> list[list[str]]:
    return [[cell for i, cell in enumerate(row) if i != index] for row in rows]


def edited(rows: Sequence[Sequence[str]]) -> list[list[str]]:
    """The good rows after an office edit (one renamed seller, one new seller): a sync would write both."""
    out = [list(r) for r in rows]
    out[0][NAME] = "改名 済子"
    out.append(seller_row("TK09999", name="新規 追加"))
    return out


def evaluation(result: dg.ExecuteInProcessResult, check_name: str) -> dg.AssetCheckEvaluation:
    [found] = [e for e in result.get_asset_check_evaluations() if e.check_name == check_name]
    return found


def metadata(found: dg.AssetCheckEvaluation) -> dict[str, Any]:
    return {key: value.value for key, value in found.metadata.items()}


def materialisation(result: dg.ExecuteInProcessResult, key: str) -> dict[str, Any]:
    """The metadata of the one materialisation of asset `key` in the run."""
    [found] = [
        event.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None and event.asset_key.to_user_string() == key
    ]
    return dict(found)


def materialised(result: dg.ExecuteInProcessResult) -> set[str]:
    keys = (event.asset_key for event in result.get_asset_materialization_events())
    return {key.to_user_string() for key in keys if key is not None}


def table_contents(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the seller tables, every column: what "nothing written" is measured against."""
    with db.engine.connect() as conn:
        return {
            table.name: [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.id))]
            for table in (sellers, properties)
        }


def audit_row(db: Database, run_id: str) -> dict[str, Any]:
    """The audit row of the one sync this Dagster run started."""
    with db.engine.connect() as conn:
        [row] = conn.execute(sa.select(sync_audit_logs).where(sync_audit_logs.c.run_id == run_id)).mappings().all()
    return dict(row)


def assert_blocked(
    result: dg.ExecuteInProcessResult, db: Database, before: dict[str, list[tuple[Any, ...]]], *names: str
) -> str:
    """The blocking check failed, the run failed, sellers_table was not materialised, nothing was written and the
    sync is closed as failed; the check's description names every header in `names`. Returns the description."""
    check = evaluation(result, HEADER_CHECK)
    assert not check.passed
    assert check.severity is dg.AssetCheckSeverity.ERROR
    assert check.description is not None
    for name in names:
        assert name in check.description
    assert not result.success  # an ERROR-severity blocking check fails the run
    assert "sellers_table" not in materialised(result)
    assert table_contents(db) == before
    audit = audit_row(db, result.run_id)
    assert audit["status"] == "failed"
    assert all(name in audit["message"] for name in names)
    return check.description


# --- sheet_header_matches -----------------------------------------------------------------------------------------


def test_missing_required_column_blocks_the_sync(
    instance: dg.DagsterInstance, database_url: str, tmp_path: Path
) -> None:
    db = open_database(database_url)
    before = table_contents(db)
    source = sheet_file(tmp_path, without_column([HEADER, *GOOD_ROWS], NAME))

    result = run_job(instance, database_url, source)

    description = assert_blocked(result, db, before, "氏名")
    assert "add a column" in description
    issues = metadata(evaluation(result, HEADER_CHECK))["issues"]
    assert [(i["rule"], i["field"]) for i in issues] == [("missing_required", "name")]


def test_two_columns_for_one_field_block_the_sync(
    instance: dg.DagsterInstance, sqlite_url: str, tmp_path: Path
) -> None:
    assert run_job(instance, sqlite_url, sheet_file(tmp_path, [HEADER, *GOOD_ROWS], "first.csv")).success
    db = open_database(sqlite_url)
    before = table_contents(db)
    # An "name" column added at the end (column L) duplicates 氏名 (column B).
    rows = [[*HEADER, "name"], *[[*row, "Someone Else"] for row in edited(GOOD_ROWS)]]

    result = run_job(instance, sqlite_url, sheet_file(tmp_path, rows, "second.csv"))

    description = assert_blocked(result, db, before, "氏名", "name")
    assert "B1" in description and "L1" in description and "Rename or delete column L" in description
    issues = metadata(evaluation(result, HEADER_CHECK))["issues"]
    assert [(i["rule"], i["field"]) for i in issues] == [("ambiguous", "name")]


def test_a_column_the_last_sync_used_that_disappeared_blocks_the_sync(
    instance: dg.DagsterInstance, sqlite_url: str, tmp_path: Path
) -> None:
    first = run_job(instance, sqlite_url, sheet_file(tmp_path, [HEADER, *GOOD_ROWS], "first.csv"))
    assert first.success
    db = open_database(sqlite_url)
    before = table_contents(db)
    assert len(before["sellers"]) == len(GOOD_ROWS)
    # 電話番号 is not a required field: only the last successful sync's mapping makes its loss an error.
    rows = without_column([HEADER, *edited(GOOD_ROWS)], PHONE)

    result = run_job(instance, sqlite_url, sheet_file(tmp_path, rows, "second.csv"))

    description = assert_blocked(result, db, before, "電話番号")
    assert "restore the column headed 電話番号" in description
    issues = metadata(evaluation(result, HEADER_CHECK))["issues"]
    assert [(i["rule"], i["field"]) for i in issues] == [("disappeared", "phone")]


def test_unknown_columns_are_ignored_and_reported(
    instance: dg.DagsterInstance, sqlite_url: str, tmp_path: Path
) -> None:
    extra = ["備考", "担当者"]
    assert [field_for_header(h) for h in extra] == [None, None]  # headers that name no field
    rows = [[*HEADER, *extra], *[[*row, "至急", "鈴木"] for row in GOOD_ROWS]]

    result = run_job(instance, sqlite_url, sheet_file(tmp_path, rows))

    assert result.success
    check = evaluation(result, HEADER_CHECK)
    assert check.passed
    assert metadata(check)["unknown_columns"] == extra
    # Not dropped silently: the non-blocking sheet_columns_mapped check fails naming both, in sheet order.
    columns = evaluation(result, "sheet_columns_mapped")
    assert not columns.passed and columns.severity == dg.AssetCheckSeverity.WARN
    assert metadata(columns)["unmapped_columns"] == extra
    assert all(h in (columns.description or "") for h in extra)
    assert materialised(result) == {"seller_sheet", "sellers_table", "seller_gap_resync", "sync_health"}
    db = open_database(sqlite_url)
    assert len(table_contents(db)["sellers"]) == len(GOOD_ROWS)
    assert audit_row(db, result.run_id)["status"] == "succeeded"
    assert audit_row(db, result.run_id)["unmapped_columns"] == extra


# --- sheet_rows_valid ---------------------------------------------------------------------------------------------


def test_bad_rows_fail_the_row_check_with_a_warning_and_their_cells(
    instance: dg.DagsterInstance, sqlite_url: str, tmp_path: Path
) -> None:
    bad = [
        seller_row("TK00101", name=""),  # row 7, B7
        seller_row("AB1234"),  # row 8, A8
        seller_row("TK00103", inquiry_date="2025/13/40"),  # row 9, I9
        seller_row("TK00104", amount="ask"),  # row 10, J10
    ]
    expected = {(7, "B7", "required"), (8, "A8", "seller_number_format"), (9, "I9", "invalid_date")}
    expected |= {(10, "J10", "invalid_amount")}

    result = run_job(instance, sqlite_url, sheet_file(tmp_path, [HEADER, *GOOD_ROWS, *bad]))

    assert result.success  # a WARN check does not stop the valid rows
    check = evaluation(result, ROWS_CHECK)
    assert not check.passed
    assert check.severity is dg.AssetCheckSeverity.WARN
    meta = metadata(check)
    assert meta["rejected_rows"] == len(bad)
    assert meta["failures_by_rule"] == {rule: 1 for _, _, rule in expected}
    assert table_rows(meta["failure_cases"]) == expected
    db = open_database(sqlite_url)
    assert {r[1] for r in table_contents(db)["sellers"]} == {row[0] for row in GOOD_ROWS}
    assert evaluation(result, HEADER_CHECK).passed


def table_rows(markdown: str) -> set[tuple[int, str, str]]:
    """(row, cell, rule) of each line of the failure-case table (columns: row | cell | column | rule | …)."""
    found = set()
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].isdigit():
            found.add((int(cells[0]), cells[1], cells[3]))
    return found


# --- the shipped sample sheet -------------------------------------------------------------------------------------


def test_sample_sheet_is_written_the_way_an_office_types() -> None:
    with SAMPLE_PATH.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == HEADER
    column = {name: [row[i] for row in rows[1:] if len(row) > i] for i, name in enumerate(HEADER)}
    text = "\n".join(",".join(row) for row in rows[1:])

    def several(values: Sequence[str], pattern: str) -> bool:
        return sum(1 for v in values if re.search(pattern, v)) >= 3

    assert several(column["売主番号"], r"^[Ａ-Ｚ]{2}[０-９]{5}$")  # full-width seller numbers
    assert several(column["査定額"], r"^[¥￥]")
    assert several(column["査定額"], r"万")
    assert several(column["反響日"], r"^(令和|R)\d+[年.]")  # Japanese era
    assert several(column["反響日"], r"^\d{4}年\d{1,2}月\d{1,2}日$")
    assert text.count("\u00a0") >= 3 and text.count("\u3000") >= 3  # no-break and ideographic spaces


def test_sample_sheet_syncs_with_the_documented_counts_and_again_writes_nothing(
    instance: dg.DagsterInstance, database_url: str
) -> None:
    result = run_job(instance, database_url, SAMPLE_PATH)

    assert result.success
    sheet = materialisation(result, "seller_sheet")
    assert (sheet["rows_read"].value, sheet["valid"].value, sheet["rejected"].value) == (
        SAMPLE_ROWS_READ,
        SAMPLE_VALID,
        SAMPLE_REJECTED,
    )
    rows_check = metadata(evaluation(result, ROWS_CHECK))
    assert table_rows(rows_check["failure_cases"]) == SAMPLE_REJECTIONS
    assert rows_check["rejected_rows"] == SAMPLE_REJECTED
    table = materialisation(result, "sellers_table")
    assert (table["inserted"].value, table["updated"].value) == (SAMPLE_VALID, 0)
    db = open_database(database_url)
    contents = table_contents(db)
    assert len(contents["sellers"]) == len(contents["properties"]) == SAMPLE_VALID
    assert audit_row(db, result.run_id)["status"] == "partial"  # valid rows synced, bad rows rejected

    again = run_job(instance, database_url, SAMPLE_PATH)

    table = materialisation(again, "sellers_table")
    assert (table["inserted"].value, table["updated"].value, table["unchanged"].value) == (0, 0, SAMPLE_VALID)
    assert table_contents(db) == contents
