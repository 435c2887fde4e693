"""`sync-pipeline settings`, `alerts` and `db`: the operator's controls."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from sync_pipeline.cli import EXIT_FAILED, EXIT_USAGE, _emit, _environment, _open, main
from sync_pipeline.domain.alerts import Alert
from sync_pipeline.domain.settings import SettingsError
from sync_pipeline.services.database import Database
from sync_pipeline.services.environment import safe_url


@main.command()
@click.argument("action", type=click.Choice(["show", "set", "history"]), default="show")
@click.argument("pairs", nargs=-1)
@click.option("--database-url")
@click.option("--json", "as_json", is_flag=True)
def settings(action: str, pairs: tuple[str, ...], database_url: str | None, as_json: bool) -> None:
    """Show the settings in force, `set KEY=VALUE…` (validated; used from its next use), or their change `history`."""
    db = _open(database_url)
    if action == "history":
        _settings_history(db, as_json)
        return
    if action == "set":
        changes: dict[str, str] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep:
                raise click.BadParameter(f"{pair!r}: write KEY=VALUE, e.g. gap_threshold=5")
            changes[key.strip()] = value
        try:
            with db.engine.begin() as conn:
                db.config.save(conn, changes, now=db.clock.now(), updated_by="cli")
        except SettingsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
    current = db.settings().as_strings()
    _emit(current, as_json, "\n".join(f"{k} = {v}" for k, v in current.items()))


def _settings_history(db: Database, as_json: bool) -> None:
    from sync_pipeline.services.settings import settings_history

    rows = [
        {
            "key": c.key,
            "old_value": c.old_value,
            "new_value": c.new_value,
            "changed_at": c.changed_at.isoformat(" ", timespec="seconds"),
            "changed_by": c.changed_by,
        }
        for c in settings_history(db)
    ]
    human = (
        "\n".join(
            f"{r['changed_at']}  {r['key']}: {r['old_value']} -> {r['new_value']}  by {r['changed_by'] or 'unknown'}"
            for r in rows
        )
        or "no setting has been changed"
    )
    _emit(rows, as_json, human)


@main.command()
@click.argument("action", type=click.Choice(["list", "ack", "check", "test-email"]), default="list")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "show_all", is_flag=True, help="Include acknowledged alerts.")
@click.option("--limit", default=50, show_default=True)
@click.option("--database-url")
@click.option("--json", "as_json", is_flag=True)
def alerts(
    action: str, ids: tuple[int, ...], show_all: bool, limit: int, database_url: str | None, as_json: bool
) -> None:
    """List alerts, most recent first (unacknowledged unless --all), or `ack ID…` to acknowledge them.

    `check` evaluates every alert rule once and sends the e-mail that is due (what the sensors do; for deployments
    without the Dagster daemon, e.g. from cron); exit 1 when due e-mail could not be sent. `test-email` sends a test
    message to email_recipients through the SYNC_SMTP_* server; exit 1 with the SMTP error when it fails.
    """
    from sync_pipeline.services.alerts import acknowledge, list_alerts

    db = _open(database_url)
    if action in {"check", "test-email"}:
        _alerts_mail(db, action, as_json)
        return
    if action == "ack":
        if not ids:
            raise click.BadParameter("ack needs alert ids, e.g. `sync-pipeline alerts ack 3 4`")
        done = acknowledge(db, list(ids), by="cli")
        missing = sorted(set(ids) - set(done))
        _emit(
            {"acknowledged": done, "not_found": missing},
            as_json,
            f"acknowledged {done or 'none'}" + (f"; no unacknowledged alert with id {missing}" if missing else ""),
        )
        return
    from sync_pipeline.services.report import shown_in, shown_time

    found = list_alerts(db, limit=limit, unacknowledged_only=not show_all)
    with shown_in(db):
        rows = [_alert_row(a, shown_time) for a in found]
    human = (
        "\n".join(f"#{r['id']} {r['created_at']:.19} {r['severity']:<8} {r['type']:<16} {r['message']}" for r in rows)
        or "no alerts"
    )
    _emit(rows, as_json, human)


def _alert_row(a: Alert, shown: Callable[[object], str | None]) -> dict[str, Any]:
    """One alert as `alerts list` prints it (times in the sheet_timezone setting)."""
    return {
        "id": a.id,
        "type": a.alert_type,
        "severity": a.severity.value,
        "created_at": shown(a.created_at),
        "message": a.message,
        "sync_id": a.sync_id,
        "acknowledged_at": shown(a.acknowledged_at),
        "emailed_at": shown(a.emailed_at),
        "email_attempts": a.email_attempts,
        "detail": dict(a.detail),
    }


def _alerts_mail(db: Database, action: str, as_json: bool) -> None:
    if action == "test-email":
        from sync_pipeline.services.alert_delivery import send_test_email

        sent = send_test_email(db)
        _emit(sent.as_dict(), as_json, sent.message if sent.ok else f"error: {sent.message}")
        if not sent.ok:
            sys.exit(EXIT_FAILED)
        return
    from sync_pipeline.services.alert_check import check_alerts

    checked = check_alerts(db)
    lines = [f"raised #{a.id} {a.severity.value} {a.alert_type}: {a.message}" for a in checked.rules.raised]
    lines += [f"{d.rule}: {d.observation}" for d in checked.rules.decisions] or [checked.rules.summary()]
    lines.append(f"e-mail: {checked.delivery.summary()}")
    _emit(checked.as_dict(), as_json, "\n".join(lines))
    if not checked.delivery.ok:
        sys.exit(EXIT_FAILED)


@main.command("db")
@click.argument("action", type=click.Choice(["upgrade", "downgrade", "current"]), default="current")
@click.argument("revision", required=False)
@click.option("--database-url")
def db_command(action: str, revision: str | None, database_url: str | None) -> None:
    """Migrate the database: `upgrade` (to head), `downgrade REV` (rollback), `current`."""
    from sync_pipeline.adapters.store import migrations
    from sync_pipeline.adapters.store.engine import make_engine

    url = _environment(database_url=database_url).database_url
    engine = make_engine(url)
    if action == "upgrade":
        migrations.upgrade(engine, revision or "head")
    elif action == "downgrade":
        if not revision:
            raise click.BadParameter("downgrade needs a revision, e.g. `db downgrade base` or `db downgrade 0001`")
        migrations.downgrade(engine, revision)
    click.echo(f"{safe_url(url)}: at revision {migrations.current(engine) or 'none (empty)'}")
