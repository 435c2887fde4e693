"""Dagster resources: the seller database and the sheet source, configured with `dg.EnvVar`s.

Each field is `dg.EnvVar(NAME)` when that variable is set where the definitions load, so the Resources tab shows
which variable a value comes from (never the value: a database URL may carry a password) and the value is read when
a run starts. An unset variable leaves the field empty and the embedded default applies (Dagster's EnvVar has no
default and would fail every run instead). The database engine lives as long as the resource's execution.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from sync_pipeline.adapters.sheets.base import SheetSource
from sync_pipeline.services.database import Database, open_database
from sync_pipeline.services.environment import (
    CONTRACT_ENV,
    DATABASE_URL_ENV,
    DEFAULT_DATABASE_URL,
    DEFAULT_SHEET_SOURCE,
    SERVICE_ACCOUNT_FILE_ENV,
    SHEET_SOURCE_ENV,
    SHEET_WORKSHEET_ENV,
    SHEETS_API_URL_ENV,
    Environment,
    safe_url,
)
from sync_pipeline.services.sources import build_source


def env_var(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """`dg.EnvVar(name)` where the variable is set, else None (the resource's embedded default)."""
    env = os.environ if environ is None else environ
    return dg.EnvVar(name) if env.get(name, "").strip() else None


class SyncDatabase(dg.ConfigurableResource):
    """The seller database (SQLAlchemy URL): $SYNC_DATABASE_URL, else the embedded SQLite file under var/."""

    url: str | None = None
    _db: Database | None = PrivateAttr(default=None)

    @property
    def resolved_url(self) -> str:
        return self.url or DEFAULT_DATABASE_URL

    @property
    def safe_url(self) -> str:
        return safe_url(self.resolved_url)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._db = open_database(self.resolved_url)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._db is not None:
            self._db.engine.dispose()
            self._db = None

    def open(self) -> Database:
        """The database for this execution (opened, and migrated when empty, when the execution set it up)."""
        if self._db is None:  # used outside a Dagster execution (a direct call in a test)
            self._db = open_database(self.resolved_url)
        return self._db


class SellerSheet(dg.ConfigurableResource):
    """The seller sheet: a CSV/XLSX path or `gsheet:KEY_OR_URL` ($SYNC_SHEET_SOURCE, else the bundled sample).

    For Google Sheets: the worksheet title ($SYNC_SHEET_WORKSHEET), the service-account key file
    ($SYNC_GOOGLE_SERVICE_ACCOUNT_FILE) and an emulator or proxy URL ($SYNC_SHEETS_API_URL). The sheet contract
    ($SYNC_CONTRACT): a YAML file naming every column, its kind and rules; unset, the eleven built-in fields.
    """

    source: str | None = None
    worksheet: str | None = None
    credentials_file: str | None = None
    api_url: str | None = None
    contract: str | None = Field(
        default=None,
        description=(
            "Sheet contract file (YAML), from $SYNC_CONTRACT: every column of the sheet as a field with its header, "
            "aliases, kind (key, text, phone, email, date, datetime, amount, integer, decimal, boolean, choice) "
            "and rules. Unset: the eleven built-in fields. Start one with `sync-pipeline contract show`."
        ),
    )

    def build(self) -> SheetSource:
        env = Environment(
            sheet_source=self.source or str(DEFAULT_SHEET_SOURCE),
            worksheet=self.worksheet,
            credentials_file=self.credentials_file,
            sheets_api_url=self.api_url,
            contract_path=self.contract,
        )
        return build_source(env, base_dir=Path.cwd())


class AlertWebhooks(dg.ConfigurableResource):
    """The chat channels for alerts, each on when its webhook URL is set: Slack ($SYNC_SLACK_WEBHOOK_URL), Teams
    Workflows ($SYNC_TEAMS_WEBHOOK_URL) and a plain JSON webhook ($SYNC_ALERT_WEBHOOK_URL). The URLs are
    credentials: the Resources tab shows the variable's name, never the value."""

    slack_webhook_url: str | None = None
    teams_webhook_url: str | None = None
    alert_webhook_url: str | None = None

    def webhooks(self) -> Any:
        from sync_pipeline.domain.alert_chat import Channel
        from sync_pipeline.services.chat_delivery import Webhooks

        urls = {
            Channel.SLACK: self.slack_webhook_url,
            Channel.TEAMS: self.teams_webhook_url,
            Channel.WEBHOOK: self.alert_webhook_url,
        }
        return Webhooks({c: u.strip() for c, u in urls.items() if u and u.strip()})


def resources_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The project's resources, each field an EnvVar where its variable is set."""
    google_credentials = env_var(SERVICE_ACCOUNT_FILE_ENV, environ) or env_var(
        "GOOGLE_APPLICATION_CREDENTIALS", environ
    )
    return {
        "database": SyncDatabase(url=env_var(DATABASE_URL_ENV, environ)),
        "sheet": SellerSheet(
            source=env_var(SHEET_SOURCE_ENV, environ),
            worksheet=env_var(SHEET_WORKSHEET_ENV, environ),
            credentials_file=google_credentials,
            api_url=env_var(SHEETS_API_URL_ENV, environ),
            contract=env_var(CONTRACT_ENV, environ),
        ),
        "webhooks": AlertWebhooks(
            slack_webhook_url=env_var("SYNC_SLACK_WEBHOOK_URL", environ),
            teams_webhook_url=env_var("SYNC_TEAMS_WEBHOOK_URL", environ),
            alert_webhook_url=env_var("SYNC_ALERT_WEBHOOK_URL", environ),
        ),
    }


def resources_for(env: Environment) -> dict[str, Any]:
    """Resources with the values of `env` (the CLI's options over the environment), for an in-process run."""
    return {
        "database": SyncDatabase(url=env.database_url),
        "sheet": SellerSheet(
            source=env.sheet_source,
            worksheet=env.worksheet,
            credentials_file=env.credentials_file,
            api_url=env.sheets_api_url,
            contract=env.contract_path,
        ),
    }
