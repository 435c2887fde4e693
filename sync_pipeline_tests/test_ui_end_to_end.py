"""Operating from the Dagster UI, end to end: a real `dagster-webserver` and `dagster-daemon` (QueuedRunCoordinator,
pool `seller_sync` limited to one run) with a temporary DAGSTER_HOME, driven through `DagsterGraphQLClient` — the API
the UI itself uses — against a fresh Postgres database and a generated sheet large enough that a sync takes seconds.

Launch and succeed; two launches at once (the second waits QUEUED); terminate the first mid-write (CANCELED, audit
row cancelled, every committed chunk kept) and the second then succeeds (the database equals the sheet); change a
setting with `update_sync_settings` and read it back with the CLI. Runs execute their steps in process (see
IN_PROCESS). One webserver and one daemon serve the whole module; the tests run in order and share the database.
Does not touch Google, e-mail or the project's own DAGSTER_HOME.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient

from sync_pipeline.adapters.store.tables import sync_audit_logs
from sync_pipeline.services.database import Database, open_database
from sync_pipeline.services.settings import update_settings
from sync_pipeline_tests.support import tamper
from sync_pipeline_tests.support.cli import parse_json_stdout, run_cli
from sync_pipeline_tests.support.db import created_database
from sync_pipeline_tests.support.processes import fail_if_exited, free_port, start, stop, wait_for
from sync_pipeline_tests.support.sample_sheet import write_csv
from sync_pipeline_tests.support.sheets import HEADER, seller_row

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SELLERS = 20_000  # with small chunks the write alone takes several seconds: time to see the queue and to cancel
CHUNK_SIZE = 200
# Steps run in the run worker itself: on 2 shared cores each step subprocess of the default multiprocess executor
# costs ~20 s of imports. Launch, queue and termination go through the same webserver, daemon and run worker.
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
SMALL = 200  # the first sync's sheet: the first sellers of the large one, same content
STARTUP_SECONDS = 240  # 2 shared cores: importing Dagster in the webserver, daemon and code servers is slow
RUN_SECONDS = 600
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
KEYS = [f"UE{n:05d}" for n in range(1, SELLERS + 1)]


@dataclass
class Ui:
    client: DagsterGraphQLClient
    db: Database
    database_url: str
    sheet: Path
    small_sheet: Path
    home: Path


@pytest.fixture(scope="module")
def fresh_postgres_url(postgres_template: tuple[str, str]) -> Iterator[str]:
    server_url, template = postgres_template
    with created_database(server_url, "ui", template) as url:
        yield url


@pytest.fixture(scope="module")
def ui(fresh_postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    base = tmp_path_factory.mktemp("ui_e2e")
    home = base / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    large = write_csv(base / "sellers.csv", [HEADER, *(seller_row(k) for k in KEYS)])
    small = write_csv(base / "small.csv", [HEADER, *(seller_row(k) for k in KEYS[:SMALL])])
    db = open_database(fresh_postgres_url)
    # Small chunks so that the write has many boundaries; the daemon's schedule is paused so that it starts nothing
    # of its own while the tests count runs (its ticks are skipped, saying so).
    update_settings(db, {"chunk_size": CHUNK_SIZE, "sync_paused": True}, changed_by="test_ui_end_to_end")
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SYNC_", "DAGSTER_", "GOOGLE_"))}
    env = {
        **clean,
        "DAGSTER_HOME": str(home),
        "SYNC_DATABASE_URL": fresh_postgres_url,
        "SYNC_SHEET_SOURCE": str(large),
        # Starting a run is a gRPC call to the code server that imports the project first; on a loaded 2-core machine
        # that can pass Dagster's 60 s default and the queue would give up on the run.
        "DAGSTER_GRPC_TIMEOUT_SECONDS": "180",
    }
    workspace = str(REPO_ROOT / "workspace.yaml")
    logs = [base / "webserver.log", base / "daemon.log"]
    processes = [
        start(
            [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", workspace],
            cwd=REPO_ROOT,
            env=env,
            log=logs[0],
        ),
        start([str(BIN / "dagster-daemon"), "run", "-w", workspace], cwd=REPO_ROOT, env=env, log=logs[1]),
    ]
    # `timeout` stops pytest with SIGTERM: turn it into KeyboardInterrupt so that this teardown still runs.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        client = wait_for("the webserver", lambda: _client_when_loaded(port, processes, logs), STARTUP_SECONDS, 1.0)
        yield Ui(client, db, fresh_postgres_url, large, small, home)
    finally:
        signal.signal(signal.SIGTERM, previous)
        for process in processes:
            stop(process)
        db.engine.dispose()


LOCATIONS_QUERY = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


def _client_when_loaded(
    port: int, processes: list[subprocess.Popen[bytes]], logs: list[Path]
) -> DagsterGraphQLClient | None:
    """A client once the webserver answers and has loaded the code location; fails fast when a process died."""
    fail_if_exited(processes, logs)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": LOCATIONS_QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            entries = json.load(answer)["data"]["workspaceOrError"]["locationEntries"]
    except (OSError, KeyError, TypeError, ValueError):
        return None
    if not entries or any(e["loadStatus"] != "LOADED" for e in entries):
        return None
    return DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60)


def _status(ui: Ui, run_id: str) -> DagsterRunStatus:
    return ui.client.get_run_status(run_id)


def _finished(ui: Ui, run_id: str) -> DagsterRunStatus:
    return wait_for(
        f"run {run_id} to finish", lambda: s if (s := _status(ui, run_id)) in FINISHED else None, RUN_SECONDS
    )


def _launch(ui: Ui, job: str, run_config: dict[str, Any] | None = None) -> str:
    return ui.client.submit_job_execution(job, run_config=run_config or {})


def _audit(ui: Ui, run_id: str) -> dict[str, Any] | None:
    with ui.db.engine.connect() as conn:
        row = (
            conn.execute(
                sa.select(sync_audit_logs).where(sync_audit_logs.c.run_id == run_id, sync_audit_logs.c.kind != "resync")
            )
            .mappings()
            .first()
        )
    return dict(row) if row is not None else None


def test_launch_seller_sync_job_and_see_it_succeed(ui: Ui) -> None:
    """Also the first run of the pool: Dagster 1.13's queue learns a pool's default limit (dagster.yaml) in the
    dequeue pass that first sees the pool, and only applies it from the next pass — two runs launched together into
    a brand-new instance would both start (the database lock would still refuse the second sync)."""
    run_id = _launch(
        ui, "seller_sync_job", {**IN_PROCESS, "resources": {"sheet": {"config": {"source": str(ui.small_sheet)}}}}
    )
    assert _finished(ui, run_id) == DagsterRunStatus.SUCCESS
    row = _audit(ui, run_id)
    assert row is not None and row["status"] == "succeeded" and row["inserted_count"] == SMALL
    assert tamper.seller_numbers(ui.db.engine) == set(KEYS[:SMALL])


def test_launch_two_syncs_the_second_waits_queued_cancel_the_first_mid_write_and_the_second_succeeds(ui: Ui) -> None:
    first = _launch(ui, "seller_sync_job", IN_PROCESS)
    second = _launch(ui, "seller_sync_job", IN_PROCESS)

    def started() -> bool:
        status = _status(ui, first)
        assert status not in FINISHED, f"the first run ended {status.value} before it could be watched"
        return status == DagsterRunStatus.STARTED

    wait_for("the first run to start", started, RUN_SECONDS)

    def mid_write() -> dict[str, Any] | None:
        row = _audit(ui, first)
        progress = (row or {}).get("progress") or {}
        return progress if progress.get("phase") == "update" and 0 < progress["done"] < progress["total"] else None

    progress = wait_for("the first sync to be writing", mid_write, RUN_SECONDS, 0.05)
    assert _status(ui, second) == DagsterRunStatus.QUEUED  # the pool seller_sync admits one run at a time
    ui.client.terminate_run(first)
    assert _finished(ui, first) == DagsterRunStatus.CANCELED
    cancelled = wait_for(
        "the first sync's audit row to close", lambda: (r := _audit(ui, first)) and r["finished_at"] and r, 60
    )
    assert cancelled["status"] == "cancelled"
    with ui.db.engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT count(*) FROM sellers")).scalar_one()
    # Every committed chunk is kept whole, and nothing after the cancel: whole chunks only, short of the sheet.
    assert SMALL + progress["done"] <= kept < SELLERS and (kept - SMALL) % CHUNK_SIZE == 0

    assert _finished(ui, second) == DagsterRunStatus.SUCCESS
    row = _audit(ui, second)
    assert row is not None and row["status"] == "succeeded" and row["verification_status"] == "clean"
    assert row["inserted_count"] == SELLERS - kept  # the second sync completes the rest, the database equals the sheet
    assert tamper.seller_numbers(ui.db.engine) == set(KEYS)


def test_update_sync_settings_from_the_launchpad_is_seen_by_the_cli(ui: Ui) -> None:
    config = {**IN_PROCESS, "ops": {"update_sync_settings": {"config": {"sync_interval_minutes": 17}}}}
    assert _finished(ui, _launch(ui, "update_sync_settings", config)) == DagsterRunStatus.SUCCESS
    shown = run_cli(["settings", "--json", "--database-url", ui.database_url])
    assert shown.returncode == 0, shown.stderr
    assert parse_json_stdout(shown)["sync_interval_minutes"] == "17"
    # An invalid value failing the run and changing nothing: test_settings_properties.py, in-process (one run less).
