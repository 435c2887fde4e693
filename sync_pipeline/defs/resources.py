"""Dagster resources: the seller database and the sheet source, configured from the environment at run time."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from sync_pipeline.adapters.sheets.base import SheetSource
from sync_pipeline.services.database import Database, open_database
from sync_pipeline.services.sources import DEFAULT_DATABASE_URL, DEFAULT_SHEET_SOURCE, build_source

_OPEN: dict[str, Database] = {}  # one engine per URL and process, shared by the steps that run in it


class SyncDatabase(dg.ConfigurableResource):
    """The seller database. `url` defaults to $SYNC_DATABASE_URL, then to the embedded SQLite file under var/."""

    url: str | None = None

    def resolved_url(self) -> str:
        return self.url or os.environ.get("SYNC_DATABASE_URL") or DEFAULT_DATABASE_URL

    def open(self) -> Database:
        url = self.resolved_url()
        if url not in _OPEN:
            _OPEN[url] = open_database(url)
        return _OPEN[url]


class SellerSheet(dg.ConfigurableResource):
    """The seller sheet: a CSV/XLSX path or `gsheet:KEY_OR_URL`; defaults to $SYNC_SHEET_SOURCE, then the sample.

    Google credentials come from $SYNC_GOOGLE_SERVICE_ACCOUNT_FILE (or $GOOGLE_APPLICATION_CREDENTIALS) and an
    emulator or proxy from $SYNC_SHEETS_API_URL, all read when the run starts.
    """

    source: str | None = None
    worksheet: str | None = None

    def resolved_source(self) -> str:
        return self.source or os.environ.get("SYNC_SHEET_SOURCE") or str(DEFAULT_SHEET_SOURCE)

    def build(self) -> SheetSource:
        worksheet = self.worksheet or os.environ.get("SYNC_SHEET_WORKSHEET") or None
        return build_source(self.resolved_source(), worksheet=worksheet, base_dir=Path.cwd())
