"""Automatic and manual resync on real SQLite and Postgres: P3 (exactly the missing sellers), P4 (alert on failure).

Exercises services.resync from an in-memory sheet through the sync, verification and resync, with the database
changed behind the sync's back by plain SQL and a trigger that refuses one seller (created on both databases).
Includes the issue's done-when scenarios: repair of deleted and edited rows, a resync that fails for one seller,
and recovery switched off. Does not touch Dagster (test_recovery_dagster.py), files or the network.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_pipeline.adapters.store.tables import sync_audit_logs, sync_record_logs
from sync_pipeline.domain.alerts import AlertType, Severity
from sync_pipeline.domain.audit import SyncKind, SyncStatus
from sync_pipeline.domain.clock import FixedClock
from sync_pipeline.services.alerts import list_alerts
from sync_pipeline.services.database import Database
from sync_pipeline.services.resync import resync_from_source, sync_verify_repair
from sync_pipeline_tests.support import tamper
from sync_pipeline_tests.support.db import audit_row as audit
from sync_pipeline_tests.support.db import reset_database
from sync_pipeline_tests.support.sheets import MemorySheetSource, seller_row, sheet

DB_EXAMPLES = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None, max_examples=15
)
START = dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC)
KEYS = [f"RS{i:05d}" for i in range(1, 25)]


def source(keys: list[str] = KEYS, extra: list[list[str]] | None = None) -> MemorySheetSource:
    return sheet([seller_row(k, name=f"売主{k[-2:]}") for k in keys] + (extra or []))


@pytest.fixture
def db(engine: sa.Engine) -> Database:
    return Database(engine=engine, clock=FixedClock(START))


def fresh(engine: sa.Engine) -> Database:
    reset_database(engine)
    return Database(engine=engine, clock=FixedClock(START))


def resyncs_of(db: Database, parent: str) -> list[dict]:
    query = sa.select(sync_audit_logs).where(sync_audit_logs.c.parent_sync_id == parent)
    with db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def written_by(db: Database, sync_id: str) -> dict[str, str]:
    query = sa.select(sync_record_logs.c.seller_number, sync_record_logs.c.action).where(
        sync_record_logs.c.sync_id == sync_id
    )
    with db.engine.connect() as conn:
        return dict(conn.execute(query).all())


def versions(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT seller_number, version FROM sellers")).all())


tampering = st.lists(
    st.sampled_from(["delete", "delete_property", "raw_edit", "app_edit", None]), min_size=24, max_size=24
)


@DB_EXAMPLES
@given(what=tampering)
def test_property_03_resync_rewrites_exactly_the_missing_sellers(engine: sa.Engine, what: list[str | None]) -> None:
    db = fresh(engine)
    sync_verify_repair(db, source())
    by = {kind: {k for k, w in zip(KEYS, what, strict=True) if w == kind} for kind in set(what)}
    deleted, no_property = by.get("delete", set()), by.get("delete_property", set())
    edited, app_edited = by.get("raw_edit", set()), by.get("app_edit", set())
    missing = deleted | no_property | edited
    version_before: dict[str, int] = {}

    def behind() -> None:
        tamper.delete_sellers(engine, deleted)
        tamper.delete_properties(engine, no_property)
        tamper.raw_edit(engine, edited)
        tamper.app_edit(engine, app_edited, at=START + dt.timedelta(hours=1))
        version_before.update(versions(db))

    run = sync_verify_repair(db, source(), after_apply=behind)
    assert run.verification.repair_keys == missing
    children = resyncs_of(db, run.summary.sync_id)
    if not missing:
        assert children == [] and run.resync.sync_id is None
        return
    [child] = children
    assert child["kind"] == SyncKind.RESYNC.value and child["sync_id"] == run.resync.sync_id
    assert set(written_by(db, child["sync_id"])) == missing  # exactly those, nothing else
    after = versions(db)
    untouched = set(KEYS) - missing
    assert {k: after[k] for k in untouched} == {k: version_before[k] for k in untouched}
    assert run.resync.repaired == missing and run.resync.remaining == frozenset()
    assert child["verification_status"] == "clean"
    assert audit(db, run.summary.sync_id)["gaps_resynced"] == len(deleted) == run.summary.gaps_resynced


def test_deleted_and_edited_rows_are_found_resynced_and_verified_clean(db: Database) -> None:
    """The issue's scenario: another application deletes sellers and properties and edits rows; the sync repairs."""
    sync_verify_repair(db, source())
    deleted, no_property, edited = KEYS[0:3], KEYS[3:5], KEYS[5:7]

    def behind() -> None:
        tamper.delete_sellers(db.engine, deleted)
        tamper.delete_properties(db.engine, no_property)
        tamper.raw_edit(db.engine, edited[:1], name="別人")
        tamper.raw_edit_property(db.engine, edited[1:], assessed_amount=1)

    run = sync_verify_repair(db, source(), after_apply=behind)
    parent = audit(db, run.summary.sync_id)
    assert (parent["gaps_found"], parent["stale_found"]) == (3, 4)
    assert parent["gaps_found"] == parent["gaps_resynced"] == 3
    assert run.as_dict()["gaps_found"] == run.as_dict()["gaps_resynced"] == 3
    child = audit(db, run.resync.sync_id or "")
    assert written_by(db, child["sync_id"]) == {
        **{k: "inserted" for k in deleted},
        **{k: "updated" for k in no_property + edited},
    }  # gaps and stale rows in one chunk: inserts and updates mixed
    assert child["verification_status"] == "clean" and child["status"] == SyncStatus.SUCCEEDED.value
    assert parent["verification"]["resync"]["stale_resynced"] == 4
    assert list_alerts(db, alert_type=AlertType.RESYNC_FAILED) == []
    # And the next sync has nothing left to do.
    again = sync_verify_repair(db, source())
    assert again.verification.clean and again.resync.sync_id is None
    assert again.summary.counts.inserted == again.summary.counts.updated == 0


def test_property_04_a_resync_that_fails_for_one_seller_raises_a_critical_alert(db: Database) -> None:
    sync_verify_repair(db, source())
    refused = KEYS[2]

    def behind() -> None:
        tamper.delete_sellers(db.engine, KEYS[1:4])
        tamper.raw_edit(db.engine, KEYS[10:12])
        tamper.install_reject_trigger(db.engine, refused)

    run = sync_verify_repair(db, source(), after_apply=behind)
    assert run.resync.remaining == {refused}
    assert run.resync.repaired == set(KEYS[1:4] + KEYS[10:12]) - {refused}
    assert refused in run.resync.failures and "refused by the test trigger" in run.resync.failures[refused]
    assert tamper.seller_numbers(db.engine) == set(KEYS) - {refused}
    [alert] = list_alerts(db, alert_type=AlertType.RESYNC_FAILED)
    assert alert.severity is Severity.CRITICAL
    assert alert.detail["seller_numbers"] == [refused]
    assert refused in alert.message and "refused by the test trigger" in alert.message
    assert alert.sync_id == run.resync.sync_id
    parent = audit(db, run.summary.sync_id)
    assert (parent["gaps_found"], parent["gaps_resynced"]) == (3, 2)
    child = audit(db, run.resync.sync_id or "")
    assert child["verification_status"] == "gaps" and child["gaps_found"] == 1
    assert child["status"] == SyncStatus.PARTIAL.value and child["failed_count"] == 1

    # Once the cause is gone, the next sync finds it still missing (a gap, not a new seller) and the resync restores it.
    tamper.drop_reject_trigger(db.engine)
    again = sync_verify_repair(db, source())
    assert again.verification.gaps == {refused} and again.resync.repaired == {refused}
    assert refused in tamper.seller_numbers(db.engine)


def test_property_04_a_resync_that_cannot_run_raises_a_critical_alert_naming_every_seller(db: Database) -> None:
    sync_verify_repair(db, source())
    broken: list[bool] = []

    def behind() -> None:
        tamper.delete_sellers(db.engine, KEYS[:2])
        broken.append(True)  # from now on the writes fail outright (the resync runs under the sync's own lock)

    def progress(phase: str, done: int, total: int) -> None:
        if broken and phase == "update":
            raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError, match="went away"):
        sync_verify_repair(db, source(), after_apply=behind, progress=progress)
    [alert] = list_alerts(db, alert_type=AlertType.RESYNC_FAILED)
    assert alert.severity is Severity.CRITICAL and alert.detail["seller_numbers"] == KEYS[:2]
    [child] = [r for r in resyncs_of(db, alert.detail["parent_sync_id"])]
    assert child["status"] == SyncStatus.FAILED.value
    assert tamper.seller_numbers(db.engine) == set(KEYS[2:])


def test_with_recovery_off_gaps_are_reported_and_alerted_but_nothing_is_written(db: Database) -> None:
    sync_verify_repair(db, source())
    with db.engine.begin() as conn:
        db.config.save(conn, {"auto_recovery": "false"}, now=START)
    state: list[list[tuple[object, ...]]] = []

    def behind() -> None:
        tamper.delete_sellers(db.engine, KEYS[:2])
        tamper.raw_edit(db.engine, KEYS[5:6])
        state.append(tamper.dump(db.engine))

    run = sync_verify_repair(db, source(), after_apply=behind)
    assert tamper.dump(db.engine) == state[0]  # nothing written after verification found them
    assert run.resync.skipped == "auto_recovery is off" and run.resync.sync_id is None
    assert resyncs_of(db, run.summary.sync_id) == []
    parent = audit(db, run.summary.sync_id)
    assert (parent["gaps_found"], parent["stale_found"], parent["gaps_resynced"]) == (2, 1, 0)
    assert parent["verification"]["resync"]["skipped"] == "auto_recovery is off"
    [gaps_alert] = list_alerts(db, alert_type=AlertType.GAPS_FOUND)
    assert gaps_alert.detail["seller_numbers"] == KEYS[:2] and "recovery is off" in gaps_alert.message
    [skipped] = list_alerts(db, alert_type=AlertType.RESYNC_SKIPPED)
    assert skipped.detail["seller_numbers"] == sorted(KEYS[:2] + KEYS[5:6])

    # Switched back on, the next sync repairs what the previous one reported: the deleted ones are still gaps.
    with db.engine.begin() as conn:
        db.config.save(conn, {"auto_recovery": "true"}, now=START)
    again = sync_verify_repair(db, source())
    assert again.resync.repaired == {*KEYS[:2], KEYS[5]}
    assert again.resync.verification is not None and again.resync.verification.clean


def test_an_operator_resyncs_chosen_sellers_by_hand(db: Database) -> None:
    sync_verify_repair(db, source(extra=[seller_row("RS99999", name="")]))  # RS99999: rejected row (no name)
    tamper.app_edit(db.engine, [KEYS[0]], at=START + dt.timedelta(hours=1), status="アプリ")  # a kept conflict
    tamper.raw_edit(db.engine, [KEYS[1]])
    before = versions(db)
    result = resync_from_source(
        db,
        source(extra=[seller_row("RS99999", name="")]),
        [KEYS[0], " rs00002 ", KEYS[3], "RS99999", "XX00000"],
        trigger="operator",
    )
    assert result.requested == {KEYS[0], KEYS[1], KEYS[3], "RS99999", "XX00000"}
    assert set(result.not_in_sheet) == {"RS99999", "XX00000"}
    assert "rejected sheet row" in result.not_in_sheet["RS99999"]
    assert result.repaired == {KEYS[0], KEYS[1], KEYS[3]}  # forced: even the kept conflict and the in-step row
    after = versions(db)
    assert {k for k in after if after[k] != before[k]} == {KEYS[0], KEYS[1], KEYS[3]}
    row = audit(db, result.sync_id or "")
    assert row["kind"] == "resync" and row["parent_sync_id"] is None and row["trigger"] == "operator"
    assert row["status"] == SyncStatus.PARTIAL.value  # two requested sellers could not be resynced
    assert row["verification_status"] == "clean"
    assert not result.ok


def test_nothing_to_repair_starts_no_resync(db: Database) -> None:
    run = sync_verify_repair(db, source())
    assert run.resync.sync_id is None and run.resync.skipped == "nothing to resync"
    assert resyncs_of(db, run.summary.sync_id) == []
    assert audit(db, run.summary.sync_id)["gaps_resynced"] == 0


def test_sellers_deleted_and_edited_between_syncs_are_gaps_resynced_and_verified_clean(db: Database) -> None:
    """The issue's scenario with no hook: another application changes the database between two syncs."""
    sync_verify_repair(db, source())
    tamper.delete_sellers(db.engine, KEYS[:3])
    tamper.delete_properties(db.engine, KEYS[3:4])
    tamper.raw_edit(db.engine, KEYS[5:7])
    run = sync_verify_repair(db, source())
    assert run.summary.counts.inserted == 0  # deleted sellers are gaps, not new sellers
    assert run.verification.gaps == set(KEYS[:3])
    assert set(KEYS[5:7]) <= run.verification.stale
    assert run.resync.repaired == {*KEYS[:4], *KEYS[5:7]}  # exactly what was changed behind the sync's back
    assert run.resync.verification is not None and run.resync.verification.clean
    parent = audit(db, run.summary.sync_id)
    assert parent["gaps_found"] == parent["gaps_resynced"] == 3
    assert tamper.seller_numbers(db.engine) == set(KEYS)


def test_with_recovery_off_sellers_deleted_between_syncs_are_reported_and_alerted_not_written(db: Database) -> None:
    sync_verify_repair(db, source())
    with db.engine.begin() as conn:
        db.config.save(conn, {"auto_recovery": "false"}, now=START)
    tamper.delete_sellers(db.engine, KEYS[:2])
    before = tamper.dump(db.engine)
    run = sync_verify_repair(db, source())
    assert tamper.dump(db.engine) == before
    assert run.verification.gaps == set(KEYS[:2]) and run.resync.sync_id is None
    [gaps_alert] = list_alerts(db, alert_type=AlertType.GAPS_FOUND)
    assert gaps_alert.detail["seller_numbers"] == KEYS[:2]
