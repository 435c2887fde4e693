"""deploy/dagster.postgres.yaml boots a Dagster instance whose run, event-log and schedule storage are in the real
Postgres (dagster-postgres over psycopg2), and the seller sync job runs on it once, its run and events stored there.

Creates and drops its own Postgres database for Dagster's storage and uses the `database_url` fixture's Postgres
database for the sellers. Does not start the webserver or daemon (test_ui_end_to_end.py does) nor touch SQLite.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from sync_pipeline.adapters.store.engine import make_engine
from sync_pipeline.definitions import defs
from sync_pipeline.defs.resources import SellerSheet, SyncDatabase
from sync_pipeline_tests.support.sample_sheet import write_csv
from sync_pipeline_tests.support.sheets import HEADER, seller_row

pytestmark = pytest.mark.postgres

PRODUCTION_YAML = Path(__file__).resolve().parents[1] / "deploy" / "dagster.postgres.yaml"


@pytest.fixture
def dagster_storage_env(postgres_server_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty Postgres database for Dagster's own storage, named through the variables the YAML reads."""
    name = f"spt_{uuid.uuid4().hex[:12]}_dagster"
    admin = make_engine(postgres_server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    server = sa.make_url(postgres_server_url)
    monkeypatch.setenv("DAGSTER_PG_HOST", server.host or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(server.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_USER", server.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", server.password or "")
    monkeypatch.setenv("DAGSTER_PG_DB", name)
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_production_instance_stores_runs_events_and_schedules_in_postgres(
    dagster_storage_env: str, database_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PRODUCTION_YAML, home / "dagster.yaml")
    sheet = write_csv(tmp_path / "sellers.csv", [HEADER, *(seller_row(f"PI{n:05d}") for n in range(1, 51))])
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        result = defs.resolve_job_def("seller_sync_job").execute_in_process(
            instance=instance,
            resources={"database": SyncDatabase(url=database_url), "sheet": SellerSheet(source=str(sheet))},
        )
        assert result.success
        assert instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.SUCCESS
    storage = make_engine(dagster_storage_env, poolclass=sa.pool.NullPool)
    try:
        with storage.connect() as conn:
            stored = conn.execute(sa.text("SELECT status FROM runs WHERE run_id = :id"), {"id": result.run_id}).scalar()
            events = conn.execute(
                sa.text("SELECT count(*) FROM event_logs WHERE run_id = :id"), {"id": result.run_id}
            ).scalar_one()
            tables = set(sa.inspect(conn).get_table_names())
    finally:
        storage.dispose()
    assert stored == "SUCCESS" and events > 10
    assert {"runs", "event_logs", "jobs", "job_ticks"} <= tables  # run, event-log and schedule storage
