"""The sheets emulator answers notes the way the Sheets API does: driven by gspread's own note helpers
(`get_notes`, `update_notes`, `insert_note`, `clear_notes`), which build the requests real code sends.

What it must get right for the feedback tests to mean anything: the grid-data read under a field mask (with `.`
and `/` paths and parentheses), `startRow` left out when 0, the scope a write needs, a Viewer share refused,
and a batchUpdate applied whole or not at all."""

from __future__ import annotations

import uuid
from typing import Any

import gspread
import pytest
import requests

from sync_pipeline.adapters.sheets.gsheet import GoogleSheetSource
from sync_pipeline_tests.support.service_account import ServiceAccountKey
from sync_pipeline_tests.support.sheets_emulator import SheetsEmulator

TITLE = "売主一覧"
ROWS = [["売主番号", "氏名"], ["AA00001", "山田"], ["AA00002", "佐藤"]]


def _client(emulator: SheetsEmulator, service_account: ServiceAccountKey, key: str, *, write: bool) -> gspread.Client:
    source = GoogleSheetSource(key, TITLE, credentials_file=service_account.path, api_url=emulator.url, environ={})
    if write:
        source.allow_note_writes()
    return source._gspread_client()


def _worksheet(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, *, write: bool = True, **options: Any
) -> tuple[str, gspread.Worksheet]:
    key = f"1{uuid.uuid4().hex}"
    emulator.add_spreadsheet(key, "売主管理", {"表紙": [["cover"]], TITLE: ROWS}, **options)
    return key, _client(emulator, service_account, key, write=write).open_by_key(key).worksheet(TITLE)


def test_gspread_reads_the_seeded_notes_whole_and_by_range(
    emulator: SheetsEmulator, service_account: ServiceAccountKey
) -> None:
    _, ws = _worksheet(emulator, service_account, notes={TITLE: {"B2": "午後のみ", "A3": "重要\n顧客"}})

    assert ws.get_notes() == [[], ["", "午後のみ"], ["重要\n顧客"]]
    assert ws.get_notes(grid_range="B2:B3") == [["午後のみ"]]  # startRow 1, startColumn 1: counted from there
    assert ws.get_note("A3") == "重要\n顧客"  # gspread's `sheets/data/rowData/values/note` mask
    assert ws.get_note("A1") == ""


def test_update_insert_and_clear_notes_round_trip_in_one_batch_each(
    emulator: SheetsEmulator, service_account: ServiceAccountKey
) -> None:
    key, ws = _worksheet(emulator, service_account)

    ws.update_notes({"A2": "番号を確認", "B3": "空です"})
    ws.insert_note("B2", "メモ")
    emulator.set_cell(key, TITLE, "B3", "佐藤 花子")  # a person edits the cell: its note stays
    assert emulator.notes(key, TITLE) == {"A2": "番号を確認", "B2": "メモ", "B3": "空です"}
    ws.clear_notes(["A2", "B3"])

    assert emulator.notes(key, TITLE) == {"B2": "メモ"}
    assert ws.get_notes() == [[], ["", "メモ"]]
    bodies = emulator.batch_updates(key)
    assert [len(b["requests"]) for b in bodies] == [2, 1, 2]
    assert emulator.count("batch_update") >= 3


def test_a_read_only_token_and_a_viewer_share_are_refused_and_nothing_changes(
    emulator: SheetsEmulator, service_account: ServiceAccountKey
) -> None:
    key, read_only = _worksheet(emulator, service_account, write=False, notes={TITLE: {"A1": "mine"}})
    with pytest.raises(gspread.exceptions.APIError) as scope:
        read_only.update_notes({"A2": "x"})
    assert scope.value.code == 403 and "insufficient authentication scopes" in str(scope.value)

    viewer_key, viewer = _worksheet(emulator, service_account, editable=False)
    with pytest.raises(gspread.exceptions.APIError) as share:
        viewer.update_notes({"A2": "x"})
    assert share.value.code == 403 and "The caller does not have permission" in str(share.value)
    assert viewer.get_notes() == [[]]  # reading still works for a Viewer (gspread: [[]] for no note at all)
    assert emulator.notes(key, TITLE) == {"A1": "mine"} and emulator.notes(viewer_key, TITLE) == {}


def test_a_batch_with_one_bad_request_applies_none_of_it(
    emulator: SheetsEmulator, service_account: ServiceAccountKey
) -> None:
    key, ws = _worksheet(emulator, service_account)
    note = {
        "updateCells": {
            "range": {
                "sheetId": ws.id,
                "startRowIndex": 1,
                "endRowIndex": 2,
                "startColumnIndex": 0,
                "endColumnIndex": 1,
            },
            "rows": [{"values": [{"note": "x"}]}],
            "fields": "note",
        }
    }
    bad_grid = {"updateCells": {**note["updateCells"], "range": {**note["updateCells"]["range"], "sheetId": 4242}}}

    for bad, said in ((bad_grid, "No grid with id: 4242"), ({"frobnicate": {}}, 'Unknown name "frobnicate"')):
        with pytest.raises(gspread.exceptions.APIError) as refused:
            ws.client.batch_update(ws.spreadsheet_id, {"requests": [note, bad]})
        assert refused.value.code == 400 and said in str(refused.value)
    assert emulator.notes(key, TITLE) == {}
    assert emulator.batch_updates(key) == [] and len(emulator.batch_updates(key, applied_only=False)) == 2


def test_a_field_mask_filters_metadata_and_a_bad_one_is_refused(
    emulator: SheetsEmulator, service_account: ServiceAccountKey
) -> None:
    key, ws = _worksheet(emulator, service_account, notes={TITLE: {"A1": "n"}})
    http = ws.client

    titles = http.fetch_sheet_metadata(key, params={"fields": "sheets.properties.title"})
    assert titles == {"sheets": [{"properties": {"title": "表紙"}}, {"properties": {"title": TITLE}}]}
    nested = http.fetch_sheet_metadata(
        key, params={"fields": "sheets(properties(sheetId),data(startRow,rowData(values(note))))", "ranges": TITLE}
    )
    assert nested == {
        "sheets": [{"properties": {"sheetId": ws.id}, "data": [{"rowData": [{"values": [{"note": "n"}]}]}]}]
    }
    assert emulator.count("grid_data") >= 1
    with pytest.raises(gspread.exceptions.APIError) as refused:
        http.fetch_sheet_metadata(key, params={"fields": "sheets( properties"})
    assert refused.value.code == 400


def test_write_faults_are_injected_per_kind(emulator: SheetsEmulator, service_account: ServiceAccountKey) -> None:
    key, ws = _worksheet(emulator, service_account)
    emulator.fail_next("batch_update", 429, retry_after=0)
    with pytest.raises(gspread.exceptions.APIError) as limited:
        ws.update_notes({"A2": "x"})
    assert limited.value.code == 429 and emulator.notes(key, TITLE) == {}
    ws.update_notes({"A2": "x"})
    assert emulator.notes(key, TITLE) == {"A2": "x"}
    emulator.drop_connection(kind="batch_update")
    with pytest.raises(requests.ConnectionError):
        ws.update_notes({"A2": "y"})
    assert emulator.notes(key, TITLE) == {"A2": "x"}
