"""A newcomer's first command prints nothing to wonder about (issue 22): `sync-pipeline sync` on a fresh Dagster
home and a fresh SQLite file — what `make sync` runs — writes no warning of any kind.

Runs the installed command in a subprocess with Python's warnings shown (`-W default` through PYTHONWARNINGS), so a
warning that our code or Dagster raises while loading the definitions or running the job appears on standard error.
Touches no network and no shared database.
"""

from __future__ import annotations

import re
from pathlib import Path

from sync_pipeline.services.environment import DEFAULT_SHEET_SOURCE
from sync_pipeline_tests.support.cli import parse_json_stdout, run_cli

WARNING = re.compile(r"\b\w*Warning\b")


def test_the_first_sync_on_a_fresh_checkout_prints_no_warning(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {
        "DAGSTER_HOME": str(home),
        "SYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'sync.db'}",
        "PYTHONWARNINGS": "default",  # every warning once per place, as a newcomer's terminal would show it
    }
    done = run_cli(["sync", "--source", str(DEFAULT_SHEET_SOURCE), "--json"], env=env)
    assert done.returncode == 0, done.stderr
    assert parse_json_stdout(done)["inserted"] > 0
    assert WARNING.findall(done.stderr) == [], done.stderr
