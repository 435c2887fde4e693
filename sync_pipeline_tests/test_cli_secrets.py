"""No command shows a database password: every `sync-pipeline` command run against a Postgres URL that carries one.

The local Postgres trusts 127.0.0.1, so the password is accepted and never checked: what is tested is only where it
could leak — standard output, standard error (Dagster's event log included), the audit rows and the Dagster
materialisation metadata. Real subprocesses, a fresh Postgres database; no network beyond 127.0.0.1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync_pipeline.adapters.store.tables import sync_audit_logs, sync_error_logs
from sync_pipeline.services.database import open_database
from sync_pipeline_tests.support.cli import run_cli
from sync_pipeline_tests.support.sample_sheet import write_csv
from sync_pipeline_tests.support.sheets import HEADER, seller_row

PASSWORD = "s3cret-Pa55word"

pytestmark = pytest.mark.postgres


@pytest.fixture
def url_with_password(postgres_template: tuple[str, str], request: pytest.FixtureRequest) -> str:
    from sync_pipeline_tests.conftest import _fresh_postgres

    fresh = _fresh_postgres(postgres_template)
    url = next(fresh)
    request.addfinalizer(lambda: next(fresh, None))
    return sa.make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)


def test_no_command_prints_the_database_password(url_with_password: str, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "sheet.csv", [HEADER, seller_row("PW00001"), seller_row("PW00002"), ["bad"]])
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {"SYNC_DATABASE_URL": url_with_password, "SYNC_SHEET_SOURCE": str(csv), "DAGSTER_HOME": str(home)}
    commands = [  # one of each command (every one opens the database from the same URL)
        ["db", "current"],
        ["sync", "--dry-run", "--json"],
        ["sync", "--json"],
        ["verify"],
        ["status"],
        ["audit", "--seller", "pw 00001"],
        ["alerts", "list", "--json"],
        ["settings", "set", "gap_threshold=1"],
        ["settings", "set", "gap_threshold=-1"],  # refused: the error message must not carry it either
    ]
    outputs = []
    for args in commands:
        done = run_cli(args, env=env)
        outputs.append((args, done.returncode, done.stdout + done.stderr))
    leaks = [(args, code) for args, code, text in outputs if PASSWORD in text]
    assert leaks == []
    by_command = {tuple(args): (code, text) for args, code, text in outputs}
    assert by_command[("sync", "--json")][0] == 0  # the sync ran (partial: one row rejected)
    assert "***" in by_command[("db", "current")][1]
    assert by_command[("settings", "set", "gap_threshold=-1")][0] == 2
    assert not [p for p in home.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]  # run history

    db = open_database(url_with_password)
    with db.engine.connect() as conn:
        stored = [dict(r) for r in conn.execute(sa.select(sync_audit_logs)).mappings()]
        stored += [dict(r) for r in conn.execute(sa.select(sync_error_logs)).mappings()]
    db.engine.dispose()
    assert stored and PASSWORD not in json.dumps(stored, default=str)
