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
@click.argument("action", type=click.Choice(["list", "ack", "check", "test", "test-email"]), default="list")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "show_all", is_flag=True, help="Include acknowledged alerts.")
@click.option(
    "--channel",
    type=click.Choice(["email", "slack", "teams", "webhook"]),
    help="`test`: only this channel (default: every configured one).",
)
@click.option("--limit", default=50, show_default=True)
@click.option("--database-url")
@click.option("--json", "as_json", is_flag=True)
def alerts(
    action: str,
    ids: tuple[int, ...],
    show_all: bool,
    channel: str | None,
    limit: int,
    database_url: str | None,
    as_json: bool,
) -> None:
    """List alerts, most recent first (unacknowledged unless --all), or `ack ID…` to acknowledge them.

    `check` evaluates every alert rule once and sends the e-mail that is due (what the sensors do; for deployments
    without the Dagster daemon, e.g. from cron); exit 1 when due e-mail could not be sent. `test-email` sends a test
    message to email_recipients through the SYNC_SMTP_* server; exit 1 with the SMTP error when it fails.
    `test [--channel email|slack|teams|webhook]` sends a test to one or every configured channel (Slack, Teams and
    the plain webhook are on when SYNC_SLACK_WEBHOOK_URL, SYNC_TEAMS_WEBHOOK_URL, SYNC_ALERT_WEBHOOK_URL are set) and
    prints each answer; exit 1 when one failed. Webhook URLs are shown as host/*** only.
    """
    from sync_pipeline.services.alerts import acknowledge, list_alerts

    db = _open(database_url)
    if action == "test" or (action == "test-email" and channel is None):
        _alerts_test(db, "email" if action == "test-email" else channel, as_json)
        return
    if action == "check":
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
    from sync_pipeline.adapters.store.deliveries import DeliveryStore
    from sync_pipeline.services.report import shown_in, shown_time

    found = list_alerts(db, limit=limit, unacknowledged_only=not show_all)
    with db.engine.connect() as conn:
        deliveries = DeliveryStore().for_alerts(conn, [a.id for a in found])
    with shown_in(db):
        rows = [_alert_row(a, shown_time, deliveries.get(a.id, [])) for a in found]
    human = (
        "\n".join(f"#{r['id']} {r['created_at']:.19} {r['severity']:<8} {r['type']:<16} {r['message']}" for r in rows)
        or "no alerts"
    )
    _emit(rows, as_json, human)


def _alert_row(
    a: Alert, shown: Callable[[object], str | None], deliveries: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """One alert as `alerts list` prints it (times in the sheet_timezone setting), with its deliveries per channel."""
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
        "deliveries": [
            {k: shown(v) if k in {"delivered_at", "next_attempt_at", "failed_at"} else v for k, v in d.items()}
            for d in deliveries or []
        ],
    }


def _alerts_test(db: Database, channel: str | None, as_json: bool) -> None:
    """`alerts test`: a test message to each configured channel (or the one named), and each answer."""
    from sync_pipeline.domain.alert_chat import CHAT_CHANNELS, Channel
    from sync_pipeline.services.alert_delivery import send_test_email
    from sync_pipeline.services.chat_delivery import Webhooks, send_test

    webhooks = Webhooks.from_env()
    chosen = [Channel(channel)] if channel else [Channel.EMAIL, *(c for c in CHAT_CHANNELS if c in webhooks.urls)]
    results: list[dict[str, Any]] = []
    for c in chosen:
        if c is Channel.EMAIL:
            sent = send_test_email(db)
            results.append({"channel": "email", "ok": sent.ok, "answer": sent.message})
        else:
            results.append(send_test(db, webhooks, c))
    lines = [f"{r['channel']}: {'ok' if r['ok'] else 'FAILED'} — {r['answer']}" for r in results]
    _emit(results if len(results) != 1 or channel is None else results[0], as_json, "\n".join(lines))
    if not all(r["ok"] for r in results):
        sys.exit(EXIT_FAILED)


def _alerts_mail(db: Database, action: str, as_json: bool) -> None:
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
