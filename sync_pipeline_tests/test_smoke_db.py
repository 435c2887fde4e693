"""The database fixtures: a fresh migrated database on SQLite and Postgres; touches no sync code."""

import sqlalchemy as sa

from sync_pipeline.adapters.store.tables import metadata


def test_fresh_database_has_every_table_and_no_rows(engine: sa.Engine) -> None:
    names = set(sa.inspect(engine).get_table_names())
    assert {t.name for t in metadata.sorted_tables} <= names
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM sellers")).scalar_one() == 0
