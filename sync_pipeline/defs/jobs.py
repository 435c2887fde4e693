"""Jobs: the full seller sync, which the UI's Materialize button and the schedule run."""

from __future__ import annotations

import dagster as dg

seller_sync_job = dg.define_asset_job(
    "seller_sync_job",
    # sync_health runs last in the same run, so the dashboard is fresh after every sync (defs/health.py says why).
    # By group, not by key: a Definitions holding only the seller assets (tests) still resolves this job.
    selection=dg.AssetSelection.groups("sellers", "sync_health"),
    description="Full seller sync: read and validate the sheet, apply it to the database, verify the result, "
    "refresh the health dashboard.",
)
