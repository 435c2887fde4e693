"""How the configured sheet source text becomes a sheet source: a CSV/XLSX path, or a Google Sheet."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sync_pipeline.adapters.sheets.base import RetryListener, SheetSource
from sync_pipeline.adapters.sheets.file import FileSheetSource
from sync_pipeline.domain.errors import ErrorCategory, SyncError
from sync_pipeline.domain.sheet import RawSheet
from sync_pipeline.services.environment import Environment

GSHEET_PREFIX = "gsheet:"


@dataclass(frozen=True)
class ContractedSource:
    """A sheet source with the sheet contract it is read with (`SYNC_CONTRACT` / `--contract`): the contract file is
    loaded when the sync reads the sheet (`services.contracts`), so a broken one fails that sync, with its audit
    entry, before anything is read or written. Everything else is the wrapped source's."""

    source: SheetSource
    contract_path: str | None

    @property
    def description(self) -> str:
        return self.source.description

    def read(self, on_retry: RetryListener | None = None) -> RawSheet:
        return self.source.read(on_retry=on_retry)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)


def contract_path_of(source: SheetSource | None) -> str | None:
    """The contract file a source is read with (None: the bundled default)."""
    return getattr(source, "contract_path", None) if source is not None else None


def build_source(env: Environment, *, base_dir: Path | None = None) -> SheetSource:
    """`gsheet:KEY_OR_URL` (or a Google Sheets URL) for Google Sheets, else a file path relative to `base_dir`; with
    the environment's sheet contract (`ContractedSource`) when one is set."""
    source = _build_source(env, base_dir=base_dir)
    return ContractedSource(source, env.contract_path) if env.contract_path else source


def _build_source(env: Environment, *, base_dir: Path | None = None) -> SheetSource:
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
