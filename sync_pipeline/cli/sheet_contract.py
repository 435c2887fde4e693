"""`sync-pipeline contract show | check PATH`: the sheet contract in force, and whether a contract file can be used."""

from __future__ import annotations

import sys

import click

from sync_pipeline.cli import EXIT_USAGE, _environment, main


@main.group()
def contract() -> None:
    """The sheet contract: which columns the sheet has, their kinds and rules (SYNC_CONTRACT, --contract)."""


@contract.command("show")
@click.option("--contract", "path", help="Contract file (default: $SYNC_CONTRACT, then the built-in fields).")
@click.option("--database-url", help="Whose settings (required_fields, seller_number_pattern) to combine with.")
def show(path: str | None, database_url: str | None) -> None:
    """Print the contract in force as a contract file: the way to start your own.

    `required` and the key's `pattern` are printed as they are in force, the contract combined with the settings
    required_fields and seller_number_pattern of the database."""
    from sync_pipeline.domain.contract import ContractError, contract_yaml, effective
    from sync_pipeline.services.contracts import load_contract as load
    from sync_pipeline.services.contracts import read_contract
    from sync_pipeline.services.database import open_database

    env = _environment(database_url=database_url, contract=path)
    try:
        current = read_contract(env.contract_path) if env.contract_path else load(None)
    except ContractError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_USAGE)
    settings = open_database(env.database_url).settings(write_defaults=False)
    rules = effective(current, settings.required_fields, settings.seller_number_pattern)
    for problem in rules.problems:
        click.echo(f"warning: {problem}", err=True)
    click.echo(contract_yaml(current, rules), nl=False)


@contract.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
def check(path: str) -> None:
    """Validate a contract file; exit 2 with every problem (its field and line) when it cannot be used."""
    from sync_pipeline.domain.contract import ContractError
    from sync_pipeline.services.contracts import read_contract

    try:
        checked = read_contract(path)
    except ContractError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_USAGE)
    extras = ", ".join(checked.extras) or "none"
    click.echo(f"{path}: ok — {len(checked.fields)} fields; stored in attributes: {extras}")
