"""The seller repository: database state for the diff, the SQLite write path, content hashes.

On SQLite a chunk goes through a staging table filled by one executemany, then one
`INSERT … SELECT … ON CONFLICT (seller_number) DO UPDATE … WHERE version = expected`, so a row changed underneath the
sync (optimistic lock, Property 40) is skipped rather than overwritten, and never one statement per row. Postgres
writes a chunk with one COPY and one statement instead: `adapters/store/bulk.py`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from sync_pipeline.adapters.store.reads import (
    HASH_SCHEMA,
    KEYED_READ_LIMIT,
    STATE_SCHEMA,
    among,
    read_frame,
    read_rows,
)
from sync_pipeline.adapters.store.tables import UtcDateTime, properties, sellers
from sync_pipeline.domain.contract import UNMAPPED
from sync_pipeline.domain.diff import STATE_COLUMNS, is_in
from sync_pipeline.domain.fields import FIELD_BY_NAME, PROPERTY_FIELDS, SELLER_FIELDS, FieldKind
from sync_pipeline.domain.hashing import (
    ATTRIBUTE_LABEL,
    HASH_FIELDS,
    SEPARATOR,
    TIMESTAMP_TEXT_LENGTH,
    UNMAPPED_LABEL,
)

STAGE_TABLE = "sync_stage_tmp"  # temporary, per connection; a name no permanent table uses
SELLER_DATA_COLUMNS: tuple[str, ...] = (*SELLER_FIELDS, "attributes", "sheet_row", "row_hash")
STAGE_COLUMNS: tuple[str, ...] = (
    *SELLER_FIELDS,
    "attributes",
    *PROPERTY_FIELDS,
    "sheet_row",
    "row_hash",
    "expected_version",
)
_INTEGER_STAGE_COLUMNS = frozenset({"sheet_row", "expected_version"})
_TEXT_KINDS = frozenset({FieldKind.KEY, FieldKind.TEXT, FieldKind.PHONE, FieldKind.EMAIL})  # blank text is empty too


def _stage_table() -> sa.Table:
    # Keyed by seller number: the upsert looks each conflicting row's expected version up by key, so without the key
    # every lookup scanned the stage (quadratic in the chunk's size).
    columns = [
        sa.Column(c.name, c.type, primary_key=c.name == "seller_number")
        for c in sellers.c
        if c.name in SELLER_DATA_COLUMNS
    ]
    columns += [sa.Column(c.name, c.type) for c in properties.c if c.name in PROPERTY_FIELDS]
    columns.append(sa.Column("expected_version", sa.Integer))
    return sa.Table(STAGE_TABLE, sa.MetaData(), *columns, prefixes=["TEMPORARY"])


def stage_arrow(values: pd.Series, name: str) -> pa.Array:
    """One staging column as Arrow, typed as its table column is, missing values null."""
    objects = values.where(values.notna(), None).to_numpy(dtype=object)
    kind = FIELD_BY_NAME[name].kind if name in FIELD_BY_NAME else None
    if kind is FieldKind.DATETIME:  # pandas converts Python datetimes in C (Arrow's own conversion is per object)
        return pa.array(pd.to_datetime(pd.Series(objects, dtype=object)).to_numpy().astype("datetime64[s]"))
    if kind is FieldKind.DATE:
        return pa.array(pd.to_datetime(pd.Series(objects, dtype=object)).to_numpy().astype("datetime64[D]"))
    if kind is FieldKind.AMOUNT or name in _INTEGER_STAGE_COLUMNS:
        return pa.array(objects, type=pa.int64(), from_pandas=True)
    return pa.array(objects, type=pa.large_string(), from_pandas=True)


SQLITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.000000"  # SQLAlchemy's SQLite DATETIME text (staged times are whole seconds)


def sqlite_values(array: pa.Array) -> list[Any]:
    """One staged column as the Python values SQLite binds: times and dates as the text SQLAlchemy stores."""
    if pa.types.is_timestamp(array.type):
        array = pc.strftime(array, format=SQLITE_TIME_FORMAT)
    elif pa.types.is_date(array.type):
        array = pc.strftime(array, format="%Y-%m-%d")
    return array.to_pylist()


def owned_attributes(extras: Sequence[str], keep_unmapped: bool) -> tuple[str, ...]:
    """The attribute keys the sheet owns under a contract: a write replaces them and keeps every other key (the
    values of a field since removed from the contract are never deleted)."""
    return (*extras, *((UNMAPPED,) if keep_unmapped else ()))


def merged_attributes(old: Any, new: Any, owned: Sequence[str]) -> sa.ColumnElement[Any]:
    """SQLite: the stored attributes with the owned keys replaced by the sheet's (`new`), others kept; NULL when
    empty. (Postgres does the same with jsonb operators in `bulk.py`.)"""
    paths = [sa.literal(f"$.{key}") for key in owned]
    kept = sa.func.json_remove(sa.func.coalesce(old, "{}"), *paths)
    return sa.func.nullif(sa.func.json_patch(kept, sa.func.coalesce(new, "{}")), "{}")


def attributes_hash_suffix(
    attributes: Any, extras: Sequence[str], keep_unmapped: bool, dialect: str | None
) -> sa.ColumnElement[str] | None:
    """The stored attributes' part of the content hash, as `domain.hashing` writes it: `SEPARATOR name:literal` per
    present extra field in name order (the literal as stored: `->` returns a member's JSON text unchanged on both
    databases), then, when unmapped columns are kept, `SEPARATOR _unmapped.header:text` per kept cell by header."""
    parts: list[sa.ColumnElement[str]] = []
    for name in sorted(extras):
        path = name if dialect == "postgresql" else f"$.{name}"
        member = sa.cast(attributes.op("->")(sa.literal(path)), sa.Text)
        label = SEPARATOR + ATTRIBUTE_LABEL.format(name=name)
        parts.append(sa.func.coalesce(sa.literal(label).concat(member), ""))
    if keep_unmapped:
        label = SEPARATOR + UNMAPPED_LABEL.removesuffix("{header}:")  # then the header, ':' and the text
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import aggregate_order_by

            each = sa.func.jsonb_each_text(attributes.op("->")(sa.literal(UNMAPPED))).table_valued("key", "value")
            text = sa.literal(label).concat(each.c.key).concat(":").concat(each.c.value)
            # string_agg(part, '' ORDER BY key COLLATE "C"): code-point order, as Python sorts the headers
            ordered = aggregate_order_by(sa.literal(""), sa.collate(each.c.key, "C"))
            kept = sa.select(sa.func.string_agg(text, ordered)).scalar_subquery()
        else:
            each = sa.func.json_each(attributes, sa.literal(f"$.{UNMAPPED}")).table_valued("key", "value")
            text = sa.literal(label).concat(each.c.key).concat(":").concat(each.c.value).label("part")
            inner = sa.select(text).order_by(each.c.key).subquery()  # BINARY collation: code-point order
            kept = sa.select(sa.func.group_concat(inner.c.part, "")).scalar_subquery()
        parts.append(sa.func.coalesce(kept, ""))
    if not parts:
        return None
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.concat(part)
    return joined


def content_hash_expression(
    seller_table: sa.Table | Any = sellers,
    property_table: sa.Table | Any = properties,
    *,
    dialect: str | None = None,
    extras: Sequence[str] = (),
    keep_unmapped: bool = False,
) -> sa.ColumnElement[str]:
    """md5 of the stored row in the same canonical text as `domain.hashing` (SQLite gets md5() from the engine),
    the attributes the contract names (`extras`, and kept unmapped columns) after the built-in columns.

    On Postgres the parts are joined with one concat_ws call rather than twenty `||` (each allocates a new text);
    every part is already coalesced, so concat_ws's skipping of NULLs never applies and the text is the same.
    SQLite has concat_ws only from 3.44.
    """
    suffix = attributes_hash_suffix(seller_table.c.attributes, extras, keep_unmapped, dialect)
    parts: list[sa.ColumnElement[str]] = []
    for name in HASH_FIELDS:
        table = seller_table if name in seller_table.c else property_table
        text: sa.ColumnElement[str] = sa.cast(table.c[name], sa.Text)
        if FIELD_BY_NAME[name].kind is FieldKind.DATETIME:
            text = sa.func.substr(text, 1, TIMESTAMP_TEXT_LENGTH)
        parts.append(sa.func.coalesce(text, ""))
    if dialect == "postgresql":
        text = sa.func.concat_ws(SEPARATOR, *parts)
        return sa.func.md5(text if suffix is None else text.concat(suffix))
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.concat(SEPARATOR).concat(part)
    return sa.func.md5(joined if suffix is None else joined.concat(suffix))


class SellerStore:
    """SQL for the `sellers` and `properties` tables; every method takes the caller's connection (its transaction)."""

    def load_state(
        self, conn: sa.Connection, keys: Iterable[str] | None = None, columns: Sequence[str] = STATE_COLUMNS
    ) -> pd.DataFrame:
        """`columns` (of STATE_COLUMNS) of every seller or of `keys`, for the diff and the verification: text as Arrow
        strings, versions Int64, times aware UTC (adapters.store.reads)."""
        schema = pa.schema([STATE_SCHEMA.field(c) for c in columns])
        query = sa.select(*(sellers.c[c] for c in columns))
        wanted = None if keys is None else list(keys)
        if wanted is not None and len(wanted) <= KEYED_READ_LIMIT:
            return read_rows(conn, query.where(among(sellers.c.seller_number, wanted, conn.dialect.name)), schema)
        frame = read_frame(conn, query, schema, part_by=sellers.c.id)
        if wanted is None:
            return frame
        return frame[is_in(frame["seller_number"], wanted)].reset_index(drop=True)

    def count_from_sheet(self, conn: sa.Connection) -> int:
        """Sellers that came from the sheet (the sync wrote them at least once)."""
        query = sa.select(sa.func.count()).select_from(sellers).where(sellers.c.synced_version.is_not(None))
        return int(conn.execute(query).scalar_one())

    def apply_chunk(
        self, conn: sa.Connection, chunk: pd.DataFrame, now: dt.datetime, owned: Sequence[str] = ()
    ) -> set[str]:
        """SQLite: upsert `chunk` (plan rows that write) and their properties; return the seller numbers written.

        A planned insert whose key appeared meanwhile, or an update whose row's version moved on, is not written and
        not returned: the caller logs it as a conflict.
        """
        if chunk.empty:
            return set()
        if conn.dialect.name != "sqlite":
            raise ValueError(f"apply_chunk is the SQLite path; {conn.dialect.name} writes through bulk.write_chunk")
        stage = self._fill_stage(conn, chunk)
        data_columns = list(SELLER_DATA_COLUMNS)
        source = sa.select(
            *(stage.c[c] for c in data_columns),
            sa.literal(1).label("version"),
            sa.literal(1).label("synced_version"),
            sa.literal(now, UtcDateTime()).label("synced_at"),
            sa.literal(now, UtcDateTime()).label("created_at"),
            sa.literal(now, UtcDateTime()).label("updated_at"),
        ).where(sa.true())  # SQLite needs a WHERE before ON CONFLICT to parse an INSERT … SELECT upsert
        statement = sqlite.insert(sellers).from_select(
            [*data_columns, "version", "synced_version", "synced_at", "created_at", "updated_at"], source
        )
        # Correlated to the conflicting row through the literal name `excluded`: given `statement.excluded`, SQLAlchemy
        # adds `sellers AS excluded` to the subquery's own FROM (an INSERT has no FROM to correlate with), which then
        # matches every staged row — Postgres: "more than one row returned by a subquery"; SQLite: silently the first
        # row's version, so the other updates of the chunk were skipped as conflicts.
        expected = (
            sa.select(stage.c.expected_version)
            .where(stage.c.seller_number == sa.literal_column("excluded.seller_number"))
            .scalar_subquery()
        )
        upsert = statement.on_conflict_do_update(
            index_elements=[sellers.c.seller_number],
            set_={
                **{c: statement.excluded[c] for c in data_columns if c != "seller_number"},
                "attributes": merged_attributes(sellers.c.attributes, statement.excluded.attributes, owned),
                "version": sellers.c.version + 1,
                "synced_version": sellers.c.version + 1,
                "synced_at": now,
                "updated_at": now,
            },
            where=sellers.c.version == expected,
        ).returning(sellers.c.seller_number)
        written = {row[0] for row in conn.execute(upsert)}
        if written:
            self._upsert_properties(conn, stage, written, now)
        return written

    def _fill_stage(self, conn: sa.Connection, chunk: pd.DataFrame) -> sa.Table:
        stage = _stage_table()
        frame = chunk.loc[:, list(STAGE_COLUMNS)]
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{STAGE_TABLE}")
        stage.create(conn)
        # Plain tuples in the text SQLAlchemy itself would store, built a column at a time: binding 100,000 rows
        # through the table's type processors took longer than SQLite took to write them.
        values = [sqlite_values(stage_arrow(frame[name], name)) for name in STAGE_COLUMNS]
        placeholders = ", ".join("?" for _ in STAGE_COLUMNS)
        conn.exec_driver_sql(
            f"INSERT INTO temp.{STAGE_TABLE} ({', '.join(STAGE_COLUMNS)}) VALUES ({placeholders})",
            list(zip(*values, strict=True)),
        )
        return stage

    def _upsert_properties(self, conn: sa.Connection, stage: sa.Table, written: set[str], now: dt.datetime) -> None:
        insert = sqlite.insert
        source = (
            sa.select(
                sellers.c.id,
                *(stage.c[c] for c in PROPERTY_FIELDS),
                sa.literal(now, UtcDateTime()).label("created_at"),
                sa.literal(now, UtcDateTime()).label("updated_at"),
            )
            .select_from(stage.join(sellers, sellers.c.seller_number == stage.c.seller_number))
            .where(among(stage.c.seller_number, written, "sqlite"))
        )
        statement = insert(properties).from_select(["seller_id", *PROPERTY_FIELDS, "created_at", "updated_at"], source)
        statement = statement.on_conflict_do_update(
            index_elements=[properties.c.seller_id],
            set_={**{c: statement.excluded[c] for c in PROPERTY_FIELDS}, "updated_at": now},
        )
        conn.execute(statement)

    def verification_hashes(
        self, conn: sa.Connection, extras: Sequence[str] = (), keep_unmapped: bool = False
    ) -> pd.DataFrame:
        """Every seller's key, stored-content hash (computed in SQL), sync mark and whether its property exists.

        The part of verification that covers every row, kept narrow: no timestamps, and on Postgres read as CSV parts
        into Arrow columns rather than one Python tuple per seller (adapters.store.reads).
        """
        query = sa.select(
            sellers.c.seller_number,
            content_hash_expression(dialect=conn.dialect.name, extras=extras, keep_unmapped=keep_unmapped).label(
                "db_hash"
            ),
            sellers.c.synced_version,
            properties.c.id.is_not(None).label("has_property"),
        ).select_from(sellers.outerjoin(properties, properties.c.seller_id == sellers.c.id))
        return read_frame(conn, query, HASH_SCHEMA, part_by=sellers.c.id, costly_rows=True)

    def missing_required(
        self, conn: sa.Connection, required_fields: Sequence[str], keys: Iterable[str] | None = None
    ) -> pd.DataFrame:
        """[seller_number, field, sheet_row] of every seller (or of `keys`) whose required field is empty in the
        database.

        One scan per required field (UNION ALL), returning only the offenders. A property field is only checked where
        the property record exists (a missing record is its own integrity rule). Above KEYED_READ_LIMIT keys the
        whole table is checked (the offenders are few either way).
        """
        wanted = None if keys is None else list(keys)
        if wanted is not None and len(wanted) > KEYED_READ_LIMIT:
            wanted = None
        joined = sellers.outerjoin(properties, properties.c.seller_id == sellers.c.id)
        selects = []
        for name in required_fields:
            spec = FIELD_BY_NAME[name]
            table = sellers if name in sellers.c else properties
            column = table.c[name]
            empty: sa.ColumnElement[bool] = column.is_(None)
            if spec.kind in _TEXT_KINDS:
                empty = sa.or_(empty, sa.func.trim(column) == "")
            if table is properties:
                empty = sa.and_(properties.c.id.is_not(None), empty)
            if wanted is not None:
                empty = sa.and_(among(sellers.c.seller_number, wanted, conn.dialect.name), empty)
            selects.append(
                sa.select(sellers.c.seller_number, sa.literal(name).label("field"), sellers.c.sheet_row)
                .select_from(joined)
                .where(empty)
            )
        columns = ["seller_number", "field", "sheet_row"]
        if not selects:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        query = selects[0] if len(selects) == 1 else sa.union_all(*selects)
        rows = conn.execute(query).all()
        return pd.DataFrame([tuple(r) for r in rows], columns=columns, dtype=object)
