"""`sync-pipeline rejections`: a sync's rejected cells exported for the office as .xlsx, .csv and JSON.

Syncs an in-memory sheet through the service, then runs the installed command against the same database. Does not
touch Google (the cell links have their own test) nor the notes written back into a sheet."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from openpyxl import load_workbook

from sync_pipeline.services.database import open_database
from sync_pipeline.services.resync import sync_verify_repair
from sync_pipeline_tests.support.cli import run_cli
from sync_pipeline_tests.support.sheets import seller_row, sheet

EXPECTED_CELLS = {"B5", "A7", "I9"}


def _sync_the_broken_sheet(database_url: str) -> str:
    rows = [seller_row(f"AA{n:05d}") for n in range(1, 9)]  # sheet rows 2..9
    rows[3] = seller_row("AA00004", name="")  # B5: 氏名 empty
    rows[5] = seller_row("FB0006")  # A7: not a seller number
    rows[7] = seller_row("AA00008", inquiry_date="2025/13/40")  # I9: no such date
    run = sync_verify_repair(open_database(database_url), sheet(rows))
    return run.summary.sync_id


def test_rejections_export_lists_every_rejected_cell_with_its_message(database_url: str, tmp_path: Path) -> None:
    sync_id = _sync_the_broken_sheet(database_url)

    listed = run_cli(["rejections", "--json", "--database-url", database_url])
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    by_cell = {r["cell"]: r for r in rows}
    assert set(by_cell) == EXPECTED_CELLS
    assert by_cell["B5"]["column"] == "氏名" and by_cell["B5"]["row"] == 5
    assert by_cell["A7"]["value"] == "FB0006"
    assert by_cell["I9"]["value"] == "2025/13/40"
    assert all(r["message"] for r in rows)

    xlsx, csv_path = tmp_path / "x.xlsx", tmp_path / "x.csv"
    for path in (xlsx, csv_path):
        done = run_cli(["rejections", "--sync", sync_id, "--output", str(path), "--database-url", database_url])
        assert done.returncode == 0, done.stderr

    book = load_workbook(xlsx)
    ws = book.active
    assert ws is not None
    assert ws.freeze_panes == "A2"
    header = [c.value for c in ws[1]]
    assert header[:4] == ["row", "cell", "field/column", "cell text"]
    cell_col, text_col, message_col = header.index("cell"), header.index("cell text"), header.index("message")
    found = {}
    for line in ws.iter_rows(min_row=2):
        text_cell = line[text_col]
        assert text_cell.comment is not None and text_cell.comment.text == line[message_col].value
        assert text_cell.fill.fill_type == "solid"
        found[line[cell_col].value] = line[message_col].value
    assert found == {cell: by_cell[cell]["message"] for cell in EXPECTED_CELLS}
    assert (ws.column_dimensions["G"].width or 0) > (ws.column_dimensions["A"].width or 0)

    raw = csv_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert {r["cell"]: r["message"] for r in table} == found
    assert {r["cell"]: r["field/column"] for r in table}["B5"] == "氏名"


def test_rejections_export_never_writes_into_the_source_sheet(database_url: str, tmp_path: Path) -> None:
    source = tmp_path / "sellers.csv"
    with source.open("w", encoding="utf-8", newline="") as f:
        from sync_pipeline_tests.support.sheets import HEADER

        csv.writer(f).writerows([HEADER, seller_row("AA00001"), seller_row("FB0006")])
    before = source.read_bytes()
    synced = run_cli(["sync", "--source", str(source), "--database-url", database_url, "--json"])
    assert synced.returncode == 0, synced.stderr

    refused = run_cli(["rejections", "--output", str(source), "--database-url", database_url])
    assert refused.returncode != 0
    assert source.read_bytes() == before
