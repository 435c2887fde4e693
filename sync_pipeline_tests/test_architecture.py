"""The shape the rest builds on (issue 8): every seller asset materialises on its own and together, again and again;
a failed run re-executes from failure; nothing of the sheet goes through the IO manager into run storage; an
operator's resync reads seller numbers the way the sheet's key column does; resources are `EnvVar`s.

Runs the real definitions against a real Dagster instance (`instance_for_test`, on disk) and fresh SQLite databases
with CSV sheets in tmp_path. Does not touch Postgres (the sync itself is covered on both elsewhere), the network or
the project's var/ database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_pipeline.adapters.store.tables import sellers, sync_audit_logs
from sync_pipeline.definitions import defs
from sync_pipeline.defs.assets import seller_sync
from sync_pipeline.defs.jobs import seller_sync_job
from sync_pipeline.defs.resources import SellerSheet, SyncDatabase, resources_from_env
from sync_pipeline.services.database import open_database
from sync_pipeline.services.environment import DEFAULT_DATABASE_URL, DEFAULT_SHEET_SOURCE, Environment
from sync_pipeline_tests.support import tamper
from sync_pipeline_tests.support.sample_sheet import write_csv
from sync_pipeline_tests.support.sheets import HEADER, seller_row

KEYS = [f"AA{n:05d}" for n in range(100, 140)]
ASSETS = ("seller_sheet", "sellers_table", "seller_gap_resync")


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sellers.db'}"


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "sellers.csv", [HEADER, *(seller_row(k) for k in KEYS)])


def resources(url: str, csv: Path) -> dict[str, Any]:
    return {"database": SyncDatabase(url=url), "sheet": SellerSheet(source=str(csv))}


def materialised(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events() if e.asset_key}


def seller_keys(url: str) -> set[str]:
    db = open_database(url)
    try:
        with db.engine.connect() as conn:
            return set(conn.execute(sa.select(sellers.c.seller_number)).scalars())
    finally:
        db.engine.dispose()


def audit_rows(url: str) -> list[dict[str, Any]]:
    db = open_database(url)
    try:
        with db.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(sync_audit_logs).order_by(sync_audit_logs.c.id)).mappings()]
    finally:
        db.engine.dispose()


def test_each_asset_materialises_on_its_own_after_a_full_sync(
    instance: dg.DagsterInstance, sqlite_url: str, csv_path: Path
) -> None:
    full = dg.materialize([seller_sync], resources=resources(sqlite_url, csv_path), instance=instance)
    assert full.success and materialised(full) == set(ASSETS)
    for _ in range(2):  # again and again
        for key in ASSETS:
            alone = dg.materialize(
                [seller_sync], selection=[key], resources=resources(sqlite_url, csv_path), instance=instance
            )
            assert alone.success, key
            assert materialised(alone) == {key}
    assert seller_keys(sqlite_url) == set(KEYS)
    rows = audit_rows(sqlite_url)
    assert {r["status"] for r in rows} <= {"succeeded"}
    # seller_sheet alone reads and checks only: it opens no sync. sellers_table opens a full sync, the resync one.
    assert [r["kind"] for r in rows].count("manual") == 1 + 2


def test_the_resync_alone_repairs_what_the_database_lacks(
    instance: dg.DagsterInstance, sqlite_url: str, csv_path: Path
) -> None:
    assert dg.materialize([seller_sync], resources=resources(sqlite_url, csv_path), instance=instance).success
    tamper.delete_sellers(open_database(sqlite_url).engine, KEYS[:3])

    alone = dg.materialize(
        [seller_sync], selection=["seller_gap_resync"], resources=resources(sqlite_url, csv_path), instance=instance
    )

    assert alone.success
    [check] = alone.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == ("gaps_repaired", True)
    assert seller_keys(sqlite_url) == set(KEYS)
    assert audit_rows(sqlite_url)[-1]["kind"] == "resync"


def test_no_sheet_data_goes_into_run_storage(instance: dg.DagsterInstance, tmp_path: Path, sqlite_url: str) -> None:
    many = [f"AB{n:05d}" for n in range(5000)]
    csv = write_csv(tmp_path / "many.csv", [HEADER, *(seller_row(k) for k in many)])
    storage = Path(instance.storage_directory())
    before = {p for p in storage.rglob("*") if p.is_file()}

    result = dg.materialize([seller_sync], resources=resources(sqlite_url, csv), instance=instance)

    assert result.success
    written = [p for p in storage.rglob("*") if p.is_file() and p not in before]
    assert not [p for p in written if p.name in ASSETS], "an asset's value was pickled into run storage"
    # A pickled 5,000-row frame is ~1 MB; what a run stores is its event log (and compute logs), a few kB.
    assert sum(p.stat().st_size for p in written) < 200_000, [(p, p.stat().st_size) for p in written]


def sync_job_from_environment() -> dg.JobDefinition:
    """The sync job as a fresh code location builds it from the environment (for `dg.reconstructable`)."""
    fresh = dg.Definitions(assets=[seller_sync], jobs=[seller_sync_job], resources=resources_from_env())
    return fresh.resolve_job_def("seller_sync_job")


def test_a_failed_run_re_executes_from_failure(
    instance: dg.DagsterInstance, tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "later.csv"
    monkeypatch.setenv("SYNC_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("SYNC_SHEET_SOURCE", str(missing))
    job = dg.reconstructable(sync_job_from_environment)
    with dg.execute_job(job, instance=instance, raise_on_error=False) as failed:
        assert not failed.success
    write_csv(missing, [HEADER, *(seller_row(k) for k in KEYS)])  # the operator fixes the cause

    options = dg.ReexecutionOptions.from_failure(failed.run_id, instance)
    with dg.execute_job(job, instance=instance, reexecution_options=options) as again:
        assert again.success
        assert again.dagster_run.parent_run_id == failed.run_id
    assert seller_keys(sqlite_url) == set(KEYS)
    assert [(r["status"], r["kind"]) for r in audit_rows(sqlite_url)][:2] == [
        ("failed", "manual"),
        ("succeeded", "retry"),
    ]


# --- the operator's resync: one key normalisation --------------------------------------------------------------

FULL_WIDTH = {c: chr(ord(c) + 0xFEE0) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"}
SPACES = st.sampled_from(["", " ", "\u3000", "\u00a0", "  "])


@st.composite
def typed_variant(draw: st.DrawFn, key: str) -> str:
    """`key` as someone might type it: each character in either width and case, spaces around and inside."""
    out = [draw(SPACES)]
    for char in key:
        char = draw(st.sampled_from([char, char.lower()]))
        char = draw(st.sampled_from([char, FULL_WIDTH.get(char, char)]))
        out += [char, draw(st.sampled_from(["", "", "", " ", "\u3000"]))]
    return "".join(out) + draw(SPACES)


def resync_job(url: str, csv: Path, typed: list[str], instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("seller_resync_job").execute_in_process(
        run_config={"ops": {"resync_sellers": {"config": {"seller_numbers": typed}}}},
        resources=resources(url, csv),
        instance=instance,
        raise_on_error=False,
    )


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory, instance: dg.DagsterInstance) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp("resync")
    url = f"sqlite:///{folder / 'sellers.db'}"
    csv = write_csv(folder / "sellers.csv", [HEADER, *(seller_row(k) for k in KEYS)])
    assert dg.materialize([seller_sync], resources=resources(url, csv), instance=instance).success
    return url, csv


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_typed_variant_of_a_stored_seller_number_is_resynced(
    synced: tuple[str, Path], instance: dg.DagsterInstance, data: st.DataObject
) -> None:
    url, csv = synced
    key = data.draw(st.sampled_from(KEYS))
    typed = data.draw(typed_variant(key))
    tamper.delete_sellers(open_database(url).engine, [key])

    result = resync_job(url, csv, [typed], instance)

    assert result.success, typed
    assert key in seller_keys(url)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(typed=typed_variant("ZZ99999"))
def test_a_seller_number_absent_from_the_sheet_fails_the_resync_cleanly(
    synced: tuple[str, Path], instance: dg.DagsterInstance, typed: str
) -> None:
    url, csv = synced
    before = seller_keys(url)

    result = resync_job(url, csv, [typed, KEYS[0]], instance)

    assert not result.success
    failure = result.failure_data_for_node("resync_sellers")
    assert failure is not None and failure.error is not None
    assert failure.error.cls_name == "Failure"  # our message, not a crash (KeyError and the like)
    assert "ZZ99999" in failure.error.message and "not in the sheet" in failure.error.message
    assert seller_keys(url) == before
    assert audit_rows(url)[-1]["status"] == "partial"  # KEYS[0] was rewritten; ZZ99999 counted as rejected


# --- configuration resolved once --------------------------------------------------------------------------------


def test_resources_are_configured_with_env_vars() -> None:
    env = {"SYNC_DATABASE_URL": "sqlite:////tmp/x.db", "SYNC_SHEET_SOURCE": "sheet.csv", "SYNC_SHEETS_API_URL": "u"}
    configured = resources_from_env(env)
    database, sheet = configured["database"], configured["sheet"]
    assert isinstance(database.url, dg.EnvVar) and database.url.env_var_name == "SYNC_DATABASE_URL"
    assert isinstance(sheet.source, dg.EnvVar) and sheet.source.env_var_name == "SYNC_SHEET_SOURCE"
    assert isinstance(sheet.api_url, dg.EnvVar) and sheet.api_url.env_var_name == "SYNC_SHEETS_API_URL"
    assert sheet.worksheet is None and sheet.credentials_file is None  # unset: the embedded default applies
    bare = resources_from_env({})
    assert bare["database"].resolved_url == DEFAULT_DATABASE_URL == Environment.from_env({}).database_url
    assert Path(DEFAULT_DATABASE_URL.removeprefix("sqlite:///")).is_absolute()
    assert Environment.from_env({}).sheet_source == str(DEFAULT_SHEET_SOURCE)


def test_the_engine_lives_and_dies_with_the_resource(sqlite_url: str) -> None:
    resource = SyncDatabase(url=sqlite_url)
    with dg.build_resources({"database": resource}) as built:
        db = built.database.open()
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
        assert db.engine.pool.checkedout() == 0
    assert resource._db is None  # torn down: the engine was disposed with the execution


def test_the_cli_and_the_job_resolve_the_same_database_and_sheet_from_any_directory(
    tmp_path: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sync_pipeline_tests.support.cli import parse_json_stdout, run_cli

    work = tmp_path / "elsewhere"
    work.mkdir()
    write_csv(work / "sheet.csv", [HEADER, *(seller_row(k) for k in KEYS)])
    env = {"SYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}", "SYNC_SHEET_SOURCE": "sheet.csv"}
    done = run_cli(["sync", "--json"], env=env, cwd=work)
    first = parse_json_stdout(done)
    assert done.returncode == 0 and first["inserted"] == len(KEYS)

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(work)
    again = sync_job_from_environment().execute_in_process(instance=instance)

    assert again.success
    rows = audit_rows(env["SYNC_DATABASE_URL"])
    assert len(rows) == 2 and rows[0]["source"] == rows[1]["source"] == str(work / "sheet.csv")
    assert rows[1]["unchanged_count"] == len(KEYS) and rows[1]["inserted_count"] == 0
    assert os.path.isabs(rows[0]["source"])
