"""Loading the sheet contract in force: a YAML file (SYNC_CONTRACT, `--contract`), or the bundled default."""

from __future__ import annotations

from pathlib import Path

from sync_pipeline.domain.contract import ContractError, SheetContract, default_contract, parse_contract
from sync_pipeline.domain.errors import ErrorCategory, SyncError


def read_contract(path: str | Path) -> SheetContract:
    """The contract in the file at `path`; ContractError when it cannot be used (also when it cannot be read)."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(str(path), [f"the file cannot be read ({exc})"]) from None
    return parse_contract(text, str(path))


def load_contract(path: str | Path | None) -> SheetContract:
    """The contract a sync reads the sheet with: the file at `path`, or the default when None. A contract that cannot
    be used is a configuration error naming every problem: the sync stops before it reads the sheet."""
    if path is None:
        return default_contract()
    try:
        return read_contract(path)
    except ContractError as exc:
        raise SyncError(
            ErrorCategory.CONFIGURATION, f"{exc}\nFix the file (sync-pipeline contract check {path})."
        ) from None
