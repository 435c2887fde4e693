"""Jobs: the full seller sync, which the UI's Materialize button and the schedule run."""

from __future__ import annotations

import dagster as dg

seller_sync_job = dg.define_asset_job(
    "seller_sync_job",
    selection=dg.AssetSelection.groups("sellers"),
    description="Full seller sync: read and validate the sheet, apply it to the database, verify the result.",
)
