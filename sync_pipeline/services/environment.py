"""Environment configuration, resolved in one place: where the database and the sheet are, and Google's settings.

Every face (Dagster resources, the CLI, benchmarks) asks `Environment.from_env()`; nothing else reads `SYNC_*`
variables. Runtime-tunable thresholds are not here: they live in the `sync_config` table (`domain.settings`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The embedded default: the bundled sample sheet into a SQLite file under the checkout, whatever the working directory.
DEFAULT_SHEET_SOURCE = PROJECT_ROOT / "data" / "sample_sellers.csv"
DEFAULT_DATABASE_PATH = PROJECT_ROOT / "var" / "sync_pipeline.db"
DEFAULT_DATABASE_URL = f"sqlite:///{DEFAULT_DATABASE_PATH}"

DATABASE_URL_ENV = "SYNC_DATABASE_URL"
SHEET_SOURCE_ENV = "SYNC_SHEET_SOURCE"
SHEET_WORKSHEET_ENV = "SYNC_SHEET_WORKSHEET"
SERVICE_ACCOUNT_FILE_ENV = "SYNC_GOOGLE_SERVICE_ACCOUNT_FILE"
GOOGLE_CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"  # Google's own name, the fallback
SHEETS_API_URL_ENV = "SYNC_SHEETS_API_URL"
CONTRACT_ENV = "SYNC_CONTRACT"  # a sheet contract file (YAML); unset: the bundled default, the eleven built-in fields


@dataclass(frozen=True)
class Environment:
    """Where things are. A relative sheet path is relative to the working directory, as a user typing it expects."""

    database_url: str = DEFAULT_DATABASE_URL
    sheet_source: str = str(DEFAULT_SHEET_SOURCE)
    worksheet: str | None = None
    credentials_file: str | None = None
    sheets_api_url: str | None = None
    contract_path: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Environment:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        return cls(
            database_url=get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL,
            sheet_source=get(SHEET_SOURCE_ENV) or str(DEFAULT_SHEET_SOURCE),
            worksheet=get(SHEET_WORKSHEET_ENV),
            credentials_file=get(SERVICE_ACCOUNT_FILE_ENV) or get(GOOGLE_CREDENTIALS_ENV),
            sheets_api_url=get(SHEETS_API_URL_ENV),
            contract_path=get(CONTRACT_ENV),
        )

    def with_overrides(
        self,
        *,
        database_url: str | None = None,
        sheet_source: str | None = None,
        worksheet: str | None = None,
        contract_path: str | None = None,
    ) -> Environment:
        """Command-line options win over the environment."""
        return Environment(
            database_url=database_url or self.database_url,
            sheet_source=sheet_source or self.sheet_source,
            worksheet=worksheet or self.worksheet,
            credentials_file=self.credentials_file,
            sheets_api_url=self.sheets_api_url,
            contract_path=contract_path or self.contract_path,
        )


def safe_url(url: str) -> str:
    """A URL fit to show a person: the password replaced by ***. Text that is not a URL is returned as it is."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url
