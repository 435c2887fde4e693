"""Recovery actions (Requirement 7.5, P31): what the sync did to recover, logged as audit events of one convention.

Each action is a row of `sync_error_logs` with the category of what failed (network, database, …) and the rule
`recovery:<action>`, so `sync-pipeline audit --sync ID` lists them with the sync's errors and
`sync-pipeline audit --recovery` lists them across syncs.
"""

from __future__ import annotations

import enum

RECOVERY_RULE_PREFIX = "recovery:"


class RecoveryAction(enum.StrEnum):
    SHEET_RETRY = "sheet_retry"  # a sheet read retried after a transient network error (Requirement 7.1)
    RECONNECT = "reconnect"  # a lost database connection re-established and the chunk retried (Requirement 7.2)
    CHUNK_RETRY = "chunk_retry"  # a chunk the database refused, retried row by row to isolate the bad rows
    RECORD_RETRY = "record_retry"  # a failed record queued, retried, written or given up on (Requirement 7.4)
    LOCK_TAKEOVER = "lock_takeover"  # the lock taken over from a holder that died holding it
    LOCK_REACQUIRED = "lock_reacquired"  # the lock's own database session was lost and the lock taken back
    ABANDONED_CLOSED = "abandoned_closed"  # a sync left running by a dead holder closed as abandoned
    RESYNC = "resync"  # sellers verification found missing or stale rewritten by a resync (Requirement 1.3)

    @property
    def rule(self) -> str:
        return RECOVERY_RULE_PREFIX + self.value


def is_recovery_rule(rule: str | None) -> bool:
    return bool(rule) and str(rule).startswith(RECOVERY_RULE_PREFIX)
