"""Alert messages for chat: a Slack incoming webhook (text + Block Kit), a Teams Workflows webhook (an Adaptive Card)
and a plain JSON webhook. Pure: the same alerts give the same bytes (tests compare them)."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

from sync_pipeline.domain.alert_mail import (
    ACK_HINT,
    DEFAULT_NEXT_STEP,
    NEXT_STEPS,
    OPEN_IN_SHEET,
    cell_links,
    figures,
    run_link,
)
from sync_pipeline.domain.alert_rules import utc_text
from sync_pipeline.domain.alerts import Alert, Severity


class Channel(enum.StrEnum):
    EMAIL = "email"
    SLACK = "slack"
    TEAMS = "teams"
    WEBHOOK = "webhook"


CHAT_CHANNELS: Final = (Channel.SLACK, Channel.TEAMS, Channel.WEBHOOK)
SLACK_EMOJI: Final[Mapping[Severity, str]] = {
    Severity.INFO: ":information_source:",
    Severity.WARNING: ":warning:",
    Severity.CRITICAL: ":rotating_light:",
}
# Adaptive Card text colours (the card's own vocabulary) per severity: what shows severity at a glance in Teams.
TEAMS_COLOUR: Final[Mapping[Severity, str]] = {
    Severity.INFO: "Accent",
    Severity.WARNING: "Warning",
    Severity.CRITICAL: "Attention",
}
ADAPTIVE_CARD: Final = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_CARD_SCHEMA: Final = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_VERSION: Final = "1.4"  # what Teams renders in Workflows posts
MAX_ALERTS_SHOWN: Final = 10  # alerts written out in one chat message; older ones of a digest are counted
SLACK_SECTION_CHARS: Final = 3000  # Slack refuses a section text longer than this
_SEVERITY_ORDER: Final = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


def redact(url: str) -> str:
    """A webhook URL as it may be shown: its host, the path (the secret) as ***."""
    host = urlsplit(url).hostname or "webhook"
    return f"{host}/***"


def _severity(alerts: Sequence[Alert]) -> Severity:
    return max((a.severity for a in alerts), key=_SEVERITY_ORDER.__getitem__)


def _run_url(alert: Alert, ui_base_url: str, run_ids: Mapping[str, str]) -> str | None:
    run_id = alert.detail.get("run_id") or (run_ids.get(alert.sync_id) if alert.sync_id else None)
    return run_link(ui_base_url, str(run_id)) if run_id else None


def _sheet_url(alert: Alert) -> str | None:
    url = alert.detail.get("sheet_url")
    return str(url) if url else None


def _links(alert: Alert, ui_base_url: str, run_ids: Mapping[str, str]) -> list[tuple[str, str | None]]:
    return [("Open the run", _run_url(alert, ui_base_url, run_ids)), ("Open the sheet", _sheet_url(alert))]


def headline(alerts: Sequence[Alert]) -> str:
    severity = _severity(alerts)
    alert_type = alerts[0].alert_type
    if len(alerts) == 1:
        return f"{severity.value.upper()} {alert_type}: {' '.join(alerts[0].message.split())}"
    return f"{severity.value.upper()} {alert_type}: {len(alerts)} alerts since {utc_text(alerts[0].created_at)} UTC"


def _lines(alert: Alert) -> list[str]:
    since = alert.detail.get("since")
    rows = [("raised", f"{utc_text(alert.created_at)} UTC"), *([("since", f"{since} UTC")] if since else [])]
    return [f"{label}: {value}" for label, value in (*rows, *figures(alert))]


def slack_message(alerts: Sequence[Alert], *, ui_base_url: str, run_ids: Mapping[str, str]) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` (the notification) and Block Kit blocks; the emoji says severity."""
    severity = _severity(alerts)
    title = f"{SLACK_EMOJI[severity]} {headline(alerts)}"
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": title[:150]}}]
    for alert in alerts[-MAX_ALERTS_SHOWN:]:
        text = f"*#{alert.id}* {alert.message}\n" + "\n".join(f"• {line}" for line in _lines(alert))
        links = [
            f"<{url}|{label}>"
            for label, url in (
                ("Open the run", _run_url(alert, ui_base_url, run_ids)),
                ("Open the sheet", _sheet_url(alert)),
            )
            if url
        ]
        if links:
            text += "\n" + " · ".join(links)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:SLACK_SECTION_CHARS]}})
        cells = _slack_cell_links(alert)
        if cells:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": cells}})
    if len(alerts) > MAX_ALERTS_SHOWN:
        blocks.append(_slack_context(f"{len(alerts) - MAX_ALERTS_SHOWN} older alert(s) of this type not repeated"))
    ids = " ".join(str(a.id) for a in alerts)
    next_step = NEXT_STEPS.get(alerts[0].alert_type, DEFAULT_NEXT_STEP)
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*What to do next:* {next_step}"}})
    blocks.append(_slack_context(ACK_HINT.format(ids=ids)))
    return {"text": title, "blocks": blocks}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_cell_links(alert: Alert) -> str:
    """The alert's sheet cells as Slack links, one click each; whole links only, within a section's length."""
    text = f"*{OPEN_IN_SHEET.capitalize()}:*"
    for c in cell_links(alert):
        link = f"\n• <{c.url.replace('|', '%7C').replace('>', '%3E')}|{_slack_escape(c.label)}>"
        if len(text) + len(link) > SLACK_SECTION_CHARS:
            break
        text += link
    return text if "\n" in text else ""


def _slack_context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def teams_message(alerts: Sequence[Alert], *, ui_base_url: str, run_ids: Mapping[str, str]) -> dict[str, Any]:
    """A Teams Workflows webhook message: one Adaptive Card attachment; the title's colour says severity."""
    severity = _severity(alerts)
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": headline(alerts),
            "weight": "Bolder",
            "size": "Medium",
            "color": TEAMS_COLOUR[severity],
            "wrap": True,
        }
    ]
    actions: list[dict[str, Any]] = []
    for alert in alerts[-MAX_ALERTS_SHOWN:]:
        body.append({"type": "TextBlock", "text": f"#{alert.id} {alert.message}", "wrap": True})
        facts = [{"title": line.split(": ", 1)[0], "value": line.split(": ", 1)[1]} for line in _lines(alert)]
        body.append({"type": "FactSet", "facts": facts})
        cells = cell_links(alert)
        if cells:  # markdown links in a TextBlock: one per seller, where a card's few actions would not do
            markdown = ", ".join(f"[{_markdown_label(c.label)}]({c.url.replace(')', '%29')})" for c in cells)
            body.append({"type": "TextBlock", "text": f"{OPEN_IN_SHEET.capitalize()}: {markdown}", "wrap": True})
        for label, url in (
            ("Open the run", _run_url(alert, ui_base_url, run_ids)),
            ("Open the sheet", _sheet_url(alert)),
        ):
            if url and all(a["url"] != url for a in actions):
                actions.append({"type": "Action.OpenUrl", "title": label, "url": url})
    ids = " ".join(str(a.id) for a in alerts)
    next_step = NEXT_STEPS.get(alerts[0].alert_type, DEFAULT_NEXT_STEP)
    body.append({"type": "TextBlock", "text": f"What to do next: {next_step}", "wrap": True})
    body.append({"type": "TextBlock", "text": ACK_HINT.format(ids=ids), "wrap": True, "isSubtle": True})
    card: dict[str, Any] = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "content": card}]}


def _markdown_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def webhook_message(alerts: Sequence[Alert], *, ui_base_url: str, run_ids: Mapping[str, str]) -> dict[str, Any]:
    """Plain JSON for any bridge: the newest alert's `id, type, severity, message, created_at, sync_id, run_url,
    sellers`, and every alert of the digest (oldest first) under `alerts` in the same shape."""
    items = [_webhook_item(a, ui_base_url, run_ids) for a in alerts]
    return {**items[-1], "alerts": items}


def _webhook_item(alert: Alert, ui_base_url: str, run_ids: Mapping[str, str]) -> dict[str, Any]:
    sellers = alert.detail.get("seller_numbers") or alert.detail.get("sellers") or []
    return {
        "id": alert.id,
        "type": alert.alert_type,
        "severity": alert.severity.value,
        "message": alert.message,
        "created_at": f"{utc_text(alert.created_at).replace(' ', 'T')}Z",
        "sync_id": alert.sync_id,
        "run_url": _run_url(alert, ui_base_url, run_ids),
        "sellers": list(sellers) if isinstance(sellers, list | tuple) else [],
    }


RENDERERS: Final = {Channel.SLACK: slack_message, Channel.TEAMS: teams_message, Channel.WEBHOOK: webhook_message}
