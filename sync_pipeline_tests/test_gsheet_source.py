"""Exercises the real gspread client against the local Sheets API emulator over HTTP; touches no database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from gspread.utils import Dimension
from hypothesis import given
from hypothesis import strategies as st

from sync_pipeline.adapters.retry import DEFAULT_MAX_RETRIES
from sync_pipeline.adapters.sheets.base import RetryEvent, SheetSource
from sync_pipeline.adapters.sheets.gsheet import GoogleSheetSource
from sync_pipeline.adapters.sheets.gsheet_setup import (
    GOOGLE_CREDENTIALS_ENV,
    SERVICE_ACCOUNT_FILE_ENV,
    SHEETS_API_URL_ENV,
)
from sync_pipeline.domain.errors import ErrorCategory, SheetReadError
from sync_pipeline_tests.support.service_account import ServiceAccountKey, write_service_account_key
from sync_pipeline_tests.support.sheets_emulator import SheetsEmulator

KEY = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-sellers"
URL = f"https://docs.google.com/spreadsheets/d/{KEY}/edit#gid=0"
SELLERS = [
    ["売主番号", "氏名", "物件所在地", "電話番号", "更新日時"],
    ["AA00123", "山田 太郎", "東京都千代田区1-1", "0312345678", "2026/01/05 9:00"],
    ["AB00042", "佐藤 花子"],  # ragged: trailing empty cells are not sent
    [],  # a blank row inside the data stays, as an empty row
    ["AC00007", "", "大阪府大阪市2-2", "", ""],
    ["", "", "", "", ""],  # trailing blank rows are not sent
]
EXPECTED_SELLERS = (
    ("売主番号", "氏名", "物件所在地", "電話番号", "更新日時"),
    ("AA00123", "山田 太郎", "東京都千代田区1-1", "0312345678", "2026/01/05 9:00"),
    ("AB00042", "佐藤 花子"),
    (),
    ("AC00007", "", "大阪府大阪市2-2"),
)
ARCHIVE = [["old"], ["00999"]]
FAST_TIMEOUT = 0.3  # seconds; the emulator answers in milliseconds, so only a `slow` fault exceeds this
TRANSIENT_FAULTS = ["429", "500", "502", "503", "504", "408", "drop", "garbage", "truncate", "partial"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[SheetsEmulator]:
    with SheetsEmulator() as running:
        running.add_spreadsheet(KEY, "売主管理", {"Sellers": SELLERS, "Archive": ARCHIVE})
        running.add_spreadsheet("notShared", "Someone else's", {"Sheet1": [["x"]]}, shared=False)
        yield running


@pytest.fixture(autouse=True)
def _fresh_faults(emulator: SheetsEmulator) -> None:
    emulator.reset()


def make_source(
    emulator: SheetsEmulator,
    key: ServiceAccountKey,
    spreadsheet: str = KEY,
    worksheet: str | None = None,
    waits: list[float] | None = None,
    **kwargs: Any,
) -> GoogleSheetSource:
    sink = waits if waits is not None else []
    return GoogleSheetSource(
        spreadsheet,
        worksheet,
        credentials_file=key.path,
        api_url=emulator.url,
        sleep=sink.append,
        environ={},
        **kwargs,
    )


def inject(emulator: SheetsEmulator, fault: str, times: int) -> None:
    if fault.isdigit():
        emulator.fail_next("values", int(fault), times=times)
    else:
        getattr(emulator, {"drop": "drop_connection"}.get(fault, fault))(times=times)


# --- reading -----------------------------------------------------------------------------------------------------


def test_reads_the_first_worksheet_by_default(emulator: SheetsEmulator, service_account: ServiceAccountKey) -> None:
    source: SheetSource = make_source(emulator, service_account)
    sheet = source.read()
    assert sheet.values == EXPECTED_SELLERS
    assert sheet.first_row == 1
    assert sheet.source == source.description == f"gsheet:{KEY}/Sellers"


def test_reads_a_worksheet_by_title(emulator: SheetsEmulator, service_account: ServiceAccountKey) -> None:
    source = make_source(emulator, service_account, worksheet="Archive")
    assert source.description == f"gsheet:{KEY}/Archive"
    sheet = source.read()
    assert sheet.values == (("old",), ("00999",))  # leading zeros kept: the cell text as displayed


def test_reads_by_url_and_by_key_alike(emulator: SheetsEmulator, service_account: ServiceAccountKey) -> None:
    by_url = make_source(emulator, service_account, URL).read()
    by_key = make_source(emulator, service_account, KEY).read()
    assert by_url == by_key
    assert by_url.values == EXPECTED_SELLERS


def test_a_url_naming_a_tab_reads_that_tab(emulator: SheetsEmulator, service_account: ServiceAccountKey) -> None:
    gid = emulator.sheet_id(KEY, "Archive")
    source = make_source(emulator, service_account, f"https://docs.google.com/spreadsheets/d/{KEY}/edit#gid={gid}")
    assert source.read().source == f"gsheet:{KEY}/Archive"
    # An explicit title wins over the URL's tab.
    titled = make_source(
        emulator, service_account, f"https://docs.google.com/spreadsheets/d/{KEY}/edit?gid={gid}", worksheet="Sellers"
    )
    assert titled.read().values == EXPECTED_SELLERS


def test_one_values_request_reads_the_whole_range(emulator: SheetsEmulator, service_account: ServiceAccountKey) -> None:
    make_source(emulator, service_account).read()
    values = [r for r in emulator.requests if r.kind == "values"]
    assert len(values) == 1
    assert values[0].path == f"/v4/spreadsheets/{KEY}/values/'Sellers'"  # the whole worksheet, no A1 limits
    assert values[0].query["valueRenderOption"] == ["FORMATTED_VALUE"]  # formulas arrive as displayed
    assert emulator.count("metadata") == 1
    assert emulator.count("batch_get") == 0
    assert all(r.authorized for r in emulator.requests if r.kind != "token")


def test_signs_in_read_only_with_the_key_files_token_uri(
    emulator: SheetsEmulator, service_account: ServiceAccountKey
) -> None:
    make_source(emulator, service_account).read()
    assert emulator.count("token") == 1  # google-auth used the emulator's token_uri from the key file
    (claims,) = emulator.token_claims
    assert claims["iss"] == service_account.client_email
    assert claims["scope"] == "https://www.googleapis.com/auth/spreadsheets.readonly"


def test_reuses_its_client_and_token_across_reads(emulator: SheetsEmulator, service_account: ServiceAccountKey) -> None:
    source = make_source(emulator, service_account)
    source.read()
    source.read()
    assert (emulator.count("token"), emulator.count("values")) == (1, 2)


def test_settings_come_from_the_environment(emulator: SheetsEmulator, service_account: ServiceAccountKey) -> None:
    env = {
        SERVICE_ACCOUNT_FILE_ENV: str(service_account.path),
        GOOGLE_CREDENTIALS_ENV: "/nonexistent/ignored-because-the-project-setting-wins.json",
        SHEETS_API_URL_ENV: emulator.url + "/",
    }
    source = GoogleSheetSource(KEY, environ=env, sleep=lambda _: None)
    assert source.read().values == EXPECTED_SELLERS
    fallback = GoogleSheetSource(
        KEY, environ={GOOGLE_CREDENTIALS_ENV: str(service_account.path), SHEETS_API_URL_ENV: emulator.url}
    )
    assert fallback.read().values == EXPECTED_SELLERS


def test_drive_calls_go_to_the_api_url_too(emulator: SheetsEmulator, service_account: ServiceAccountKey) -> None:
    client = make_source(emulator, service_account)._gspread_client()
    files = client.list_spreadsheet_files()
    assert [f["id"] for f in files] == [KEY]  # only what is shared with the service account
    assert emulator.count("drive_files") == 1


def test_emulator_speaks_the_values_api_gspread_uses(
    emulator: SheetsEmulator, service_account: ServiceAccountKey
) -> None:
    client = make_source(emulator, service_account)._gspread_client()
    spreadsheet = client.open_by_key(KEY)
    assert spreadsheet.title == "売主管理"
    assert [ws.title for ws in spreadsheet.worksheets()] == ["Sellers", "Archive"]
    worksheet = spreadsheet.worksheet("Sellers")
    assert worksheet.row_count == 1000 and worksheet.col_count == 26
    assert worksheet.get("A2:B3") == [["AA00123", "山田 太郎"], ["AB00042", "佐藤 花子"]]
    assert worksheet.get("A:A", major_dimension=Dimension.cols) == [["売主番号", "AA00123", "AB00042", "", "AC00007"]]
    batch = spreadsheet.values_batch_get(["Sellers!A1", "'Archive'!A1:A2"])
    assert [vr["range"] for vr in batch["valueRanges"]] == ["Sellers!A1:A1", "Archive!A1:A2"]
    assert batch["valueRanges"][1]["values"] == [["old"], ["00999"]]
    assert emulator.count("batch_get") == 1
    assert [s.title for s in client.openall()] == ["売主管理"]


def test_emulator_refuses_requests_without_a_token(emulator: SheetsEmulator) -> None:
    assert emulator.url.startswith("http://127.0.0.1:")
    answer = requests.get(f"{emulator.url}/v4/spreadsheets/{KEY}", timeout=5)
    assert answer.status_code == 401
    assert answer.json()["error"]["status"] == "UNAUTHENTICATED"
    forged = requests.get(
        f"{emulator.url}/v4/spreadsheets/{KEY}", headers={"Authorization": "Bearer forged"}, timeout=5
    )
    assert forged.status_code == 401


# --- Property 28: transient errors are retried with backoff, a partial read is never the sheet -------------------


def test_property_28_transient_errors_are_retried_with_backoff(
    emulator: SheetsEmulator, service_account: ServiceAccountKey
) -> None:
    emulator.fail_next("values", 429, retry_after=1, times=2)
    waits: list[float] = []
    events: list[RetryEvent] = []
    sheet = make_source(emulator, service_account, waits=waits).read(on_retry=events.append)
    assert sheet.values == EXPECTED_SELLERS
    assert waits == [1.0, 1.0]  # Retry-After honoured, not our own backoff
    assert [(e.attempt, e.wait_seconds, e.reason) for e in events] == [
        (1, 1.0, "HTTP 429 (Retry-After 1)"),
        (2, 1.0, "HTTP 429 (Retry-After 1)"),
    ]
    assert events[0].operation == f"read sheet gsheet:{KEY}/(first worksheet)"
    assert emulator.count("values") == 3


def test_property_28_retry_after_as_http_date_is_honoured(
    emulator: SheetsEmulator, service_account: ServiceAccountKey
) -> None:
    emulator.fail_next("values", 503, retry_after="Thu, 01 Jan 1970 00:00:00 GMT")  # in the past: retry now
    waits: list[float] = []
    assert make_source(emulator, service_account, waits=waits).read().values == EXPECTED_SELLERS
    assert waits == [0.0]


def test_property_28_persistent_503_fails_after_four_attempts(
    emulator: SheetsEmulator, service_account: ServiceAccountKey
) -> None:
    emulator.fail_next("values", 503, times=DEFAULT_MAX_RETRIES + 1)
    waits: list[float] = []
    events: list[RetryEvent] = []
    with pytest.raises(SheetReadError) as raised:
        make_source(emulator, service_account, waits=waits).read(on_retry=events.append)
    assert raised.value.category == ErrorCategory.NETWORK
    assert raised.value.transient
    assert "HTTP 503" in raised.value.message and "4 attempts" in raised.value.message
    assert emulator.count("values") == 4
    assert len(events) == len(waits) == 3
    assert 1.0 <= waits[0] <= 2.0 and 2.0 <= waits[1] <= 3.0 and 4.0 <= waits[2] <= 5.0  # doubling, plus jitter


def test_property_28_dropped_connection_is_retried(
    emulator: SheetsEmulator, service_account: ServiceAccountKey
) -> None:
    emulator.drop_connection(times=1)
    events: list[RetryEvent] = []
    assert make_source(emulator, service_account).read(on_retry=events.append).values == EXPECTED_SELLERS
    assert [e.reason for e in events] == ["connection dropped"]


def test_property_28_slow_answer_times_out_and_is_retried(
    emulator: SheetsEmulator, service_account: ServiceAccountKey
) -> None:
    emulator.slow(2.0, times=1)
    events: list[RetryEvent] = []
    source = make_source(emulator, service_account, timeout=FAST_TIMEOUT)
    assert source.read(on_retry=events.append).values == EXPECTED_SELLERS
    assert [e.reason for e in events] == ["timed out waiting for the answer"]


def test_property_28_answer_slower_than_the_timeout_every_time_fails(
    emulator: SheetsEmulator, service_account: ServiceAccountKey
) -> None:
    emulator.slow(2.0, times=DEFAULT_MAX_RETRIES + 1)
    with pytest.raises(SheetReadError) as raised:
        make_source(emulator, service_account, timeout=FAST_TIMEOUT).read()
    assert raised.value.category == ErrorCategory.NETWORK
    assert "timed out" in raised.value.message
    assert emulator.count("values") == 4


def test_property_28_garbage_body_is_retried(emulator: SheetsEmulator, service_account: ServiceAccountKey) -> None:
    emulator.garbage(times=2)
    events: list[RetryEvent] = []
    assert make_source(emulator, service_account).read(on_retry=events.append).values == EXPECTED_SELLERS
    assert [e.reason for e in events] == ["answer is not JSON"] * 2


def test_property_28_a_partial_read_is_never_the_sheet(
    emulator: SheetsEmulator, service_account: ServiceAccountKey
) -> None:
    emulator.truncate(times=1)  # the body is cut short on the wire
    emulator.partial(times=1)  # a well-formed answer that covers half the grid
    events: list[RetryEvent] = []
    assert make_source(emulator, service_account).read(on_retry=events.append).values == EXPECTED_SELLERS
    assert [e.reason.split(" (")[0] for e in events] == ["answer cut short", "incomplete answer"]

    emulator.partial(times=DEFAULT_MAX_RETRIES + 1)
    with pytest.raises(SheetReadError) as raised:
        make_source(emulator, service_account).read()
    assert raised.value.category == ErrorCategory.NETWORK
    assert "Z500" in raised.value.message and "1000 rows" in raised.value.message


def test_property_28_metadata_and_sign_in_are_retried_too(
    emulator: SheetsEmulator, service_account: ServiceAccountKey
) -> None:
    emulator.drop_connection(times=1, kind="token")
    emulator.fail_next("metadata", 500, times=1)
    emulator.fail_next("metadata", 502, times=1)  # an HTML error page, as Google's front end sends
    events: list[RetryEvent] = []
    assert make_source(emulator, service_account).read(on_retry=events.append).values == EXPECTED_SELLERS
    assert [e.reason for e in events] == ["sign-in failed (connection dropped)", "HTTP 500", "HTTP 502"]


def test_property_28_quota_403_is_retried_unlike_a_missing_share(
    emulator: SheetsEmulator, service_account: ServiceAccountKey
) -> None:
    quota = {"error": {"code": 403, "message": "Rate limit exceeded", "status": "RESOURCE_EXHAUSTED"}}
    emulator.fail_next("values", 403, body=json.dumps(quota).encode())
    assert make_source(emulator, service_account).read().values == EXPECTED_SELLERS
    assert emulator.count("values") == 2


@given(fault=st.sampled_from(TRANSIENT_FAULTS), failures=st.integers(min_value=0, max_value=6))
def test_property_28_k_transient_failures_then_success(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, fault: str, failures: int
) -> None:
    emulator.reset()
    if failures:
        inject(emulator, fault, failures)
    waits: list[float] = []
    events: list[RetryEvent] = []
    source = make_source(emulator, service_account, waits=waits)
    if failures <= DEFAULT_MAX_RETRIES:
        assert source.read(on_retry=events.append).values == EXPECTED_SELLERS
        assert emulator.count("values") == failures + 1
    else:
        with pytest.raises(SheetReadError) as raised:
            source.read(on_retry=events.append)
        assert raised.value.category == ErrorCategory.NETWORK and raised.value.transient
        assert emulator.count("values") == DEFAULT_MAX_RETRIES + 1
    assert len(events) == len(waits) == min(failures, DEFAULT_MAX_RETRIES)
    assert [e.wait_seconds for e in events] == waits


# --- configuration errors: not retried, and the message says what to do -------------------------------------------


def test_unknown_spreadsheet_names_the_service_account(
    emulator: SheetsEmulator, service_account: ServiceAccountKey
) -> None:
    with pytest.raises(SheetReadError) as raised:
        make_source(emulator, service_account, "doesNotExist").read()
    error = raised.value
    assert error.category == ErrorCategory.CONFIGURATION and not error.transient
    assert "doesNotExist not found or not shared" in error.message
    assert service_account.client_email in error.message and "Viewer is enough" in error.message
    assert emulator.count("metadata") == 1  # not retried


def test_spreadsheet_not_shared_says_no_access(emulator: SheetsEmulator, service_account: ServiceAccountKey) -> None:
    with pytest.raises(SheetReadError) as raised:
        make_source(emulator, service_account, "notShared").read()
    assert raised.value.category == ErrorCategory.CONFIGURATION
    assert raised.value.message.startswith("no access to spreadsheet notShared")
    assert service_account.client_email in raised.value.message
    assert emulator.count("metadata") == 1


def test_unknown_worksheet_lists_the_existing_ones(
    emulator: SheetsEmulator, service_account: ServiceAccountKey
) -> None:
    with pytest.raises(SheetReadError) as raised:
        make_source(emulator, service_account, worksheet="Seller").read()
    assert raised.value.category == ErrorCategory.CONFIGURATION
    assert "worksheet 'Seller' not found" in raised.value.message
    assert "'Sellers', 'Archive'" in raised.value.message
    assert emulator.count("values") == 0


def test_refused_token_is_a_configuration_error(emulator: SheetsEmulator, service_account: ServiceAccountKey) -> None:
    emulator.fail_next("metadata", 401, times=3)  # google-auth refreshes twice on 401, then gives up
    with pytest.raises(SheetReadError) as raised:
        make_source(emulator, service_account).read()
    assert raised.value.category == ErrorCategory.CONFIGURATION
    assert "did not accept the access token" in raised.value.message


def test_refused_sign_in_is_a_configuration_error(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, tmp_path: Path
) -> None:
    stranger = write_service_account_key(
        tmp_path, emulator.token_uri, client_email="stranger@x.iam.gserviceaccount.com"
    )
    with pytest.raises(SheetReadError) as raised:
        make_source(emulator, stranger).read()
    assert raised.value.category == ErrorCategory.CONFIGURATION
    assert "refused to sign in the service account stranger@" in raised.value.message
    assert emulator.count("token") == 1  # invalid_grant is not retried


def test_missing_credentials_name_the_environment_variables() -> None:
    source = GoogleSheetSource(KEY, environ={})
    with pytest.raises(SheetReadError) as raised:
        source.read()
    assert raised.value.category == ErrorCategory.CONFIGURATION
    assert SERVICE_ACCOUNT_FILE_ENV in raised.value.message and GOOGLE_CREDENTIALS_ENV in raised.value.message


def test_credentials_file_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "gone.json"
    with pytest.raises(SheetReadError) as raised:
        GoogleSheetSource(KEY, environ={SERVICE_ACCOUNT_FILE_ENV: str(missing)}).read()
    assert raised.value.category == ErrorCategory.CONFIGURATION
    assert str(missing) in raised.value.message and f"from ${SERVICE_ACCOUNT_FILE_ENV}" in raised.value.message


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("{not json", "not JSON"),
        (json.dumps({"type": "authorized_user", "client_id": "x"}), "its type is 'authorized_user'"),
        (json.dumps({"type": "service_account", "client_email": "a@b"}), "missing fields"),
    ],
)
def test_credentials_file_that_is_not_a_service_account_key(tmp_path: Path, content: str, detail: str) -> None:
    path = tmp_path / "key.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SheetReadError) as raised:
        GoogleSheetSource(KEY, credentials_file=path, environ={}).read()
    assert raised.value.category == ErrorCategory.CONFIGURATION
    assert "is not a service-account JSON key" in raised.value.message and detail in raised.value.message
    assert SERVICE_ACCOUNT_FILE_ENV in raised.value.message


@pytest.mark.parametrize(
    "text",
    ["https://example.com/spreadsheets/KEY", "not a key!", "https://docs.google.com/document/d/abc/edit"],
)
def test_a_bad_key_or_url_is_refused_at_once(text: str) -> None:
    with pytest.raises(SheetReadError) as raised:
        GoogleSheetSource(text, environ={})
    assert raised.value.category == ErrorCategory.CONFIGURATION


def test_a_bad_api_url_is_refused_at_once() -> None:
    with pytest.raises(SheetReadError) as raised:
        GoogleSheetSource(KEY, environ={SHEETS_API_URL_ENV: "127.0.0.1:8085"})
    assert raised.value.category == ErrorCategory.CONFIGURATION
    assert SHEETS_API_URL_ENV in raised.value.message
