"""Properties of the sync engine and its audit log (P6–P10, P30, P37–P41), on real SQLite and Postgres.

Exercises the sync lifecycle (SyncRun) end to end from an in-memory sheet source through ingestion to the database and
the audit tables; no Dagster, no network, no files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_pipeline.adapters.store.lock import SyncLock, current_holder
from sync_pipeline.adapters.store.tables import sellers, sync_audit_logs, sync_error_logs, sync_record_logs
from sync_pipeline.domain.audit import AuditQuery, ErrorLog, RecordAction, RecordLog, SyncKind, SyncStatus
from sync_pipeline.domain.clock import FixedClock
from sync_pipeline.domain.errors import ErrorCategory, SheetReadError, SyncRefusedError
from sync_pipeline.domain.ingest import IngestRules, ingest_sheet
from sync_pipeline.domain.settings import Settings
from sync_pipeline.domain.sheet import RawSheet
from sync_pipeline.services.database import Database, open_database
from sync_pipeline.services.lifecycle import SyncRun
from sync_pipeline.services.report import sync_summary
from sync_pipeline.services.resync import sync_verify_repair
from sync_pipeline_tests.support.db import record_logs, reset_database, stored_sellers
from sync_pipeline_tests.support.sheets import HEADER, MemorySheetSource, seller_row, sheet

DB_EXAMPLES = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
START = dt.datetime(2026, 1, 10, 0, 0, tzinfo=dt.UTC)

KEYS = [f"TK{i:05d}" for i in range(1, 13)]
# One seller as the sheet holds it: name, amount, 更新日時 day; or an invalid row (missing name / bad number).
seller_values = st.tuples(st.sampled_from(["山田太郎", "佐藤花子", "鈴木一郎"]), st.integers(1, 9), st.integers(1, 28))
sheet_states = st.dictionaries(st.sampled_from(KEYS), seller_values, min_size=1, max_size=10)
invalid_rows = st.lists(st.sampled_from(["bad-number", "missing-name"]), max_size=3)


def rows_for(state: dict[str, tuple[str, int, int]], invalid: Sequence[str] = ()) -> list[list[str]]:
    rows = [
        seller_row(k, name=n, amount=f"{a * 1_000_000}", updated=f"2025-12-{d:02d} 09:00")
        for k, (n, a, d) in sorted(state.items())
    ]
    for i, kind in enumerate(invalid):
        rows.append(seller_row(f"X{i}") if kind == "bad-number" else seller_row(f"ZZ{90000 + i}", name=""))
    return rows


@pytest.fixture
def db(engine: sa.Engine) -> Database:
    return Database(engine=engine, clock=FixedClock(START))


def fresh(engine: sa.Engine) -> Database:
    """An emptied database for one Hypothesis example; the shrinking-sheet guard is off (sheets here shrink freely)."""
    reset_database(engine)
    db = Database(engine=engine, clock=FixedClock(START))
    with engine.begin() as conn:
        db.config.save(conn, {"min_sheet_ratio": "0"}, now=START)
    return db


def run(db: Database, rows: Sequence[Sequence[str]], **kwargs: object):  # type: ignore[no-untyped-def]
    assert isinstance(db.clock, FixedClock)
    db.clock.advance(minutes=10)
    return sync_verify_repair(db, sheet(rows), **kwargs).summary  # type: ignore[arg-type]


def table_rows(db: Database) -> dict[str, dict[str, object]]:
    with db.engine.connect() as conn:
        return {r["seller_number"]: dict(r) for r in conn.execute(sa.select(sellers)).mappings()}


def record_actions(db: Database, sync_id: str) -> set[tuple[str | None, str]]:
    with db.engine.connect() as conn:
        return {(r["seller_number"], r["action"]) for r in record_logs(conn, sync_id)}


def valid_hashes(rows: Sequence[Sequence[str]]) -> dict[str, str]:
    snapshot = ingest_sheet(RawSheet("expected", [HEADER, *rows]), IngestRules.from_settings(Settings()))
    return dict(zip(snapshot.valid["seller_number"], snapshot.valid["row_hash"], strict=True))


# -- P6 / P9: start and completion ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", [SyncKind.SCHEDULED, SyncKind.MANUAL])
def test_property_06_sync_start_is_logged(db: Database, kind: SyncKind) -> None:
    with db.engine.begin() as conn:
        db.config.save(conn, {"gap_threshold": "7"}, now=START)
    summary = run(db, [seller_row("TK00001")], kind=kind, trigger="unit-test", run_id="run-123")
    with db.engine.connect() as conn:
        row = db.audit.get(conn, summary.sync_id)
    assert row is not None
    assert (row["kind"], row["trigger"], row["run_id"]) == (kind.value, "unit-test", "run-123")
    assert row["started_at"] == START + dt.timedelta(minutes=10)
    assert row["settings"]["gap_threshold"] == "7"
    assert row["settings"] == Settings(gap_threshold=7).as_strings()


def test_property_09_completion_is_logged_with_status_counts_and_duration(db: Database) -> None:
    summary = run(db, [seller_row("TK00001"), seller_row("TK00002"), seller_row("bad")])
    with db.engine.connect() as conn:
        row = db.audit.get(conn, summary.sync_id)
    assert row is not None
    assert row["status"] == SyncStatus.PARTIAL.value  # one row rejected
    assert (row["inserted_count"], row["rejected_count"], row["valid_count"], row["rows_read"]) == (2, 1, 2, 3)
    assert row["finished_at"] >= row["started_at"] and row["duration_s"] is not None
    assert set(row["phases"]) >= {"fetch", "validate", "compare", "update"}
    clean = run(db, [seller_row("TK00001"), seller_row("TK00002")])
    assert clean.status is SyncStatus.SUCCEEDED


def test_property_09_a_sync_that_died_is_closed_by_the_next_one(db: Database) -> None:
    dead = SyncRun(db, MemorySheetSource([HEADER]), kind=SyncKind.MANUAL).__enter__()  # then its process died
    dead_id = dead.sync_id
    assert dead.lock is not None
    dead.lock.release()  # what the kernel or the server does when the holder dies (test_lock.py kills a real one)
    summary = run(db, [seller_row("TK00001")])  # at once: no lease to wait out
    with db.engine.connect() as conn:
        dead = db.audit.get(conn, dead_id)
        running = conn.execute(
            sa.select(sa.func.count()).select_from(sync_audit_logs).where(sync_audit_logs.c.status == "running")
        ).scalar_one()
        events = [e for e in db.audit.errors(conn, summary.sync_id) if e["rule"] == "recovery:abandoned_closed"]
    assert dead is not None and dead["status"] == SyncStatus.ABANDONED.value
    assert summary.sync_id in dead["message"] and "abandoned" in dead["message"]
    assert running == 0
    assert [dead_id in e["message"] for e in events] == [True]


class Interrupted(BaseException):
    """Stands in for DagsterExecutionInterruptedError: a BaseException raised inside the step."""


def test_property_09_a_cancelled_sync_keeps_whole_chunks_and_is_logged_cancelled(db: Database) -> None:
    with db.engine.begin() as conn:
        db.config.save(conn, {"chunk_size": "2"}, now=START)

    def cancel_after_first_chunk(phase: str, done: int, total: int) -> None:
        if phase == "update" and done == 2:
            raise Interrupted()

    with pytest.raises(Interrupted):
        sync_verify_repair(db, sheet([seller_row(k) for k in KEYS[:5]]), progress=cancel_after_first_chunk)
    stored = table_rows(db)
    # Whole chunks only: the first, and on Postgres possibly the one already in flight (two chunks are written at
    # once there; the one in flight finishes before the cancel goes on), never the third or part of one.
    whole_chunks = [set(KEYS[:2])] if db.engine.dialect.name == "sqlite" else [set(KEYS[:2]), set(KEYS[:4])]
    assert set(stored) in whole_chunks
    with db.engine.connect() as conn:
        row = db.audit.latest(conn)
        props = conn.execute(sa.text("SELECT count(*) FROM properties")).scalar_one()
        logged = conn.execute(sa.text("SELECT count(*) FROM sync_record_logs WHERE action = 'inserted'")).scalar_one()
    assert row is not None and row["status"] == SyncStatus.CANCELLED.value
    assert props == len(stored) == logged  # every stored seller with its property and its record log
    assert current_holder(db.engine) is None  # the lock was released


# -- P7 / P8: records and errors -------------------------------------------------------------------------------------
@DB_EXAMPLES
@given(first=sheet_states, second=sheet_states, invalid=invalid_rows)
def test_property_07_record_processing_is_logged(
    engine: sa.Engine, first: dict, second: dict, invalid: list[str]
) -> None:
    db = fresh(engine)
    run(db, rows_for(first))
    before = valid_hashes(rows_for(first))
    summary = run(db, rows_for(second, invalid))
    after = valid_hashes(rows_for(second))
    expected = {(k, "inserted") for k in after if k not in before}
    expected |= {(k, "updated") for k in after if k in before and before[k] != after[k]}
    logged = record_actions(db, summary.sync_id)
    assert {x for x in logged if x[1] != "rejected"} == expected  # unchanged rows are counted, not logged
    with db.engine.connect() as conn:
        rejected = [r for r in record_logs(conn, summary.sync_id) if r["action"] == "rejected"]
    assert len(rejected) == len(invalid)  # one log per rejected row
    assert summary.counts.unchanged == sum(1 for k in after if k in before and before[k] == after[k])


def test_property_08_errors_are_logged_with_category_row_and_cell(db: Database) -> None:
    summary = run(db, [seller_row("TK00001"), seller_row("TK0000X"), seller_row("TK00003", amount="ask")])
    with db.engine.connect() as conn:
        errors = db.audit.errors(conn, summary.sync_id)
    by_row = {e["sheet_row"]: e for e in errors}
    assert by_row[3]["category"] == ErrorCategory.INTEGRITY.value
    assert by_row[3]["rule"] == "seller_number_format" and by_row[3]["cell"] == "A3"
    assert by_row[4]["category"] == ErrorCategory.VALIDATION.value
    assert by_row[4]["cell"] == "J4" and by_row[4]["seller_number"] == "TK00003"


class BrokenSource(MemorySheetSource):
    def read(self, on_retry=None):  # type: ignore[no-untyped-def]
        raise SheetReadError(ErrorCategory.NETWORK, "HTTP 503 after 3 retries; the sheet was not read", transient=True)


def test_property_08_a_read_failure_is_logged_as_network_and_fails_the_sync(db: Database) -> None:
    run(db, [seller_row("TK00001")])
    before = table_rows(db)
    with pytest.raises(SheetReadError):
        sync_verify_repair(db, BrokenSource([]))
    with db.engine.connect() as conn:
        last = db.audit.latest(conn)
        assert last is not None
        errors = db.audit.errors(conn, last["sync_id"])
    assert last["status"] == SyncStatus.FAILED.value
    assert [e["category"] for e in errors] == ["network"]
    assert table_rows(db) == before


# -- P10: audit queries ----------------------------------------------------------------------------------------------
audit_entries = st.lists(
    st.tuples(st.integers(0, 72), st.sampled_from(list(SyncStatus)), st.sets(st.sampled_from(KEYS[:4]), max_size=2)),
    min_size=1,
    max_size=8,
)
maybe_hours = st.none() | st.integers(0, 72)


@DB_EXAMPLES
@given(
    entries=audit_entries,
    since=maybe_hours,
    until=maybe_hours,
    status=st.none() | st.sampled_from(list(SyncStatus)),
    seller=st.none() | st.sampled_from(KEYS[:5]),
)
def test_property_10_query_filtering_returns_exactly_the_matching_rows(
    engine: sa.Engine,
    entries: list,
    since: int | None,
    until: int | None,
    status: SyncStatus | None,
    seller: str | None,
) -> None:
    reset_database(engine)
    db = Database(engine=engine)
    expected = set()
    with engine.begin() as conn:
        for i, (hour, st_, keys) in enumerate(entries):
            started = START + dt.timedelta(hours=hour)
            sync_id = f"sync-{i}"
            db.audit.start(conn, sync_id=sync_id, kind=SyncKind.MANUAL, started_at=started)
            half = sorted(keys)[: len(keys) // 2]
            db.audit.log_records(conn, sync_id, [RecordLog(k, RecordAction.UPDATED) for k in half], started)
            db.audit.log_errors(
                conn,
                sync_id,
                [ErrorLog(ErrorCategory.VALIDATION, "x", seller_number=k) for k in sorted(keys) if k not in half],
                started,
            )
            if st_ is not SyncStatus.RUNNING:
                db.audit.finish(conn, sync_id, status=st_, finished_at=started + dt.timedelta(minutes=1))
            if (
                (since is None or started >= START + dt.timedelta(hours=since))
                and (until is None or started < START + dt.timedelta(hours=until))
                and (status is None or st_ is status)
                and (seller is None or seller in keys)
            ):
                expected.add(sync_id)
        q = AuditQuery(
            since=None if since is None else START + dt.timedelta(hours=since),
            until=None if until is None else START + dt.timedelta(hours=until),
            status=status,
            seller_number=seller,
            limit=1000,
        )
        got = {r["sync_id"] for r in db.audit.query(conn, q)}
    assert got == expected


# -- P30 / P37 / P38: what ends up in the database -------------------------------------------------------------------
@DB_EXAMPLES
@given(states=st.lists(st.tuples(sheet_states, invalid_rows), min_size=1, max_size=4))
def test_property_38_sync_is_idempotent_and_the_database_equals_the_valid_sheet(
    engine: sa.Engine, states: list
) -> None:
    db = fresh(engine)
    seen: dict[str, str] = {}
    for state, invalid in states:
        rows = rows_for(state, invalid)
        run(db, rows)
        seen |= valid_hashes(rows)
        once = table_rows(db)
        again = run(db, rows)
        assert (again.counts.inserted, again.counts.updated, again.counts.conflicts) == (0, 0, 0)
        assert table_rows(db) == once  # nothing written the second time: versions and timestamps unchanged
    # Every seller ever synced is present; those in the last sheet hold exactly its content (orphans are kept).
    with engine.connect() as conn:
        stored = stored_sellers(conn)
    db_hash = dict(zip(stored["seller_number"], stored["db_hash"], strict=True))
    assert set(db_hash) == set(seen)
    for key, row_hash in valid_hashes(rows_for(*states[-1])).items():
        assert db_hash[key] == row_hash
    assert bool(stored["has_property"].all())


@DB_EXAMPLES
@given(state=sheet_states, invalid=invalid_rows)
def test_property_30_applied_set_equals_valid_set(engine: sa.Engine, state: dict, invalid: list[str]) -> None:
    db = fresh(engine)
    summary = run(db, rows_for(state, invalid))
    assert set(table_rows(db)) == set(state)
    assert summary.counts.rejected == len(invalid)


def test_property_37_writes_are_upserts_keyed_by_seller_number(db: Database) -> None:
    run(db, [seller_row("TK00001"), seller_row("TK00002")])
    ids = {k: r["id"] for k, r in table_rows(db).items()}
    run(db, [seller_row("TK00002", name="佐藤花子", updated="2025-12-01 09:00"), seller_row("TK00001")])
    after = table_rows(db)
    assert {k: r["id"] for k, r in after.items()} == ids  # same rows, updated in place
    assert after["TK00002"]["name"] == "佐藤花子" and after["TK00002"]["version"] == 2
    with db.engine.connect() as conn:
        keys = conn.execute(sa.select(sellers.c.seller_number)).scalars().all()
    assert sorted(keys) == ["TK00001", "TK00002"]


# -- P39: one sync at a time -----------------------------------------------------------------------------------------
def test_property_39_a_sync_is_refused_while_another_holds_the_lock(db: Database) -> None:
    with SyncLock(db.engine) as other:
        assert other.try_acquire("other-sync", now=db.clock.now())
        with pytest.raises(SyncRefusedError) as refused:
            run(db, [seller_row("TK00001")])
        assert "other-sync" in str(refused.value)
        assert table_rows(db) == {}
        with db.engine.connect() as conn:
            last = db.audit.latest(conn)
        assert last is not None and last["status"] == SyncStatus.SKIPPED.value  # refused, not failed
        assert current_holder(db.engine) is not None and current_holder(db.engine).holder == "other-sync"  # type: ignore[union-attr]
    # Released: the next sync runs at once, and nothing of the refused one is left running.
    assert run(db, [seller_row("TK00001")]).counts.inserted == 1
    assert current_holder(db.engine) is None


def test_property_39_two_contenders_never_both_hold_the_lock(database_url: str) -> None:
    import concurrent.futures

    first, second = open_database(database_url), open_database(database_url)
    locks = [SyncLock(first.engine), SyncLock(second.engine)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(lambda args: bool(args[0].try_acquire(args[1], now=START)), [(locks[0], "a"), (locks[1], "b")])
        )
    assert sorted(results) == [False, True]
    for lock in locks:
        lock.release()


# -- P40 / P41: optimistic locking and conflicts ---------------------------------------------------------------------
def app_edit(db: Database, key: str, name: str, at: dt.datetime) -> None:
    """What the application does: change a row, bump its version, stamp updated_at."""
    with db.engine.begin() as conn:
        conn.execute(
            sellers.update()
            .where(sellers.c.seller_number == key)
            .values(name=name, version=sellers.c.version + 1, updated_at=at)
        )


def test_property_40_a_row_changed_underneath_is_not_overwritten(db: Database) -> None:
    run(db, [seller_row("TK00001"), seller_row("TK00002")])
    # The application's edit below is older than the sheet's 更新日時, so a later resync may rightly apply the sheet;
    # with recovery off this test sees what the apply step itself did with the row changed underneath it.
    with db.engine.begin() as conn:
        db.config.save(conn, {"auto_recovery": "false"}, now=db.clock.now())

    def edit_during_update(phase: str, done: int, total: int) -> None:
        if phase == "update" and done == 0:  # after the diff was computed, before anything is written
            app_edit(db, "TK00001", "アプリ編集", db.clock.now())

    db.clock.advance(minutes=10)  # type: ignore[attr-defined]
    rows = [
        seller_row("TK00001", name="シート編集", updated="2026-01-20 09:00"),
        seller_row("TK00002", name="シート編集", updated="2026-01-20 09:00"),
    ]
    summary = sync_verify_repair(db, sheet(rows), progress=edit_during_update).summary
    stored = table_rows(db)
    assert stored["TK00001"]["name"] == "アプリ編集"  # not overwritten blindly
    assert stored["TK00002"]["name"] == "シート編集"
    assert ("TK00001", "conflict") in record_actions(db, summary.sync_id)
    assert summary.counts.updated == 1 and summary.counts.conflicts == 1


def test_property_41_conflicts_are_resolved_by_timestamp_and_logged(db: Database) -> None:
    run(db, [seller_row("TK00001", updated="2026-01-01 09:00")])
    app_time = dt.datetime(2026, 1, 15, 0, 0, tzinfo=dt.UTC)
    app_edit(db, "TK00001", "アプリ編集", app_time)
    # The sheet changes, but its 更新日時 (JST) is older than the application's edit: the database wins.
    older = run(db, [seller_row("TK00001", name="古いシート", updated="2026-01-14 09:00")])
    assert table_rows(db)["TK00001"]["name"] == "アプリ編集"
    with db.engine.connect() as conn:
        logs = record_logs(conn, older.sync_id)
    conflict = next(r for r in logs if r["action"] == "conflict")
    assert conflict["detail"]["resolution"] == "db_wins"
    assert conflict["detail"]["db_updated_at"].startswith("2026-01-15")
    assert conflict["detail"]["sheet_updated_at"].startswith("2026-01-14")  # both sides are logged
    # The kept edit survives later syncs while the sheet row does not change…
    assert run(db, [seller_row("TK00001", name="古いシート", updated="2026-01-14 09:00")]).counts.updated == 0
    assert table_rows(db)["TK00001"]["name"] == "アプリ編集"
    # …and a sheet edit newer than the application's wins, logged as a conflict resolved for the sheet.
    newer = run(db, [seller_row("TK00001", name="新しいシート", updated="2026-01-16 09:00")])
    assert table_rows(db)["TK00001"]["name"] == "新しいシート"
    with db.engine.connect() as conn:
        logs = record_logs(conn, newer.sync_id)
    assert [r["detail"]["resolution"] for r in logs if r["action"] == "conflict"] == ["sheet_wins"]
    assert newer.counts.updated == 1


def test_rejected_rows_never_touch_the_database(db: Database) -> None:
    run(db, [seller_row("TK00001", name="元の名前"), seller_row("TK00002")])
    before = table_rows(db)
    # TK00001 is now invalid (no name): the database keeps what it had for that seller.
    summary = run(db, [seller_row("TK00001", name="", updated="2026-02-01 09:00"), seller_row("TK00002")])
    assert table_rows(db) == before
    assert ("TK00001", "rejected") in record_actions(db, summary.sync_id)
    with db.engine.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).select_from(sync_error_logs).where(sync_error_logs.c.seller_number == "TK00001")
        ).scalar_one()
        logged = conn.execute(sa.select(sa.func.count()).select_from(sync_record_logs)).scalar_one()
    assert count == 1 and logged == 3  # two inserts, then one rejection


# -- guards against partial reads ------------------------------------------------------------------------------------
def test_an_empty_sheet_fails_the_sync_and_writes_nothing(db: Database) -> None:
    run(db, [seller_row("TK00001")])
    before = table_rows(db)
    with pytest.raises(Exception, match="no seller rows"):
        run(db, [])
    assert table_rows(db) == before
    with db.engine.connect() as conn:
        last = db.audit.latest(conn)
    assert last is not None and last["status"] == SyncStatus.FAILED.value


def test_a_sheet_with_fewer_than_half_the_sellers_fails_the_sync(db: Database) -> None:
    run(db, [seller_row(k) for k in KEYS[:10]])
    before = table_rows(db)
    with pytest.raises(Exception, match="min_sheet_ratio"):
        run(db, [seller_row(k, name="変更", updated="2026-02-01 09:00") for k in KEYS[:4]])
    assert table_rows(db) == before  # not even the four rows present were written
    assert run(db, [seller_row(k) for k in KEYS[:5]]).status is SyncStatus.SUCCEEDED  # half is enough


def test_sellers_no_longer_in_the_sheet_are_reported_as_orphans_and_never_deleted(db: Database) -> None:
    run(db, [seller_row(k) for k in KEYS[:4]])
    summary = run(db, [seller_row(k) for k in KEYS[:3]])
    with db.engine.connect() as conn:
        row = db.audit.get(conn, summary.sync_id)
    assert row is not None
    reported = sync_summary(db, row)
    assert (reported["orphans_found"], reported["orphans_sample"]) == (1, [KEYS[3]])
    assert set(table_rows(db)) == set(KEYS[:4])
