"""Test helpers for the real databases: empty every table between Hypothesis examples, read a sync's audit row and
record logs, and every stored seller with its content hash."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from sync_pipeline.adapters.store.engine import make_engine
from sync_pipeline.adapters.store.sellers import content_hash_expression
from sync_pipeline.adapters.store.tables import metadata, properties, sellers, sync_record_logs
from sync_pipeline.domain.diff import STATE_COLUMNS
from sync_pipeline.services.database import Database


@contextlib.contextmanager
def created_database(server_url: str, suffix: str, template: str | None = None) -> Iterator[str]:
    """A uniquely named Postgres database (a copy of `template`, else empty) for the block; dropped after it."""
    name = f"spt_{uuid.uuid4().hex[:12]}_{suffix}"
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def reset_database(engine: sa.Engine) -> None:
    """Delete every row of every table (children first), keeping the migrated schema."""
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


def audit_row(db: Database, sync_id: str) -> dict[str, Any]:
    """The audit row of a sync, which must exist."""
    with db.engine.connect() as conn:
        row = db.audit.get(conn, sync_id)
    assert row is not None, f"no audit row for sync {sync_id}"
    return dict(row)


def record_logs(conn: sa.Connection, sync_id: str) -> list[dict[str, Any]]:
    """The record logs of one sync, in the order they were written."""
    query = sa.select(sync_record_logs).where(sync_record_logs.c.sync_id == sync_id).order_by(sync_record_logs.c.id)
    return [dict(r) for r in conn.execute(query).mappings()]


def stored_sellers(conn: sa.Connection, keys: Sequence[str] | None = None) -> pd.DataFrame:
    """Per seller: key, stored content hash (computed in SQL), sync bookkeeping and whether its property exists."""
    query = sa.select(
        sellers.c.seller_number,
        content_hash_expression().label("db_hash"),
        *(sellers.c[c] for c in STATE_COLUMNS if c != "seller_number"),
        properties.c.id.is_not(None).label("has_property"),
    ).select_from(sellers.outerjoin(properties, properties.c.seller_id == sellers.c.id))
    if keys is not None:
        query = query.where(sellers.c.seller_number.in_(list(keys)))
    rows = conn.execute(query).all()
    columns = ["seller_number", "db_hash", *(c for c in STATE_COLUMNS if c != "seller_number"), "has_property"]
    return pd.DataFrame([tuple(r) for r in rows], columns=columns, dtype=object)
