"""Schema migrations (Alembic, under sql/): upgrade, downgrade and current revision, run programmatically."""

from __future__ import annotations

import sqlalchemy as sa

from sync_pipeline.adapters.store.tables import metadata


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    # Placeholder until the Alembic environment lands in sql/: creates the tables straight from the metadata.
    metadata.create_all(engine)
