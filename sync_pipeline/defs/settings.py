"""The settings panel of the UI: job `update_sync_settings`, whose launchpad lists every setting with its documentation.

No `from __future__ import annotations` here: Dagster reads the context and config annotations at definition time.
"""

from typing import Any, Optional

import dagster as dg
from pydantic import Field

from sync_pipeline.defs.resources import SyncDatabase
from sync_pipeline.domain.settings import SettingsError, setting_docs
from sync_pipeline.services.settings import settings_markdown, update_settings

_DOCS = setting_docs()


def _doc(key: str) -> Any:
    # Each field's description is the setting's own documentation (domain/settings.py), shown by the launchpad.
    return Field(default=None, description=_DOCS[key])


class UpdateSyncSettingsConfig(dg.Config):
    """Give only the settings to change, e.g. `sync_interval_minutes: 15`; the others keep their value."""

    # Optional[...] rather than `X | None`: the launchpad then shows each field as optional with its type.
    sync_interval_minutes: Optional[int] = _doc("sync_interval_minutes")  # noqa: UP045
    sync_paused: Optional[bool] = _doc("sync_paused")  # noqa: UP045
    consecutive_failure_threshold: Optional[int] = _doc("consecutive_failure_threshold")  # noqa: UP045
    gap_threshold: Optional[int] = _doc("gap_threshold")  # noqa: UP045
    auto_recovery: Optional[bool] = _doc("auto_recovery")  # noqa: UP045
    no_success_alert_hours: Optional[float] = _doc("no_success_alert_hours")  # noqa: UP045
    retry_delay_minutes: Optional[int] = _doc("retry_delay_minutes")  # noqa: UP045
    retry_max_attempts: Optional[int] = _doc("retry_max_attempts")  # noqa: UP045
    min_sheet_ratio: Optional[float] = _doc("min_sheet_ratio")  # noqa: UP045
    seller_number_pattern: Optional[str] = _doc("seller_number_pattern")  # noqa: UP045
    required_fields: Optional[list[str]] = _doc("required_fields")  # noqa: UP045
    sheet_timezone: Optional[str] = _doc("sheet_timezone")  # noqa: UP045
    chunk_size: Optional[int] = _doc("chunk_size")  # noqa: UP045
    slow_sync_factor: Optional[float] = _doc("slow_sync_factor")  # noqa: UP045
    slow_sync_min_samples: Optional[int] = _doc("slow_sync_min_samples")  # noqa: UP045
    email_min_interval_minutes: Optional[int] = _doc("email_min_interval_minutes")  # noqa: UP045
    email_enabled: Optional[bool] = _doc("email_enabled")  # noqa: UP045
    email_recipients: Optional[list[str]] = _doc("email_recipients")  # noqa: UP045
    chat_min_interval_minutes: Optional[int] = _doc("chat_min_interval_minutes")  # noqa: UP045
    ui_base_url: Optional[str] = _doc("ui_base_url")  # noqa: UP045
    retention_days: Optional[int] = _doc("retention_days")  # noqa: UP045
    unmapped_columns: Optional[str] = _doc("unmapped_columns")  # noqa: UP045
    sheet_feedback: Optional[str] = _doc("sheet_feedback")  # noqa: UP045


@dg.op(name="update_sync_settings")
def update_sync_settings_op(
    context: dg.OpExecutionContext, config: UpdateSyncSettingsConfig, database: SyncDatabase
) -> dict:
    """Change the given settings, all or nothing: an invalid value fails the run naming the setting and the rule,
    and changes nothing. Each change is versioned (`sync-pipeline settings history`) and used from its next use."""
    given = config.model_dump(exclude_none=True)
    if not given:
        raise dg.Failure(description="no setting given: add one or more, e.g. `sync_interval_minutes: 15`")
    try:
        update = update_settings(database.open(), given, changed_by=f"update_sync_settings run {context.run.run_id}")
    except SettingsError as exc:
        raise dg.Failure(description=f"nothing was changed: {exc}") from None
    before, after = update.before.as_strings(), update.after.as_strings()
    for key in update.changed:
        context.log.info(f"setting {key}: {before[key]} -> {after[key]}")
    if not update.changed:
        context.log.info("every given setting already had that value; nothing changed")
    context.add_output_metadata(
        {
            "changed": dg.MetadataValue.json({k: {"old": before[k], "new": after[k]} for k in update.changed}),
            "settings": dg.MetadataValue.md(settings_markdown(update.after)),
        }
    )
    return {k: after[k] for k in update.changed}


# A job's graph takes the job's name, which must differ from its op's: the graph gets its own name so that job and op
# can both be called update_sync_settings (what the operator looks for in the UI).
@dg.graph(name="update_sync_settings_graph")
def _update_sync_settings_graph() -> None:
    update_sync_settings_op()


update_sync_settings_job = _update_sync_settings_graph.to_job(
    name="update_sync_settings",
    description="The settings panel: in the launchpad, give only the settings to change, e.g. "
    "`ops: {update_sync_settings: {config: {sync_interval_minutes: 15}}}` — each field shows what the setting does. "
    "Invalid values fail the run and change nothing; changes apply from their next use, without a restart.",
    tags={"sync_pipeline/trigger": "update_sync_settings"},
)
