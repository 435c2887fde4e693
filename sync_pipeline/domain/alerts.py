"""Alert vocabulary (Requirement 3): types, severities and the alert value that crosses layers."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertType(enum.StrEnum):
    """What an alert is about; e-mail throttling (Requirement 3.5) is per type."""

    GAPS_FOUND = "gaps_found"  # verification found more gaps than gap_threshold (Requirement 3.2)
    INTEGRITY_ISSUE = "integrity_issue"  # database rows break an integrity rule (Property 36)
    RESYNC_FAILED = "resync_failed"  # a resync left sellers unrepaired, or failed outright (Property 4)
    RESYNC_SKIPPED = "resync_skipped"  # sellers need repair but automatic recovery is off (Requirement 10.4)
    CONSECUTIVE_FAILURES = "consecutive_failures"
    NO_RECENT_SUCCESS = "no_recent_success"
    RETRY_EXHAUSTED = "retry_exhausted"
    SLOW_SYNC = "slow_sync"


# Detail entry of an alert: seller number -> URL opening its cell (Google sources); e-mails show each as a link.
CELL_LINKS = "cell_links"


@dataclass(frozen=True)
class Alert:
    """One alert as stored in `sync_alerts`."""

    id: int
    alert_type: str
    severity: Severity
    message: str
    created_at: dt.datetime
    sync_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    acknowledged_at: dt.datetime | None = None
    acknowledged_by: str | None = None
    emailed_at: dt.datetime | None = None
    email_attempts: int = 0  # failed and successful deliveries; climbs while the mail server is down

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None
