"""`sync-pipeline rejections --output PATH`: a sync's rejected rows as a workbook or CSV for the office."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from sync_pipeline.cli import EXIT_USAGE, _open, main


@main.command()
@click.option("--sync", "sync_id", help="The sync whose rejections to export (default: the latest full sync).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="A .xlsx or .csv file to write.")
@click.option("--json", "as_json", is_flag=True, help="Print the rejected rows as JSON.")
@click.option("--database-url")
def rejections(sync_id: str | None, output: Path | None, as_json: bool, database_url: str | None) -> None:
    """Export a sync's rejected rows (row, cell, column, cell text, rule, seller number, message) for the people who
    edit the sheet: `.xlsx` with the offending cells filled and commented, or `.csv` (UTF-8 with BOM for Excel).

    Never writes into the source sheet."""
    from sync_pipeline.adapters.export.rejections import SUFFIXES, write_rejections
    from sync_pipeline.services.rejections import NoSuchSyncError, sync_rejections

    if output is None and not as_json:
        raise click.UsageError("give --output PATH (.xlsx or .csv), --json, or both")
    if output is not None and output.suffix.lower() not in SUFFIXES:
        raise click.BadParameter(f"{output}: the export is a .xlsx or .csv file", param_hint="--output")
    try:
        row, rows = sync_rejections(_open(database_url), sync_id)
    except NoSuchSyncError as exc:
        click.echo(f"{exc}: nothing to export", err=True)
        sys.exit(EXIT_USAGE)
    if output is not None:
        source = str(row.get("source") or "").split("#", 1)[0]
        if source and Path(source).exists() and Path(source).resolve() == output.resolve():
            raise click.BadParameter(f"{output} is the sync's source sheet; it is never written", param_hint="--output")
        write_rejections(output, rows)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        click.echo(f"{len(rows)} rejected cells of sync {row['sync_id']} written to {output}")
