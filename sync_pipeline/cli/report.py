"""`sync-pipeline status`, `health` and `audit`: what the syncs did and how they are doing."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import click

from sync_pipeline.cli import EXIT_FAILED, _emit, _open, main
from sync_pipeline.domain.audit import AuditQuery, SyncStatus


@main.command()
@click.option("--database-url")
@click.option("--json", "as_json", is_flag=True)
def status(database_url: str | None, as_json: bool) -> None:
    """Idle or running (with progress), the last attempt and the last success."""
    from sync_pipeline.services.report import current_status, shown_in

    db = _open(database_url)
    with shown_in(db):
        data = current_status(db)
    _emit(data, as_json, _human_status(data))


def _human_status(data: dict[str, Any]) -> str:
    last, ok, running = data["last_attempt"], data["last_success"], data["running"]
    human = [f"state: {data['state']}"]
    if data["lock"]:
        human.append(f"  sync lock held by {data['lock']['holder']} since {data['lock']['since']}")
    if running:
        p = running["progress"]
        line = f"  {running['kind']} sync {running['sync_id']} since {running['started_at']}: {p['label']}"
        if p["total"]:
            line += f", {p['done']}/{p['total']} rows ({p['percent']:.0f}%)"
            if p["eta_s"] is not None:
                line += f", about {p['eta_s']:.0f}s left"
        human.append(line)
    for label, s in (("last attempt", last), ("last success", ok)):
        if not s:
            human.append(f"{label}: never")
            continue
        human.append(
            f"{label}: {s['started_at']} {s['status']} in {s['duration_s']}s — inserted {s['inserted']}, "
            f"updated {s['updated']}, unchanged {s['unchanged']}, rejected {s['rejected']}, failed {s['failed']}, "
            f"gaps {s['gaps_found']}" + (f"; {s['message']}" if s.get("message") else "")
        )
    return "\n".join(human)


@main.command()
@click.option("--database-url")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (rates as fractions 0..1).")
def health(database_url: str | None, as_json: bool) -> None:
    """Health at a glance: success rates, gaps, open alerts, last syncs (times in the sheet_timezone setting)."""
    from sync_pipeline.services.health import health as read_health

    figures = read_health(_open(database_url))
    data = figures.as_dict()
    _emit(data, as_json, _human_health(data))


def _percent(rate: float | None) -> str:
    return "no attempts" if rate is None else f"{rate:.1%}"


def _figure(value: float | None, spec: str, unit: str) -> str:
    return "-" if value is None else f"{value:{spec}} {unit}"


def _human_health(h: dict[str, Any]) -> str:
    since = h["minutes_since_last_success"]
    lines = [
        f"sync health at {h['now']} ({h['timezone']}), {h['state']}",
        f"  success rate 24 h    {_percent(h['success_rate_24h'])} ({h['successes_24h']}/{h['attempts_24h']})",
        f"  success rate 7 days  {_percent(h['success_rate_7d'])} ({h['successes_7d']}/{h['attempts_7d']})",
        f"  gaps (last verify)   {'never verified' if h['gap_count'] is None else h['gap_count']}",
        f"  open alerts          {h['open_alerts']}",
        f"  last attempt         {h['last_attempt_at'] or 'never'} {h['last_attempt_status'] or ''}".rstrip(),
        f"  last success         {h['last_success_at'] or 'never'}"
        + ("" if since is None else f" ({since:.0f} min ago)"),
        f"  last duration        {_figure(h['last_duration_s'], '.1f', 's')}",
        f"  last throughput      {_figure(h['last_rows_per_s'], '.0f', 'rows/s')}",
    ]
    stats = h["stats_7d"]["duration_s"]
    if stats["count"]:
        lines.append(
            f"  duration 7 days      p50 {stats['p50']:.1f} s, p95 {stats['p95']:.1f} s, max {stats['max']:.1f} s "
            f"over {stats['count']} syncs"
        )
    if h["recent_syncs"]:
        lines += ["", "recent syncs", f"  {'started':<25} {'kind':<9} {'status':<9} {'seconds':>8} {'rows/s':>8}  sync"]
        for s in h["recent_syncs"]:
            duration = "-" if s["duration_s"] is None else f"{s['duration_s']:.1f}"
            rate = "-" if s["rows_per_s"] is None else f"{s['rows_per_s']:.0f}"
            lines.append(
                f"  {s['started_at']:<25} {s['kind']:<9} {s['status']:<9} {duration:>8} {rate:>8}  {s['sync_id']}"
            )
    if h["open_alert_list"]:
        lines += ["", "open alerts (acknowledge with `sync-pipeline alerts ack ID`)"]
        for a in h["open_alert_list"]:
            lines.append(f"  #{a['id']} {a['created_at']} {a['severity']:<8} {a['alert_type']}: {a['message']}")
    return "\n".join(lines)


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
@click.option("--sync", "sync_id", help="Show one sync: its audit row and its error and recovery log, in order.")
@click.option("--recovery", is_flag=True, help="List recovery actions (retries, reconnects, takeovers, …) instead.")
@click.option("--include-archive", is_flag=True, help="Also search the syncs archived after retention_days.")
@click.option("--database-url")
@click.option("--json", "as_json", is_flag=True)
def audit(
    since: str | None,
    until: str | None,
    status_: str | None,
    seller: str | None,
    limit: int,
    sync_id: str | None,
    recovery: bool,
    include_archive: bool,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Query the audit log by date range, status and seller number (combined); --sync ID or --recovery for events."""
    from sync_pipeline.services.report import audit_rows, shown_in
    from sync_pipeline.services.resync import normalise_seller_numbers

    if seller is not None:  # typed as the office types it: the sheet's own key normalisation
        seller = next(iter(normalise_seller_numbers([seller])), seller)

    if sync_id is not None or recovery:
        _audit_events(sync_id, since, until, seller, limit, database_url, as_json)
        return

    query = AuditQuery(
        since=_parse_when(since),
        until=_parse_when(until),
        status=SyncStatus(status_) if status_ else None,
        seller_number=seller,
        limit=limit,
        include_archive=include_archive,
    )
    db = _open(database_url)
    with shown_in(db):
        rows = audit_rows(db, query)
    lines: list[str] = []
    for r in rows:
        lines.append(
            f"{r['started_at']}  {r['status']:<9} {r['kind']:<9} +{r['inserted'] or 0} ~{r['updated'] or 0} "
            f"rejected {r['rejected'] or 0}  {r['sync_id']}"
        )
        for record in r.get("records", []):  # --seller: what happened to that seller, with its attributes
            attributes = (record["detail"] or {}).get("attributes")
            shown = f"  attributes {json.dumps(attributes, ensure_ascii=False)}" if attributes else ""
            lines.append(f"    {seller} {record['action']} (sheet row {record['sheet_row']}){shown}")
    human = "\n".join(lines) or "no matching syncs"
    _emit(rows, as_json, human)


def _audit_events(
    sync_id: str | None,
    since: str | None,
    until: str | None,
    seller: str | None,
    limit: int,
    database_url: str | None,
    as_json: bool,
) -> None:
    from sync_pipeline.services.report import recovery_events, shown_in, sync_events

    db = _open(database_url)
    if sync_id is not None:
        with shown_in(db):
            found = sync_events(db, sync_id)
        if found is None:
            click.echo(f"error: no sync {sync_id} in the audit log", err=True)
            sys.exit(EXIT_FAILED)
        s = found["sync"]
        head = f"{s['started_at']}  {s['status']:<9} {s['kind']:<9} {s['sync_id']}" + (
            f"\n  {s['message']}" if s["message"] else ""
        )
        if s.get("sheet_feedback"):
            from sync_pipeline.services.feedback import feedback_line

            head += f"\n  {feedback_line(s['sheet_feedback'])}"
        lines = [head, *(_event_line(e) for e in found["events"])] if found["events"] else [head, "  no events"]
        _emit(found, as_json, "\n".join(lines))
        return
    query = AuditQuery(since=_parse_when(since), until=_parse_when(until), seller_number=seller, limit=limit)
    with shown_in(db):
        events = recovery_events(db, query)
    _emit(events, as_json, "\n".join(_event_line(e, with_sync=True) for e in events) or "no recovery actions")


def _event_line(e: dict[str, Any], *, with_sync: bool = False) -> str:
    where = " ".join(p for p in (e["seller_number"], e["cell"]) if p)
    return (
        f"  {e['at']}  {e['category']:<10} {e['rule'] or '':<24} "
        + (f"{e['sync_id']}  " if with_sync else "")
        + (f"[{where}] " if where else "")
        + e["message"]
    )
