"""Reading the sheet for a sync, a dry run or `verify`: fetched once, normalised and validated against the rules in
force, with the header mapping of the last successful full sync (to notice a column that disappeared since)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace

import pyarrow as pa

from sync_pipeline.adapters.sheets.base import RetryEvent, SheetSource
from sync_pipeline.domain.audit import SyncKind, SyncStatus
from sync_pipeline.domain.contract import ContractError, SheetContract
from sync_pipeline.domain.errors import ErrorCategory, SyncError
from sync_pipeline.domain.ingest import IngestRules, ingest_sheet
from sync_pipeline.domain.settings import Settings
from sync_pipeline.domain.sheet import SheetSnapshot
from sync_pipeline.services.database import Database
from sync_pipeline.services.sync import ProgressListener

# Full syncs: a resync's header mapping is the same sheet's, but the "column vanished" check compares full syncs.
FULL_SYNC_KINDS = (SyncKind.SCHEDULED, SyncKind.MANUAL, SyncKind.RETRY)


def previous_mapping(db: Database) -> Mapping[str, str] | None:
    """The header mapping of the last successful full sync, to notice a column that disappeared since."""
    with db.engine.connect() as conn:
        last = db.audit.latest(conn, statuses=[SyncStatus.SUCCEEDED, SyncStatus.PARTIAL], kinds=list(FULL_SYNC_KINDS))
    return (last or {}).get("header_mapping") or None


def read_snapshot(
    db: Database,
    source: SheetSource,
    settings: Settings,
    *,
    on_retry: Callable[[RetryEvent], None] | None = None,
    progress: ProgressListener | None = None,
    contract: SheetContract | None = None,
) -> SheetSnapshot:
    """The sheet read once, normalised and validated: what a sync, a dry run and `verify` all start from.

    The contract (default: the source's, `services.sources.ContractedSource`) and its combination with the settings
    are checked before the sheet is fetched: a contract that cannot work reads nothing."""
    from sync_pipeline.services.contracts import load_contract
    from sync_pipeline.services.sources import contract_path_of

    if contract is None:
        contract = load_contract(contract_path_of(source))
    try:
        rules = IngestRules.from_settings(settings, previous_mapping=previous_mapping(db), contract=contract)
    except ContractError as exc:
        raise SyncError(ErrorCategory.CONFIGURATION, str(exc)) from None
    t0 = time.perf_counter()
    raw = source.read(on_retry=on_retry)
    fetch_s = time.perf_counter() - t0
    rows = max(len(raw.values) - 1, 0)  # the sheet's rows under the header: what validation goes through
    if progress is not None:
        progress("validate", 0, rows)
    snapshot = ingest_sheet(raw, rules)
    del raw  # the sheet's text: the snapshot holds what the sync needs
    # Arrow's allocator keeps what it freed for its own reuse; the rest of the sync allocates through Python and
    # numpy, so hand it back (hundreds of MB at a million rows) rather than carry it as resident memory.
    pa.default_memory_pool().release_unused()
    if progress is not None:
        progress("validate", rows, rows)
    return replace(snapshot, fetch_seconds=fetch_s)
