"""`sync-pipeline verify [--json]` and the recovery figures of `sync --json`, as an operator runs them: a real
subprocess over a CSV in tmp_path and a fresh SQLite or Postgres database (ephemeral Dagster instance, no network).

The database is changed between commands with plain SQL (support/tamper.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync_pipeline.adapters.store.engine import make_engine
from sync_pipeline.adapters.store.tables import metadata
from sync_pipeline_tests.support import tamper
from sync_pipeline_tests.support.cli import parse_json_stdout, run_cli
from sync_pipeline_tests.support.sample_sheet import write_csv
from sync_pipeline_tests.support.sheets import HEADER, seller_row

KEYS = [f"CV{n:05d}" for n in range(1, 16)]


def cli_json(*args: str, url: str, csv: Path) -> tuple[int, Any]:
    done = run_cli([*args, "--json"], env={"SYNC_DATABASE_URL": url, "SYNC_SHEET_SOURCE": str(csv)})
    return done.returncode, parse_json_stdout(done)


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "sellers.csv", [HEADER, *(seller_row(k) for k in KEYS), seller_row("bad")])


@pytest.fixture
def engine_for(database_url: str) -> Any:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def everything(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {t.name: sorted(map(tuple, conn.execute(sa.select(t)).all()), key=repr) for t in metadata.sorted_tables}


def test_verify_is_clean_after_a_sync_and_exits_1_with_the_figures_when_not(
    database_url: str, csv: Path, engine_for: sa.Engine
) -> None:
    code, summary = cli_json("sync", url=database_url, csv=csv)
    assert code == 0 and summary["verification_status"] == "clean"
    assert summary["gaps_found"] == summary["gaps_resynced"] == 0
    code, figures = cli_json("verify", url=database_url, csv=csv)
    assert code == 0 and figures["clean"] is True and figures["sheet_valid_count"] == len(KEYS)

    tamper.delete_sellers(engine_for, KEYS[:2])
    tamper.delete_properties(engine_for, KEYS[2:3])
    before = everything(engine_for)
    code, figures = cli_json("verify", url=database_url, csv=csv)
    assert code == 1
    assert everything(engine_for) == before  # verify writes nothing, not even an audit row
    assert (figures["status"], figures["gaps"], figures["stale"]) == ("gaps", KEYS[:2], KEYS[2:3])
    assert figures["integrity_by_rule"] == {"property_missing": 1}

    code, summary = cli_json("sync", url=database_url, csv=csv)
    assert code == 0
    # The deleted sellers are gaps (not new sellers), resynced with the incomplete one; none of it is reported as
    # a rejected sheet row (only "bad" is).
    assert summary["gaps_found"] == summary["gaps_resynced"] == 2 and summary["inserted"] == 0
    assert [(r["row"], r["rule"]) for r in summary["rejections"]] == [(len(KEYS) + 2, "seller_number_format")]
    code, figures = cli_json("verify", url=database_url, csv=csv)
    assert code == 0 and figures["clean"] is True


def test_sync_json_reports_gaps_found_and_resynced(database_url: str, csv: Path, engine_for: sa.Engine) -> None:
    assert cli_json("sync", url=database_url, csv=csv)[0] == 0
    refused = KEYS[4]
    tamper.delete_sellers(engine_for, [refused])
    tamper.install_reject_trigger(engine_for, refused)  # the sync cannot insert it: a gap after the sync
    code, summary = cli_json("sync", url=database_url, csv=csv)
    assert code == 0 and summary["status"] == "partial" and summary["inserted"] == 0  # a gap, not a new seller
    assert summary["gaps_found"] == 1 and summary["gaps_resynced"] == 0  # the resync could not repair it
    assert summary["verification_status"] == "gaps"
    tamper.drop_reject_trigger(engine_for)
    code, summary = cli_json("sync", url=database_url, csv=csv)
    assert code == 0 and summary["gaps_found"] == summary["gaps_resynced"] == 1
    assert cli_json("verify", url=database_url, csv=csv)[1]["clean"] is True
