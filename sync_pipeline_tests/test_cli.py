"""The `sync-pipeline` command end to end, as an operator runs it: a real subprocess, the bundled sample sheet,
a fresh SQLite or Postgres database and a real Dagster instance. Touches no network."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from sync_pipeline.adapters.sheets.file import FileSheetSource
from sync_pipeline.adapters.store.engine import make_engine
from sync_pipeline.domain.alerts import AlertType, Severity
from sync_pipeline.domain.ingest import IngestRules, ingest_sheet
from sync_pipeline.domain.settings import Settings
from sync_pipeline.services.alerts import raise_alert
from sync_pipeline.services.database import open_database
from sync_pipeline.services.environment import DEFAULT_SHEET_SOURCE
from sync_pipeline_tests.support.cli import DOCUMENTED_KEYS, PHASES, parse_json_stdout, run_cli


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(args, env=env)


def cli_json(*args: str, env: dict[str, str] | None = None) -> tuple[int, Any]:
    done = run_cli([*args, "--json"], env=env)
    return done.returncode, parse_json_stdout(done)


def sellers_count(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM sellers")).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def sample_expectation() -> tuple[int, int]:
    snapshot = ingest_sheet(FileSheetSource(DEFAULT_SHEET_SOURCE).read(), IngestRules.from_settings(Settings()))
    return len(snapshot.valid), len({r.sheet_row for r in snapshot.rejections})


def test_sync_of_the_sample_then_again_writes_nothing(
    database_url: str, tmp_path: Path, sample_expectation: tuple[int, int]
) -> None:
    valid, rejected = sample_expectation
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {"DAGSTER_HOME": str(home)}
    code, first = cli_json("sync", "--source", str(DEFAULT_SHEET_SOURCE), "--database-url", database_url, env=env)
    assert code == 0, first
    assert set(first) >= DOCUMENTED_KEYS
    assert set(first["phases"]) == PHASES
    assert (first["inserted"], first["valid"], first["rejected"]) == (valid, valid, rejected)
    assert all(r["row"] and r["cell"] for r in first["rejections"])  # each rejected row is named with its cell
    assert sellers_count(database_url) == valid

    code, second = cli_json("sync", "--source", str(DEFAULT_SHEET_SOURCE), "--database-url", database_url, env=env)
    assert code == 0
    assert (second["inserted"], second["updated"], second["unchanged"]) == (0, 0, valid)
    assert (second["gaps_found"], second["orphans_found"], second["verification_status"]) == (0, 0, "clean")
    # Both runs are in the Dagster instance's run history.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_run_by_id(first["run_id"]) is not None
        assert instance.get_run_by_id(second["run_id"]) is not None


def test_dry_run_shows_what_would_change_and_writes_nothing(
    tmp_path: Path, sample_expectation: tuple[int, int]
) -> None:
    url = f"sqlite:///{tmp_path / 'dry.db'}"
    code, out = cli_json("sync", "--dry-run", "--database-url", url)
    assert code == 0 and out["dry_run"] is True
    assert len(out["would_insert"]) == sample_expectation[0]
    assert sellers_count(url) == 0
    engine = make_engine(url)
    with engine.connect() as conn:  # not even an audit row or first-start settings: a dry run writes nothing
        assert conn.execute(sa.text("SELECT count(*) FROM sync_audit_logs")).scalar_one() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM sync_config")).scalar_one() == 0
    engine.dispose()


def test_a_failed_sync_exits_non_zero_with_a_message(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fail.db'}"
    missing = tmp_path / "no-such-sheet.csv"
    code, out = cli_json("sync", "--source", str(missing), "--database-url", url)
    assert code == 1
    assert out["status"] == "failed"
    assert str(missing) in json.dumps(out, ensure_ascii=False)


def test_audit_settings_and_db_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    code, summary = cli_json("sync", "--database-url", url)
    assert code == 0
    rejected_key = next(r["seller_number"] for r in summary["rejections"] if r["seller_number"])
    code, rows = cli_json("audit", "--seller", rejected_key, "--database-url", url)
    assert [r["sync_id"] for r in rows] == [summary["sync_id"]]
    code, rows = cli_json("audit", "--status", "failed", "--database-url", url)
    assert rows == []

    refused = cli("settings", "set", "sync_interval_minutes=0", "--database-url", url)
    assert refused.returncode == 2 and "sync_interval_minutes" in refused.stderr and "at least 1" in refused.stderr
    code, shown = cli_json("settings", "set", "gap_threshold=4", "auto_recovery=off", "--database-url", url)
    assert (shown["gap_threshold"], shown["auto_recovery"]) == ("4", "false")

    db = open_database(url)
    with db.engine.begin() as conn:
        raise_alert(conn, AlertType.GAPS_FOUND, Severity.WARNING, "2 sellers missing", now=db.clock.now())
    code, listed = cli_json("alerts", "list", "--database-url", url)
    assert [(a["type"], a["severity"]) for a in listed] == [("gaps_found", "warning")]
    code, acked = cli_json("alerts", "ack", str(listed[0]["id"]), "999", "--database-url", url)
    assert (acked["acknowledged"], acked["not_found"]) == ([listed[0]["id"]], [999])
    assert cli_json("alerts", "--database-url", url)[1] == []  # acknowledged alerts are hidden without --all
    assert len(cli_json("alerts", "--all", "--database-url", url)[1]) == 1

    assert "at revision 0001" in cli("db", "current", "--database-url", url).stdout
    assert "none (empty)" in cli("db", "downgrade", "base", "--database-url", url).stdout
    assert "at revision 0001" in cli("db", "upgrade", "--database-url", url).stdout
