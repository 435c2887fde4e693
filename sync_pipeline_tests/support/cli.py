"""Running the installed `sync-pipeline` command in a subprocess, as an operator or a script would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CLI_TIMEOUT_SECONDS = 180  # a run takes a few seconds (mostly importing Dagster); this only stops a hang
# The keys DESIGN.md's command-line contract promises in `sync --json` (scripts rely on them).
DOCUMENTED_KEYS = frozenset(
    {
        "status",
        "sync_id",
        "run_id",
        "rows_read",
        "valid",
        "rejected",
        "inserted",
        "updated",
        "unchanged",
        "conflicts",
        "failed",
        "gaps_found",
        "gaps_resynced",
        "duration_s",
        "phases",
        "rejections",
        "problems",
    }
)
PHASES = frozenset({"fetch", "validate", "compare", "update", "verify"})


def cli_command() -> list[str]:
    """The installed `sync-pipeline` console script of this environment (its entry point, sync_pipeline.cli:main)."""
    script = Path(sys.executable).with_name("sync-pipeline")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from sync_pipeline.cli import main; main()"]


def run_cli(
    args: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    # Nothing from the developer's or CI's environment may choose the database, the sheet or the Dagster instance.
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SYNC_", "DAGSTER_", "GOOGLE_"))}
    return subprocess.run(
        [*cli_command(), *args],
        env={**clean, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )


def parse_json_stdout(done: subprocess.CompletedProcess[str]) -> Any:
    """Standard output must be exactly one JSON value: json.loads refuses anything before or after it."""
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"stdout is not one JSON object ({exc}):\n{done.stdout}\nstderr:\n{done.stderr}") from None
