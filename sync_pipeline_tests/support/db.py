"""Test helpers for the real databases: empty every table between Hypothesis examples."""

from __future__ import annotations

import sqlalchemy as sa

from sync_pipeline.adapters.store.tables import metadata


def reset_database(engine: sa.Engine) -> None:
    """Delete every row of every table (children first), keeping the migrated schema."""
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
