"""`sync-pipeline sync` and `verify`: the sync through Dagster in-process, and the read-only comparison."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from sync_pipeline.cli import EXIT_FAILED, _emit, _environment, _stdout_to_stderr, main
from sync_pipeline.domain.audit import SyncStatus
from sync_pipeline.domain.errors import SyncError
from sync_pipeline.services.database import open_database
from sync_pipeline.services.environment import Environment


@main.command()
@click.option("--source", help="CSV/XLSX path or gsheet:KEY_OR_URL (default: $SYNC_SHEET_SOURCE, then the sample).")
@click.option("--worksheet", help="Worksheet title (Google Sheets or XLSX); default: the first one.")
@click.option("--database-url", help="SQLAlchemy URL (default: $SYNC_DATABASE_URL, then the embedded SQLite file).")
@click.option("--contract", "contract", help="Sheet contract file (YAML; default: $SYNC_CONTRACT, then the built-in).")
@click.option("--dry-run", is_flag=True, help="Show what would be inserted and updated; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on standard output, nothing else.")
def sync(
    source: str | None,
    worksheet: str | None,
    database_url: str | None,
    contract: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Run seller_sync_job through Dagster in-process; exit 1 when the sync failed."""
    env = _environment(database_url, source, worksheet, contract)
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
    from sync_pipeline.services.report import shown_in, summary_for_run

    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    with _stdout_to_stderr(), instance:
        result = defs.resolve_job_def("seller_sync_job").execute_in_process(
            instance=instance,
            raise_on_error=False,
            resources=resources_for(env),
            tags={"sync_pipeline/trigger": "cli"},
        )
    db = open_database(env.database_url)
    with shown_in(db):
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
    from sync_pipeline.services.dry_run import preview
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
    if s.get("unmapped_columns"):
        lines.append(
            f"  columns not synced (no field of the sheet contract names them): {', '.join(s['unmapped_columns'])}"
            " — add them to the contract (sync-pipeline contract show), or set unmapped_columns=keep to store them"
        )
    feedback = s.get("sheet_feedback")
    if feedback and feedback.get("reason") != "sheet_feedback is off":  # the default says nothing new each time
        from sync_pipeline.services.feedback import feedback_line

        lines.append(f"  {feedback_line(feedback)}")
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
@click.option("--contract", "contract", help="Sheet contract file (YAML; default: $SYNC_CONTRACT, then the built-in).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on standard output, nothing else.")
def verify(
    source: str | None, worksheet: str | None, database_url: str | None, contract: str | None, as_json: bool
) -> None:
    """Read the sheet and check that the database agrees with it, writing nothing; exit 1 when it does not."""
    from sync_pipeline.services.sources import build_source
    from sync_pipeline.services.verify import verify_source

    env = _environment(database_url, source, worksheet, contract)
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
