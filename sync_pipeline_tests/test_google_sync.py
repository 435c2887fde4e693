"""The Google path end to end: `sync-pipeline sync --source gsheet:…` against the local Sheets API emulator, and the
sync's recovery from Sheets API faults, on SQLite and Postgres.

Exercises the installed command in a subprocess (service-account sign-in at the key file's token_uri, real gspread,
seller_sync_job in-process, the one JSON object on stdout, the exit status), the sync lifecycle with a
GoogleSheetSource whose waits are recorded instead of slept (retries logged as recovery actions, retries used up,
a dropped connection, a spreadsheet that is not shared), and one exhausted read through the Dagster job.
Does not touch Google or any host but 127.0.0.1, DAGSTER_HOME (the runs use ephemeral instances) or the project's
var/ database; the header and row checks through Dagster are in test_sheet_header_checks.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from sync_pipeline.adapters.retry import DEFAULT_MAX_RETRIES
from sync_pipeline.adapters.sheets.gsheet import SERVICE_ACCOUNT_FILE_ENV, SHEETS_API_URL_ENV, GoogleSheetSource
from sync_pipeline.adapters.store.tables import properties, sellers, sync_audit_logs
from sync_pipeline.definitions import defs
from sync_pipeline.defs.resources import SyncDatabase, resources_from_env
from sync_pipeline.domain.errors import ErrorCategory, SheetReadError
from sync_pipeline.domain.ingest import IngestRules, ingest_sheet
from sync_pipeline.domain.sheet import RawSheet
from sync_pipeline.services.database import Database, open_database
from sync_pipeline.services.resync import sync_verify_repair
from sync_pipeline_tests.support.cli import DOCUMENTED_KEYS, PHASES, parse_json_stdout, run_cli
from sync_pipeline_tests.support.sample_sheet import generate_rows
from sync_pipeline_tests.support.service_account import ServiceAccountKey
from sync_pipeline_tests.support.sheets import HEADER, seller_row
from sync_pipeline_tests.support.sheets_emulator import SheetsEmulator

SEED = 3_2025
SELLERS_GENERATED = 60
KEY = "1SyncPipelineE2E_sellers-0123456789abcdefghij"
URL = f"https://docs.google.com/spreadsheets/d/{KEY}/edit#gid=0"
WORKSHEET = "売主一覧"
# Two rows the office got wrong, below the generated ones: no 氏名 (column B) and 査定額 "ask" (column J).
BAD_ROWS = [seller_row("ZZ99001", name=""), seller_row("ZZ99002", amount="ask")]
SHEET = generate_rows(SELLERS_GENERATED, SEED, messy=True) + BAD_ROWS
BAD_SHEET_ROWS = {len(SHEET) - 1: ("B", "required"), len(SHEET): ("J", "invalid_amount")}  # 1-based, header = 1
REJECTION_KEYS = {"row", "cell", "rule", "seller_number", "message"}


# --- fixtures and helpers -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[SheetsEmulator]:
    with SheetsEmulator() as running:
        running.add_spreadsheet(KEY, "売主管理", {WORKSHEET: SHEET})
        yield running


@pytest.fixture(autouse=True)
def _fresh_faults(emulator: SheetsEmulator) -> None:
    emulator.reset()


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh migrated SQLite database, for the tests that need not run on both databases."""
    path = tmp_path / "sync.db"
    path.write_bytes(sqlite_template.read_bytes())
    return f"sqlite:///{path}"


def google_env(emulator: SheetsEmulator, key: ServiceAccountKey) -> dict[str, str]:
    return {SERVICE_ACCOUNT_FILE_ENV: str(key.path), SHEETS_API_URL_ENV: emulator.url}


def source_for(
    emulator: SheetsEmulator, key: ServiceAccountKey, spreadsheet: str, waits: list[float]
) -> GoogleSheetSource:
    """A source that talks to the emulator and records its waits instead of sleeping them."""
    return GoogleSheetSource(
        spreadsheet, credentials_file=key.path, api_url=emulator.url, sleep=waits.append, environ={}
    )


def new_spreadsheet(emulator: SheetsEmulator, rows: Sequence[Sequence[str]]) -> str:
    """A spreadsheet of its own for a test that edits it or fails it; returns its key."""
    key = f"1{uuid.uuid4().hex}"
    emulator.add_spreadsheet(key, "売主管理", {WORKSHEET: rows})
    return key


def valid_keys(rows: Sequence[Sequence[str]]) -> set[str]:
    """The seller numbers ingestion accepts from these rows: exactly what the database must end up holding."""
    snapshot = ingest_sheet(RawSheet(source="expected", values=rows), IngestRules())
    return set(snapshot.valid["seller_number"])


def seller_numbers(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return set(conn.execute(sa.select(sellers.c.seller_number)).scalars())


def table_contents(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the seller tables, every column: what "untouched" is measured against."""
    with db.engine.connect() as conn:
        return {
            table.name: [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.id))]
            for table in (sellers, properties)
        }


def latest_sync(db: Database) -> dict[str, Any]:
    with db.engine.connect() as conn:
        row = db.audit.latest(conn)
    assert row is not None
    return dict(row)


def sync_errors(db: Database, sync_id: str) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        return [dict(e) for e in db.audit.errors(conn, sync_id)]


def retries_logged(db: Database, sync_id: str) -> list[dict[str, Any]]:
    """The recovery actions (read retries) the sync logged."""
    return [e for e in sync_errors(db, sync_id) if e["rule"] == "recovery:sheet_retry"]


def edited(rows: Sequence[Sequence[str]]) -> list[list[str]]:
    """The same sheet after an office edit: two renamed sellers and one new seller."""
    out = [list(r) for r in rows]
    for row in [r for r in out[1:] if r and r[0].strip()][:2]:
        row[1] = "編集 済子"
    out.append(seller_row("ZZ99100", name="新規 追加"))
    return out


# --- end to end through the command -------------------------------------------------------------------------------


@pytest.mark.slow  # a subprocess that imports Dagster: seconds, not milliseconds
def test_cli_syncs_a_google_sheet_into_the_database(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, database_url: str, tmp_path: Path
) -> None:
    done = run_cli(
        ["sync", "--source", f"gsheet:{KEY}", "--database-url", database_url, "--json"],
        env=google_env(emulator, service_account),
        cwd=tmp_path,
    )
    summary = parse_json_stdout(done)
    assert done.returncode == 0, done.stderr
    assert summary.keys() >= DOCUMENTED_KEYS
    assert set(summary["phases"]) >= PHASES
    assert summary["status"] == "partial"  # two rows were rejected; every valid one was synced
    assert summary["sync_id"] and summary["run_id"]
    expected = valid_keys(SHEET)
    assert len(expected) == SELLERS_GENERATED  # the messy cells are all valid; only the two bad rows are not
    assert (summary["rows_read"], summary["valid"], summary["rejected"]) == (len(SHEET) - 1, len(expected), 2)
    assert (summary["inserted"], summary["updated"], summary["unchanged"]) == (len(expected), 0, 0)
    assert (summary["conflicts"], summary["failed"], summary["gaps_found"]) == (0, 0, 0)
    assert all(r.keys() >= REJECTION_KEYS for r in summary["rejections"])
    assert {r["row"]: (r["cell"], r["rule"]) for r in summary["rejections"]} == {
        row: (f"{column}{row}", rule) for row, (column, rule) in BAD_SHEET_ROWS.items()
    }

    db = open_database(database_url)
    assert seller_numbers(db) == expected  # exactly the valid rows, not the rejected ones
    audit = latest_sync(db)
    assert (audit["sync_id"], audit["run_id"], audit["status"]) == (summary["sync_id"], summary["run_id"], "partial")
    # Signed in with the key file (its token_uri is the emulator's), read-only, and read in one values request.
    assert [c["iss"] for c in emulator.token_claims] == [service_account.client_email]
    assert "spreadsheets.readonly" in emulator.token_claims[0]["scope"]
    assert emulator.count("values") == 1
    # Dagster's event log went to standard error, not into the JSON.
    assert "seller_sync_job" in done.stderr


@pytest.mark.slow  # a subprocess that imports Dagster: seconds, not milliseconds
def test_cli_reads_the_same_sheet_by_url_and_writes_nothing_new(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, sqlite_url: str, tmp_path: Path
) -> None:
    db = open_database(sqlite_url)
    sync_verify_repair(db, source_for(emulator, service_account, KEY, []))  # first sync by key, in-process
    before = table_contents(db)

    done = run_cli(
        ["sync", "--source", f"gsheet:{URL}", "--database-url", sqlite_url, "--json"],
        env=google_env(emulator, service_account),
        cwd=tmp_path,
    )
    summary = parse_json_stdout(done)
    assert done.returncode == 0, done.stderr
    assert summary["status"] == "partial"
    assert (summary["rows_read"], summary["valid"], summary["rejected"]) == (len(SHEET) - 1, SELLERS_GENERATED, 2)
    assert (summary["inserted"], summary["updated"], summary["unchanged"]) == (0, 0, SELLERS_GENERATED)
    assert table_contents(db) == before
    assert latest_sync(db)["source"].startswith(f"gsheet:{KEY}")  # the URL was read as that spreadsheet's key


@pytest.mark.slow  # a subprocess that imports Dagster: seconds, not milliseconds
def test_cli_exits_1_with_the_header_to_restore_when_a_column_disappeared(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, sqlite_url: str, tmp_path: Path
) -> None:
    key = new_spreadsheet(emulator, SHEET)
    db = open_database(sqlite_url)
    sync_verify_repair(db, source_for(emulator, service_account, key, []))  # the last sync used 電話番号
    before = table_contents(db)
    phone = HEADER.index("電話番号")
    without_phone = [[c for i, c in enumerate(row) if i != phone] for row in edited(SHEET)]
    emulator.add_spreadsheet(key, "売主管理", {WORKSHEET: without_phone})

    done = run_cli(
        ["sync", "--source", f"gsheet:{key}", "--database-url", sqlite_url, "--json"],
        env=google_env(emulator, service_account),
        cwd=tmp_path,
    )
    summary = parse_json_stdout(done)
    assert done.returncode == 1, done.stderr
    assert summary["status"] == "failed"
    assert summary["sync_id"] is not None
    assert "電話番号" in summary["message"] and "restore" in summary["message"]
    assert {"category": "configuration", "rule": "disappeared"} in [
        {"category": p["category"], "rule": p["rule"]} for p in summary["problems"]
    ]
    assert summary["inserted"] == summary["updated"] == 0
    assert table_contents(db) == before  # the edits and the new seller were not written
    assert latest_sync(db)["status"] == "failed"


# --- faults at the sync level -------------------------------------------------------------------------------------


def test_two_rate_limits_then_success_log_exactly_two_recovery_actions(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, database_url: str
) -> None:
    rows = generate_rows(30, SEED + 1, messy=True)
    key = new_spreadsheet(emulator, rows)
    emulator.fail_next("values", 429, retry_after=2, times=2)
    waits: list[float] = []
    db = open_database(database_url)

    summary = sync_verify_repair(db, source_for(emulator, service_account, key, waits)).summary

    assert summary.status.value == "succeeded"
    assert summary.counts.inserted == len(valid_keys(rows)) == 30
    assert waits == [2.0, 2.0]  # the server's Retry-After, not our backoff
    assert emulator.count("values") == 3
    errors = sync_errors(db, summary.sync_id)
    assert [(e["category"], e["rule"]) for e in errors] == [("network", "recovery:sheet_retry")] * 2  # and nothing else
    assert all("HTTP 429" in e["message"] and e["message"].startswith("recovery:") for e in errors)
    assert summary.counts.errors == 2
    assert seller_numbers(db) == valid_keys(rows)


@pytest.mark.parametrize("status", [429, 503])
def test_faults_beyond_the_retry_limit_fail_the_sync_and_leave_the_database_untouched(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, database_url: str, status: int
) -> None:
    rows = generate_rows(30, SEED + 2, messy=True)
    key = new_spreadsheet(emulator, rows)
    db = open_database(database_url)
    sync_verify_repair(db, source_for(emulator, service_account, key, []))
    before = table_contents(db)
    emulator.add_spreadsheet(key, "売主管理", {WORKSHEET: edited(rows)})
    emulator.fail_next("values", status, retry_after=1 if status == 429 else None, times=DEFAULT_MAX_RETRIES + 1)
    waits: list[float] = []

    with pytest.raises(SheetReadError) as caught:
        sync_verify_repair(db, source_for(emulator, service_account, key, waits))

    assert caught.value.category is ErrorCategory.NETWORK
    assert f"HTTP {status}" in caught.value.message
    assert len(waits) == DEFAULT_MAX_RETRIES and emulator.pending_faults("values") == 0
    failed = latest_sync(db)
    assert failed["status"] == "failed"
    assert failed["message"] == caught.value.message
    errors = sync_errors(db, failed["sync_id"])
    assert [(e["category"], e["rule"]) for e in errors] == [
        ("network", "recovery:sheet_retry")
    ] * DEFAULT_MAX_RETRIES + [("network", "SheetReadError")]
    assert table_contents(db) == before

    # The edit would have been written: the untouched tables are the failure's doing, not an unchanged sheet.
    summary = sync_verify_repair(db, source_for(emulator, service_account, key, [])).summary
    assert (summary.counts.inserted, summary.counts.updated) == (1, 2)


def test_a_dropped_connection_is_retried_and_the_sync_succeeds(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, database_url: str
) -> None:
    rows = generate_rows(30, SEED + 3, messy=True)
    key = new_spreadsheet(emulator, rows)
    emulator.drop_connection(times=1, kind="values")
    waits: list[float] = []
    db = open_database(database_url)

    summary = sync_verify_repair(db, source_for(emulator, service_account, key, waits)).summary

    assert summary.status.value == "succeeded"
    assert len(waits) == 1
    [retry] = retries_logged(db, summary.sync_id)
    assert retry["category"] == "network" and "connection dropped" in retry["message"]
    assert seller_numbers(db) == valid_keys(rows)


def test_a_spreadsheet_not_found_names_the_service_account_to_share_it_with(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, database_url: str
) -> None:
    db = open_database(database_url)
    waits: list[float] = []

    with pytest.raises(SheetReadError) as caught:
        sync_verify_repair(db, source_for(emulator, service_account, "1NeverSharedWithTheSync", waits))

    assert caught.value.category is ErrorCategory.CONFIGURATION
    assert service_account.client_email in caught.value.message
    assert "share" in caught.value.message
    assert waits == []  # a 404 is not retried
    failed = latest_sync(db)
    assert failed["status"] == "failed" and service_account.client_email in failed["message"]
    assert [(e["category"], e["rule"]) for e in sync_errors(db, failed["sync_id"])] == [
        ("configuration", "SheetReadError")
    ]
    assert seller_numbers(db) == set()


def test_retries_used_up_fail_the_dagster_run_before_the_tables(
    emulator: SheetsEmulator,
    service_account: ServiceAccountKey,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Retry-After 0 keeps the real sleeps of the Dagster-built source at zero.
    emulator.fail_next("values", 429, retry_after=0, times=DEFAULT_MAX_RETRIES + 1)
    # Built as the definitions build it, from the environment: each field an EnvVar read when the run starts.
    for name, value in {**google_env(emulator, service_account), "SYNC_SHEET_SOURCE": f"gsheet:{KEY}"}.items():
        monkeypatch.setenv(name, value)

    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("seller_sync_job").execute_in_process(
            resources={**resources_from_env(), "database": SyncDatabase(url=sqlite_url)},
            raise_on_error=False,
            instance=instance,
        )

    assert not result.success
    assert result.get_asset_materialization_events() == []
    failure = result.failure_data_for_node("seller_sync")
    assert failure is not None and failure.error is not None
    assert "HTTP 429" in failure.error.to_string()
    db = open_database(sqlite_url)
    with db.engine.connect() as conn:
        [audit] = conn.execute(sa.select(sync_audit_logs)).mappings().all()
    assert (audit["status"], audit["run_id"]) == ("failed", result.run_id)
    assert [(e["category"], e["rule"]) for e in sync_errors(db, audit["sync_id"])] == [
        ("network", "recovery:sheet_retry")
    ] * DEFAULT_MAX_RETRIES + [("network", "SheetReadError")]
    assert seller_numbers(db) == set()
