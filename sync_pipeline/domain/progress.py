"""Progress over a whole sync (Requirement 4.1, 4.3): what the running sync stores, and the view `status` shows
(phase, rows done / rows to write, and an estimate of the time left). Pure: times are passed in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PHASE_LABELS: Mapping[str, str] = {
    "fetch": "reading the sheet",
    "validate": "validating the rows",
    "compare": "comparing with the database",
    "update": "writing the changes",
    "verify": "verifying the result",
}
MIN_RATE_SAMPLE_SECONDS = 0.5  # below this the rate says more about timer noise than about throughput


def progress_record(phase: str, done: int, total: int, *, started_at: dt.datetime, now: dt.datetime) -> dict[str, Any]:
    """The JSON a running sync stores on its audit row: cumulative over the phase, never per chunk.

    `started_at` is when the phase began (the rate, hence the estimate, is measured from there); `now` when these
    `done` rows were committed.
    """
    return {
        "phase": phase,
        "done": int(done),
        "total": int(total),
        "started_at": started_at.isoformat(timespec="milliseconds"),
        "updated_at": now.isoformat(timespec="milliseconds"),
    }


@dataclass(frozen=True)
class ProgressView:
    """What `sync-pipeline status` shows for a running sync."""

    phase: str
    label: str
    done: int
    total: int
    percent: float
    elapsed_s: float  # since the phase started
    eta_s: float | None  # estimated seconds left in the phase; None until there is a rate to go by

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "label": self.label,
            "done": self.done,
            "total": self.total,
            "percent": round(self.percent, 1),
            "elapsed_s": round(self.elapsed_s, 1),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
        }


def progress_view(stored: Mapping[str, Any] | None, *, now: dt.datetime, phase: str = "fetch") -> ProgressView:
    """The view of a stored progress record at `now`; with none stored yet, the sync is still in `phase`.

    The estimate assumes the rest goes at the average rate so far: time left = rows left / (rows done / seconds
    spent), less the time since the last record was stored (never below zero).
    """
    if not stored:
        return ProgressView(phase, PHASE_LABELS.get(phase, phase), 0, 0, 0.0, 0.0, None)
    phase = str(stored.get("phase") or phase)
    done, total = int(stored.get("done") or 0), int(stored.get("total") or 0)
    started = _when(stored.get("started_at"), now)
    updated = _when(stored.get("updated_at"), now)
    elapsed = max((now - started).total_seconds(), 0.0)
    percent = 100.0 if total == 0 else min(100.0, 100.0 * done / total)
    eta: float | None = None
    spent = (updated - started).total_seconds()
    if done >= total:
        eta = 0.0
    elif done > 0 and spent >= MIN_RATE_SAMPLE_SECONDS:
        eta = max((total - done) * spent / done - (now - updated).total_seconds(), 0.0)
    return ProgressView(phase, PHASE_LABELS.get(phase, phase), done, total, percent, elapsed, eta)


def _when(value: object, default: dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return default
    return default
