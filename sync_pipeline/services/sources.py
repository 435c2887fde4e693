"""Where the sheet and the database are by default, and how a `--source` text becomes a sheet source."""

from __future__ import annotations

from pathlib import Path

from sync_pipeline.adapters.sheets.base import SheetSource
from sync_pipeline.adapters.sheets.file import FileSheetSource
from sync_pipeline.domain.errors import ErrorCategory, SyncError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SHEET_SOURCE = PROJECT_ROOT / "data" / "sample_sellers.csv"  # the embedded default: no account needed
DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'var' / 'sync_pipeline.db'}"
GSHEET_PREFIX = "gsheet:"


def build_source(text: str, *, worksheet: str | None = None, base_dir: Path | None = None) -> SheetSource:
    """`gsheet:KEY_OR_URL` for Google Sheets (credentials and API URL from the environment), else a file path."""
    if text.startswith(GSHEET_PREFIX):
        from sync_pipeline.adapters.sheets.gsheet import GoogleSheetSource  # gspread only when it is used

        spreadsheet = text[len(GSHEET_PREFIX) :].strip()
        if not spreadsheet:
            raise SyncError(ErrorCategory.CONFIGURATION, "gsheet: needs a spreadsheet key or URL, e.g. gsheet:1AbC…")
        return GoogleSheetSource(spreadsheet, worksheet=worksheet)
    if text.startswith(("http://", "https://")) and "docs.google.com/spreadsheets" in text:
        from sync_pipeline.adapters.sheets.gsheet import GoogleSheetSource

        return GoogleSheetSource(text, worksheet=worksheet)
    path = Path(text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return FileSheetSource(path, worksheet=worksheet) if worksheet else FileSheetSource(path)
