"""Audit retention as a Dagster job: archive what is older than the `retention_days` setting (runs daily).

No `from __future__ import annotations` here: Dagster reads the annotations at definition time.
"""

import dagster as dg

from sync_pipeline.defs.resources import SyncDatabase
from sync_pipeline.services.retention import archive_older_than


@dg.op(out=dg.Out(dict, description="rows archived per live table"))
def archive_old_audit_rows(context: dg.OpExecutionContext, database: SyncDatabase) -> dg.Output:
    """Move audit, record, error and metric rows and acknowledged alerts older than `retention_days` into the
    archive tables, in short batches (a running sync is not blocked). `sync-pipeline audit --include-archive` still
    finds them."""
    result = archive_older_than(database.open())
    context.log.info(f"archived {result.total} rows older than {result.cutoff:%Y-%m-%d %H:%M} UTC: {result.moved}")
    metadata: dict[str, int | str] = {f"archived_{table}": n for table, n in result.moved.items()}
    metadata.update(archived_rows=result.total, batches=result.batches, cutoff=result.cutoff.isoformat())
    return dg.Output(dict(result.moved), metadata=metadata)


@dg.job(description="Archive audit history older than the retention_days setting (default 90 days).")
def audit_retention_job() -> None:
    archive_old_audit_rows()
