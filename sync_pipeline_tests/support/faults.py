"""Fault-suite helpers: compare the whole database with the valid sheet by content hash, and read the audit log.

The comparison uses the same content hashes as verification: the sheet's (domain/hashing.py, computed at ingestion)
against the database's (computed in SQL over the stored sellers and properties by SellerStore.verification_hashes).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sync_pipeline.adapters.sheets.file import FileSheetSource
from sync_pipeline.adapters.store.sellers import SellerStore
from sync_pipeline.adapters.store.tables import sync_audit_logs, sync_retry_queue
from sync_pipeline.domain.ingest import IngestRules, ingest_sheet
from sync_pipeline.domain.settings import Settings
from sync_pipeline.domain.sheet import RawSheet

SAMPLE = 10  # seller numbers quoted when the comparison fails


def valid_sheet_hashes(rows: Sequence[Sequence[str]] | Path) -> dict[str, str]:
    """Seller number -> content hash of every valid row of the sheet (a CSV file or rows with the header first)."""
    raw = FileSheetSource(rows).read() if isinstance(rows, Path) else RawSheet("expected", [list(r) for r in rows])
    snapshot = ingest_sheet(raw, IngestRules.from_settings(Settings()))
    return dict(zip(snapshot.valid["seller_number"], snapshot.valid["row_hash"], strict=True))


def database_hashes(engine: sa.Engine) -> dict[str, str | None]:
    """Seller number -> content hash of what the database holds (None for a seller without its property record)."""
    with engine.connect() as conn:
        frame = SellerStore().verification_hashes(conn)
    return {
        key: (digest if has_property else None)
        for key, digest, has_property in zip(
            frame["seller_number"], frame["db_hash"], frame["has_property"], strict=True
        )
    }


def assert_database_matches_sheet(engine: sa.Engine, rows: Sequence[Sequence[str]] | Path) -> int:
    """The database holds exactly the valid sheet rows, row for row by content hash; returns how many."""
    expected = valid_sheet_hashes(rows)
    actual = database_hashes(engine)
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    differ = sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k])
    assert (missing, extra, differ) == ([], [], []), (
        f"database differs from the sheet: {len(missing)} missing {missing[:SAMPLE]}, {len(extra)} extra "
        f"{extra[:SAMPLE]}, {len(differ)} with other content {differ[:SAMPLE]}"
    )
    return len(expected)


def sync_rows(engine: sa.Engine) -> list[dict[str, Any]]:
    """Every audit row, oldest first."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(sync_audit_logs).order_by(sync_audit_logs.c.id)).mappings()]


def queue(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {r["seller_number"]: dict(r) for r in conn.execute(sa.select(sync_retry_queue)).mappings()}


def rules(events: Sequence[dict[str, Any]]) -> list[str]:
    return [e["rule"] for e in events]
