"""A successful seller_resync_job run refreshes sync_health: its gap count follows the repair at once.

On SQLite through the real Dagster definitions: a synced seller is deleted behind the sync's back (a gap), the
sync_health asset says so, then seller_resync_job repairs it and sync_health's latest materialisation shows no gap
without another full sync. Does not touch Postgres, the sensors or the command line.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from sync_pipeline.definitions import defs
from sync_pipeline.defs.health import SYNC_HEALTH
from sync_pipeline.defs.resources import SellerSheet, SyncDatabase
from sync_pipeline_tests.support.sample_sheet import write_csv
from sync_pipeline_tests.support.sheets import HEADER, seller_row

KEYS = [f"HR{i:05d}" for i in range(1, 11)]
ROWS = [HEADER, *(seller_row(k) for k in KEYS)]


def test_a_resync_run_refreshes_sync_health(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "sellers.csv", ROWS)
    url = f"sqlite:///{tmp_path / 'sellers.db'}"
    resources = {"database": SyncDatabase(url=url), "sheet": SellerSheet(source=str(csv))}
    with dg.instance_for_test() as instance:
        synced = defs.resolve_job_def("seller_sync_job").execute_in_process(instance=instance, resources=resources)
        assert synced.success
        engine = sa.create_engine(url)
        with engine.begin() as conn:  # a seller deleted behind the sync's back
            conn.execute(
                sa.text("DELETE FROM properties WHERE seller_id IN (SELECT id FROM sellers WHERE seller_number = :k)"),
                {"k": KEYS[3]},
            )
            conn.execute(sa.text("DELETE FROM sellers WHERE seller_number = :k"), {"k": KEYS[3]})
        engine.dispose()
        before = instance.get_latest_materialization_event(SYNC_HEALTH)
        assert before is not None and before.run_id == synced.run_id

        result = defs.resolve_job_def("seller_resync_job").execute_in_process(
            instance=instance,
            resources=resources,
            run_config={"ops": {"resync_sellers": {"config": {"seller_numbers": [KEYS[3]]}}}},
        )
        assert result.success
        after = instance.get_latest_materialization_event(SYNC_HEALTH)
        assert after is not None and after.run_id == result.run_id  # refreshed by the resync run itself
        assert after.asset_materialization is not None
        metadata = after.asset_materialization.metadata
        assert metadata["gap_count"] == dg.IntMetadataValue(0) and metadata["open_alerts"] == dg.IntMetadataValue(0)
