"""Evaluating the alert rules (Requirements 3.1, 3.3) against the audit log, so CLI and Dagster syncs count alike.

The decisions are `domain/alert_rules.py`; this module reads what they need, raises what they decide (stored, and
written to the log with its severity by `raise_alert`, Property 11) and hands each new alert to an optional listener
(a sensor's or a run's `context.log`). Thresholds are read from the settings on every evaluation (P46).

Evaluations are serialised by a lock that dies with its holder (name `alert_rules`, `adapters.store.lock`): the
rules read, then insert, and two evaluators interleaving (a sensor tick and `alerts check`) could otherwise both
raise the same streak.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sync_pipeline.adapters.store.alerts import AlertStore
from sync_pipeline.adapters.store.history import SyncHistory
from sync_pipeline.adapters.store.lock import SyncLock
from sync_pipeline.domain.alert_rules import (
    CONSECUTIVE_FAILURES_RULE,
    COUNTED_KINDS,
    NO_RECENT_SUCCESS_RULE,
    RuleDecision,
    decide_consecutive_failures,
    decide_no_recent_success,
)
from sync_pipeline.domain.alerts import Alert, AlertType
from sync_pipeline.services.alerts import raise_alert
from sync_pipeline.services.database import Database

log = logging.getLogger(__name__)

ALL_RULES: tuple[str, ...] = (CONSECUTIVE_FAILURES_RULE, NO_RECENT_SUCCESS_RULE)
RULES_LOCK = "alert_rules"
LOCK_WAIT_SECONDS = 10.0  # how long an evaluator waits for another one to finish before giving up this time
LOCK_POLL_SECONDS = 0.1

AlertListener = Callable[[Alert], None]

_alerts = AlertStore()
_history = SyncHistory()


@dataclass(frozen=True)
class RulesResult:
    """What one evaluation saw and raised; `busy` when another evaluator held the lock past the wait."""

    decisions: tuple[RuleDecision, ...] = ()
    raised: tuple[Alert, ...] = ()
    busy: bool = False

    def summary(self) -> str:
        """One line per rule: what it saw (a sensor's SkipReason, the CLI's human output)."""
        if self.busy:
            return "another process is evaluating the alert rules right now; its result stands for this one"
        return "; ".join(f"{d.rule}: {d.observation}" for d in self.decisions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "busy": self.busy,
            "rules": {d.rule: d.observation for d in self.decisions},
            "raised": [{"id": a.id, "type": a.alert_type, "severity": a.severity.value} for a in self.raised],
        }


def evaluate_rules(
    db: Database,
    *,
    rules: Collection[str] = ALL_RULES,
    on_alert: AlertListener | None = None,
    exclude_run_ids: Collection[str] = (),
    sleep: Callable[[float], None] = time.sleep,
) -> RulesResult:
    """Evaluate `rules` once against the audit log and raise what they decide; idempotent however often it runs.

    `exclude_run_ids`: Dagster runs that failed but will be retried (tag dagster/will_retry=true); their syncs do not
    count as failures, so a sync and its retry count once. Only the sensors know them (they ask the instance).
    """
    unknown = set(rules) - set(ALL_RULES)
    if unknown:
        raise ValueError(f"unknown alert rules {sorted(unknown)}; rules are {', '.join(ALL_RULES)}")
    with hold_lock(db, RULES_LOCK, sleep=sleep) as held:
        if not held:
            log.info("alert rules: another evaluation holds the %s lock; skipped this one", RULES_LOCK)
            return RulesResult(busy=True)
        settings = db.settings()
        now = db.clock.now()
        decisions: list[RuleDecision] = []
        raised: list[Alert] = []
        with db.engine.begin() as conn:
            if CONSECUTIVE_FAILURES_RULE in rules:
                decisions.append(
                    decide_consecutive_failures(
                        _history.failure_streak(conn, COUNTED_KINDS, exclude_run_ids=exclude_run_ids),
                        threshold=settings.consecutive_failure_threshold,
                        alerted_keys=_alerts.rule_keys(conn, AlertType.CONSECUTIVE_FAILURES),
                    )
                )
            if NO_RECENT_SUCCESS_RULE in rules:
                decisions.append(
                    decide_no_recent_success(
                        last_success=_history.last_success(conn, COUNTED_KINDS),
                        first_sync=_history.first_sync(conn, COUNTED_KINDS),
                        latest_attempt=_history.latest_attempt(conn, COUNTED_KINDS),
                        hours=settings.no_success_alert_hours,
                        now=now,
                        alerted_keys=_alerts.rule_keys(conn, AlertType.NO_RECENT_SUCCESS),
                    )
                )
            for decision in decisions:
                draft = decision.draft
                if draft is not None:
                    raised.append(
                        raise_alert(
                            conn,
                            draft.alert_type,
                            draft.severity,
                            draft.message,
                            now=now,
                            sync_id=draft.sync_id,
                            detail=draft.detail,
                        )
                    )
    if on_alert is not None:
        for alert in raised:
            on_alert(alert)
    return RulesResult(decisions=tuple(decisions), raised=tuple(raised))


@contextlib.contextmanager
def hold_lock(db: Database, name: str, *, sleep: Callable[[float], None] = time.sleep) -> Iterator[bool]:
    """Hold the lock `name` for the block, waiting up to LOCK_WAIT_SECONDS; yields False if it could not be taken.

    The same kind of lock as the sync's (`adapters.store.lock`): it dies with its holder, so a crashed evaluation or
    delivery never blocks the next one."""
    lock = SyncLock(db.engine, name=name)
    holder = f"{name}-{uuid.uuid4()}"
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while not lock.try_acquire(holder, now=db.clock.now()):
        if time.monotonic() >= deadline:
            yield False
            return
        sleep(LOCK_POLL_SECONDS)
    try:
        yield True
    finally:
        lock.release()


def evaluate_after_sync(db: Database, *, on_alert: AlertListener | None = None) -> RulesResult | None:
    """The sync lifecycle's hook: evaluate every rule once a sync's audit row is closed, so every finished sync
    (CLI, Dagster, resync) is judged at once. A database error here is logged, not raised: the sync's own outcome is
    already recorded, and the sensors and `alerts check` evaluate again."""
    try:
        return evaluate_rules(db, on_alert=on_alert)
    except sa.exc.SQLAlchemyError:
        log.exception("alert rules could not be evaluated after the sync; the next sensor tick will")
        return None
