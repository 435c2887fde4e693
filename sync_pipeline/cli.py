"""The `sync-pipeline` command: a thin face over the same services the Dagster assets use."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import click

from sync_pipeline.domain.audit import AuditQuery, SyncStatus
from sync_pipeline.domain.errors import SyncError
from sync_pipeline.domain.settings import SettingsError
from sync_pipeline.services.database import Database, open_database
from sync_pipeline.services.environment import Environment, safe_url

EXIT_FAILED = 1  # the sync (or verification) failed
EXIT_USAGE = 2  # bad settings or arguments (click uses 2 as well)


def _environment(
    database_url: str | None = None, source: str | None = None, worksheet: str | None = None
) -> Environment:
    """The environment's configuration with the command line's options over it (the one place both are merged)."""
    return Environment.from_env().with_overrides(database_url=database_url, sheet_source=source, worksheet=worksheet)


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


@main.command()
@click.option("--source", help="CSV/XLSX path or gsheet:KEY_OR_URL (default: $SYNC_SHEET_SOURCE, then the sample).")
@click.option("--worksheet", help="Worksheet title (Google Sheets or XLSX); default: the first one.")
@click.option("--database-url", help="SQLAlchemy URL (default: $SYNC_DATABASE_URL, then the embedded SQLite file).")
@click.option("--dry-run", is_flag=True, help="Show what would be inserted and updated; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on standard output, nothing else.")
def sync(source: str | None, worksheet: str | None, database_url: str | None, dry_run: bool, as_json: bool) -> None:
    """Run seller_sync_job through Dagster in-process; exit 1 when the sync failed."""
    env = _environment(database_url, source, worksheet)
    summary = _dry_run(env) if dry_run else _run_job(env)
    _emit(summary, as_json, _human_summary(summary))
    # A run whose later step failed (the gap resync, say) exits 1 too, even when the sync itself was applied.
    failed = {SyncStatus.FAILED.value, SyncStatus.CANCELLED.value, SyncStatus.SKIPPED.value}
    if summary["status"] in failed or not summary.get("dagster_success", True):
        sys.exit(EXIT_FAILED)


def _run_job(env: Environment) -> dict[str, Any]:
    import dagster as dg  # imported here: the other commands should start fast

    from sync_pipeline.definitions import defs
    from sync_pipeline.defs.resources import resources_for
    from sync_pipeline.services.report import summary_for_run

    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    with _stdout_to_stderr(), instance:
        result = defs.resolve_job_def("seller_sync_job").execute_in_process(
            instance=instance,
            raise_on_error=False,
            resources=resources_for(env),
            tags={"sync_pipeline/trigger": "cli"},
        )
    db = open_database(env.database_url)
    summary = summary_for_run(db, result.run_id)
    if summary is None:  # the run failed before it could open a sync (bad configuration)
        summary = {"status": SyncStatus.FAILED.value, "sync_id": None, "message": _run_failure_message(result)}
    summary["run_id"] = result.run_id
    summary["dagster_success"] = result.success
    if not result.success and summary["status"] not in {SyncStatus.FAILED.value, SyncStatus.CANCELLED.value}:
        summary["message"] = f"the sync was applied but the Dagster run failed: {_run_failure_message(result)}"
    return summary


def _run_failure_message(result: Any) -> str:
    """The first step failure of a Dagster run, as one line for the operator."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            return f"{event.step_key}: {event.step_failure_data.error.message.strip().splitlines()[0]}"
    return "the Dagster run failed before the sync started (see the run's event log)"


def _dry_run(env: Environment) -> dict[str, Any]:
    from sync_pipeline.services.lifecycle import preview
    from sync_pipeline.services.sources import build_source

    try:
        return preview(open_database(env.database_url), build_source(env)).as_dict()
    except SyncError as exc:
        return {
            "status": SyncStatus.FAILED.value,
            "dry_run": True,
            "category": exc.category.value,
            "message": exc.message,
        }


def _human_summary(s: dict[str, Any]) -> str:
    if s.get("sync_id") is None and s.get("status") == SyncStatus.FAILED.value:
        return f"sync failed: {s.get('message')}"
    lines = [
        f"sync {s['sync_id']}  status={s['status']}" + ("  (dry run: nothing written)" if s.get("dry_run") else ""),
        f"  rows read {s['rows_read']}, valid {s['valid']}, rejected {s['rejected']}",
        f"  inserted {s['inserted']}, updated {s['updated']}, unchanged {s['unchanged']}, "
        f"conflicts {s['conflicts']}, failed {s['failed']}",
        f"  gaps found {s.get('gaps_found', 0)}, resynced {s.get('gaps_resynced', 0)}; duration {s['duration_s']}s",
    ]
    if s.get("message"):
        lines.append(f"  {s['message']}")
    for r in s.get("rejections", [])[:20]:
        lines.append(f"  rejected row {r['row']} {r.get('cell') or ''}: {r['message']}")
    if len(s.get("rejections", [])) > 20:
        lines.append(f"  …and {len(s['rejections']) - 20} more (--json lists them all)")
    for key in ("would_insert", "would_update"):
        if key in s:
            lines.append(f"  {key.replace('_', ' ')}: {len(s[key])} {', '.join(s[key][:10])}")
    return "\n".join(lines)


@main.command()
@click.option("--source", help="CSV/XLSX path or gsheet:KEY_OR_URL (default: $SYNC_SHEET_SOURCE, then the sample).")
@click.option("--worksheet", help="Worksheet title (Google Sheets or XLSX); default: the first one.")
@click.option("--database-url", help="SQLAlchemy URL (default: $SYNC_DATABASE_URL, then the embedded SQLite file).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on standard output, nothing else.")
def verify(source: str | None, worksheet: str | None, database_url: str | None, as_json: bool) -> None:
    """Read the sheet and check that the database agrees with it, writing nothing; exit 1 when it does not."""
    from sync_pipeline.services.sources import build_source
    from sync_pipeline.services.verify import verify_source

    env = _environment(database_url, source, worksheet)
    try:
        figures = verify_source(open_database(env.database_url), build_source(env))
    except SyncError as exc:
        figures = {"status": "failed", "clean": False, "category": exc.category.value, "message": exc.message}
    _emit(figures, as_json, _human_verification(figures))
    if not figures["clean"]:
        sys.exit(EXIT_FAILED)


def _human_verification(v: dict[str, Any]) -> str:
    if v["status"] == "failed":
        return f"verification failed: {v.get('message')}"
    lines = [
        f"verification {v['status']}: sheet {v['sheet_valid_count']} valid sellers, database {v['db_matched_count']} "
        f"of them ({v['db_total_count']} in all)",
        f"  gaps {v['gaps_found']}, stale {v['stale_found']}, kept conflicts {v['conflicts_kept']}, "
        f"orphans {v['orphans_found']}, integrity issues {v['integrity_issues']}; {v['duration_s']}s",
    ]
    counts = {
        "gaps": "gaps_found",
        "stale": "stale_found",
        "kept_conflicts": "conflicts_kept",
        "orphans": "orphans_found",
    }
    for label, count in counts.items():
        if v[label]:
            more = v[count] - len(v[label])
            lines.append(f"  {label.replace('_', ' ')}: {', '.join(v[label])}" + (f" and {more} more" if more else ""))
    for i in v["integrity"]:
        where = " ".join(part for part in (i["field"], i["cell"] and f"(cell {i['cell']})") if part)
        lines.append(f"  {i['seller_number']}: {i['rule']}" + (f" {where}" if where else ""))
    if v["repair_needed"]:
        lines.append(
            "  a sync repairs gaps and stale rows automatically"
            if v["auto_recovery"]
            else "  automatic recovery is off: repair them with seller_resync_job"
        )
    return "\n".join(lines)


@main.command()
@click.option("--database-url")
@click.option("--json", "as_json", is_flag=True)
def status(database_url: str | None, as_json: bool) -> None:
    """Idle or running (with progress), the last attempt and the last success."""
    from sync_pipeline.services.report import current_status

    data = current_status(_open(database_url))
    last, ok = data["last_attempt"], data["last_success"]
    human = [f"state: {data['state']}"]
    if data["running"]:
        human.append(f"  running since {data['running']['started_at']}: {data['running']['progress']}")
    human.append(f"last attempt: {last['started_at']} {last['status']}" if last else "last attempt: never")
    human.append(f"last success: {ok['started_at']} {ok['status']}" if ok else "last success: never")
    _emit(data, as_json, "\n".join(human))


def _parse_when(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-01-31 or 2026-01-31T09:00") from None


@main.command()
@click.option("--since", help="From this date/time (UTC, inclusive).")
@click.option("--until", help="Before this date/time (UTC, exclusive).")
@click.option("--status", "status_", type=click.Choice([s.value for s in SyncStatus]))
@click.option("--seller", help="Only syncs that logged this seller number.")
@click.option("--limit", default=50, show_default=True)
@click.option("--database-url")
@click.option("--json", "as_json", is_flag=True)
def audit(
    since: str | None,
    until: str | None,
    status_: str | None,
    seller: str | None,
    limit: int,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Query the audit log by date range, status and seller number (combined)."""
    from sync_pipeline.services.report import audit_rows
    from sync_pipeline.services.resync import normalise_seller_numbers

    if seller is not None:  # typed as the office types it: the sheet's own key normalisation
        seller = next(iter(normalise_seller_numbers([seller])), seller)
    query = AuditQuery(
        since=_parse_when(since),
        until=_parse_when(until),
        status=SyncStatus(status_) if status_ else None,
        seller_number=seller,
        limit=limit,
    )
    rows = audit_rows(_open(database_url), query)
    human = (
        "\n".join(
            f"{r['started_at']}  {r['status']:<9} {r['kind']:<9} +{r['inserted'] or 0} ~{r['updated'] or 0} "
            f"rejected {r['rejected'] or 0}  {r['sync_id']}"
            for r in rows
        )
        or "no matching syncs"
    )
    _emit(rows, as_json, human)


@main.command()
@click.argument("action", type=click.Choice(["show", "set"]), default="show")
@click.argument("pairs", nargs=-1)
@click.option("--database-url")
@click.option("--json", "as_json", is_flag=True)
def settings(action: str, pairs: tuple[str, ...], database_url: str | None, as_json: bool) -> None:
    """Show the settings in force, or `set KEY=VALUE…` (validated; effective from the next run)."""
    db = _open(database_url)
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


@main.command()
@click.argument("action", type=click.Choice(["list", "ack"]), default="list")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "show_all", is_flag=True, help="Include acknowledged alerts.")
@click.option("--limit", default=50, show_default=True)
@click.option("--database-url")
@click.option("--json", "as_json", is_flag=True)
def alerts(
    action: str, ids: tuple[int, ...], show_all: bool, limit: int, database_url: str | None, as_json: bool
) -> None:
    """List alerts, most recent first (unacknowledged unless --all), or `ack ID…` to acknowledge them."""
    from sync_pipeline.services.alerts import acknowledge, list_alerts

    db = _open(database_url)
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
    found = list_alerts(db, limit=limit, unacknowledged_only=not show_all)
    rows = [
        {
            "id": a.id,
            "type": a.alert_type,
            "severity": a.severity.value,
            "created_at": a.created_at.isoformat(" "),
            "message": a.message,
            "sync_id": a.sync_id,
            "acknowledged_at": a.acknowledged_at,
            "detail": dict(a.detail),
        }
        for a in found
    ]
    human = (
        "\n".join(f"#{r['id']} {r['created_at']:.19} {r['severity']:<8} {r['type']:<16} {r['message']}" for r in rows)
        or "no alerts"
    )
    _emit(rows, as_json, human)


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
