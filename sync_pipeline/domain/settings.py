"""Runtime settings (Requirement 10): names, defaults, and the rules that refuse an invalid value."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sync_pipeline.domain.fields import DEFAULT_REQUIRED_FIELDS, DEFAULT_SELLER_NUMBER_PATTERN, FIELD_NAMES

MIN_SYNC_INTERVAL_MINUTES = 1  # Requirement 10.1: anything faster would overlap with itself on a large sheet


class SettingsError(ValueError):
    """An invalid setting: the message names the setting and the rule it breaks."""

    def __init__(self, key: str, rule: str) -> None:
        super().__init__(f"setting {key!r} {rule}")
        self.key = key
        self.rule = rule


@dataclass(frozen=True)
class Settings:
    """Every runtime-tunable threshold; stored in the `sync_config` table, read at the start of every run."""

    sync_interval_minutes: int = 60
    consecutive_failure_threshold: int = 3
    gap_threshold: int = 0
    auto_recovery: bool = True
    no_success_alert_hours: float = 2.0
    retry_delay_minutes: int = 5
    retry_max_attempts: int = 3
    min_sheet_ratio: float = 0.5  # a sheet with fewer than this share of the sellers the database holds is refused
    seller_number_pattern: str = DEFAULT_SELLER_NUMBER_PATTERN
    required_fields: tuple[str, ...] = DEFAULT_REQUIRED_FIELDS
    sheet_timezone: str = "Asia/Tokyo"  # how to read 更新日時 typed without a zone
    chunk_size: int = 10_000  # rows per write transaction: each commits whole; bigger ones amortise the round trips
    lock_lease_seconds: int = 300
    slow_sync_factor: float = 2.0
    slow_sync_min_samples: int = 5
    email_min_interval_minutes: int = 60

    def validate(self) -> Settings:
        """Return self, or raise SettingsError naming the first setting that breaks its rule."""
        for f in fields(self):
            rule = _RULES.get(f.name)
            if rule is not None:
                message = rule(getattr(self, f.name))
                if message:
                    raise SettingsError(f.name, message)
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


def _required(value: object) -> str | None:
    names: tuple[str, ...] = tuple(value) if isinstance(value, (tuple, list)) else (str(value),)
    unknown = [n for n in names if n not in FIELD_NAMES]
    if unknown:
        return f"names unknown fields {unknown}; fields are {', '.join(FIELD_NAMES)}"
    if "seller_number" not in names:
        return "must include seller_number (it is the key)"
    return None


def _timezone(value: object) -> str | None:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        return f"must be an IANA time zone such as Asia/Tokyo, got {value!r}"
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
    "lock_lease_seconds": _at_least(10),
    "slow_sync_factor": _at_least(1),
    "slow_sync_min_samples": _at_least(1),
    "email_min_interval_minutes": _at_least(0),
}
