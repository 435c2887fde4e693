"""Reads of `sync_audit_logs` for the alert rules: the failure streak, the last success, the first and latest sync.

Every query is bounded (aggregates or LIMIT 1), so evaluating the rules costs the same after a year of syncs.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from sync_pipeline.adapters.store.tables import sync_audit_logs
from sync_pipeline.domain.alert_rules import FAILURE_STATUSES, SUCCESS_STATUSES, FailureStreak, SyncOutcome
from sync_pipeline.domain.audit import SyncKind, SyncStatus

t = sync_audit_logs


def _outcome(row: Mapping[str, Any]) -> SyncOutcome:
    return SyncOutcome(
        sync_id=row["sync_id"],
        kind=SyncKind(row["kind"]),
        status=SyncStatus(row["status"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        run_id=row["run_id"],
        message=row["message"],
    )


def _values(items: Iterable[SyncKind | SyncStatus]) -> list[str]:
    return [i.value for i in items]


class SyncHistory:
    """SQL over the audit log for the alert rules; every method takes the caller's connection."""

    def _one(self, conn: sa.Connection, query: sa.Select[Any]) -> SyncOutcome | None:
        row = conn.execute(query.limit(1)).mappings().first()
        return _outcome(dict(row)) if row is not None else None

    def last_success(self, conn: sa.Connection, kinds: Sequence[SyncKind]) -> SyncOutcome | None:
        query = sa.select(t).where(t.c.kind.in_(_values(kinds)), t.c.status.in_(_values(SUCCESS_STATUSES)))
        return self._one(conn, query.order_by(t.c.started_at.desc(), t.c.id.desc()))

    def first_sync(self, conn: sa.Connection, kinds: Sequence[SyncKind]) -> SyncOutcome | None:
        query = sa.select(t).where(t.c.kind.in_(_values(kinds)))
        return self._one(conn, query.order_by(t.c.started_at, t.c.id))

    def latest_attempt(self, conn: sa.Connection, kinds: Sequence[SyncKind]) -> SyncOutcome | None:
        query = sa.select(t).where(t.c.kind.in_(_values(kinds)), t.c.status != SyncStatus.RUNNING.value)
        return self._one(conn, query.order_by(t.c.started_at.desc(), t.c.id.desc()))

    def failure_streak(
        self, conn: sa.Connection, kinds: Sequence[SyncKind], *, exclude_run_ids: Collection[str] = ()
    ) -> FailureStreak:
        """The counted failures after the last counted success; statuses outside both sets neither add nor end.

        Failures in `exclude_run_ids` (Dagster runs that will be retried: their retry counts instead) are skipped.
        """
        last = self.last_success(conn, kinds)
        failed: list[sa.ColumnElement[bool]] = [t.c.kind.in_(_values(kinds)), t.c.status.in_(_values(FAILURE_STATUSES))]
        if exclude_run_ids:
            failed.append(sa.or_(t.c.run_id.is_(None), t.c.run_id.not_in(sorted(exclude_run_ids))))
        if last is not None:
            last_id = sa.select(t.c.id).where(t.c.sync_id == last.sync_id).scalar_subquery()
            failed.append(
                sa.or_(
                    t.c.started_at > last.started_at,
                    sa.and_(t.c.started_at == last.started_at, t.c.id > last_id),
                )
            )
        count = int(conn.execute(sa.select(sa.func.count()).select_from(t).where(*failed)).scalar_one())
        if count == 0:
            return FailureStreak(last_success=last)
        first = self._one(conn, sa.select(t).where(*failed).order_by(t.c.started_at, t.c.id))
        latest = self._one(conn, sa.select(t).where(*failed).order_by(t.c.started_at.desc(), t.c.id.desc()))
        return FailureStreak(last_success=last, failures=count, first_failure=first, latest_failure=latest)

    def run_ids(self, conn: sa.Connection, sync_ids: Iterable[str]) -> dict[str, str]:
        """sync id -> Dagster run id, for those syncs that ran in Dagster."""
        wanted = sorted(set(sync_ids))
        if not wanted:
            return {}
        query = sa.select(t.c.sync_id, t.c.run_id).where(t.c.sync_id.in_(wanted), t.c.run_id.is_not(None))
        return {sync_id: run_id for sync_id, run_id in conn.execute(query).all()}
