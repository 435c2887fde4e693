"""The settings repository: `sync_config` rows as a validated Settings object, defaults written on first start, and
every change versioned in `sync_config_history`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from sync_pipeline.adapters.store.tables import sync_config, sync_config_history
from sync_pipeline.domain.settings import SettingChange, Settings


class SettingsStore:
    def load(self, conn: sa.Connection, *, now: dt.datetime) -> Settings:
        """The settings in force; writes the defaults that are missing (first start, or a new setting)."""
        stored = {k: v for k, v in conn.execute(sa.select(sync_config.c.key, sync_config.c.value)).all()}
        defaults = Settings().as_strings()
        missing = [k for k in defaults if k not in stored]
        if missing:
            # Several processes may start on a new database at once: a default another one wrote first is kept.
            insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(sync_config)
            conn.execute(
                insert.on_conflict_do_nothing(index_elements=[sync_config.c.key]),
                [{"key": k, "value": defaults[k], "updated_at": now, "updated_by": "defaults"} for k in missing],
            )
        known = {k: v for k, v in stored.items() if k in defaults}
        return Settings.from_strings(known)

    def save(
        self, conn: sa.Connection, changes: Mapping[str, str], *, now: dt.datetime, updated_by: str | None = None
    ) -> Settings:
        """Validate `changes` against the settings in force and store them; raises SettingsError naming the key.

        Nothing is written unless every change is valid. Each value that really changes gets a history row with the
        old and new value (in their stored, normalised form), in the caller's transaction.
        """
        old = self.load(conn, now=now)
        new = old.with_changes(changes)
        before, after = old.as_strings(), new.as_strings()
        changed = [key for key in after if key in changes and after[key] != before[key]]
        for key in changed:
            conn.execute(
                sync_config.update()
                .where(sync_config.c.key == key)
                .values(value=after[key], updated_at=now, updated_by=updated_by)
            )
        if changed:
            conn.execute(
                sync_config_history.insert(),
                [
                    {
                        "key": key,
                        "old_value": before[key],
                        "new_value": after[key],
                        "changed_at": now,
                        "changed_by": updated_by,
                    }
                    for key in changed
                ],
            )
        return new

    def history(self, conn: sa.Connection, *, key: str | None = None, limit: int = 100) -> list[SettingChange]:
        """Changes of the settings, most recent first (optionally of one key)."""
        query = sa.select(sync_config_history)
        if key is not None:
            query = query.where(sync_config_history.c.key == key)
        query = query.order_by(sync_config_history.c.changed_at.desc(), sync_config_history.c.id.desc()).limit(limit)
        return [
            SettingChange(
                key=r["key"],
                old_value=r["old_value"],
                new_value=r["new_value"],
                changed_at=r["changed_at"],
                changed_by=r["changed_by"],
            )
            for r in conn.execute(query).mappings()
        ]
