"""The `sync-pipeline` command: a thin face over the same services the Dagster assets use.

The group and what every command shares live here; the commands live in `run`, `report` and `admin`, which register
themselves on `main` when imported below."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

import click

from sync_pipeline.services.database import Database, open_database
from sync_pipeline.services.environment import Environment

EXIT_FAILED = 1  # the sync (or verification) failed
EXIT_USAGE = 2  # bad settings or arguments (click uses 2 as well)


def _environment(
    database_url: str | None = None,
    source: str | None = None,
    worksheet: str | None = None,
    contract: str | None = None,
) -> Environment:
    """The environment's configuration with the command line's options over it (the one place both are merged)."""
    return Environment.from_env().with_overrides(
        database_url=database_url, sheet_source=source, worksheet=worksheet, contract_path=contract
    )


def _open(url: str | None) -> Database:
    return open_database(_environment(database_url=url).database_url)


def _emit(data: Any, as_json: bool, human: str) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, default=str, indent=2))
    else:
        click.echo(human)


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Keep standard output for the one JSON object: Dagster's banners and event log go to standard error."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Keep the seller database in step with the seller sheet, and prove it after every run."""


# The commands register themselves on `main` (imported last: they import `main` from here).
from sync_pipeline.cli import admin, rejections, report, run, sheet_contract  # noqa: E402, F401
