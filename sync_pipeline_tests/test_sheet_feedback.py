"""Feedback to the sheet (issue 19): notes on the rejected cells of a Google sheet, through real gspread, against the
local Sheets API emulator (which answers the notes read and the batchUpdate the way Google does).

The sheet of the issue: an empty 氏名 in B5, a seller number `FB0006` in A7, `2025/13/40` in I9 — and people's own
notes, on a good cell (C3) and on a rejected one (I9). Properties checked here, end to end:
- feedback off: no write request, no notes read, the read-only scope;
- feedback never touches a note it did not write (byte for byte), also where one sits on a rejected cell;
- a second sync of the unchanged sheet rewrites nothing (and sends no write); fixing B5 clears its note only;
- feedback failure never changes the sync's outcome: a sheet shared read-only (403) syncs its rows, closes and exits
  as it would have, and reports `failed` with Google's message in `--json`, the audit and the error log.
The planner's own properties over random sheets are in test_sheet_feedback_properties.py.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_pipeline.adapters.sheets.gsheet import SERVICE_ACCOUNT_FILE_ENV, SHEETS_API_URL_ENV, GoogleSheetSource
from sync_pipeline.adapters.store.tables import sellers
from sync_pipeline.domain.feedback import MARKER
from sync_pipeline.services.database import Database, open_database
from sync_pipeline.services.feedback import FEEDBACK_RULE
from sync_pipeline.services.report import sync_summary
from sync_pipeline.services.resync import VerifiedSync, sync_verify_repair
from sync_pipeline.services.settings import update_settings
from sync_pipeline_tests.support.cli import parse_json_stdout, run_cli
from sync_pipeline_tests.support.service_account import ServiceAccountKey
from sync_pipeline_tests.support.sheets import HEADER, seller_row
from sync_pipeline_tests.support.sheets_emulator import SheetsEmulator

WORKSHEET = "売主一覧"
ROWS = [
    HEADER,
    seller_row("AA00001"),
    seller_row("AA00002"),  # C3: a person's note on a good cell
    seller_row("AA00003"),
    seller_row("AA00004", name=""),  # B5
    seller_row("AA00005"),
    seller_row("FB0006"),  # A7
    seller_row("AA00007"),
    seller_row("AA00008", inquiry_date="2025/13/40"),  # I9, under a person's note
]
PEOPLE = {"C3": "電話は午後のみ（田中）", "I9": "反響日は本人に確認中\n— 佐藤"}
READ_ONLY_SCOPE = "https://www.googleapis.com/auth/spreadsheets.readonly"
WRITE_SCOPE = "https://www.googleapis.com/auth/spreadsheets"


@pytest.fixture
def sqlite_db(sqlite_template: Path, tmp_path: Path) -> Database:
    path = tmp_path / "sync.db"
    path.write_bytes(sqlite_template.read_bytes())
    return open_database(f"sqlite:///{path}")


def _spreadsheet(emulator: SheetsEmulator, *, editable: bool = True, notes: dict[str, str] | None = None) -> str:
    key = f"1{uuid.uuid4().hex}"
    emulator.add_spreadsheet(
        key,
        "売主管理",
        {WORKSHEET: ROWS},
        notes={WORKSHEET: dict(PEOPLE if notes is None else notes)},
        editable=editable,
    )
    return key


def _source(emulator: SheetsEmulator, service_account: ServiceAccountKey, key: str) -> GoogleSheetSource:
    """A new source per sync, as every Dagster run builds its own."""
    return GoogleSheetSource(
        key, WORKSHEET, credentials_file=service_account.path, api_url=emulator.url, sleep=lambda s: None, environ={}
    )


def _sync(db: Database, emulator: SheetsEmulator, service_account: ServiceAccountKey, key: str) -> dict[str, Any]:
    return sync_verify_repair(db, _source(emulator, service_account, key)).summary.as_dict()


def _feedback_on(db: Database) -> None:
    update_settings(db, {"sheet_feedback": "notes"}, changed_by="test")


def _writes(emulator: SheetsEmulator, key: str) -> int:
    return sum(1 for r in emulator.requests if r.kind == "batch_update" and key in r.path)


def _notes_reads(emulator: SheetsEmulator, key: str) -> int:
    return sum(1 for r in emulator.requests if r.kind == "grid_data" and key in r.path)


def _assert_notes_untouched(emulator: SheetsEmulator, key: str, *, sign_ins: int) -> None:
    """No notes read or written, the last `sign_ins` tokens read-only, people's notes as they were."""
    assert (_writes(emulator, key), _notes_reads(emulator, key)) == (0, 0)
    assert [claims["scope"] for claims in emulator.token_claims[-sign_ins:]] == [READ_ONLY_SCOPE] * sign_ins
    assert emulator.notes(key, WORKSHEET) == PEOPLE


def _last_scope(emulator: SheetsEmulator) -> str:
    return str(emulator.token_claims[-1]["scope"])


def test_with_feedback_off_a_sync_sends_no_write_request_and_signs_in_read_only(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, sqlite_db: Database
) -> None:
    key = _spreadsheet(emulator)

    summary = _sync(sqlite_db, emulator, service_account, key)

    assert summary["status"] == "partial"
    assert summary["sheet_feedback"]["status"] == "off"
    _assert_notes_untouched(emulator, key, sign_ins=1)


def test_rejected_cells_get_notes_people_keep_theirs_an_unchanged_sheet_is_left_alone_and_a_fix_clears(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, sqlite_db: Database
) -> None:
    key = _spreadsheet(emulator)
    _feedback_on(sqlite_db)

    first = _sync(sqlite_db, emulator, service_account, key)

    assert first["status"] == "partial" and first["rejected"] == 3
    assert _last_scope(emulator).split() == [WRITE_SCOPE]
    notes = emulator.notes(key, WORKSHEET)
    # 氏名 on B5, 売主番号 on A7; I9 carries a person's note, so its finding goes onto the row's key cell A9.
    assert set(notes) == {"B5", "A7", "A9", *PEOPLE}
    assert {cell: notes[cell] for cell in PEOPLE} == PEOPLE  # byte for byte
    messages = {r["cell"]: r["message"] for r in first["rejections"]}
    assert notes["B5"].startswith(MARKER) and "氏名（B5）" in notes["B5"] and messages["B5"] in notes["B5"]
    assert notes["A7"].startswith(MARKER) and "売主番号（A7）" in notes["A7"] and messages["A7"] in notes["A7"]
    assert "反響日（I9）" in notes["A9"] and messages["I9"] in notes["A9"]
    assert "検出: " in notes["B5"]
    feedback = first["sheet_feedback"]
    assert (feedback["status"], feedback["notes_written"], feedback["notes_cleared"]) == ("written", 3, 0)
    assert (feedback["requests"], feedback["error"]) == (2, None)
    assert _writes(emulator, key) == 1  # all of it in one batchUpdate
    (body,) = emulator.batch_updates(key)
    assert len(body["requests"]) == 3 and all(r["updateCells"]["fields"] == "note" for r in body["requests"])

    second = _sync(sqlite_db, emulator, service_account, key)

    assert second["sheet_feedback"] == {
        **feedback,
        "notes_written": 0,
        "notes_unchanged": 3,
        "requests": 1,  # the notes read; no write for an unchanged sheet
    }
    assert _writes(emulator, key) == 1
    assert emulator.notes(key, WORKSHEET) == notes  # nothing rewritten, not even the found time

    emulator.set_cell(key, WORKSHEET, "B5", "山田花子")
    third = _sync(sqlite_db, emulator, service_account, key)

    assert third["rejected"] == 2 and third["inserted"] == 1  # AA00004 is synced now
    assert (third["sheet_feedback"]["notes_cleared"], third["sheet_feedback"]["notes_written"]) == (1, 0)
    after = emulator.notes(key, WORKSHEET)
    assert "B5" not in after
    assert after == {cell: text for cell, text in notes.items() if cell != "B5"}
    with sqlite_db.engine.connect() as conn:
        row = sqlite_db.audit.get(conn, third["sync_id"])
    assert row is not None
    assert sync_summary(sqlite_db, row)["sheet_feedback"] == third["sheet_feedback"]


def test_a_person_note_on_the_key_cell_too_leaves_the_finding_unannotated(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, sqlite_db: Database
) -> None:
    people = {**PEOPLE, "A9": "重要顧客"}
    key = _spreadsheet(emulator, notes=people)
    _feedback_on(sqlite_db)

    feedback = _sync(sqlite_db, emulator, service_account, key)["sheet_feedback"]

    assert (feedback["notes_written"], feedback["cells_blocked"]) == (2, 1)
    notes = emulator.notes(key, WORKSHEET)
    assert {cell: notes[cell] for cell in people} == people
    assert set(notes) == {"B5", "A7", *people}


@pytest.mark.slow  # a subprocess that imports Dagster; on SQLite and on Postgres (the database_url fixture)
def test_a_sheet_shared_read_only_syncs_its_rows_and_reports_the_403(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, database_url: str, tmp_path: Path
) -> None:
    key = _spreadsheet(emulator, editable=False)
    db = open_database(database_url)
    _feedback_on(db)
    env = {SERVICE_ACCOUNT_FILE_ENV: str(service_account.path), SHEETS_API_URL_ENV: emulator.url}

    done = run_cli(
        ["sync", "--source", f"gsheet:{key}", "--database-url", database_url, "--json"], env=env, cwd=tmp_path
    )

    summary = parse_json_stdout(done)
    assert done.returncode == 0, done.stderr  # partial, as without feedback
    assert (summary["status"], summary["inserted"], summary["rejected"]) == ("partial", 5, 3)
    feedback = summary["sheet_feedback"]
    assert feedback["status"] == "failed" and feedback["category"] == "configuration"
    assert "The caller does not have permission" in feedback["error"] and "Editor" in feedback["error"]
    assert emulator.notes(key, WORKSHEET) == PEOPLE
    with db.engine.connect() as conn:
        row = db.audit.get(conn, summary["sync_id"])
        assert row is not None
        errors = [e for e in db.audit.errors(conn, summary["sync_id"]) if e["rule"] == FEEDBACK_RULE]
        stored = conn.execute(sa.select(sa.func.count()).select_from(sellers)).scalar_one()
    assert row["sheet_feedback"] == feedback
    assert [(e["category"], e["message"]) for e in errors] == [("configuration", feedback["error"])]
    assert stored == 5
    audit = run_cli(["audit", "--sync", summary["sync_id"], "--database-url", database_url], env=env, cwd=tmp_path)
    assert "sheet feedback failed" in audit.stdout and "The caller does not have permission" in audit.stdout


FAULTS = st.sampled_from(
    [
        ("batch_update", 403),
        ("batch_update", 500),
        ("batch_update", 429),
        ("grid_data", 403),
        ("grid_data", 503),
        ("batch_update", "drop"),
    ]
)


def _outcome(run: VerifiedSync, db: Database) -> tuple[Any, ...]:
    s = run.summary.as_dict()
    with db.engine.connect() as conn:
        stored = sorted(conn.execute(sa.select(sellers.c.seller_number, sellers.c.row_hash)).all())
    return (
        s["status"],
        s["rows_read"],
        s["valid"],
        s["rejected"],
        s["inserted"],
        s["updated"],
        s["failed"],
        [(r["cell"], r["message"]) for r in s["rejections"]],
        run.verification.status,
        stored,
    )


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fault=FAULTS,
    blank=st.sets(st.integers(min_value=2, max_value=9), max_size=4),
    person=st.sets(st.sampled_from(["A2", "B5", "I9", "C3", "A7"]), max_size=3),
)
def test_feedback_failure_never_changes_the_sync_outcome(
    emulator: SheetsEmulator,
    service_account: ServiceAccountKey,
    sqlite_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    fault: tuple[str, int | str],
    blank: set[int],
    person: set[str],
) -> None:
    rows = [list(r) for r in ROWS]
    for row in blank:  # more rejected 氏名 cells, at random
        rows[row - 1][1] = ""
    outcomes = []
    for feedback in (False, True):
        key = f"1{uuid.uuid4().hex}"
        emulator.add_spreadsheet(key, "売主管理", {WORKSHEET: rows}, notes={WORKSHEET: {c: "memo" for c in person}})
        path = tmp_path_factory.mktemp("outcome") / "sync.db"
        path.write_bytes(sqlite_template.read_bytes())
        db = open_database(f"sqlite:///{path}")
        if feedback:
            _feedback_on(db)
            kind, how = fault
            if how == "drop":
                emulator.drop_connection(times=10, kind=kind)
            else:
                emulator.fail_next(kind, int(how), times=10, retry_after=0 if how == 429 else None)
        run = sync_verify_repair(db, _source(emulator, service_account, key))
        if feedback:
            emulator.clear_faults(fault[0])  # the faults the run did not use must not reach the next example
            assert run.summary.sheet_feedback is not None and run.summary.sheet_feedback.status == "failed"
            assert emulator.notes(key, WORKSHEET) == {c: "memo" for c in person}
        outcomes.append(_outcome(run, db))
    assert outcomes[0] == outcomes[1]


def test_seller_sheet_materialisation_counts_the_notes_in_the_sheet(
    emulator: SheetsEmulator,
    service_account: ServiceAccountKey,
    sqlite_db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dagster as dg

    from sync_pipeline.definitions import defs
    from sync_pipeline.defs.resources import SyncDatabase, resources_from_env

    key = _spreadsheet(emulator)
    _feedback_on(sqlite_db)
    env = {SERVICE_ACCOUNT_FILE_ENV: str(service_account.path), SHEETS_API_URL_ENV: emulator.url}
    for name, value in {**env, "SYNC_SHEET_SOURCE": f"gsheet:{key}", "SYNC_SHEET_WORKSHEET": WORKSHEET}.items():
        monkeypatch.setenv(name, value)

    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("seller_sync_job").execute_in_process(
            resources={**resources_from_env(), "database": SyncDatabase(url=str(sqlite_db.engine.url))},
            instance=instance,
        )

    [sheet] = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey("seller_sheet")
    ]
    assert sheet.metadata["feedback_notes"].value == 3
    assert sheet.metadata["sheet_feedback"].value["status"] == "written"  # type: ignore[index]
    assert set(emulator.notes(key, WORKSHEET)) == {"B5", "A7", "A9", *PEOPLE}


def test_notes_go_to_google_sources_also_behind_a_contract_and_never_to_files(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, tmp_path: Path
) -> None:
    from sync_pipeline.adapters.sheets.base import noted_source
    from sync_pipeline.adapters.sheets.file import FileSheetSource
    from sync_pipeline.domain.settings import Settings
    from sync_pipeline.services.feedback import feedback_off
    from sync_pipeline.services.sources import ContractedSource

    google = _source(emulator, service_account, "1anykey")
    wrapped = ContractedSource(google, str(tmp_path / "office.yaml"))
    csv = FileSheetSource(tmp_path / "sellers.csv")
    assert noted_source(google) is google and noted_source(wrapped) is wrapped
    assert noted_source(csv) is None and noted_source(ContractedSource(csv, None)) is None
    on = Settings(sheet_feedback="notes")
    assert feedback_off(on, wrapped) is None
    report = feedback_off(on, csv)
    assert report is not None and report.status == "off" and "not a Google sheet" in (report.reason or "")


def test_a_dry_run_verify_and_a_resync_never_touch_the_notes_and_read_only(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, sqlite_db: Database
) -> None:
    from sync_pipeline.services.dry_run import preview
    from sync_pipeline.services.resync import resync_from_source
    from sync_pipeline.services.verify import verify_source

    key = _spreadsheet(emulator)
    _feedback_on(sqlite_db)

    preview(sqlite_db, _source(emulator, service_account, key))
    verify_source(sqlite_db, _source(emulator, service_account, key))
    resync = resync_from_source(sqlite_db, _source(emulator, service_account, key), ["AA00001"], trigger="test")

    assert resync.summary is not None and resync.summary.sheet_feedback is None
    _assert_notes_untouched(emulator, key, sign_ins=3)


def test_a_rate_limited_write_is_retried_within_the_read_bounds_and_logged(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, sqlite_db: Database
) -> None:
    key = _spreadsheet(emulator)
    _feedback_on(sqlite_db)
    emulator.fail_next("batch_update", 429, retry_after=0)

    summary = _sync(sqlite_db, emulator, service_account, key)

    assert summary["sheet_feedback"]["status"] == "written" and summary["sheet_feedback"]["notes_written"] == 3
    assert _writes(emulator, key) == 2 and len(emulator.batch_updates(key)) == 1
    with sqlite_db.engine.connect() as conn:
        errors = sqlite_db.audit.errors(conn, summary["sync_id"])
    retries = [e for e in errors if e["rule"] == "recovery:sheet_retry"]
    assert len(retries) == 1 and "write notes into" in retries[0]["message"] and "HTTP 429" in retries[0]["message"]
