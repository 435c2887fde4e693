"""Exercises domain.headers: the header row mapped by name with aliases, and the blocking header issues.

Pure functions on RawSheet values; does not touch cell normalisation, validation, files or databases.
"""

from __future__ import annotations

import pytest

from sync_pipeline.domain.fields import DEFAULT_REQUIRED_FIELDS, FIELD_NAMES, FIELDS
from sync_pipeline.domain.headers import field_for_header, find_header_row, map_headers, normalise_header
from sync_pipeline.domain.ingest import IngestRules, ingest_sheet
from sync_pipeline.domain.sheet import HeaderReport, RawSheet

CANONICAL = [f.header for f in FIELDS]


def report(rows: list[list[str]], previous: dict[str, str] | None = None, first_row: int = 1) -> HeaderReport:
    return map_headers(RawSheet("test", rows, first_row=first_row), DEFAULT_REQUIRED_FIELDS, previous)


def test_canonical_headers_map_every_field_in_order() -> None:
    header = report([CANONICAL])
    assert header.ok
    assert dict(header.mapping) == dict(zip(FIELD_NAMES, CANONICAL, strict=True))
    assert dict(header.columns) == {name: i for i, name in enumerate(FIELD_NAMES)}
    assert header.header_row == 1


def test_columns_are_matched_by_name_not_position() -> None:
    shuffled = list(reversed(CANONICAL))
    header = report([shuffled])
    assert header.ok
    assert header.columns["seller_number"] == len(CANONICAL) - 1
    assert header.columns["sheet_updated_at"] == 0


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("売主番号", "seller_number"),
        ("売主No", "seller_number"),
        ("売主ＮＯ", "seller_number"),  # full-width
        ("売主№", "seller_number"),  # numero sign
        ("Seller Number", "seller_number"),
        ("seller_number", "seller_number"),
        ("SELLER-NUMBER", "seller_number"),
        ("ｓｅｌｌｅｒ　ｎｕｍｂｅｒ", "seller_number"),  # full-width letters and ideographic space
        ("売主番号（必須）", "seller_number"),  # trailing note
        ("売主番号 (必須)", "seller_number"),
        ("*売主番号", "seller_number"),  # required marker
        ("お名前", "name"),
        ("Full Name", "name"),
        ("TEL", "phone"),
        ("ＴＥＬ", "phone"),
        ("E-Mail", "email"),
        ("Eメール", "email"),
        ("物件住所", "property_address"),
        ("Property Address", "property_address"),
        ("問い合わせ日", "inquiry_date"),
        ("査定価格", "assessed_amount"),
        ("査定額(円)", "assessed_amount"),
        ("最終更新日時", "sheet_updated_at"),
        ("Last Updated", "sheet_updated_at"),
    ],
)
def test_aliases_english_japanese_and_full_width(text: str, field: str) -> None:
    assert field_for_header(text) == field


def test_a_unit_note_is_not_dropped() -> None:
    # 査定額（万円） means the numbers are in units of 10,000 yen; reading them as yen would be wrong by 10,000×.
    assert field_for_header("査定額（万円）") is None
    assert normalise_header("査定額（万円）") != normalise_header("査定額")


def test_unknown_headers_are_ignored_and_reported_once() -> None:
    header = report([[*CANONICAL, "備考", "担当者", "備考", ""]])
    assert header.ok
    assert header.unknown == ("備考", "担当者")
    assert set(header.mapping) == set(FIELD_NAMES)


def test_missing_required_column_names_the_header_to_add() -> None:
    header = report([[h for h in CANONICAL if h != "物件所在地"]])
    assert [(i.rule, i.field) for i in header.issues] == [("missing_required", "property_address")]
    message = header.issues[0].message
    assert "add a column headed 物件所在地" in message
    assert "物件住所" in message  # the aliases that would also do


def test_missing_optional_column_is_fine() -> None:
    header = report([[h for h in CANONICAL if h != "メールアドレス"]])
    assert header.ok
    assert "email" not in header.mapping


def test_ambiguous_columns_name_both_headers_and_which_to_rename() -> None:
    header = report([["売主No", *CANONICAL]])  # A: 売主No, B: 売主番号
    assert [(i.rule, i.field) for i in header.issues] == [("ambiguous", "seller_number")]
    message = header.issues[0].message
    assert "売主No (A1)" in message and "売主番号 (B1)" in message
    assert "Rename or delete column A (売主No)" in message
    assert header.columns["seller_number"] == 1  # the canonical header is the one kept


def test_ambiguity_prefers_the_column_the_last_sync_used() -> None:
    header = report([["売主No", *CANONICAL]], previous={"seller_number": "売主No"})
    assert header.issues[0].rule == "ambiguous"
    assert "Rename or delete column B (売主番号)" in header.issues[0].message


def test_disappeared_column_says_restore_it() -> None:
    previous = dict(zip(FIELD_NAMES, CANONICAL, strict=True))
    header = report([[h for h in CANONICAL if h != "電話番号"]], previous=previous)
    assert [(i.rule, i.field) for i in header.issues] == [("disappeared", "phone")]
    assert "restore the column headed 電話番号" in header.issues[0].message


def test_renamed_to_an_alias_has_not_disappeared() -> None:
    previous = dict(zip(FIELD_NAMES, CANONICAL, strict=True))
    header = report([["TEL" if h == "電話番号" else h for h in CANONICAL]], previous=previous)
    assert header.ok
    assert header.mapping["phone"] == "TEL"


def test_required_column_that_disappeared_is_reported_once() -> None:
    previous = dict(zip(FIELD_NAMES, CANONICAL, strict=True))
    header = report([[h for h in CANONICAL if h != "氏名"]], previous=previous)
    assert [(i.rule, i.field) for i in header.issues] == [("disappeared", "name")]


def test_empty_sheet_has_no_header() -> None:
    empties: list[list[list[str]]] = [[], [[]], [["", " "], ["\u3000"]]]
    for rows in empties:
        header = report(rows)
        assert [i.rule for i in header.issues] == ["no_header"]
        assert header.mapping == {}


def test_header_row_is_the_first_non_blank_row() -> None:
    header = report([[], ["", ""], CANONICAL], first_row=1)
    assert header.ok and header.header_row == 3
    assert report([CANONICAL], first_row=5).header_row == 5


def test_a_title_row_above_the_header_is_skipped() -> None:
    assert find_header_row([["売主一覧 2025年度"], [], CANONICAL, ["TK00001"]]) == 2


def test_first_non_blank_row_is_the_header_when_nothing_maps() -> None:
    assert find_header_row([[], ["foo", "bar"], ["baz"]]) == 1


def test_fingerprint_is_stable_and_follows_the_mapping() -> None:
    first = report([CANONICAL]).fingerprint
    assert first == report([list(reversed(CANONICAL))]).fingerprint  # same field → header mapping
    assert first != report([["TEL" if h == "電話番号" else h for h in CANONICAL]]).fingerprint
    assert len(first) == 32


def test_blocking_header_gives_an_empty_snapshot_without_raising() -> None:
    rows = [[h for h in CANONICAL if h != "売主番号"], ["山田"] * (len(CANONICAL) - 1)]
    snapshot = ingest_sheet(RawSheet("test", rows), IngestRules())
    assert not snapshot.header.ok
    assert snapshot.valid.empty and list(snapshot.valid.columns) == [
        *FIELD_NAMES,
        "attributes",
        "sheet_row",
        "row_hash",
    ]
    assert snapshot.rejections == ()
    assert snapshot.rows_read == 1
