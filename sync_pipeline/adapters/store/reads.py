"""Bulk reads of the seller tables as typed columns: Arrow-parsed CSV on Postgres, plain DBAPI rows on SQLite.

The diff and the verification read one narrow row per seller (key, hashes, versions, times). Fetched as DBAPI tuples,
100,000 rows cost more in Python objects (a datetime per timestamp, then pandas converting them back) than the query
itself. `COPY … TO STDOUT` is no cure through psycopg: it hands each row over as its own message, one Python call per
row. So Postgres writes the rows as CSV text and aggregates them into one `bytea` per part (a few values in all, read
by a binary cursor without decoding), which Arrow parses in C into columns. Both paths return the same frame: text as
Arrow-backed strings, integers as nullable Int64, timestamps as aware UTC `datetime64`, booleans as bool, missing
values as NA / NaT.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from sync_pipeline.domain.diff import STATE_COLUMNS
from sync_pipeline.domain.verification import HASH_COLUMNS

TEXT = pa.large_string()
INTEGER = pa.int64()
BOOLEAN = pa.bool_()
MOMENT = pa.timestamp("us", tz="UTC")  # Postgres keeps microseconds; timestamptz is read in the session's UTC

# domain.diff.STATE_COLUMNS and domain.verification.HASH_COLUMNS, typed.
STATE_SCHEMA = pa.schema(zip(STATE_COLUMNS, (TEXT, TEXT, INTEGER, INTEGER, MOMENT, MOMENT), strict=True))
HASH_SCHEMA = pa.schema(zip(HASH_COLUMNS, (TEXT, TEXT, INTEGER, BOOLEAN), strict=True))

# Above this many keys, a read of some sellers reads everyone in bulk and keeps the wanted: Python objects per row
# (psycopg's tuples) cost more than the rows the bulk read adds.
KEYED_READ_LIMIT = 5_000
ROWS_PER_PART = 1 << 22  # row ids per aggregated CSV value: some 300 MB of text at most, under the 1 GB of one value
# The CSV written by _csv_query: NULL is an unquoted empty field, text is quoted (so "" is the empty string),
# booleans are t / f.
_CONVERT = {
    "strings_can_be_null": True,
    "quoted_strings_can_be_null": False,
    "null_values": [""],
    "true_values": ["t"],
    "false_values": ["f"],
}


def read_frame(
    conn: sa.Connection,
    query: sa.Select[Any],
    schema: pa.Schema,
    part_by: sa.ColumnElement[int],
    *,
    costly_rows: bool = False,
) -> pd.DataFrame:
    """The rows of `query` as a frame typed by `schema` (one field per selected column, in order).

    `part_by` is a whole-number column of the rows (a row id): on Postgres the CSV text is cut into parts by
    `part_by // ROWS_PER_PART`, which keeps each aggregated value far below Postgres' 1 GB limit of one value.
    `costly_rows` (each row computes a content hash, say) lets Postgres spread the rows over parallel workers.
    """
    if conn.dialect.name == "postgresql":
        return frame_of(_csv_table(conn, query, schema, part_by, costly_rows=costly_rows))
    return read_rows(conn, query, schema)


def read_rows(conn: sa.Connection, query: sa.Select[Any], schema: pa.Schema) -> pd.DataFrame:
    """The rows of `query` (which may have bound parameters) fetched as plain DBAPI tuples, typed as `read_frame`'s."""
    result = conn.execute(query)
    try:
        rows = result.cursor.fetchall()  # type: ignore[union-attr]  # plain DBAPI tuples: no Row objects
    finally:
        result.close()
    return frame_of(rows_table(rows, schema))


def among(column: sa.ColumnElement[str], keys: Iterable[str], dialect: str) -> sa.ColumnElement[bool]:
    """`column IN keys`, the keys as one JSON text parameter however many there are: SQLite caps bound parameters,
    psycopg dumps a big array parameter in Python (a quarter of a second for 100,000 keys) and SQLAlchemy compiles
    one parameter per key slowly, while json.dumps is C and both databases unpack the text as fast
    (json_array_elements_text on Postgres, json_each on SQLite)."""
    listed = sa.bindparam(None, json.dumps(list(keys)), type_=sa.Text)
    if dialect == "postgresql":
        elements = sa.select(sa.func.json_array_elements_text(sa.cast(listed, postgresql.JSON)))
    else:
        elements = sa.select(sa.column("value")).select_from(sa.func.json_each(listed))
    return column.in_(elements.scalar_subquery())


def frame_of(table: pa.Table) -> pd.DataFrame:
    """A frame of `table` with the column types of this module (strings stay in Arrow, integers nullable)."""
    mapping = {INTEGER: pd.Int64Dtype(), TEXT: pd.StringDtype("pyarrow", na_value=np.nan)}
    return table.to_pandas(types_mapper=mapping.get)


def _csv_field(column: sa.ColumnElement[Any], kind: pa.DataType) -> sa.ColumnElement[Any]:
    """One CSV field: text always quoted (quotes doubled), so that NULL alone is the unquoted empty field; numbers,
    booleans (t / f) and timestamps as Postgres writes them (in the session's UTC)."""
    if kind == TEXT:
        return sa.literal('"') + sa.func.replace(sa.cast(column, sa.Text), '"', '""') + sa.literal('"')
    return column


def _csv_query(query: sa.Select[Any], schema: pa.Schema, part_by: sa.ColumnElement[int]) -> sa.Select[Any]:
    selected = {c.name: c.element if isinstance(c, sa.Label) else c for c in query.selected_columns}
    fields: list[Any] = []
    for name, kind in zip(schema.names, schema.types, strict=True):
        fields += [_csv_field(selected[name], kind), ","]
    # concat() writes NULL as nothing: with the text quoted, that is exactly CSV's NULL.
    line = sa.func.concat(*fields[:-1]).label("line")
    # Each row's CSV line is computed in a subquery kept apart by OFFSET 0, so that Postgres' parallel workers compute
    # the lines (and what they hold: a content hash, say) below the Gather; the one process that aggregates then only
    # appends them (measured at 1,000,000 rows: it was the bottleneck when it also formatted every line).
    rows = query.with_only_columns(line, (part_by // ROWS_PER_PART).label("part")).offset(0).subquery("rows")
    text = sa.func.string_agg(rows.c.line, sa.literal_column("E'\\n'"))
    return sa.select(sa.func.convert_to(text, sa.literal_column("'UTF8'"))).group_by(rows.c.part)


def _csv_table(
    conn: sa.Connection, query: sa.Select[Any], schema: pa.Schema, part_by: sa.ColumnElement[int], *, costly_rows: bool
) -> pa.Table:
    # Read by the driver's binary cursor: the parts arrive as bytes, not as hex text decoded into str and back. The
    # statement is rendered with its literals, which are constants of the code (separators, substring bounds), never
    # data.
    sql = str(_csv_query(query, schema, part_by).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    with conn.connection.driver_connection.cursor(binary=True) as cursor:  # type: ignore[union-attr]
        if costly_rows:
            # The planner prices a row crossing from a parallel worker above computing it (an md5 of twenty fields
            # counts as one cheap operator), so at 1,000,000 rows it chose one process; cheaper transfers for this
            # statement (SET LOCAL, put back after) let the workers compute the lines: 3.5 s instead of 4.8 s there.
            # Not for cheap rows: a parallel plan interleaves the workers' rows, and the diff pairs keys fastest
            # when they come in the order they were written (domain.diff.positions).
            cursor.execute(
                "SELECT current_setting('parallel_tuple_cost'), set_config('parallel_tuple_cost', '0.001', true)"
            )
            (previous, _) = cursor.fetchone() or ("0.1", None)
        cursor.execute(sql)
        parts = [part for (part,) in cursor.fetchall() if part]
        if costly_rows:
            cursor.execute("SELECT set_config('parallel_tuple_cost', %s, true)", (previous,))
    tables = [
        pa_csv.read_csv(
            pa.py_buffer(part),
            # One thread: with quoted newlines allowed, Arrow's threads only add work (measured, 100,000 rows).
            read_options=pa_csv.ReadOptions(column_names=schema.names, use_threads=False),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),  # a key edited by hand may hold one
            convert_options=pa_csv.ConvertOptions(column_types=schema, **_CONVERT),  # type: ignore[arg-type]
        )
        for part in parts
    ]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def rows_table(rows: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    arrays = []
    for values, target in zip(columns, schema.types, strict=True):
        if pa.types.is_timestamp(target):
            # SQLite stores moments as UTC wall-time text (adapters.store.tables.UtcDateTime).
            moments = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")
            arrays.append(pa.array(moments, type=target, from_pandas=True))
        elif target == BOOLEAN:
            arrays.append(pa.array([None if v is None else bool(v) for v in values], type=target))
        else:
            arrays.append(pa.array(values, type=target, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)
