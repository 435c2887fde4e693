"""How the configured sheet source text becomes a sheet source: a CSV/XLSX path, or a Google Sheet."""

from __future__ import annotations

from pathlib import Path

from sync_pipeline.adapters.sheets.base import SheetSource
from sync_pipeline.adapters.sheets.file import FileSheetSource
from sync_pipeline.domain.errors import ErrorCategory, SyncError
from sync_pipeline.services.environment import Environment

GSHEET_PREFIX = "gsheet:"


def build_source(env: Environment, *, base_dir: Path | None = None) -> SheetSource:
    """`gsheet:KEY_OR_URL` (or a Google Sheets URL) for Google Sheets, else a file path relative to `base_dir`."""
    text = env.sheet_source
    worksheet = env.worksheet
    spreadsheet: str | None = None
    if text.startswith(GSHEET_PREFIX):
        spreadsheet = text[len(GSHEET_PREFIX) :].strip()
        if not spreadsheet:
            raise SyncError(ErrorCategory.CONFIGURATION, "gsheet: needs a spreadsheet key or URL, e.g. gsheet:1AbC…")
    elif text.startswith(("http://", "https://")) and "docs.google.com/spreadsheets" in text:
        spreadsheet = text
    if spreadsheet is not None:
        from sync_pipeline.adapters.sheets.gsheet import GoogleSheetSource  # gspread only when it is used

        return GoogleSheetSource(
            spreadsheet,
            worksheet=worksheet,
            credentials_file=env.credentials_file,
            api_url=env.sheets_api_url,
            environ={},  # resolved by Environment; the adapter reads no variables itself
        )
    path = Path(text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return FileSheetSource(path, worksheet=worksheet) if worksheet else FileSheetSource(path)
