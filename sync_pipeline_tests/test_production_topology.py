"""Production as deploy/ describes it, started from those files: a gRPC code server, the daemon, the admin webserver and
the read-only viewer webserver, each from its systemd unit's ExecStart (paths mapped onto this checkout, hosts 127.0.0.1
and free ports), each given exactly the variables its environment-file templates name, with Dagster's storage in a
fresh Postgres database (deploy/dagster.postgres.yaml) and the seller database in another.

Through GraphQL (DagsterGraphQLClient and the UI's own queries): a sync launched on the admin webserver is queued,
started by the daemon through the code server and succeeds — only the code server has SYNC_* settings, so the run
worker saw them there; the database equals the sheet; the run, its events and the schedule's ticks are in Postgres.
The viewer refuses a launch, a terminate, update_sync_settings and a reload, and serves the run, the asset checks and
sync_health's metadata. The code server restarted with another SYNC_SHEET_SOURCE is picked up by a location reload on
the admin webserver (the viewer follows by itself), neither webserver restarted, and the next run reads the new sheet.
Finally every process started, children included, is stopped. One set of processes serves the module; the tests run
in order. Runs execute their steps in process (as in test_ui_end_to_end.py, for time on 2 shared cores).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dagster import DagsterEventType as E
from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
from dagster_graphql.client.utils import ReloadRepositoryLocationStatus

from sync_pipeline.adapters.store.engine import make_engine
from sync_pipeline.adapters.store.tables import sync_audit_logs, sync_config
from sync_pipeline.services.database import Database, open_database
from sync_pipeline.services.settings import update_settings
from sync_pipeline_tests.support.db import created_database
from sync_pipeline_tests.support.deploy import DEPLOY, REPO_ROOT, unit, with_option
from sync_pipeline_tests.support.faults import assert_database_matches_sheet
from sync_pipeline_tests.support.processes import (
    alive,
    descendants,
    fail_if_exited,
    free_port,
    port_open,
    start,
    stop,
    wait_for,
)
from sync_pipeline_tests.support.sample_sheet import write_csv
from sync_pipeline_tests.support.sheets import HEADER, seller_row

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

LOCATION = "sync_pipeline"
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
FIRST = [f"PT{n:05d}" for n in range(1, 201)]
SECOND = [f"PT{n:05d}" for n in range(1, 261)]  # the sheet of the redeployed code server: 60 sellers more
STARTUP_SECONDS = 240  # 2 shared cores: four processes importing Dagster, the code server loading the project
RUN_SECONDS = 300
TICK_SECONDS = 150  # the schedule ticks once a minute, its first tick the minute after the daemon starts
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
SERVICES = ("code-server", "daemon", "admin", "viewer")
LOCATIONS_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries {
  name loadStatus updatedTimestamp versionKey } } } }"""


@dataclass
class Topology:
    base: Path
    env: dict[str, dict[str, str]]  # per service, as systemd would give it
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen[bytes]]
    db: Database
    storage: sa.Engine  # Dagster's own Postgres database
    first_sheet: Path
    second_sheet: Path
    runs: dict[str, str] = field(default_factory=dict)  # what the earlier tests launched, by purpose

    def client(self, service: str) -> DagsterGraphQLClient:
        return DagsterGraphQLClient("127.0.0.1", port_number=self.ports[service], timeout=60)

    def logs(self) -> list[Path]:
        return sorted(self.base.glob("*.log"))

    def graphql(self, service: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.ports[service]}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            body = json.load(answer)
        assert "errors" not in body, body["errors"]
        return dict(body["data"])


def _service_env(service: str, values: dict[str, str], base: dict[str, str]) -> dict[str, str]:
    """What systemd gives the unit: the names its environment files list, with the test's values ('' otherwise)."""
    return {**base, **{name: values.get(name, "") for name in unit(service).environment_names()}}


def _argv(top: Topology, service: str) -> list[str]:
    argv = unit(service).command("ExecStart", top.env[service])
    if service in ("admin", "viewer"):  # the units' fixed ports and the viewer's 0.0.0.0: 127.0.0.1 and free ports
        argv = with_option(with_option(argv, ("-h", "--host"), "127.0.0.1"), ("-p", "--port"), str(top.ports[service]))
    return argv


def _start(top: Topology, service: str) -> None:
    top.processes[service] = start(
        _argv(top, service), cwd=REPO_ROOT, env=top.env[service], log=top.base / f"{service}.log"
    )


def _start_code_server(top: Topology) -> None:
    """Start it and run the unit's own ExecStartPost readiness check (`dagster api grpc-health-check` until it
    passes)."""
    _start(top, "code-server")
    health = unit("code-server").command("ExecStartPost", top.env["code-server"])
    assert any("grpc-health-check" in word for word in health)
    check = subprocess.Popen(health, cwd=REPO_ROOT, env=top.env["code-server"], start_new_session=True)
    try:
        wait_for(
            "the code server's health check",
            lambda: fail_if_exited([top.processes["code-server"]], top.logs()) or check.poll() is not None,
            STARTUP_SECONDS,
            0.5,
        )
    finally:
        stop(check)
    assert check.returncode == 0


def _locations(top: Topology, service: str) -> dict[str, dict[str, Any]]:
    entries = top.graphql(service, LOCATIONS_QUERY)["workspaceOrError"]["locationEntries"]
    return {e["name"]: e for e in entries}


def _serving(top: Topology, service: str) -> bool:
    """/server_info answers (the units' health endpoint) and the code location is loaded."""
    fail_if_exited(top.processes.values(), top.logs())
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{top.ports[service]}/server_info", timeout=10) as answer:
            info = json.load(answer)
        return "dagster_version" in info and _locations(top, service)[LOCATION]["loadStatus"] == "LOADED"
    except (OSError, KeyError, ValueError):
        return False


@pytest.fixture(scope="module")
def top(postgres_template: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    server_url, template = postgres_template
    base = tmp_path_factory.mktemp("production")
    home = base / "dagster_home"
    home.mkdir()
    shutil.copyfile(DEPLOY / "dagster.postgres.yaml", home / "dagster.yaml")
    first = write_csv(base / "first.csv", [HEADER, *(seller_row(k) for k in FIRST)])
    second = write_csv(base / "second.csv", [HEADER, *(seller_row(k) for k in SECOND)])
    with (
        created_database(server_url, "sellers", template) as sellers_url,
        created_database(server_url, "dagster") as storage_url,
    ):
        db = open_database(sellers_url)
        # The schedule ticks but starts nothing while the tests count runs (each tick is skipped, saying why).
        update_settings(db, {"sync_paused": True}, changed_by="test_production_topology")
        server = sa.make_url(server_url)
        values = {  # every value the deployment sets; each name must be in the templates (checked below)
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_HOST": server.host or "127.0.0.1",
            "DAGSTER_PG_PORT": str(server.port or 5432),
            "DAGSTER_PG_USER": server.username or "postgres",
            "DAGSTER_PG_PASSWORD": server.password or "",
            "DAGSTER_PG_DB": sa.make_url(storage_url).database or "",
            "SYNC_CODE_SERVER_HOST": "127.0.0.1",
            "SYNC_CODE_SERVER_PORT": str(free_port()),
            "SYNC_DATABASE_URL": sellers_url,
            "SYNC_SHEET_SOURCE": str(first),
        }
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("SYNC_", "DAGSTER_", "GOOGLE_"))}
        # Not a deployment setting: on a loaded 2-core machine starting a run can pass Dagster's 60 s gRPC default.
        clean["DAGSTER_GRPC_TIMEOUT_SECONDS"] = "180"
        env = {service: _service_env(service, values, clean) for service in SERVICES}
        named = set().union(*(env[s] for s in SERVICES)) - set(clean)
        assert set(values) <= named, f"set by the test but named by no template: {set(values) - named}"
        top = Topology(
            base, env, {"admin": free_port(), "viewer": free_port()}, {}, db,
            make_engine(storage_url, poolclass=sa.pool.NullPool), first, second,
        )  # fmt: skip
        # `timeout` stops pytest with SIGTERM: turn it into KeyboardInterrupt so that this teardown still runs.
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            _start_code_server(top)  # the units' order: the others are After= the code server
            for service in ("daemon", "admin", "viewer"):
                _start(top, service)
            for service in ("admin", "viewer"):
                wait_for(f"the {service} webserver", lambda s=service: _serving(top, s), STARTUP_SECONDS, 1.0)
            yield top
        finally:
            signal.signal(signal.SIGTERM, previous)
            for process in top.processes.values():
                stop(process)
            db.engine.dispose()
            top.storage.dispose()


def _finished(top: Topology, run_id: str) -> DagsterRunStatus:
    client = top.client("admin")
    return wait_for(
        f"run {run_id} to finish", lambda: s if (s := client.get_run_status(run_id)) in FINISHED else None, RUN_SECONDS
    )


def _event_types(top: Topology, run_id: str) -> list[str]:
    with top.storage.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT dagster_event_type FROM event_logs WHERE run_id = :id ORDER BY id"), {"id": run_id}
        )
        return [r[0] for r in rows if r[0]]


def _audit(top: Topology, run_id: str) -> dict[str, Any]:
    with top.db.engine.connect() as conn:
        query = sa.select(sync_audit_logs).where(sync_audit_logs.c.run_id == run_id, sync_audit_logs.c.kind != "resync")
        row = conn.execute(query).mappings().one()
    return dict(row)


def _refused(call: Any) -> str:
    """The type of the error a read-only webserver answers with (the call must fail)."""
    with pytest.raises(DagsterGraphQLClientError) as refused:
        call()
    return str(refused.value.args[0])


def test_a_sync_launched_on_the_admin_webserver_is_queued_started_by_the_daemon_through_the_code_server_and_succeeds(
    top: Topology,
) -> None:
    run_id = top.client("admin").submit_job_execution("seller_sync_job", run_config=IN_PROCESS)
    top.runs["first"] = run_id
    # While it is queued or running, the viewer cannot stop it.
    assert _refused(lambda: top.client("viewer").terminate_run(run_id)) in {"UnauthorizedError", "TerminateRunFailure"}
    assert _finished(top, run_id) == DagsterRunStatus.SUCCESS
    events = _event_types(top, run_id)
    # Queued by the admin webserver's QueuedRunCoordinator; STARTING is reported by the daemon as it dequeues the run
    # and launches it; START and SUCCESS by the run worker. (Stored under their old names: PIPELINE_ENQUEUED, …)
    order = [e.value for e in (E.RUN_ENQUEUED, E.RUN_STARTING, E.RUN_START, E.RUN_SUCCESS)]
    assert [e for e in events if e in order] == order
    assert "Launched 1 runs." in (top.base / "daemon.log").read_text(errors="replace")
    with top.storage.connect() as conn:
        body = conn.execute(sa.text("SELECT run_body FROM runs WHERE run_id = :id"), {"id": run_id}).scalar_one()
    grpc_info = json.loads(json.loads(body)["tags"][".dagster/grpc_info"])  # the default launcher's record
    assert grpc_info["port"] == int(top.env["daemon"]["SYNC_CODE_SERVER_PORT"])  # launched through the code server
    # Only the code server's environment has SYNC_DATABASE_URL and SYNC_SHEET_SOURCE: the run worker inherited them.
    assert not any(k.startswith("SYNC_") and k not in ("SYNC_CODE_SERVER_HOST", "SYNC_CODE_SERVER_PORT")
                   for k in top.env["daemon"])  # fmt: skip
    row = _audit(top, run_id)
    assert row["status"] == "succeeded" and row["inserted_count"] == len(FIRST)
    assert assert_database_matches_sheet(top.db.engine, top.first_sheet) == len(FIRST)


def test_the_viewer_refuses_launch_terminate_settings_and_reload_and_serves_the_run_checks_and_health(
    top: Topology,
) -> None:
    viewer = top.client("viewer")
    run_id = top.runs["first"]
    with top.storage.connect() as conn:
        runs_before = conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one()
    assert _refused(lambda: viewer.submit_job_execution("seller_sync_job", run_config=IN_PROCESS)) == (
        "UnauthorizedError"
    )
    settings = {**IN_PROCESS, "ops": {"update_sync_settings": {"config": {"sync_interval_minutes": 17}}}}
    assert _refused(lambda: viewer.submit_job_execution("update_sync_settings", run_config=settings)) == (
        "UnauthorizedError"
    )
    assert _refused(lambda: viewer.terminate_run(run_id)) in {"UnauthorizedError", "TerminateRunFailure"}
    reload = top.graphql(  # the client's own reload_repository_location does not expect UnauthorizedError
        "viewer",
        "mutation($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) { __typename } }",
        {"name": LOCATION},
    )
    assert reload["reloadRepositoryLocation"]["__typename"] == "UnauthorizedError"
    with top.storage.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one() == runs_before
    with top.db.engine.connect() as conn:
        interval = conn.execute(
            sa.select(sync_config.c.value).where(sync_config.c.key == "sync_interval_minutes")
        ).scalar_one_or_none()
    assert interval != "17"

    assert viewer.get_run_status(run_id) == DagsterRunStatus.SUCCESS
    checks = top.graphql(
        "viewer",
        """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
             assetChecksOrError { ... on AssetChecks { checks { name
               executionForLatestMaterialization { runId status } } } } } } }""",
        {"key": {"path": ["sellers_table"]}},
    )["assetNodeOrError"]["assetChecksOrError"]["checks"]
    results = {c["name"]: c["executionForLatestMaterialization"] for c in checks}
    assert {"counts_match_sheet", "no_gaps", "integrity"} <= set(results)
    assert results["counts_match_sheet"] == {"runId": run_id, "status": "SUCCEEDED"}
    health = top.graphql(
        "viewer",
        """query($key: AssetKeyInput!) { assetOrError(assetKey: $key) { ... on Asset {
             assetMaterializations(limit: 1) { runId metadataEntries { label __typename } } } } }""",
        {"key": {"path": ["sync_health"]}},
    )["assetOrError"]["assetMaterializations"]
    assert health and health[0]["runId"] == run_id
    kinds = {e["__typename"] for e in health[0]["metadataEntries"]}
    assert {"FloatMetadataEntry", "IntMetadataEntry"} & kinds and "MarkdownMetadataEntry" in kinds


def test_a_restarted_code_server_with_another_setting_is_picked_up_by_a_reload_and_the_next_run_sees_it(
    top: Topology,
) -> None:
    webservers = {s: top.processes[s].pid for s in ("admin", "viewer")}
    before = {s: _locations(top, s)[LOCATION] for s in webservers}
    stop(top.processes["code-server"])
    top.env["code-server"]["SYNC_SHEET_SOURCE"] = str(top.second_sheet)  # the deployment changed sync.env
    _start_code_server(top)

    assert top.client("admin").reload_repository_location(LOCATION).status == ReloadRepositoryLocationStatus.SUCCESS
    for service in webservers:  # the admin by the reload; the viewer (no reload permission) by watching the server
        wait_for(
            f"the {service} webserver to load the new code server",
            lambda s=service: (
                (e := _locations(top, s)[LOCATION])["loadStatus"] == "LOADED"
                and e["updatedTimestamp"] > before[s]["updatedTimestamp"]
            ),
            60,
            1.0,
        )
    run_id = top.client("admin").submit_job_execution("seller_sync_job", run_config=IN_PROCESS)
    assert _finished(top, run_id) == DagsterRunStatus.SUCCESS
    assert _audit(top, run_id)["inserted_count"] == len(SECOND) - len(FIRST)  # the new sheet, read by the new worker
    assert assert_database_matches_sheet(top.db.engine, top.second_sheet) == len(SECOND)
    assert {s: top.processes[s].pid for s in webservers} == webservers  # neither webserver restarted
    assert all(top.processes[s].poll() is None for s in webservers)
    assert top.client("viewer").get_run_status(run_id) == DagsterRunStatus.SUCCESS


def test_the_runs_their_events_and_the_schedules_ticks_are_in_postgres(top: Topology) -> None:
    with top.storage.connect() as conn:
        statuses = dict(conn.execute(sa.text("SELECT run_id, status FROM runs")).all())
        events = conn.execute(
            sa.text("SELECT count(*) FROM event_logs WHERE run_id = :id"), {"id": top.runs["first"]}
        ).scalar_one()
    assert statuses[top.runs["first"]] == "SUCCESS" and list(statuses.values()).count("SUCCESS") == 2
    assert events > 20

    def ticks() -> int:
        with top.storage.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM job_ticks t JOIN jobs j ON j.job_origin_id = t.job_origin_id "
                        "WHERE j.job_type = 'SCHEDULE' AND j.job_body LIKE '%seller_sync_schedule%'"
                    )
                ).scalar_one()
            )

    fail_if_exited([top.processes["daemon"]], top.logs())
    assert wait_for("a tick of seller_sync_schedule in Postgres", ticks, TICK_SECONDS, 2.0) >= 1


def test_every_process_started_is_stopped_children_included(top: Topology) -> None:
    started = descendants(p.pid for p in top.processes.values())
    assert {p.pid for p in top.processes.values()} <= started
    for process in top.processes.values():
        stop(process)
    assert alive(started) == set()
    assert descendants(p.pid for p in top.processes.values()) == set()
    ports = [*top.ports.values(), int(top.env["code-server"]["SYNC_CODE_SERVER_PORT"])]
    assert not any(port_open(port) for port in ports)
