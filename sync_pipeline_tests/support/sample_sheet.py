"""A realistic seller sheet for tests, benchmarks and the embedded sample: Japanese names, addresses and messy cells.

The seller data comes from one random stream and the messiness from another, so that `generate_rows(n, seed,
messy=True)` and `generate_rows(n, seed, messy=False)` describe the same sellers: after ingestion they must agree.
Run as a module to rewrite the committed sample: `uv run python -m sync_pipeline_tests.support.sample_sheet`.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sync_pipeline.domain.fields import FIELDS

HEADER: Final[list[str]] = [f.header for f in FIELDS]
SAMPLE_PATH: Final = Path(__file__).resolve().parents[2] / "data" / "sample_sellers.csv"
SAMPLE_SELLERS: Final = 230  # sellers generated for data/sample_sellers.csv, before the deliberate bad rows
SAMPLE_SEED: Final = 20250105

# (family name, romaji), (given name, romaji): the commonest surnames and everyday given names.
FAMILY_NAMES: Final = (
    ("佐藤", "sato"), ("鈴木", "suzuki"), ("高橋", "takahashi"), ("田中", "tanaka"), ("伊藤", "ito"),
    ("渡辺", "watanabe"), ("山本", "yamamoto"), ("中村", "nakamura"), ("小林", "kobayashi"), ("加藤", "kato"),
    ("吉田", "yoshida"), ("山田", "yamada"), ("佐々木", "sasaki"), ("山口", "yamaguchi"), ("松本", "matsumoto"),
    ("井上", "inoue"), ("木村", "kimura"), ("林", "hayashi"), ("斎藤", "saito"), ("清水", "shimizu"),
    ("髙橋", "takahashi"), ("齋藤", "saito"), ("長谷川", "hasegawa"), ("石川", "ishikawa"),
)  # fmt: skip
GIVEN_NAMES: Final = (
    ("太郎", "taro"), ("花子", "hanako"), ("健一", "kenichi"), ("美咲", "misaki"), ("翔太", "shota"),
    ("陽子", "yoko"), ("大輔", "daisuke"), ("由美", "yumi"), ("誠", "makoto"), ("恵子", "keiko"),
    ("直樹", "naoki"), ("さくら", "sakura"), ("浩二", "koji"), ("真由美", "mayumi"), ("拓也", "takuya"),
    ("幸子", "sachiko"), ("隆", "takashi"), ("明美", "akemi"),
)  # fmt: skip
# Office prefix → (prefecture, wards/cities, landline area code). TK Tokyo, OS Osaka, NG Nagoya, FK Fukuoka.
OFFICES: Final = {
    "TK": ("東京都", ("世田谷区", "杉並区", "練馬区", "大田区", "目黒区", "中野区", "板橋区", "江東区"), "03"),
    "OS": ("大阪府", ("大阪市北区", "大阪市中央区", "大阪市天王寺区", "堺市堺区", "豊中市", "吹田市"), "06"),
    "NG": ("愛知県", ("名古屋市千種区", "名古屋市昭和区", "名古屋市緑区", "一宮市"), "052"),
    "FK": ("福岡県", ("福岡市中央区", "福岡市早良区", "北九州市小倉北区"), "092"),
}
# Which office takes each seller, in turn: mostly Tokyo and Osaka, as in the sample sheet's office.
OFFICE_CYCLE: Final = ("TK", "OS", "TK", "TK", "OS", "TK", "NG", "TK", "OS", "FK")
NUMBERS_PER_OFFICE: Final = 99_999  # five digits after the prefix, 00001..99999
TOWNS: Final = ("本町", "中央", "東", "西", "南", "北", "緑ヶ丘", "桜台", "旭町", "栄町", "若葉", "松原")
MANSION_NAMES: Final = ("グランドメゾン", "パークハウス", "ライオンズマンション", "プラウド", "ブリリア")
PROPERTY_TYPES: Final = ("戸建", "マンション", "土地")
STATUSES: Final = ("新規反響", "訪問査定予定", "査定済", "媒介契約", "売却活動中", "成約", "追客中")
MOBILE_PREFIXES: Final = ("090", "080", "070")
EMAIL_DOMAINS: Final = ("example.com", "example.net", "example.org")  # reserved: a test never mails a real person
# Assessed amounts in yen by property type, rounded to 100,000 yen (how valuations are quoted).
AMOUNT_RANGES: Final = {"戸建": (18_000_000, 98_000_000), "マンション": (12_000_000, 150_000_000),
                        "土地": (6_000_000, 80_000_000)}  # fmt: skip
AMOUNT_STEP: Final = 100_000
FIRST_INQUIRY: Final = dt.date(2024, 1, 4)
INQUIRY_DAYS: Final = 540  # inquiries spread over about eighteen months
EMAIL_SHARE: Final = 0.8  # most sellers give an e-mail address; the rest only a phone number
BLANK_ROW_SHARE: Final = 0.01  # a messy sheet has the odd empty row left after deleting a seller
MESSY_SHARE: Final = 0.35  # chance that any one cell of a messy sheet is written in a messy-but-valid way
SERIAL_ORIGIN: Final = dt.datetime(1899, 12, 30)  # Sheets/Excel serial day 0 (see domain.normalise)
SECONDS_PER_DAY: Final = 86_400
REIWA_FIRST_YEAR: Final = 2019  # R1 = 2019, so R7 = 2025
TOKYO_UTC_OFFSET: Final = dt.timedelta(hours=9)  # the sheet's local time; Japan has no daylight saving


@dataclass(frozen=True)
class Seller:
    """One seller as the office means it, before it is typed into the sheet."""

    seller_number: str
    name: str
    phone: str
    email: str | None
    address: str
    property_address: str
    property_type: str
    status: str
    inquiry_date: dt.date
    assessed_amount: int | None
    updated_at: dt.datetime  # local sheet time (Asia/Tokyo), minute precision


def generate_sellers(n: int, seed: int = 0) -> list[Seller]:
    """`n` distinct sellers, deterministic for `seed`."""
    rng = random.Random(seed)
    offices = [OFFICE_CYCLE[i % len(OFFICE_CYCLE)] for i in range(n)]
    per_office: dict[str, list[int]] = {}
    for prefix in OFFICES:
        needed = offices.count(prefix)
        if needed > NUMBERS_PER_OFFICE:
            raise ValueError(f"{n} sellers need {needed} numbers for office {prefix}; at most {NUMBERS_PER_OFFICE}")
        per_office[prefix] = rng.sample(range(1, NUMBERS_PER_OFFICE + 1), k=needed)
    sellers = []
    for prefix in offices:
        number = f"{prefix}{per_office[prefix].pop():05d}"
        pref, cities, area_code = OFFICES[prefix]
        family, family_romaji = rng.choice(FAMILY_NAMES)
        given, given_romaji = rng.choice(GIVEN_NAMES)
        home = _address(rng, pref, cities)
        property_type = rng.choice(PROPERTY_TYPES)
        property_address = home if rng.random() < 0.4 else _address(rng, pref, cities)
        if property_type == "マンション":
            property_address += f" {rng.choice(MANSION_NAMES)}{rng.randint(1, 12)}0{rng.randint(1, 9)}号室"
        low, high = AMOUNT_RANGES[property_type]
        inquiry = FIRST_INQUIRY + dt.timedelta(days=rng.randrange(INQUIRY_DAYS))
        updated = dt.datetime.combine(inquiry, dt.time(9)) + dt.timedelta(
            days=rng.randrange(0, 60), minutes=rng.randrange(0, 10 * 60)
        )
        if rng.random() < 0.5:
            phone = f"{rng.choice(MOBILE_PREFIXES)}-{rng.randint(1000, 9999)}-{rng.randint(0, 9999):04d}"
        else:
            phone = f"{area_code}-{rng.randint(1000, 9999)}-{rng.randint(0, 9999):04d}"
        email = (
            f"{given_romaji}.{family_romaji}{rng.randint(1, 99)}@{rng.choice(EMAIL_DOMAINS)}"
            if rng.random() < EMAIL_SHARE
            else None
        )
        status = rng.choice(STATUSES)
        amount = rng.randrange(low, high, AMOUNT_STEP) if status != "新規反響" else None  # not assessed yet
        sellers.append(
            Seller(
                seller_number=number,
                name=f"{family} {given}",
                phone=phone,
                email=email,
                address=home,
                property_address=property_address,
                property_type=property_type,
                status=status,
                inquiry_date=inquiry,
                assessed_amount=amount,
                updated_at=updated,
            )
        )
    return sellers


def _address(rng: random.Random, pref: str, cities: Sequence[str]) -> str:
    return (
        f"{pref}{rng.choice(cities)}{rng.choice(TOWNS)}{rng.randint(1, 5)}丁目{rng.randint(1, 30)}-{rng.randint(1, 20)}"
    )


# --- rendering: clean and messy ---------------------------------------------------------------------------------


def _full_width(text: str) -> str:
    """ASCII letters, digits and punctuation as their full-width forms (what a Japanese IME often types)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _serial(moment: dt.datetime) -> str:
    days = (moment - SERIAL_ORIGIN).total_seconds() / SECONDS_PER_DAY
    return f"{days:.6f}".rstrip("0").rstrip(".")


def _amount_text(amount: int, rng: random.Random | None) -> str:
    forms = [f"{amount:,}", f"{amount}"]
    if rng is None:
        return forms[0]
    forms += [f"¥{amount:,}", f"￥{amount:,}", f"{amount}円", f"{amount:,}円"]
    man, rest = divmod(amount, 10_000)
    if rest == 0:
        forms += [f"{man:,}万", f"{man}万円"]
        oku, man_rest = divmod(man, 10_000)
        if oku and man_rest:
            forms.append(f"{oku}億{man_rest}万")
        elif oku:
            forms.append(f"{oku}億")
    if amount % 10_000_000 == 5_000_000 and amount >= 100_000_000:
        forms.append(f"{amount / 100_000_000:g}億")  # 1.5億
    return rng.choice(forms)


def _date_text(day: dt.date, rng: random.Random | None) -> str:
    if rng is None:
        return day.strftime("%Y/%m/%d")
    reiwa = day.year - REIWA_FIRST_YEAR + 1
    weekday = "月火水木金土日"[day.weekday()]
    forms = [
        f"{day.year}/{day.month}/{day.day}",
        day.isoformat(),
        f"{day.year}.{day.month}.{day.day}",
        f"{day.year}年{day.month}月{day.day}日",
        f"R{reiwa}.{day.month}.{day.day}",
        f"令和{reiwa}年{day.month}月{day.day}日",
        f"{day.year}/{day.month}/{day.day}({weekday})",
        _serial(dt.datetime.combine(day, dt.time())),
        _full_width(f"{day.year}/{day.month}/{day.day}"),
    ]
    return rng.choice(forms)


def _datetime_text(moment: dt.datetime, rng: random.Random | None) -> str:
    if rng is None:
        return moment.strftime("%Y/%m/%d %H:%M")
    utc = moment - TOKYO_UTC_OFFSET
    forms = [
        moment.strftime("%Y-%m-%dT%H:%M:%S"),
        moment.strftime("%Y-%m-%d %H:%M:%S"),
        f"{moment.year}/{moment.month}/{moment.day} {moment.hour}:{moment.minute:02d}",
        f"{moment.year}年{moment.month}月{moment.day}日 {moment.hour}:{moment.minute:02d}",
        _serial(moment),
        moment.strftime("%Y-%m-%dT%H:%M:%S+09:00"),
        utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
    ]
    return rng.choice(forms)


def _messy_key(key: str, rng: random.Random) -> str:
    forms = [_full_width(key), f" {key} ", f"{key[:2]} {key[2:]}", key.lower(), f"{key}\u3000", f"\u00a0{key}"]
    return rng.choice(forms)


def _messy_text(text: str, rng: random.Random) -> str:
    forms = [
        text.replace(" ", "\u3000"),  # ideographic space between family and given name
        f" {text}\u00a0",
        text.replace(" ", "  "),
        f"{text}\u200b",  # zero-width space pasted from a web form
        _full_width(text),
    ]
    return rng.choice(forms)


def _messy_phone(phone: str, rng: random.Random) -> str:
    forms = [
        _full_width(phone),
        phone.replace("-", "ー"),
        phone.replace("-", "−"),
        phone.replace("-", "‐"),
        f" {phone}",
    ]
    return rng.choice(forms)


def _messy_email(email: str, rng: random.Random) -> str:
    local, domain = email.split("@")
    forms = [f"{local}@{domain.upper()}", f" {email} ", _full_width(email)]
    return rng.choice(forms)


def render_row(seller: Seller, rng: random.Random | None) -> list[str]:
    """The sheet row for one seller in canonical header order; `rng` None renders every cell plainly."""
    amount = seller.assessed_amount
    plain = [
        seller.seller_number,
        seller.name,
        seller.phone,
        seller.email or "",
        seller.address,
        seller.property_address,
        seller.property_type,
        seller.status,
        _date_text(seller.inquiry_date, None),
        _amount_text(amount, None) if amount is not None else "",
        _datetime_text(seller.updated_at, None),
    ]
    if rng is None:
        return plain
    mess: random.Random = rng
    messy: list[Callable[[], str] | None] = [
        lambda: _messy_key(seller.seller_number, mess),
        lambda: _messy_text(seller.name, mess),
        lambda: _messy_phone(seller.phone, mess),
        (lambda: _messy_email(seller.email or "", mess)) if seller.email else None,
        lambda: _messy_text(seller.address, mess),
        None,
        None,
        None,
        lambda: _date_text(seller.inquiry_date, mess),
        (lambda: _amount_text(amount, mess)) if amount is not None else None,
        lambda: _datetime_text(seller.updated_at, mess),
    ]
    return [
        render() if render is not None and mess.random() < MESSY_SHARE else text
        for text, render in zip(plain, messy, strict=True)
    ]


def generate_rows(n: int, seed: int = 0, messy: bool = True) -> list[list[str]]:
    """The header row plus `n` seller rows; with `messy`, cells in messy-but-valid forms and a few blank rows.

    Deterministic for `seed`; the sellers do not depend on `messy`, only the way they are written does.
    """
    sellers = generate_sellers(n, seed)
    mess = random.Random(f"messy-{seed}") if messy else None
    rows: list[list[str]] = [list(HEADER)]
    for seller in sellers:
        if mess is not None and mess.random() < BLANK_ROW_SHARE:
            rows.append(mess.choice([[], [""] * len(HEADER), ["\u3000", "", " "]]))
        rows.append(render_row(seller, mess))
    return rows


def write_csv(path: Path | str, rows: Sequence[Sequence[str]], encoding: str = "utf-8-sig") -> Path:
    """Write rows as CSV (UTF-8 with BOM by default, as Excel's "CSV UTF-8" does). Returns the path."""
    target = Path(path)
    with target.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle, lineterminator="\r\n").writerows(rows)
    return target


# --- the committed sample ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadRow:
    """A deliberate mistake in the sample sheet, and the rejection rule it must produce."""

    sheet_row: int
    rule: str
    what: str


def sample_rows() -> tuple[list[list[str]], list[BadRow]]:
    """The rows of data/sample_sellers.csv and the deliberate bad rows in it (sheet rows are 1-based, header = 1).

    Bad rows are interleaved at fixed places so that the office-style mistakes sit among good rows.
    """
    rows = generate_rows(SAMPLE_SELLERS, SAMPLE_SEED, messy=True)
    sellers = generate_sellers(SAMPLE_SELLERS, SAMPLE_SEED)
    extra = random.Random(f"bad-{SAMPLE_SEED}")
    template = generate_sellers(SAMPLE_SELLERS + 6, SAMPLE_SEED + 1)[SAMPLE_SELLERS:]  # fresh people, unused numbers
    used = {s.seller_number for s in sellers}

    def fresh(seller: Seller) -> list[str]:
        row = render_row(seller, None)
        if seller.seller_number in used:
            row[0] = f"OS{extra.randint(0, 99_999):05d}"
            while row[0] in used:
                row[0] = f"OS{extra.randint(0, 99_999):05d}"
        used.add(row[0])
        return row

    missing_name = fresh(template[0])
    missing_name[1] = ""
    bad_number = fresh(template[1])
    bad_number[0] = "AB1234"
    duplicate_of = next(r[0] for r in rows[40:] if r and _key(r[0]))  # a seller a third of the way down
    duplicate = fresh(template[2])
    duplicate[0] = duplicate_of
    bad_date = fresh(template[3])
    bad_date[8] = "2025/13/40"
    bad_amount = fresh(template[4])
    bad_amount[9] = "ask"

    # (0-based insertion position in `rows`, row, rule, description); inserted from the bottom up.
    placements = [
        (25, missing_name, "required", "氏名 is empty"),
        (77, bad_number, "seller_number_format", "売主番号 is 'AB1234' (only four digits)"),
        (130, bad_date, "invalid_date", "反響日 is 2025/13/40"),
        (181, duplicate, "duplicate_seller_number", f"売主番号 {duplicate_of} again"),
        (len(rows), bad_amount, "invalid_amount", "査定額 is 'ask'"),
    ]
    # Blank rows, as left behind when a seller is cut rather than deleted: skipped, never counted or rejected.
    blanks: list[tuple[int, list[str]]] = [(60, []), (150, ["", "", "\u3000", " "])]
    inserts = [(position, row) for position, row, _, _ in placements] + blanks
    for position, row in sorted(inserts, key=lambda p: p[0], reverse=True):
        rows.insert(position, row)
    bad: list[BadRow] = []
    for _, row, rule, what in placements:
        index = next(i for i, r in enumerate(rows) if r is row)
        bad.append(BadRow(index + 1, rule, what))
    original = next(i for i, r in enumerate(rows) if r and r is not duplicate and _key(r[0]) == _key(duplicate_of))
    bad.append(BadRow(original + 1, "duplicate_seller_number", f"売主番号 {_key(duplicate_of)} (also on a later row)"))
    return rows, sorted(bad, key=lambda b: b.sheet_row)


def _key(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split()).upper()


def main() -> None:
    rows, bad = sample_rows()
    write_csv(SAMPLE_PATH, rows)
    print(f"wrote {SAMPLE_PATH}: {len(rows) - 1} rows below the header")
    for b in bad:
        print(f"  row {b.sheet_row}: {b.rule} — {b.what}")


if __name__ == "__main__":
    main()
