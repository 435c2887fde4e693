"""Exercises domain.ingest.ingest_sheet end to end on generated sheets: Properties 30, 32 and 33, and a fuzz test.

Hypothesis builds whole sheets (header text and column order, valid and invalid rows, blank rows, arbitrary unicode,
huge cells, ragged rows) and checks what ingestion makes of them, plus a few named examples for the messages.
Pure: does not touch files, Dagster or any database (the sync's own properties are tested elsewhere).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace

from hypothesis import given
from hypothesis import strategies as st

from sync_pipeline.domain.fields import (
    DEFAULT_REQUIRED_FIELDS,
    DEFAULT_SELLER_NUMBER_PATTERN,
    FIELD_BY_NAME,
    FIELD_NAMES,
    FIELDS,
    KEY_FIELD,
    FieldKind,
)
from sync_pipeline.domain.hashing import record_hash
from sync_pipeline.domain.ingest import VALID_COLUMNS, IngestRules, ingest_sheet
from sync_pipeline.domain.schema import MAX_LENGTHS, RULES, VALUE_MAX_CHARS
from sync_pipeline.domain.sheet import RawSheet, SheetSnapshot
from sync_pipeline_tests.support.sample_sheet import Seller, generate_rows, render_row

KEY_REGEX = re.compile(DEFAULT_SELLER_NUMBER_PATTERN, re.ASCII)
A1_CELL = re.compile(r"[A-Z]+[1-9]\d*")
FULL_WIDTH_OFFSET = 0xFEE0  # ASCII '!'..'~' + this = the full-width form
# What a blank-looking cell may hold: spaces of every width, no-break and zero-width spaces, a BOM.
BLANKS = ("", " ", "  ", "\u3000", "\u00a0", "\u200b", "\ufeff", "\t", " \u3000 ")
BAD_KEYS = ("AB1234", "A12345", "ABC12345", "AB-12345", "12345AB", "売主1", "AB123456", "ＡＢ１２３")
BAD_DATES = ("2025/13/40", "2025/2/30", "ask", "昨日", "25/1/5", "0000/1/1")
BAD_AMOUNTS = ("ask", "未定", "-5", "▲1,000", "1.5", "1200万〜1500万")
BAD_EMAILS = ("taro", "taro@", "@example.com", "山田 太郎")

# --- strategies -----------------------------------------------------------------------------------------------

keys = st.from_regex(r"[A-Z]{2}[0-9]{5}", fullmatch=True)
japanese_text = st.text(
    alphabet=st.sampled_from("山田佐藤鈴木太郎花子東京都大阪府世田谷区本町丁目一二三123-ー "), min_size=1, max_size=20
).filter(lambda t: t.strip() != "")


@st.composite
def sellers(draw: st.DrawFn, key: str) -> Seller:
    moment = draw(st.datetimes(dt.datetime(2019, 5, 1), dt.datetime(2100, 12, 31)))
    return Seller(
        seller_number=key,
        name=draw(japanese_text),
        phone=draw(st.from_regex(r"0[0-9]{1,3}-[0-9]{2,4}-[0-9]{4}", fullmatch=True)),
        email=draw(st.none() | st.from_regex(r"[a-z0-9._]{1,20}@example\.(com|net|org)", fullmatch=True)),
        address=draw(japanese_text),
        property_address=draw(japanese_text),
        property_type=draw(st.sampled_from(["戸建", "マンション", "土地"])),
        status=draw(st.sampled_from(["新規反響", "査定済", "媒介契約"])),
        inquiry_date=moment.date(),
        assessed_amount=draw(st.none() | st.integers(0, 10**12)),
        updated_at=moment.replace(second=0, microsecond=0),
    )


@st.composite
def valid_rows(draw: st.DrawFn, key: str) -> list[str]:
    """A valid row, in canonical column order, written in any of the messy-but-valid forms."""
    seller = draw(sellers(key))
    return render_row(seller, draw(st.randoms(use_true_random=False)) if draw(st.booleans()) else None)


@st.composite
def invalid_rows(draw: st.DrawFn, key: str) -> tuple[list[str], set[str]]:
    """A row with at least one bad cell, and the rules it must break."""
    row = draw(valid_rows(key))
    index = {name: i for i, name in enumerate(FIELD_NAMES)}
    faults = draw(
        st.lists(st.sampled_from(["key", "required", "date", "datetime", "amount", "email"]), min_size=1, unique=True)
    )
    rules: set[str] = set()
    for fault in faults:
        if fault == "key":
            row[index[KEY_FIELD]] = draw(st.sampled_from(BAD_KEYS))
            rules.add("seller_number_format")
        elif fault == "required":
            row[index[draw(st.sampled_from(DEFAULT_REQUIRED_FIELDS[1:]))]] = draw(st.sampled_from(BLANKS))
            rules.add("required")
        elif fault == "date":
            row[index["inquiry_date"]] = draw(st.sampled_from(BAD_DATES))
            rules.add("invalid_date")
        elif fault == "datetime":
            row[index["sheet_updated_at"]] = draw(st.sampled_from(BAD_DATES))
            rules.add("invalid_date")
        elif fault == "amount":
            row[index["assessed_amount"]] = draw(st.sampled_from(BAD_AMOUNTS))
            rules.add("invalid_amount")
        else:
            row[index["email"]] = draw(st.sampled_from(BAD_EMAILS))
            rules.add("invalid_email")
    return row, rules


@dataclass(frozen=True)
class Layout:
    """Which header text each field gets and where its column is."""

    order: tuple[str, ...]  # field names, left to right
    headers: dict[str, str]

    def header_row(self) -> list[str]:
        return [self.headers[name] for name in self.order]

    def place(self, canonical_row: Sequence[str]) -> list[str]:
        by_field = dict(zip(FIELD_NAMES, canonical_row, strict=True))
        return [by_field[name] for name in self.order]


@st.composite
def layouts(draw: st.DrawFn) -> Layout:
    order = tuple(draw(st.permutations(FIELD_NAMES)))
    headers = {spec.name: draw(st.sampled_from((spec.header, *spec.aliases))) for spec in FIELDS}
    return Layout(order, headers)


@dataclass(frozen=True)
class Case:
    """A generated sheet and what ingesting it must give."""

    rows: list[list[str]]  # header first
    valid: dict[int, str]  # sheet row -> seller number, for the rows that must be valid
    invalid: dict[int, set[str]]  # sheet row -> rules it must break


@st.composite
def mixed_sheets(draw: st.DrawFn) -> Case:
    n_valid = draw(st.integers(0, 12))
    n_invalid = draw(st.integers(0, 8))
    pool = draw(st.lists(keys, min_size=n_valid + n_invalid, max_size=n_valid + n_invalid, unique=True))
    entries: list[tuple[list[str], str | None, set[str]]] = []
    for key in pool[:n_valid]:
        entries.append((draw(valid_rows(key)), key, set()))
    for key in pool[n_valid:]:
        row, rules = draw(invalid_rows(key))
        entries.append((row, None, rules))
    entries += [([draw(st.sampled_from(BLANKS))] * draw(st.integers(0, 3)), None, {"blank"})] * draw(st.integers(0, 3))
    entries = draw(st.permutations(entries))
    layout = draw(layouts())
    case = Case(rows=[layout.header_row()], valid={}, invalid={})
    for offset, (cells, valid_key, broken) in enumerate(entries):
        sheet_row = offset + 2
        if broken == {"blank"}:
            case.rows.append(list(cells))
            continue
        case.rows.append(layout.place(cells))
        if valid_key is not None:
            case.valid[sheet_row] = valid_key
        else:
            case.invalid[sheet_row] = broken
    return case


def rejected_rows(snapshot: SheetSnapshot) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for r in snapshot.rejections:
        found.setdefault(r.sheet_row, set()).add(r.rule)
    return found


def assert_snapshot_is_well_formed(snapshot: SheetSnapshot, rules: IngestRules) -> None:
    """What every snapshot promises, whatever the sheet held."""
    valid = snapshot.valid
    assert list(valid.columns) == list(VALID_COLUMNS)
    assert all(str(dtype) == "object" for dtype in valid.dtypes)
    rejected = rejected_rows(snapshot)
    valid_rows_ = set(valid["sheet_row"])
    assert not valid_rows_ & set(rejected), "a row is both valid and rejected"
    assert snapshot.rows_read == len(valid) + len(rejected)
    assert valid["seller_number"].is_unique
    assert list(snapshot.rejections) == sorted(snapshot.rejections, key=lambda r: r.sheet_row)
    for r in snapshot.rejections:
        assert r.rule in RULES and r.message
        assert r.cell is not None and A1_CELL.fullmatch(r.cell), r
        assert r.value is None or len(r.value) <= VALUE_MAX_CHARS + 1
    for record in valid.to_dict("records"):
        assert isinstance(record["sheet_row"], int) and isinstance(record["row_hash"], str)
        assert record["row_hash"] == record_hash(record)  # the column path hashes as the one-record definition
        assert re.fullmatch(rules.seller_number_pattern, record[KEY_FIELD], re.ASCII)
        for name in rules.required_fields:
            assert record[name] is not None, (name, record)
        for name in FIELD_NAMES:
            value = record[name]
            if value is None:
                continue
            kind = FIELD_BY_NAME[name].kind
            if kind is FieldKind.DATE:
                assert type(value) is dt.date
            elif kind is FieldKind.DATETIME:
                assert type(value) is dt.datetime and value.tzinfo is None
            elif kind is FieldKind.AMOUNT:
                assert type(value) is int and value >= 0
            else:
                assert isinstance(value, str) and value == value.strip() and value
                assert len(value) <= MAX_LENGTHS.get(name, len(value))
                assert "\x1f" not in value  # the content hash's separator never survives normalisation


# --- Property 30: validation error isolation ------------------------------------------------------------------


@given(mixed_sheets())
def test_property_30_validation_error_isolation(case: Case) -> None:
    """The valid set is exactly the valid rows, whatever the invalid rows are."""
    rules = IngestRules()
    snapshot = ingest_sheet(RawSheet("generated", case.rows), rules)
    assert snapshot.header.ok, snapshot.header.issues
    assert dict(zip(snapshot.valid["sheet_row"], snapshot.valid["seller_number"], strict=True)) == case.valid
    rejected = rejected_rows(snapshot)
    assert set(rejected) == set(case.invalid)
    for sheet_row, expected_rules in case.invalid.items():
        assert expected_rules <= rejected[sheet_row], (sheet_row, expected_rules, rejected[sheet_row])
    assert snapshot.rows_read == len(case.valid) + len(case.invalid)  # blank rows are not read
    assert_snapshot_is_well_formed(snapshot, rules)


# --- Property 32: required fields are present -----------------------------------------------------------------


@given(
    required=st.sets(st.sampled_from([n for n in FIELD_NAMES if n != KEY_FIELD])).map(
        lambda extra: (KEY_FIELD, *sorted(extra))
    ),
    blanked=st.lists(st.sets(st.sampled_from(FIELD_NAMES)), min_size=1, max_size=10),
    blank=st.sampled_from(BLANKS),
    data=st.data(),
)
def test_property_32_required_fields_present(
    required: tuple[str, ...], blanked: list[set[str]], blank: str, data: st.DataObject
) -> None:
    """A row is rejected with rule `required` exactly for the required fields it leaves blank (however blank)."""
    rules = replace(IngestRules(), required_fields=required)
    row_keys = data.draw(st.lists(keys, min_size=len(blanked), max_size=len(blanked), unique=True))
    rows: list[list[str]] = [[spec.header for spec in FIELDS]]
    for key, fields in zip(row_keys, blanked, strict=True):
        seller = data.draw(sellers(key))
        seller = replace(seller, email=seller.email or "a@example.com", assessed_amount=seller.assessed_amount or 1)
        row = render_row(seller, None)
        rows.append([blank if name in fields else cell for name, cell in zip(FIELD_NAMES, row, strict=True)])
    snapshot = ingest_sheet(RawSheet("generated", rows), rules)

    required_misses = {
        (i + 2, name)
        for i, fields in enumerate(blanked)
        for name in fields & set(required)
        if fields != set(FIELD_NAMES)
    }
    found = {(r.sheet_row, r.field) for r in snapshot.rejections if r.rule == "required"}
    assert found == {(row, name) for row, name in required_misses}
    assert all(r.rule == "required" for r in snapshot.rejections)
    valid_rows_ = {i + 2 for i, fields in enumerate(blanked) if not fields & set(required)}
    assert set(snapshot.valid["sheet_row"]) == valid_rows_
    fully_blank = sum(1 for fields in blanked if fields >= set(FIELD_NAMES))
    assert snapshot.rows_read == len(blanked) - fully_blank
    assert_snapshot_is_well_formed(snapshot, rules)


# --- Property 33: seller number format after NFKC and trimming ------------------------------------------------


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + FULL_WIDTH_OFFSET) if "!" <= c <= "~" else c for c in text)


@st.composite
def written_variants(draw: st.DrawFn, key: str) -> str:
    """The key as someone might type it: full-width, lower case, with spaces of any kind anywhere."""
    chars = list(key.lower() if draw(st.booleans()) else key)
    if draw(st.booleans()):
        chars = list(full_width("".join(chars)))
    spaces = st.sampled_from([" ", "\u3000", "\u00a0", "\t", "\u200b"])
    for _ in range(draw(st.integers(0, 4))):
        chars.insert(draw(st.integers(0, len(chars))), draw(spaces))
    return "".join(chars)


def expected_key(text: str) -> str:
    """The oracle: NFKC, every space and zero-width space removed, upper-cased."""
    return "".join(unicodedata.normalize("NFKC", text.replace("\u200b", "")).split()).upper()


KEY_ALPHABET = "ABZabz019ＡＢａｂ０１９ -_番\u3000\u00a0"
PATTERNS = (DEFAULT_SELLER_NUMBER_PATTERN, r"^[A-Z]{3}\d{4}$", r"^\d{3,6}$", r"[A-Z]\d[A-Z]\d")


@given(
    variants=st.lists(keys, min_size=1, max_size=6, unique=True).flatmap(
        lambda ks: st.tuples(st.just(ks), st.tuples(*[written_variants(k) for k in ks]))
    ),
    arbitrary=st.lists(st.text(alphabet=KEY_ALPHABET, max_size=10), max_size=8),
    pattern=st.sampled_from(PATTERNS),
)
def test_property_33_seller_number_format(
    variants: tuple[list[str], tuple[str, ...]], arbitrary: list[str], pattern: str
) -> None:
    """Written variants of a valid number normalise to it; anything not matching after NFKC+trim is rejected."""
    canonical, written = variants
    base = render_row(Seller("XX00000", "山田", "03-1234-5678", None, "東京都", "東京都", "戸建", "査定済",
                             dt.date(2025, 1, 5), None, dt.datetime(2025, 1, 5, 10, 30)), None)  # fmt: skip

    # Part 1: the default pattern, every written variant of a valid number.
    rows = [[spec.header for spec in FIELDS], *([w, *base[1:]] for w in written)]
    snapshot = ingest_sheet(RawSheet("generated", rows), IngestRules())
    assert snapshot.valid["seller_number"].tolist() == canonical
    assert snapshot.rejections == ()

    # Part 2: any pattern, any text; the oracle decides valid / required / seller_number_format / duplicate.
    rules = replace(IngestRules(), seller_number_pattern=pattern)
    rows = [[spec.header for spec in FIELDS], *([text, *base[1:]] for text in arbitrary)]
    snapshot = ingest_sheet(RawSheet("generated", rows), rules)
    keys_written = [expected_key(text) for text in arbitrary]
    counts = {k: keys_written.count(k) for k in keys_written}
    by_row = rejected_rows(snapshot)
    for offset, key in enumerate(keys_written):
        sheet_row = offset + 2
        expected: set[str] = set()
        if not key:
            expected.add("required")
        else:
            if not re.fullmatch(pattern, key, re.ASCII):
                expected.add("seller_number_format")
            if counts[key] > 1:
                expected.add("duplicate_seller_number")
        assert by_row.get(sheet_row, set()) == expected, (arbitrary[offset], key, pattern)
    assert sorted(snapshot.valid["seller_number"]) == sorted(
        k for k in keys_written if k and counts[k] == 1 and re.fullmatch(pattern, k, re.ASCII)
    )
    assert all(r.seller_number is None or r.seller_number in keys_written for r in snapshot.rejections)


# --- fuzz: arbitrary headers, cells and row shapes ------------------------------------------------------------

header_cells = st.one_of(
    st.sampled_from([text for spec in FIELDS for text in (spec.header, *spec.aliases)]),
    st.sampled_from([spec.header for spec in FIELDS]),
    st.text(max_size=12),
    st.sampled_from(["", "備考", "担当者", "査定額（万円）"]),
)
huge_cells = st.builds(lambda piece, times: piece * times, st.text(min_size=1, max_size=3), st.integers(300, 20_000))
any_cells = st.one_of(
    st.text(max_size=30),  # any unicode: zero-width, controls, combining marks, emoji, RTL
    st.sampled_from(BLANKS + BAD_KEYS + BAD_DATES + BAD_AMOUNTS + BAD_EMAILS),
    keys,
    huge_cells,
)


@st.composite
def fuzzed_sheets(draw: st.DrawFn) -> list[list[str]]:
    layout = draw(layouts())
    header = layout.header_row() if draw(st.booleans()) else draw(st.lists(header_cells, max_size=16))
    width = len(header)
    rows: list[list[str]] = [header] if draw(st.booleans()) or not header else [[], header]
    for _ in range(draw(st.integers(0, 10))):
        if width and draw(st.booleans()):
            row = layout.place(draw(valid_rows(draw(keys)))) if len(header) == len(FIELDS) else []
            for _ in range(draw(st.integers(0, 3))):  # spoil a few cells of an otherwise plausible row
                if row:
                    row[draw(st.integers(0, len(row) - 1))] = draw(any_cells)
        else:
            row = draw(st.lists(any_cells, max_size=width + 3))  # ragged: shorter or longer than the header
        rows.append(row)
    return rows


@given(fuzzed_sheets(), st.sampled_from([IngestRules(), replace(IngestRules(), required_fields=tuple(FIELD_NAMES))]))
def test_fuzz_ingestion_never_crashes_and_accounts_for_every_row(rows: list[list[str]], rules: IngestRules) -> None:
    """Whatever the sheet holds, ingestion returns a snapshot; each non-blank row is valid or rejected (P30/P32/P33)."""
    snapshot = ingest_sheet(RawSheet("fuzz", rows), rules)
    if not snapshot.header.ok:
        assert snapshot.valid.empty and snapshot.rejections == ()
        assert {i.rule for i in snapshot.header.issues} <= {"missing_required", "ambiguous", "no_header"}
        return
    assert_snapshot_is_well_formed(snapshot, rules)
    data_rows = len(rows) - snapshot.header.header_row
    assert snapshot.rows_read <= data_rows


# --- messy sheets normalise to the clean sheet ----------------------------------------------------------------


@given(st.integers(0, 10_000))
def test_messy_sample_normalises_to_the_clean_sample(seed: int) -> None:
    """Every messy-but-valid form in the sample generator reads back as the plainly written value."""
    clean = ingest_sheet(RawSheet("clean", generate_rows(15, seed, messy=False)), IngestRules())
    messy = ingest_sheet(RawSheet("messy", generate_rows(15, seed, messy=True)), IngestRules())
    assert clean.rejections == () and messy.rejections == ()
    columns = [*FIELD_NAMES, "row_hash"]
    assert messy.valid[columns].to_dict("records") == clean.valid[columns].to_dict("records")


# --- named examples: what the office reads --------------------------------------------------------------------


def sheet(*rows: list[str]) -> RawSheet:
    return RawSheet("example", [[spec.header for spec in FIELDS], *rows])


def row(key: str, **cells: str) -> list[str]:
    base = render_row(Seller(key, "山田 太郎", "03-1234-5678", None, "東京都", "東京都新宿区", "戸建", "査定済",
                             dt.date(2025, 1, 5), 12_000_000, dt.datetime(2025, 1, 5, 10, 30)), None)  # fmt: skip
    return [cells.get(name, cell) for name, cell in zip(FIELD_NAMES, base, strict=True)]


def test_format_message_names_the_cell_and_the_fix() -> None:
    snapshot = ingest_sheet(sheet(row("TK00001"), row("A12345")), IngestRules())
    (rejection,) = snapshot.rejections
    assert rejection.cell == "A3" and rejection.column == "売主番号" and rejection.value == "A12345"
    assert rejection.message == (
        "売主番号 in A3 is 'A12345'; it must be two capital letters and five digits like AB12345."
    )


def test_duplicates_reject_every_row_and_list_the_others() -> None:
    snapshot = ingest_sheet(sheet(row("TK00001"), row("TK00002"), row("ＴＫ０００01"), row("tk 00001")), IngestRules())
    assert snapshot.valid["seller_number"].tolist() == ["TK00002"]
    duplicates = [r for r in snapshot.rejections if r.rule == "duplicate_seller_number"]
    assert [r.sheet_row for r in duplicates] == [2, 4, 5]
    assert all(r.seller_number == "TK00001" for r in duplicates)
    assert "also on rows 4, 5" in duplicates[0].message


def test_a_row_gets_one_rejection_per_bad_cell() -> None:
    bad = row("TK00001", name="", inquiry_date="2025/13/40", assessed_amount="ask", email="taro")
    snapshot = ingest_sheet(sheet(bad), IngestRules())
    assert [(r.rule, r.cell) for r in snapshot.rejections] == [
        ("required", "B2"),
        ("invalid_email", "D2"),
        ("invalid_date", "I2"),
        ("invalid_amount", "J2"),
    ]
    assert all(r.seller_number == "TK00001" for r in snapshot.rejections)
    assert "2025/13/40" in snapshot.rejections[2].message and "no such date" in snapshot.rejections[2].message


def test_huge_cells_are_truncated_in_the_rejection() -> None:
    snapshot = ingest_sheet(sheet(row("TK00001", phone="0" * 100_000)), IngestRules())
    (rejection,) = snapshot.rejections
    assert rejection.rule == "too_long" and rejection.cell == "C2"
    assert rejection.value is not None and len(rejection.value) == VALUE_MAX_CHARS + 1
    assert len(rejection.message) < 200


def test_blank_rows_anywhere_are_skipped_and_extra_cells_ignored() -> None:
    rows = [[], ["\u3000", "", "\u200b"], [*row("TK00001"), "メモ", "more"], [" "]]
    snapshot = ingest_sheet(sheet(*rows), IngestRules())
    assert snapshot.rows_read == 1 and snapshot.rejections == ()
    assert snapshot.valid["sheet_row"].tolist() == [4]


def test_valid_frame_holds_plain_python_values() -> None:
    snapshot = ingest_sheet(sheet(row("TK00001", assessed_amount="1,200万", email="")), IngestRules())
    record = snapshot.valid.to_dict("records")[0]
    assert record["assessed_amount"] == 12_000_000 and type(record["assessed_amount"]) is int
    assert record["email"] is None
    assert record["inquiry_date"] == dt.date(2025, 1, 5)
    assert record["sheet_updated_at"] == dt.datetime(2025, 1, 5, 1, 30)
    assert record["sheet_row"] == 2 and type(record["sheet_row"]) is int


def test_rules_come_from_settings() -> None:
    from sync_pipeline.domain.settings import Settings

    settings = Settings(seller_number_pattern=r"^[A-Z]{3}\d{4}$", required_fields=("seller_number", "phone"))
    rules = IngestRules.from_settings(settings, previous_mapping={"name": "氏名"})
    assert rules == IngestRules(r"^[A-Z]{3}\d{4}$", ("seller_number", "phone"), "Asia/Tokyo", {"name": "氏名"})
    snapshot = ingest_sheet(sheet(row("ABC1234", name="")), rules)
    assert snapshot.valid["seller_number"].tolist() == ["ABC1234"] and snapshot.rejections == ()


def test_rows_read_and_seconds_are_reported() -> None:
    snapshot = ingest_sheet(sheet(*[row(f"TK{i:05d}") for i in range(1, 30)]), IngestRules())
    assert snapshot.rows_read == 29 and len(snapshot.valid) == 29
    assert snapshot.validate_seconds > 0
    assert snapshot.valid_keys == frozenset(f"TK{i:05d}" for i in range(1, 30))


def test_sheet_rows_count_from_first_row() -> None:
    raw = RawSheet("ranged", [[spec.header for spec in FIELDS], row("TK00001"), row("A1")], first_row=5)
    snapshot = ingest_sheet(raw, IngestRules())
    assert snapshot.header.header_row == 5
    assert snapshot.valid["sheet_row"].tolist() == [6]
    assert [(r.sheet_row, r.cell) for r in snapshot.rejections] == [(7, "A7")]
