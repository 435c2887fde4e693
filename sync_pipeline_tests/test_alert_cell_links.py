"""Alert e-mails link each quoted seller to its sheet cell (issue 19): one click opens the cell.

A Google sync against the local Sheets API emulator (real gspread, a second worksheet so the gid is not 0) on real
SQLite and Postgres, with sellers deleted behind the sync's back to make the verification find gaps and an integrity
issue; the alerts' `cell_links` detail, the e-mail as a real SMTP server (aiosmtpd on 127.0.0.1) receives it, and a
file source whose alerts carry no links. Then the renderers (e-mail, Slack, Teams) on hand-built alerts. Does not
touch Google, Dagster or the command line.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest

from sync_pipeline.adapters.sheets.gsheet import GoogleSheetSource
from sync_pipeline.domain.alert_chat import slack_message, teams_message
from sync_pipeline.domain.alert_mail import render_alerts
from sync_pipeline.domain.alerts import CELL_LINKS, Alert, AlertType, Severity
from sync_pipeline.domain.clock import FixedClock
from sync_pipeline.domain.sheet import CellLinks, a1, linked_cell
from sync_pipeline.domain.verification import SAMPLE_SIZE, Verification, gap_links
from sync_pipeline.services.alert_delivery import deliver_due
from sync_pipeline.services.alerts import list_alerts
from sync_pipeline.services.database import Database, open_database
from sync_pipeline.services.resync import sync_verify_repair
from sync_pipeline_tests.support import tamper
from sync_pipeline_tests.support.service_account import ServiceAccountKey
from sync_pipeline_tests.support.sheets import HEADER, seller_row, sheet
from sync_pipeline_tests.support.sheets_emulator import SheetsEmulator
from sync_pipeline_tests.support.smtp import free_port, smtp_server, smtp_settings

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
UI = "http://dagster.internal:3000"
WORKSHEET = "売主一覧"
KEYS = [f"CL{i:05d}" for i in range(1, 9)]
GONE = ["CL00003", "CL00006"]  # deleted after the apply: gaps, their key cells A4 and A7
NO_PROPERTY = "CL00005"  # its property record deleted: an integrity issue at its 物件所在地 cell on row 6
KEY_COLUMN = HEADER.index("売主番号")
PROPERTY_COLUMN = HEADER.index("物件所在地")


def row_of(key: str) -> int:
    return KEYS.index(key) + 2  # header on row 1


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(database_url, clock=FixedClock(START))
    with database.engine.begin() as conn:
        database.config.save(
            conn, {"email_enabled": "true", "email_recipients": "ops@example.com", "ui_base_url": UI}, now=START
        )
    yield database
    database.engine.dispose()


def behind_the_sync(db: Database) -> None:
    tamper.delete_sellers(db.engine, GONE)
    tamper.delete_properties(db.engine, [NO_PROPERTY])


def test_gap_and_integrity_alerts_of_a_google_sync_link_each_cell_and_the_email_shows_the_links(
    emulator: SheetsEmulator, service_account: ServiceAccountKey, db: Database
) -> None:
    key = f"1{uuid.uuid4().hex}"
    emulator.add_spreadsheet(key, "売主管理", {"表紙": [["cover"]], WORKSHEET: [HEADER, *map(seller_row, KEYS)]})
    gid = emulator.sheet_id(key, WORKSHEET)
    assert gid != 0
    source = GoogleSheetSource(key, WORKSHEET, credentials_file=service_account.path, api_url=emulator.url, environ={})

    def url(cell: str) -> str:
        return f"https://docs.google.com/spreadsheets/d/{key}/edit#gid={gid}&range={cell}"

    run = sync_verify_repair(db, source, after_apply=lambda: behind_the_sync(db))

    assert run.verification.gaps == set(GONE)
    [gaps] = list_alerts(db, alert_type=AlertType.GAPS_FOUND)
    [integrity] = list_alerts(db, alert_type=AlertType.INTEGRITY_ISSUE)
    gap_cells = {k: a1(row_of(k), KEY_COLUMN) for k in GONE}
    assert gap_cells == {"CL00003": "A4", "CL00006": "A7"}  # the key column is A in the test sheet
    assert gaps.detail[CELL_LINKS] == {k: url(cell) for k, cell in gap_cells.items()}
    property_cell = a1(row_of(NO_PROPERTY), PROPERTY_COLUMN)
    assert integrity.detail[CELL_LINKS] == {NO_PROPERTY: url(property_cell)}

    port = free_port()
    with smtp_server(port) as inbox:
        report = deliver_due(db, smtp_settings(port))
    assert report.failed is None
    mails = {m.subject.split(" ")[2].rstrip(":"): m for m in inbox.messages}
    assert set(mails) == {AlertType.GAPS_FOUND.value, AlertType.INTEGRITY_ISSUE.value}
    gap_html, gap_text = mails[AlertType.GAPS_FOUND].body("html"), mails[AlertType.GAPS_FOUND].body("plain")
    for seller, cell in gap_cells.items():
        href = url(cell).replace("&", "&amp;")
        assert f'<a href="{href}">{seller} ({cell})</a>' in gap_html
        assert f"  open in the sheet: {seller} {url(cell)}" in gap_text.splitlines()
    assert "cell links" not in gap_text and "cell links" not in gap_html  # not also dumped as a plain figure
    integrity_mail = mails[AlertType.INTEGRITY_ISSUE]
    assert f">{NO_PROPERTY} ({property_cell})</a>" in integrity_mail.body("html")
    assert f"open in the sheet: {NO_PROPERTY} {url(property_cell)}" in integrity_mail.body("plain")


def test_a_file_source_alert_has_no_cell_links(db: Database) -> None:
    source = sheet([seller_row(k) for k in KEYS])
    run = sync_verify_repair(db, source, after_apply=lambda: behind_the_sync(db))
    assert run.verification.gaps == set(GONE)
    alerts = list_alerts(db)
    assert {a.alert_type for a in alerts} >= {AlertType.GAPS_FOUND.value, AlertType.INTEGRITY_ISSUE.value}
    assert all(CELL_LINKS not in a.detail for a in alerts)
    [gaps] = [a for a in alerts if a.alert_type == AlertType.GAPS_FOUND]
    mail = render_alerts([gaps], ui_base_url=UI, run_ids={})
    assert "open in the sheet" not in mail.text and "open in the sheet" not in mail.html


def test_gap_links_cover_only_the_quoted_sample_and_sellers_with_a_known_row() -> None:
    keys = [f"GP{i:05d}" for i in range(SAMPLE_SIZE + 5)]
    v = Verification(
        sheet_valid_count=len(keys),
        db_matched_count=0,
        db_total_count=0,
        gaps=frozenset(keys),
        stale=frozenset(),
        kept_conflicts=frozenset(),
        orphans=frozenset(),
        sheet_rows={k: i + 2 for i, k in enumerate(keys) if k != "GP00001"},
    )
    links = CellLinks("https://docs.google.com/spreadsheets/d/K/edit#gid=7&range={cell}", key_column=2)
    found = gap_links(v, keys[:SAMPLE_SIZE], links)
    assert list(found) == [k for k in keys[:SAMPLE_SIZE] if k != "GP00001"]
    assert found["GP00000"] == "https://docs.google.com/spreadsheets/d/K/edit#gid=7&range=C2"
    assert gap_links(v, keys, CellLinks(links.template, key_column=None)) == {}  # no key column in the header


def hand_built_alert(links: dict[str, str]) -> Alert:
    return Alert(
        id=41,
        alert_type=AlertType.GAPS_FOUND,
        severity=Severity.WARNING,
        message="verification found 2 seller(s) valid in the sheet but absent from the database: AA00001, AA00002.",
        created_at=dt.datetime(2026, 3, 2, 9, 0),
        sync_id="sync-1",
        detail={"gaps_found": 2, "seller_numbers": list(links), CELL_LINKS: links},
    )


SHEET = "https://docs.google.com/spreadsheets/d/KEY/edit#gid=5"
LINKS = {
    "AA00001": f"{SHEET}&range=A7",
    "AA00002": f"{SHEET}&range=A12",
    "AA<3>": "javascript:alert(1)",  # never made a link
}


def test_render_alerts_links_each_cell_in_html_and_lists_the_urls_in_text() -> None:
    mail = render_alerts([hand_built_alert(LINKS)], ui_base_url=UI, run_ids={"sync-1": "run-9"})

    assert f'<a href="{SHEET}&amp;range=A7">AA00001 (A7)</a>' in mail.html
    assert f'<a href="{SHEET}&amp;range=A12">AA00002 (A12)</a>' in mail.html
    assert "javascript:" not in mail.html and "javascript:" not in mail.text
    text_lines = mail.text.splitlines()
    assert f"  open in the sheet: AA00001 {SHEET}&range=A7" in text_lines
    assert f"  open in the sheet: AA00002 {SHEET}&range=A12" in text_lines
    assert not any(line.strip().startswith("cell links") for line in text_lines)  # no raw dict as a figure
    assert "  seller numbers: AA00001, AA00002, AA<3>" in text_lines  # the other figures stay as they were
    assert f'<a href="{UI}/runs/run-9">' in mail.html


def test_a_link_without_a_cell_is_labelled_by_the_seller_alone() -> None:
    mail = render_alerts([hand_built_alert({"AA00009": "https://example.com/sheet"})], ui_base_url=UI, run_ids={})
    assert '<a href="https://example.com/sheet">AA00009</a>' in mail.html
    assert linked_cell(f"{SHEET}&range=B3") == "B3" and linked_cell("https://example.com/?range=C4") == "C4"
    assert linked_cell("https://example.com/sheet") is None


def test_slack_and_teams_show_each_cell_as_a_link() -> None:
    alert = hand_built_alert(LINKS)
    slack = slack_message([alert], ui_base_url=UI, run_ids={})
    texts = [b["text"]["text"] for b in slack["blocks"] if b["type"] == "section"]
    [cells] = [t for t in texts if t.startswith("*Open in the sheet:*")]
    assert f"<{SHEET}&range=A7|AA00001 (A7)>" in cells and f"<{SHEET}&range=A12|AA00002 (A12)>" in cells
    assert "javascript:" not in str(slack)

    card = teams_message([alert], ui_base_url=UI, run_ids={})["attachments"][0]["content"]
    [block] = [b for b in card["body"] if b["type"] == "TextBlock" and b["text"].startswith("Open in the sheet:")]
    assert f"[AA00001 (A7)]({SHEET}&range=A7)" in block["text"]
    assert f"[AA00002 (A12)]({SHEET}&range=A12)" in block["text"]
    assert "javascript:" not in str(card)
