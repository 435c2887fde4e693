"""Runtime settings (Requirement 10): names, defaults, and the rules that refuse an invalid value."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sync_pipeline.domain.fields import DEFAULT_REQUIRED_FIELDS, DEFAULT_SELLER_NUMBER_PATTERN, FIELD_NAMES

UNMAPPED_REPORT = "report"
UNMAPPED_KEEP = "keep"
UNMAPPED_REFUSE = "refuse"
UNMAPPED_CHOICES = (UNMAPPED_REPORT, UNMAPPED_KEEP, UNMAPPED_REFUSE)
FEEDBACK_OFF = "off"
FEEDBACK_NOTES = "notes"
FEEDBACK_CHOICES = (FEEDBACK_OFF, FEEDBACK_NOTES)
DOC = "doc"  # the dataclass field metadata key holding a setting's documentation
MIN_SYNC_INTERVAL_MINUTES = 1  # Requirement 10.1: anything faster would overlap with itself on a large sheet
DEFAULT_UI_BASE_URL = "http://127.0.0.1:3000"  # where `dagster dev` serves the UI (README); run links start here
# One address as mail servers accept it in RCPT TO: a local part and a dotted domain, no spaces, commas or brackets.
# Deliberately loose (RFC 5322 allows more); its job is to catch typos such as a missing @ or a stray separator.
EMAIL_ADDRESS = re.compile(r"^[^@\s,;<>()\[\]]+@[^@\s,;<>()\[\]]+\.[^@\s,;<>()\[\].]+$")


class SettingsError(ValueError):
    """An invalid setting: the message names the setting and the rule it breaks."""

    def __init__(self, key: str, rule: str) -> None:
        super().__init__(f"setting {key!r} {rule}")
        self.key = key
        self.rule = rule


@dataclass(frozen=True)
class SettingChange:
    """One versioned change of a setting (`sync_config_history`), values as stored text."""

    key: str
    old_value: str | None
    new_value: str
    changed_at: dt.datetime
    changed_by: str | None


def _setting(default: Any, doc: str) -> Any:
    """A setting's default with its documentation beside it; the CLI and the Dagster launchpad both show `doc`."""
    return field(default=default, metadata={DOC: doc})


@dataclass(frozen=True)
class Settings:
    """Every runtime-tunable threshold; stored in the `sync_config` table and read where it is used, on its next use."""

    sync_interval_minutes: int = _setting(
        60,
        "Minutes between scheduled syncs, counted from the start of the last sync (CLI and manual syncs count too). "
        f"At least {MIN_SYNC_INTERVAL_MINUTES}. Read by seller_sync_schedule on every tick (once a minute).",
    )
    sync_paused: bool = _setting(
        False,
        "true stops seller_sync_schedule from starting syncs (each tick is skipped and says so); manual syncs "
        "still run. Read on every tick.",
    )
    consecutive_failure_threshold: int = _setting(
        3, "Failed syncs in a row that raise one critical alert per failure streak. At least 1."
    )
    gap_threshold: int = _setting(
        0,
        "Sellers missing from the database after a sync (gaps) tolerated before a gaps_found alert: the alert is "
        "raised when gaps exceed this number. At least 0. Read by the next sync's verification.",
    )
    auto_recovery: bool = _setting(
        True,
        "true: gaps and stale rows found by verification are resynced automatically (seller_gap_resync). "
        "false: they are only reported and alerted; repair them with seller_resync_job. Read when the resync step "
        "starts.",
    )
    no_success_alert_hours: float = _setting(
        2.0, "Hours without a successful sync before a no_recent_success alert. At least 0.1."
    )
    retry_delay_minutes: int = _setting(5, "Minutes before a record that failed to write is retried. At least 0.")
    retry_max_attempts: int = _setting(
        3, "Retries of a record that failed to write before it is alerted and given up. At least 0."
    )
    min_sheet_ratio: float = _setting(
        0.5,
        "A sheet with fewer valid sellers than this share of the sellers the database holds from it is refused as a "
        "partial read (nothing is written). Between 0 and 1.",
    )
    seller_number_pattern: str = _setting(
        DEFAULT_SELLER_NUMBER_PATTERN,
        "Regular expression a seller number must match after NFKC normalisation and trimming "
        "(default: two capital letters and five digits, AA12345).",
    )
    required_fields: tuple[str, ...] = _setting(
        DEFAULT_REQUIRED_FIELDS,
        f"Fields every seller row must have, comma-separated; must include seller_number. Built-in fields: "
        f"{', '.join(FIELD_NAMES)}; a sheet contract's own fields may be named too. Combined with the contract's "
        "`required: true` (either makes a field required); a field the contract lacks refuses the sync.",
    )
    unmapped_columns: str = _setting(
        UNMAPPED_REPORT,
        "What a sheet column that no field of the sheet contract names does: report (synced nowhere, listed in "
        "the summary, --json unmapped_columns, the audit and the sheet_columns_mapped check), keep (also stored as "
        "text in sellers.attributes._unmapped by header), refuse (the sync stops before writing anything). Read "
        "when a sync starts.",
    )
    sheet_feedback: str = _setting(
        FEEDBACK_OFF,
        "off, or notes: after every full sync of a Google sheet, each rejected cell gets a note saying what to fix "
        "(and when it was found) and the sync's notes that no longer apply are cleared, in one request; people's "
        "own notes are never changed. Needs the sheet shared with the service account as an Editor; a failure to "
        "write is reported and logged, never fails the sync. Read when a sync starts.",
    )
    sheet_timezone: str = _setting(
        "Asia/Tokyo", "IANA time zone in which 更新日時 values typed without a zone are read."
    )
    chunk_size: int = _setting(
        10_000,
        "Sellers written per transaction (bigger ones amortise the round trips); a cancelled or killed sync keeps "
        "every whole chunk written. At least 1.",
    )
    slow_sync_factor: float = _setting(
        2.0, "A sync slower than this many times the median of the last 7 days raises a slow_sync warning. At least 1."
    )
    slow_sync_min_samples: int = _setting(
        5, "Syncs in the last 7 days needed before the slow-sync rule applies. At least 1."
    )
    email_min_interval_minutes: int = _setting(
        60, "Minutes between two e-mails about alerts of the same type. At least 0."
    )
    email_enabled: bool = _setting(
        False,
        "true: every alert is e-mailed to email_recipients through the SYNC_SMTP_* server (at most one e-mail per "
        "alert type per email_min_interval_minutes; alerts raised while the server is down are sent later).",
    )
    email_recipients: tuple[str, ...] = _setting(
        (), "Comma-separated e-mail addresses that receive alerts; each is checked when set."
    )
    chat_min_interval_minutes: int = _setting(
        15,
        "Minutes between two chat messages (Slack, Teams, webhook) about alerts of the same type, per channel; "
        "alerts raised meanwhile go out together as one message. At least 0.",
    )
    ui_base_url: str = _setting(
        DEFAULT_UI_BASE_URL, "The Dagster UI's address as the recipients reach it, for the run links in alert e-mails."
    )
    retention_days: int = _setting(
        90,
        "Audit, record, error and metric rows and acknowledged alerts older than this many days are moved to the "
        "archive tables by audit_retention_job (daily). At least 1.",
    )

    def validate(self) -> Settings:
        """Return self, or raise SettingsError naming the first setting that breaks its rule."""
        for f in fields(self):
            rule = _RULES.get(f.name)
            if rule is not None:
                message = rule(getattr(self, f.name))
                if message:
                    raise SettingsError(f.name, message)
        if self.email_enabled and not self.email_recipients:
            raise SettingsError("email_recipients", "must name at least one address while email_enabled is true")
        return self

    def as_strings(self) -> dict[str, str]:
        """Each setting as the text stored in `sync_config`."""
        return {f.name: _to_text(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_strings(cls, values: Mapping[str, str]) -> Settings:
        """Parse stored text; unknown keys are refused, missing keys keep their defaults."""
        return cls().with_changes(values)

    def with_changes(self, values: Mapping[str, str]) -> Settings:
        """A copy with the given settings parsed from text and validated."""
        known = {f.name: f for f in fields(self)}
        changes: dict[str, object] = {}
        for key, text in values.items():
            if key not in known:
                raise SettingsError(key, f"is not a setting; known settings: {', '.join(sorted(known))}")
            default = getattr(Settings(), key)
            changes[key] = _parse(key, text, default)
        return replace(self, **changes).validate()  # type: ignore[arg-type]


def setting_docs() -> dict[str, str]:
    """Each setting's documentation, in declaration order (the CLI's `settings show`, the launchpad's config)."""
    return {f.name: f.metadata[DOC] for f in fields(Settings)}


def setting_types() -> dict[str, type]:
    """Each setting's Python type as its default shows it (bool, int, float, str or tuple)."""
    return {f.name: type(f.default) for f in fields(Settings)}


def setting_text(value: object) -> str:
    """A typed setting value as the text stored in `sync_config` (lists and tuples comma-separated)."""
    return _to_text(tuple(value) if isinstance(value, list) else value)


def _to_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def _parse(key: str, text: str, default: object) -> object:
    text = text.strip()
    try:
        if isinstance(default, bool):
            lowered = text.lower()
            if lowered in {"true", "1", "yes", "on"}:
                return True
            if lowered in {"false", "0", "no", "off"}:
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            return tuple(part.strip() for part in text.split(",") if part.strip())
    except ValueError:
        raise SettingsError(key, f"must be a {type(default).__name__}, got {text!r}") from None
    return text


def _at_least(minimum: float) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        return None if float(value) >= minimum else f"must be at least {minimum:g}, got {value}"  # type: ignore[arg-type]

    return check


def _ratio(value: object) -> str | None:
    return None if 0.0 <= float(value) <= 1.0 else f"must be between 0 and 1, got {value}"  # type: ignore[arg-type]


def _pattern(value: object) -> str | None:
    try:
        re.compile(str(value))
    except re.error as exc:
        return f"must be a valid regular expression ({exc})"
    return None


_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # as a sheet contract names its fields


def _required(value: object) -> str | None:
    names: tuple[str, ...] = tuple(value) if isinstance(value, (tuple, list)) else (str(value),)
    unknown = [n for n in names if not _FIELD_NAME.match(n)]
    if unknown:
        return (
            f"names {unknown}, which are not field names; fields are {', '.join(FIELD_NAMES)} and those of the "
            "sheet contract"
        )
    if "seller_number" not in names:
        return "must include seller_number (it is the key)"
    return None


def _timezone(value: object) -> str | None:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        return f"must be an IANA time zone such as Asia/Tokyo, got {value!r}"
    return None


def _addresses(value: object) -> str | None:
    addresses: tuple[str, ...] = tuple(value) if isinstance(value, (tuple, list)) else (str(value),)
    bad = [a for a in addresses if not EMAIL_ADDRESS.match(a)]
    if bad:
        return f"must be comma-separated e-mail addresses such as ops@example.com; not an address: {bad}"
    return None


def _http_url(value: object) -> str | None:
    text = str(value)
    if not re.match(r"^https?://[^\s/]+", text):
        return f"must be an http:// or https:// URL such as {DEFAULT_UI_BASE_URL}, got {text!r}"
    return None


_RULES: dict[str, Callable[[object], str | None]] = {
    "sync_interval_minutes": _at_least(MIN_SYNC_INTERVAL_MINUTES),
    "consecutive_failure_threshold": _at_least(1),
    "gap_threshold": _at_least(0),
    "no_success_alert_hours": _at_least(0.1),
    "retry_delay_minutes": _at_least(0),
    "retry_max_attempts": _at_least(0),
    "min_sheet_ratio": _ratio,
    "seller_number_pattern": _pattern,
    "required_fields": _required,
    "sheet_timezone": _timezone,
    "chunk_size": _at_least(1),
    "slow_sync_factor": _at_least(1),
    "slow_sync_min_samples": _at_least(1),
    "email_min_interval_minutes": _at_least(0),
    "chat_min_interval_minutes": _at_least(0),
    "email_recipients": _addresses,
    "ui_base_url": _http_url,
    "unmapped_columns": lambda value: (
        None if value in UNMAPPED_CHOICES else f"must be one of {', '.join(UNMAPPED_CHOICES)}, got {value!r}"
    ),
    "retention_days": _at_least(1),
    "sheet_feedback": lambda value: (
        None if value in FEEDBACK_CHOICES else f"must be one of {', '.join(FEEDBACK_CHOICES)}, got {value!r}"
    ),
}
