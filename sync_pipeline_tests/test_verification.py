"""Verification after every sync on real SQLite and Postgres: P1, P2, P5 and the database-side integrity rules P32–P36.

Exercises services.verify (and services.resync where a verification leads to one) from an in-memory sheet through
ingestion, the sync and the verification queries, with the database changed behind the sync's back by plain SQL.
Does not touch Dagster (see test_recovery_dagster.py), files or the network. The sheet-level P30/P32/P33 tests of
ingestion are elsewhere; the integrity tests here are about rows already in the database.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_pipeline.adapters.store.tables import metadata, sync_alerts, sync_audit_logs, sync_error_logs
from sync_pipeline.domain.alerts import AlertType, Severity
from sync_pipeline.domain.audit import SyncKind, SyncStatus
from sync_pipeline.domain.clock import FixedClock
from sync_pipeline.domain.errors import ErrorCategory, SheetReadError
from sync_pipeline.domain.settings import Settings
from sync_pipeline.domain.sheet import RawSheet
from sync_pipeline.domain.verification import IntegrityRule, sample
from sync_pipeline.services.alerts import list_alerts
from sync_pipeline.services.database import Database
from sync_pipeline.services.resync import sync_verify_repair
from sync_pipeline.services.snapshot import read_snapshot
from sync_pipeline.services.verify import (
    GAP_RULE,
    AlreadyVerifiedError,
    record_verification,
    verify_snapshot,
    verify_source,
)
from sync_pipeline_tests.support import tamper
from sync_pipeline_tests.support.db import audit_row, reset_database
from sync_pipeline_tests.support.sheets import HEADER, MemorySheetSource, seller_row, sheet

DB_EXAMPLES = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None, max_examples=15
)
START = dt.datetime(2026, 2, 1, 9, 0)
KEYS = [f"VF{i:05d}" for i in range(1, 21)]
NAME_COLUMN = HEADER.index("氏名")
PROPERTY_COLUMN = HEADER.index("物件所在地")


def source(keys: list[str] = KEYS, extra: list[list[str]] | None = None) -> MemorySheetSource:
    return sheet([seller_row(k) for k in keys] + (extra or []))


def row_of(key: str, keys: list[str] = KEYS) -> int:
    return keys.index(key) + 2  # header on row 1


@pytest.fixture
def db(engine: sa.Engine) -> Database:
    return Database(engine=engine, clock=FixedClock(START))


def fresh(engine: sa.Engine) -> Database:
    reset_database(engine)
    return Database(engine=engine, clock=FixedClock(START))


def logged(db: Database, sync_id: str, rule: str) -> list[dict]:
    query = sa.select(sync_error_logs).where(sync_error_logs.c.sync_id == sync_id, sync_error_logs.c.rule == rule)
    with db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


class FailingSource:
    description = "memory:down"

    def read(self, on_retry: object = None) -> RawSheet:
        raise SheetReadError(ErrorCategory.NETWORK, "the sheet could not be read (test)")


def test_property_01_every_completed_sync_has_exactly_one_verification(db: Database) -> None:
    sync_verify_repair(db, source())  # succeeded
    sync_verify_repair(db, source(extra=[seller_row("bad-number")]))  # partial: one rejected row
    sync_verify_repair(db, source(), after_apply=lambda: tamper.delete_sellers(db.engine, KEYS[:2]))  # + a resync
    with pytest.raises(SheetReadError):
        sync_verify_repair(db, FailingSource())  # type: ignore[arg-type]

    with db.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(sync_audit_logs)).mappings()]
    completed = [r for r in rows if SyncStatus(r["status"]).completed]
    assert {r["kind"] for r in completed} == {SyncKind.MANUAL.value, SyncKind.RESYNC.value}
    assert len(completed) == 4
    assert all(r["verified_at"] is not None and r["verification_status"] for r in completed)
    assert [r["verified_at"] for r in rows if r["status"] == SyncStatus.FAILED.value] == [None]

    # A second verification of the same sync is refused, and the first one stays as it was.
    first = completed[0]
    snapshot = read_snapshot(db, source(), Settings())
    with pytest.raises(AlreadyVerifiedError):
        record_verification(db, first["sync_id"], verify_snapshot(db, snapshot, Settings()), settings=Settings())
    assert audit_row(db, first["sync_id"])["verification"] == first["verification"]


@DB_EXAMPLES
@given(deleted=st.sets(st.sampled_from(KEYS), max_size=8), during=st.booleans())
def test_property_02_logged_gaps_equal_sheet_keys_minus_database_keys(
    engine: sa.Engine, deleted: set[str], during: bool
) -> None:
    db = fresh(engine)
    sync_verify_repair(db, source())
    at_verification: set[str] = set()

    def behind_the_sync() -> None:
        tamper.delete_sellers(engine, deleted)
        at_verification.update(tamper.seller_numbers(engine))

    if during:  # between the sync's writes and its verification
        run = sync_verify_repair(db, source(), after_apply=behind_the_sync)
    else:  # before the sync: sellers it wrote before are not re-inserted as new, so they are gaps all the same
        tamper.delete_sellers(engine, deleted)
        run = sync_verify_repair(
            db, source(), after_apply=lambda: at_verification.update(tamper.seller_numbers(engine))
        )

    gaps = {r["seller_number"] for r in logged(db, run.summary.sync_id, GAP_RULE)}
    assert gaps == set(KEYS) - at_verification
    assert gaps == deleted
    assert run.verification.gaps == gaps
    assert all(r["category"] == ErrorCategory.INTEGRITY.value for r in logged(db, run.summary.sync_id, GAP_RULE))
    assert {r["sheet_row"] for r in logged(db, run.summary.sync_id, GAP_RULE)} == {row_of(k) for k in gaps}
    assert audit_row(db, run.summary.sync_id)["gaps_found"] == len(gaps) == run.summary.gaps_found


def test_property_05_every_verification_is_written_to_the_audit_log(db: Database) -> None:
    sync_verify_repair(db, source())

    def behind() -> None:
        tamper.delete_sellers(db.engine, KEYS[:3])
        tamper.raw_edit(db.engine, KEYS[3:5])
        tamper.app_edit(db.engine, KEYS[5:6], at=START + dt.timedelta(hours=1))

    tamper.insert_foreign_seller(db.engine, "ZZ99999", at=START)  # an orphan
    run = sync_verify_repair(db, source(), after_apply=behind)
    v = run.verification
    row = audit_row(db, run.summary.sync_id)
    assert row["verified_at"] == START
    assert row["verification_status"] == "gaps"
    for name, value in v.figures().items():
        assert row[name] == value, name
    assert (row["sheet_valid_count"], row["db_matched_count"], row["gaps_found"], row["stale_found"]) == (20, 17, 3, 2)
    assert (row["conflicts_kept"], row["orphans_found"]) == (1, 1)
    stored = row["verification"]
    assert stored["gaps"] == KEYS[:3] and stored["stale"] == KEYS[3:5] and stored["kept_conflicts"] == KEYS[5:6]
    assert stored["orphans"] == ["ZZ99999"]
    assert stored["resync"]["sync_id"] == run.resync.sync_id  # the repair is noted on the sync it repaired
    assert row["gaps_resynced"] == 3
    # The resync's own verification is on its own row.
    resync_row = audit_row(db, run.resync.sync_id or "")
    assert resync_row["kind"] == "resync" and resync_row["parent_sync_id"] == run.summary.sync_id
    assert resync_row["verification_status"] == "clean" and resync_row["gaps_found"] == 0
    assert run.summary.phases["verify"] == pytest.approx(v.seconds)


@DB_EXAMPLES
@given(
    nameless=st.sets(st.sampled_from(KEYS[:10]), max_size=4),
    blank_address=st.sets(st.sampled_from(KEYS[10:]), max_size=4),
)
def test_property_32_required_fields_present_in_database(
    engine: sa.Engine, nameless: set[str], blank_address: set[str]
) -> None:
    db = fresh(engine)
    sync_verify_repair(db, source())

    def behind() -> None:
        tamper.raw_edit(engine, nameless, name=None)
        tamper.raw_edit_property(engine, blank_address, property_address="  ")

    run = sync_verify_repair(db, source(), after_apply=behind)
    required = {(i.seller_number, i.field) for i in run.verification.integrity if i.rule is IntegrityRule.REQUIRED}
    assert required == {(k, "name") for k in nameless} | {(k, "property_address") for k in blank_address}
    assert run.verification.stale == nameless | blank_address  # content differs from the sheet: repaired
    if nameless or blank_address:
        assert run.resync.repaired == nameless | blank_address and run.resync.remaining == frozenset()
        assert run.resync.verification is not None and run.resync.verification.integrity == ()
    else:
        assert run.resync.sync_id is None


def test_property_33_seller_number_format_in_database(db: Database) -> None:
    sync_verify_repair(db, source())
    for key in ("ab-1", " VF00001", "VF1"):
        tamper.insert_foreign_seller(db.engine, key, at=START)
    run = sync_verify_repair(db, source())
    bad = {i.seller_number for i in run.verification.integrity if i.rule is IntegrityRule.SELLER_NUMBER_FORMAT}
    assert bad == {"ab-1", " VF00001", "VF1"}
    # Reported, never deleted and never "repaired": the sheet has no such sellers.
    assert run.verification.orphans >= bad
    assert bad <= tamper.seller_numbers(db.engine)
    assert run.resync.sync_id is None


def test_property_33_pattern_comes_from_the_settings(db: Database) -> None:
    sync_verify_repair(db, source())
    with db.engine.begin() as conn:
        db.config.save(conn, {"seller_number_pattern": r"^VF\d{5}$"}, now=START)
    tamper.insert_foreign_seller(db.engine, "AB12345", at=START)  # fine by the default pattern, not by this one
    run = sync_verify_repair(db, source())
    assert {i.seller_number for i in run.verification.integrity} == {"AB12345"}


def test_property_34_every_synced_seller_has_its_property(db: Database) -> None:
    sync_verify_repair(db, source())
    gone = set(KEYS[4:9])
    run = sync_verify_repair(db, source(), after_apply=lambda: tamper.delete_properties(db.engine, gone))
    missing = {i.seller_number for i in run.verification.integrity if i.rule is IntegrityRule.PROPERTY_MISSING}
    assert missing == gone
    assert run.resync.repaired == gone  # the resync recreated them from the sheet
    again = sync_verify_repair(db, source())
    assert again.verification.clean
    assert again.summary.counts.updated == again.summary.counts.inserted == 0


def test_property_35_each_integrity_issue_is_logged_with_seller_rule_and_cell(db: Database) -> None:
    sync_verify_repair(db, source())

    def behind() -> None:
        tamper.raw_edit(db.engine, ["VF00002"], name="")
        tamper.delete_properties(db.engine, ["VF00007"])

    tamper.insert_foreign_seller(db.engine, "bad", at=START)
    run = sync_verify_repair(db, source(), after_apply=behind)
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                sync_error_logs.c.seller_number,
                sync_error_logs.c.rule,
                sync_error_logs.c.cell,
                sync_error_logs.c.sheet_row,
                sync_error_logs.c.category,
            ).where(
                sync_error_logs.c.sync_id == run.summary.sync_id,
                sync_error_logs.c.rule.in_([r.value for r in IntegrityRule]),
            )
        ).all()
    name_cell = f"{chr(ord('A') + NAME_COLUMN)}{row_of('VF00002')}"
    property_cell = f"{chr(ord('A') + PROPERTY_COLUMN)}{row_of('VF00007')}"
    assert sorted(tuple(r) for r in rows) == sorted(
        [
            ("VF00002", "required_in_database", name_cell, row_of("VF00002"), "integrity"),
            ("VF00007", "property_missing", property_cell, row_of("VF00007"), "integrity"),
            ("bad", "seller_number_format_in_database", None, None, "integrity"),
        ]
    )


def test_property_36_integrity_issues_raise_an_alert(db: Database) -> None:
    sync_verify_repair(db, source())
    assert list_alerts(db) == []  # a clean verification raises nothing
    run = sync_verify_repair(db, source(), after_apply=lambda: tamper.delete_properties(db.engine, KEYS[:2]))
    alerts = list_alerts(db, alert_type=AlertType.INTEGRITY_ISSUE)
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.sync_id == run.summary.sync_id and alert.severity is Severity.WARNING
    assert alert.detail["seller_numbers"] == KEYS[:2]
    assert all(k in alert.message for k in KEYS[:2])


def test_gap_threshold_decides_the_gaps_alert(db: Database) -> None:
    sync_verify_repair(db, source())
    with db.engine.begin() as conn:
        db.config.save(conn, {"gap_threshold": "2"}, now=START)
    sync_verify_repair(db, source(), after_apply=lambda: tamper.delete_sellers(db.engine, KEYS[:2]))
    assert list_alerts(db, alert_type=AlertType.GAPS_FOUND) == []  # 2 gaps: not above the threshold
    run = sync_verify_repair(db, source(), after_apply=lambda: tamper.delete_sellers(db.engine, KEYS[:3]))
    [alert] = list_alerts(db, alert_type=AlertType.GAPS_FOUND)
    assert alert.sync_id == run.summary.sync_id
    assert alert.detail["seller_numbers"] == KEYS[:3]


def test_alerts_are_logged_with_their_severity(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    sync_verify_repair(db, source())
    with caplog.at_level("INFO", logger="sync_pipeline.alerts"):
        sync_verify_repair(db, source(), after_apply=lambda: tamper.delete_sellers(db.engine, KEYS[:1]))
    records = [r for r in caplog.records if r.name == "sync_pipeline.alerts"]
    assert [(r.levelname, r.alert_type) for r in records] == [("WARNING", "gaps_found")]  # type: ignore[attr-defined]
    assert KEYS[0] in records[0].getMessage()


def test_kept_conflicts_are_reported_not_repaired_and_syncs_do_not_flap(db: Database) -> None:
    sync_verify_repair(db, source())
    tamper.app_edit(db.engine, KEYS[:2], at=START + dt.timedelta(hours=1), status="契約済み")
    before = tamper.dump(db.engine)
    for _ in range(2):
        run = sync_verify_repair(db, source())
        assert run.verification.kept_conflicts == set(KEYS[:2])
        assert run.verification.clean and run.resync.sync_id is None
        c = run.summary.counts
        assert c.inserted == c.updated == 0
    assert tamper.dump(db.engine) == before


def test_verify_source_writes_nothing(db: Database) -> None:
    sync_verify_repair(db, source())
    tamper.delete_sellers(db.engine, KEYS[:2])
    tamper.raw_edit(db.engine, KEYS[2:3])

    def everything() -> dict[str, list[tuple[object, ...]]]:
        with db.engine.connect() as conn:
            return {
                t.name: sorted(map(tuple, conn.execute(sa.select(t)).all()), key=repr) for t in metadata.sorted_tables
            }

    before = everything()
    assert before["sync_config"]  # defaults already written by the syncs: verify must not add or change any
    figures = verify_source(db, source())
    assert everything() == before
    assert figures["status"] == "gaps" and figures["clean"] is False
    assert figures["gaps"] == KEYS[:2] and figures["stale"] == KEYS[2:3]
    assert figures["sheet_valid_count"] == 20 and figures["db_matched_count"] == 18
    assert figures["repair_needed"] == 3


def test_verification_samples_are_bounded_when_many_sellers_are_missing(db: Database) -> None:
    keys = [f"VF{i:05d}" for i in range(1, 61)]
    sync_verify_repair(db, source(keys))
    with db.engine.begin() as conn:
        db.config.save(conn, {"auto_recovery": "false"}, now=START)
    run = sync_verify_repair(db, source(keys), after_apply=lambda: tamper.delete_sellers(db.engine, keys[:45]))
    row = audit_row(db, run.summary.sync_id)
    assert row["gaps_found"] == 45
    assert row["verification"]["gaps"] == sample(keys[:45]) and len(row["verification"]["gaps"]) == 20
    assert len(logged(db, run.summary.sync_id, GAP_RULE)) == 45  # but every gap is logged (P2)
    with db.engine.connect() as conn:
        messages = list(conn.execute(sa.select(sync_alerts.c.message)).scalars())
    assert any("and 25 more" in m for m in messages)


def test_database_hash_equals_the_sheet_hash_with_empty_optional_fields(db: Database) -> None:
    """The stored-content hash computed in SQL (concat_ws on Postgres, || on SQLite) matches domain.hashing."""
    rows = [
        seller_row("VF00001"),
        seller_row("VF00002", phone="", email="", amount="", inquiry_date="", updated=""),
        seller_row("VF00003", property_type="", status="", address=""),
    ]
    sync_verify_repair(db, sheet(rows))
    with db.engine.connect() as conn:
        hashes = db.sellers.verification_hashes(conn)
        state = db.sellers.load_state(conn)
    merged = hashes.merge(state, on="seller_number")
    assert len(merged) == 3
    assert (merged["db_hash"] == merged["row_hash"]).all(), merged[["seller_number", "db_hash", "row_hash"]]
