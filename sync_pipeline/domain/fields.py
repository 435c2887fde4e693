"""The seller sheet's columns: canonical field names, the headers offices use for them, and where they are stored."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class FieldKind(enum.StrEnum):
    KEY = "key"  # the seller number: NFKC, trimmed, upper-cased, then matched against the configured pattern
    TEXT = "text"
    PHONE = "phone"  # kept as text so that leading zeros survive
    EMAIL = "email"
    DATE = "date"
    DATETIME = "datetime"
    AMOUNT = "amount"  # whole yen
    # Kinds a sheet contract may give its own fields (domain/kinds.py reads them; stored in sellers.attributes).
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    CHOICE = "choice"


class Table(enum.StrEnum):
    SELLERS = "sellers"
    PROPERTIES = "properties"


@dataclass(frozen=True)
class FieldSpec:
    """One sheet column as the sync understands it; `name` is also the database column name."""

    name: str
    header: str  # the canonical (Japanese) header of the sample sheet
    aliases: tuple[str, ...]  # other headers accepted for the same field, Japanese and English
    kind: FieldKind
    table: Table


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "seller_number",
        "売主番号",
        ("売主No", "売主NO", "売主ID", "売主コード", "seller_number", "seller number", "seller no", "seller id"),
        FieldKind.KEY,
        Table.SELLERS,
    ),
    FieldSpec(
        "name", "氏名", ("売主名", "名前", "お名前", "name", "seller name", "full name"), FieldKind.TEXT, Table.SELLERS
    ),
    FieldSpec(
        "phone",
        "電話番号",
        ("電話", "TEL", "連絡先電話番号", "phone", "phone number", "telephone"),
        FieldKind.PHONE,
        Table.SELLERS,
    ),
    FieldSpec(
        "email",
        "メールアドレス",
        ("メール", "Eメール", "email", "e-mail", "mail", "email address"),
        FieldKind.EMAIL,
        Table.SELLERS,
    ),
    FieldSpec("address", "住所", ("売主住所", "現住所", "address", "seller address"), FieldKind.TEXT, Table.SELLERS),
    FieldSpec(
        "property_address",
        "物件所在地",
        ("物件住所", "所在地", "property address", "property location"),
        FieldKind.TEXT,
        Table.PROPERTIES,
    ),
    FieldSpec("property_type", "物件種別", ("種別", "物件タイプ", "property type"), FieldKind.TEXT, Table.PROPERTIES),
    FieldSpec("status", "ステータス", ("状況", "進捗", "status"), FieldKind.TEXT, Table.SELLERS),
    FieldSpec(
        "inquiry_date",
        "反響日",
        ("問合せ日", "問い合わせ日", "inquiry date", "lead date"),
        FieldKind.DATE,
        Table.SELLERS,
    ),
    FieldSpec(
        "assessed_amount",
        "査定額",
        ("査定価格", "査定金額", "assessed amount", "assessment", "appraisal"),
        FieldKind.AMOUNT,
        Table.PROPERTIES,
    ),
    FieldSpec(
        "sheet_updated_at",
        "更新日時",
        ("最終更新日時", "最終更新", "更新日", "updated at", "last updated"),
        FieldKind.DATETIME,
        Table.SELLERS,
    ),
)

FIELD_BY_NAME: dict[str, FieldSpec] = {f.name: f for f in FIELDS}
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
KEY_FIELD = "seller_number"

# The fields stored in each table, in sheet order (the key lives in `sellers` only).
SELLER_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.table is Table.SELLERS)
PROPERTY_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.table is Table.PROPERTIES)

DEFAULT_REQUIRED_FIELDS: tuple[str, ...] = ("seller_number", "name", "property_address")
DEFAULT_SELLER_NUMBER_PATTERN = r"^[A-Z]{2}\d{5}$"
