"""Links to a rejected cell: for a Google source every rejection carries the URL that opens that cell.

Against the local Sheets API emulator through real gspread, on a second worksheet (so the gid is not 0): the sync's
`--json` object, the audit's summary, the `rejections` export and the `sheet_rows_valid` failure table. A file
source gets no link. Does not touch Google, nor the notes written back into a sheet."""

from __future__ import annotations

import uuid
from pathlib import Path

from sync_pipeline.adapters.sheets.gsheet import GoogleSheetSource
from sync_pipeline.defs.results import _failure_table
from sync_pipeline.domain.ingest import IngestRules, ingest_sheet
from sync_pipeline.services.database import open_database
from sync_pipeline.services.rejections import sync_rejections
from sync_pipeline.services.report import sync_summary
from sync_pipeline.services.resync import sync_verify_repair
from sync_pipeline_tests.support.service_account import ServiceAccountKey
from sync_pipeline_tests.support.sheets import HEADER, seller_row, sheet
from sync_pipeline_tests.support.sheets_emulator import SheetsEmulator

WORKSHEET = "売主一覧"
ROWS = [
    HEADER,
    seller_row("AA00001"),
    seller_row("AA00002"),
    seller_row("AA00003"),
    seller_row("AA00004", name=""),  # B5
    seller_row("AA00005"),
    seller_row("FB0006"),  # A7
    seller_row("AA00007"),
    seller_row("AA00008", inquiry_date="2025/13/40"),  # I9
]
CELLS = {"B5", "A7", "I9"}


def _google_source(emulator: SheetsEmulator, account: ServiceAccountKey) -> tuple[GoogleSheetSource, str, int]:
    key = f"1{uuid.uuid4().hex}"
    emulator.add_spreadsheet(key, "売主管理", {"表紙": [["cover"]], WORKSHEET: ROWS})
    gid = emulator.sheet_id(key, WORKSHEET)
    assert gid != 0
    source = GoogleSheetSource(key, WORKSHEET, credentials_file=account.path, api_url=emulator.url, environ={})
    return source, key, gid


def test_every_google_rejection_links_to_its_cell(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, database_url: str
) -> None:
    source, key, gid = _google_source(emulator, service_account)
    expected = {cell: f"https://docs.google.com/spreadsheets/d/{key}/edit#gid={gid}&range={cell}" for cell in CELLS}
    db = open_database(database_url)

    run = sync_verify_repair(db, source)

    assert {r["cell"]: r["url"] for r in run.summary.as_dict()["rejections"]} == expected
    with db.engine.connect() as conn:
        row = db.audit.get(conn, run.summary.sync_id)
    assert row is not None
    assert {r["cell"]: r["url"] for r in sync_summary(db, row)["rejections"]} == expected
    _, exported = sync_rejections(db, run.summary.sync_id)
    assert {r["cell"]: r["url"] for r in exported} == expected

    table = _failure_table(ingest_sheet(source.read(), IngestRules()))
    for cell, url in expected.items():
        assert f"[{cell}]({url})" in table


def test_a_file_source_rejection_has_no_link(database_url: str, tmp_path: Path) -> None:
    run = sync_verify_repair(open_database(database_url), sheet(ROWS[1:]))
    rejections = run.summary.as_dict()["rejections"]
    assert {r["cell"] for r in rejections} == CELLS
    assert all(r["url"] is None for r in rejections)
    assert "](" not in _failure_table(ingest_sheet(sheet(ROWS[1:]).read(), IngestRules()))
