"""The settings repository: `sync_config` rows as a validated Settings object, defaults written on first start."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import sqlalchemy as sa

from sync_pipeline.adapters.store.tables import sync_config
from sync_pipeline.domain.settings import Settings


class SettingsStore:
    def load(self, conn: sa.Connection, *, now: dt.datetime) -> Settings:
        """The settings in force; writes the defaults that are missing (first start, or a new setting)."""
        stored = {k: v for k, v in conn.execute(sa.select(sync_config.c.key, sync_config.c.value)).all()}
        defaults = Settings().as_strings()
        missing = [k for k in defaults if k not in stored]
        if missing:
            conn.execute(
                sync_config.insert(),
                [{"key": k, "value": defaults[k], "updated_at": now, "updated_by": "defaults"} for k in missing],
            )
        known = {k: v for k, v in stored.items() if k in defaults}
        return Settings.from_strings(known)

    def save(
        self, conn: sa.Connection, changes: Mapping[str, str], *, now: dt.datetime, updated_by: str | None = None
    ) -> Settings:
        """Validate `changes` against the settings in force and store them; raises SettingsError naming the key."""
        new = self.load(conn, now=now).with_changes(changes)
        for key, value in new.as_strings().items():
            if key in changes:
                conn.execute(
                    sync_config.update()
                    .where(sync_config.c.key == key)
                    .values(value=value, updated_at=now, updated_by=updated_by)
                )
        return new
