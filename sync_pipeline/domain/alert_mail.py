"""The text of alert e-mails (Requirement 3.5): what happened, since when, the figures, what to do next, run links.

One e-mail covers one alert type: a single alert, or a digest of those that waited out the throttle interval. A
Google sheet's gap and integrity alerts link each quoted seller to its cell (`cell_links`), one click to open it.
Pure text building; sending is `adapters/mail.py`.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sync_pipeline.domain.alert_rules import RULE_KEY, utc_text
from sync_pipeline.domain.alerts import CELL_LINKS, Alert, AlertType, Severity
from sync_pipeline.domain.sheet import linked_cell

SUBJECT_PREFIX = "[sync_pipeline]"
SUBJECT_CHARS = 140  # longer subjects are cut by most mail clients anyway
DIGEST_ALERTS = 30  # alerts written out in full in one e-mail; older ones in a digest are listed by id only
FIGURE_ITEMS = 20  # list items (seller numbers) quoted per figure; the alert in the database keeps them all
ACK_HINT = "Acknowledge with `sync-pipeline alerts ack {ids}` or the acknowledge_alerts job in the Dagster UI."
_SHOWN_APART = frozenset({RULE_KEY, "since", "run_id", CELL_LINKS})  # bookkeeping, or shown on lines of their own
OPEN_IN_SHEET = "open in the sheet"
_SEVERITY_ORDER = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}

NEXT_STEPS: Mapping[str, str] = {
    AlertType.CONSECUTIVE_FAILURES: "Open the latest failed run and read its error (`sync-pipeline audit --status "
    "failed` lists the failed syncs). Fix the cause — sheet access, credentials, the database — then run "
    "`sync-pipeline sync`; the next successful sync ends the streak.",
    AlertType.NO_RECENT_SUCCESS: "Check that dagster-daemon is running and seller_sync_schedule is on, and see "
    "`sync-pipeline status` for the latest attempt; run `sync-pipeline sync` by hand to bring the database up to date.",
    AlertType.GAPS_FOUND: "Sellers valid in the sheet are missing from the database. With auto_recovery on, the "
    "resync repairs them; otherwise run seller_resync_job for the listed seller numbers.",
    AlertType.INTEGRITY_ISSUE: "Fix the listed sellers (in the sheet, or in the database where the rule says so), "
    "then run `sync-pipeline verify`.",
    AlertType.RESYNC_FAILED: "Read the reason given for each seller, fix the cause and run seller_resync_job for them.",
    AlertType.RESYNC_SKIPPED: "Automatic recovery is off: run seller_resync_job for the listed sellers, or "
    "`sync-pipeline settings set auto_recovery=true`.",
}
DEFAULT_NEXT_STEP = "See `sync-pipeline alerts list --all` and the sync's audit entry (`sync-pipeline audit`)."


@dataclass(frozen=True)
class MailContent:
    subject: str
    text: str
    html: str


def run_link(ui_base_url: str, run_id: str) -> str:
    return f"{ui_base_url.rstrip('/')}/runs/{run_id}"


def _when(value: dt.datetime) -> str:
    return f"{utc_text(value)} UTC"


def _figure(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        shown = ", ".join(str(v) for v in value[:FIGURE_ITEMS])
        return shown + (f" and {len(value) - FIGURE_ITEMS} more" if len(value) > FIGURE_ITEMS else "")
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {v}" for k, v in list(value.items())[:FIGURE_ITEMS])
    return str(value)


def figures(alert: Alert) -> list[tuple[str, str]]:
    """The alert's detail as label/value pairs, without the bookkeeping key."""
    return [
        (k.replace("_", " "), _figure(v)) for k, v in alert.detail.items() if k not in _SHOWN_APART and v is not None
    ]


@dataclass(frozen=True)
class CellLink:
    """One seller's cell in the sheet, as an alert links it."""

    seller_number: str
    url: str
    cell: str | None  # the A1 reference the link opens, when its URL names one

    @property
    def label(self) -> str:
        return f"{self.seller_number} ({self.cell})" if self.cell else self.seller_number


def cell_links(alert: Alert) -> list[CellLink]:
    """The alert's links to sheet cells (its `cell_links` detail), in the order stored, at most FIGURE_ITEMS.

    Only http(s) URLs: the detail is data read back from the database, and a link in an e-mail must not run code.
    """
    stored = alert.detail.get(CELL_LINKS)
    if not isinstance(stored, Mapping):
        return []
    links = [
        CellLink(str(seller), url, linked_cell(url))
        for seller, url in stored.items()
        if isinstance(url, str) and url.lower().startswith(("https://", "http://"))
    ]
    return links[:FIGURE_ITEMS]


def _run_id(alert: Alert, run_ids: Mapping[str, str]) -> str | None:
    run_id = alert.detail.get("run_id")
    if run_id:
        return str(run_id)
    return run_ids.get(alert.sync_id) if alert.sync_id else None


def render_alerts(alerts: Sequence[Alert], *, ui_base_url: str, run_ids: Mapping[str, str]) -> MailContent:
    """One e-mail for `alerts` (all of one type, oldest first); `run_ids` maps their sync ids to Dagster run ids."""
    if not alerts:
        raise ValueError("render_alerts needs at least one alert")
    severity = max((a.severity for a in alerts), key=_SEVERITY_ORDER.__getitem__)
    alert_type = alerts[0].alert_type
    first_line = " ".join(alerts[-1].message.split())
    headline = first_line if len(alerts) == 1 else f"{len(alerts)} alerts since {_when(alerts[0].created_at)}"
    subject = f"{SUBJECT_PREFIX} {severity.value.upper()} {alert_type}: {headline}"
    if len(subject) > SUBJECT_CHARS:
        subject = subject[: SUBJECT_CHARS - 1] + "…"
    next_step = NEXT_STEPS.get(alert_type, DEFAULT_NEXT_STEP)
    ids = " ".join(str(a.id) for a in alerts)

    text = [f"{len(alerts)} {alert_type} alert(s), severity {severity.value}." if len(alerts) > 1 else ""]
    parts = [f"<p>{len(alerts)} <b>{html.escape(alert_type)}</b> alerts, severity {severity.value}.</p>"]
    if len(alerts) == 1:
        parts = []
    shown = alerts[-DIGEST_ALERTS:]
    if len(alerts) > len(shown):
        older = ", ".join(f"#{a.id}" for a in alerts[: len(alerts) - len(shown)])
        note = f"{len(alerts) - len(shown)} older alert(s) of this type, not repeated here: {older}"
        text += [note, ""]
        parts.append(f"<p>{html.escape(note)}</p>")
    for alert in shown:
        since = alert.detail.get("since")
        run_id = _run_id(alert, run_ids)
        rows = [("raised", _when(alert.created_at)), *([("since", f"{since} UTC")] if since else []), *figures(alert)]
        text += [
            f"Alert #{alert.id} ({alert.severity.value}, {alert.alert_type})",
            "",
            alert.message,
            "",
            *(f"  {label}: {value}" for label, value in rows),
            *(f"  {OPEN_IN_SHEET}: {c.seller_number} {c.url}" for c in cell_links(alert)),
            *([f"  sync: {alert.sync_id}"] if alert.sync_id else []),
            *([f"  run in the Dagster UI: {run_link(ui_base_url, run_id)}"] if run_id else []),
            "",
        ]
        link = (
            f'<p><a href="{html.escape(run_link(ui_base_url, run_id))}">Open the run in the Dagster UI</a></p>'
            if run_id
            else ""
        )
        table = "".join(
            f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>" for label, value in rows
        )
        cells = cell_links(alert)
        if cells:
            anchors = "<br>".join(f'<a href="{html.escape(c.url)}">{html.escape(c.label)}</a>' for c in cells)
            table += f"<tr><th align='left' valign='top'>{OPEN_IN_SHEET}</th><td>{anchors}</td></tr>"
        parts.append(
            f"<h3>Alert #{alert.id} ({html.escape(alert.severity.value)}, {html.escape(alert.alert_type)})</h3>"
            f"<p>{html.escape(alert.message)}</p><table>{table}"
            + (f"<tr><th align='left'>sync</th><td>{html.escape(alert.sync_id)}</td></tr>" if alert.sync_id else "")
            + f"</table>{link}"
        )
    text += ["What to do next:", next_step, "", ACK_HINT.format(ids=ids)]
    parts.append(f"<h3>What to do next</h3><p>{html.escape(next_step)}</p>")
    parts.append(f"<p>{html.escape(ACK_HINT.format(ids=ids))}</p>")
    body_text = "\n".join(text).strip() + "\n"
    body_html = "<html><body>" + "".join(parts) + "</body></html>"
    return MailContent(subject=subject, text=body_text, html=body_html)


def render_test(*, now: dt.datetime, recipients: Sequence[str], ui_base_url: str) -> MailContent:
    """The message `sync-pipeline alerts test-email` sends."""
    text = (
        f"This is a test message from sync_pipeline, sent at {_when(now)} to {', '.join(recipients)}.\n"
        f"Alerts will arrive like this; their run links start with {ui_base_url}.\n"
    )
    body_html = f"<html><body><p>{html.escape(text).replace(chr(10), '<br>')}</p></body></html>"
    return MailContent(subject=f"{SUBJECT_PREFIX} test e-mail", text=text, html=body_html)
