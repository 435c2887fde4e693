"""Settings use cases: change them (validated, all or nothing, versioned), list their history, show them as a table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sync_pipeline.domain.settings import SettingChange, Settings, setting_docs, setting_text
from sync_pipeline.services.database import Database


@dataclass(frozen=True)
class SettingsUpdate:
    """The outcome of a change: the settings before and after, and the keys whose value really changed."""

    before: Settings
    after: Settings
    changed: tuple[str, ...]


def update_settings(db: Database, values: Mapping[str, Any], *, changed_by: str) -> SettingsUpdate:
    """Store the given settings (typed values or text) in one transaction; raises SettingsError and writes nothing
    when any of them is unknown or breaks its rule. The next use of each setting sees the new value (P46)."""
    changes = {key: setting_text(value) for key, value in values.items()}
    with db.engine.begin() as conn:
        before = db.config.load(conn, now=db.clock.now())
        after = db.config.save(conn, changes, now=db.clock.now(), updated_by=changed_by)
    old, new = before.as_strings(), after.as_strings()
    return SettingsUpdate(before=before, after=after, changed=tuple(k for k in new if new[k] != old[k]))


def settings_history(db: Database, *, key: str | None = None, limit: int = 100) -> list[SettingChange]:
    """The versioned changes of the settings, most recent first."""
    with db.engine.connect() as conn:
        return db.config.history(conn, key=key, limit=limit)


def settings_markdown(settings: Settings) -> str:
    """The settings in force as a Markdown table (setting, value, what it does), for asset metadata in the UI."""
    docs = setting_docs()
    lines = ["| setting | value | what it does |", "|---|---|---|"]
    for key, value in settings.as_strings().items():
        lines.append(f"| `{key}` | `{_cell(value)}` | {_cell(docs[key])} |")
    lines.append("\nChange them with the job `update_sync_settings` or `sync-pipeline settings set KEY=VALUE`.")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
