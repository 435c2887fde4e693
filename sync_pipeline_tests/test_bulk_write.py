"""The Postgres write path (adapters/store/bulk.py): its fast insert and the safe path it falls back to (P40).

The fast path inserts the keys absent when its statement starts, without ON CONFLICT. When another writer inserts one
of those keys while the statement runs, Postgres raises a unique violation; the chunk then runs again with
`ON CONFLICT DO NOTHING`, and the other writer's row is kept and logged as a conflict, not overwritten and not failed.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from sync_pipeline.adapters.store import bulk
from sync_pipeline.adapters.store.engine import make_engine
from sync_pipeline.domain.audit import SyncStatus
from sync_pipeline.domain.clock import FixedClock
from sync_pipeline.services.database import Database
from sync_pipeline.services.resync import sync_verify_repair
from sync_pipeline_tests.support import tamper
from sync_pipeline_tests.support.sheets import seller_row, sheet

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
KEYS = [f"BW{i:05d}" for i in range(1, 6)]
RACED = KEYS[2]


def insert_raced_seller(conn: sa.Connection) -> None:
    conn.execute(
        sa.text("INSERT INTO sellers (seller_number, name, version) VALUES (:key, 'entered in the app', 1)"),
        {"key": RACED},
    )


def record_actions(conn: sa.Connection, sync_id: str) -> dict[str, str]:
    """seller number -> the action its record log for `sync_id` says."""
    query = sa.text("SELECT seller_number, action FROM sync_record_logs WHERE sync_id = :s")
    return {key: action for key, action in conn.execute(query, {"s": sync_id})}


def test_property_40_a_key_inserted_by_another_writer_during_the_fast_insert_is_kept_and_logged_as_a_conflict(
    engine: sa.Engine,
) -> None:
    db = Database(engine=engine, clock=FixedClock(dt.datetime(2026, 3, 1)))
    other = engine.connect()
    other_tx = other.begin()
    statements: list[str] = []
    committed = threading.Event()

    @sa.event.listens_for(engine, "before_cursor_execute")
    def race(conn: sa.Connection, cursor: Any, statement: str, *args: Any) -> None:
        if statement in (bulk.CHUNK_STATEMENT, bulk.SAFE_CHUNK_STATEMENT):
            statements.append("fast" if statement == bulk.CHUNK_STATEMENT else "safe")
        if statement == bulk.CHUNK_STATEMENT and not committed.is_set():
            # The other writer has inserted the key but not committed: the fast statement does not see it, waits on
            # the unique index, and fails with a unique violation once the other writer commits.
            insert_raced_seller(other)
            timer = threading.Timer(0.5, lambda: (other_tx.commit(), committed.set()))
            timer.start()

    try:
        run = sync_verify_repair(db, sheet([seller_row(k) for k in KEYS]))
    finally:
        sa.event.remove(engine, "before_cursor_execute", race)
        other.close()
    assert committed.is_set() and statements == ["fast", "safe"]
    assert run.summary.status is SyncStatus.SUCCEEDED
    assert run.summary.counts.inserted == len(KEYS) - 1 and run.summary.counts.failed == 0
    with engine.connect() as conn:
        names = dict(conn.execute(sa.text("SELECT seller_number, name FROM sellers")).all())
        actions = record_actions(conn, run.summary.sync_id)
    assert names[RACED] == "entered in the app"  # the other writer's row, not overwritten
    assert actions[RACED] == "conflict" and {actions[k] for k in KEYS if k != RACED} == {"inserted"}


def test_property_40_a_chunk_writes_sellers_properties_and_record_logs_together(engine: sa.Engine) -> None:
    """One statement per chunk: every written seller has exactly one property and one record log."""
    db = Database(engine=engine, clock=FixedClock(dt.datetime(2026, 3, 1)))
    with engine.begin() as conn:
        insert_raced_seller(conn)  # entered in the app after the sheet's 更新日時: the app's edit wins (P41)
    first = sync_verify_repair(db, sheet([seller_row(k) for k in KEYS])).summary
    assert first.counts.inserted == len(KEYS) - 1 and first.counts.conflicts == 1
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT s.seller_number, count(p.id) AS props FROM sellers s "
                "LEFT JOIN properties p ON p.seller_id = s.id GROUP BY s.seller_number"
            )
        ).all()
        logs = conn.execute(
            sa.text("SELECT count(*) FROM sync_record_logs WHERE sync_id = :s"), {"s": first.sync_id}
        ).scalar_one()
    assert {key: props for key, props in rows} == {**dict.fromkeys(KEYS, 1), RACED: 0}  # the app's row kept as it was
    assert logs == len(KEYS)  # four inserted, one conflict

    rows_2 = [seller_row(k, property_address="大阪府大阪市北区1-1", updated="2025-02-01 09:00") for k in KEYS]
    second = sync_verify_repair(db, sheet(rows_2)).summary
    assert second.counts.updated == len(KEYS) - 1 and second.counts.conflicts == 1  # the app's row still wins
    with engine.connect() as conn:
        props = conn.execute(
            sa.text(
                "SELECT s.seller_number, p.property_address, s.version FROM sellers s "
                "JOIN properties p ON p.seller_id = s.id"
            )
        ).all()
    # The updated sellers' existing property rows were updated in place (still one each), their version bumped.
    assert {key: (address, version) for key, address, version in props} == dict.fromkeys(
        [k for k in KEYS if k != RACED], ("大阪府大阪市北区1-1", 2)
    )


# -- the COPY path of planned inserts ----------------------------------------------------------------------------------
def test_property_40_planned_inserts_by_copy_match_the_sheet_with_a_property_and_a_log_each(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "COPY_INSERTS_FROM", 1)  # the small sheet takes the path big ones take
    copies: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def seen(conn: sa.Connection, cursor: Any, statement: str, *args: Any) -> None:
        if statement == bulk.NEW_IDS:
            copies.append(statement)

    db = Database(engine=engine, clock=FixedClock(dt.datetime(2026, 3, 1)))
    try:
        run = sync_verify_repair(db, sheet([seller_row(k) for k in KEYS]))
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert copies  # the COPY path ran
    assert run.summary.counts.inserted == len(KEYS) and run.verification.clean  # stored content hashes = the sheet's
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT s.seller_number, s.version, s.synced_version, s.synced_at, p.created_at, l.action "
                "FROM sellers s JOIN properties p ON p.seller_id = s.id "
                "JOIN sync_record_logs l ON l.seller_number = s.seller_number AND l.sync_id = :s"
            ),
            {"s": run.summary.sync_id},
        ).all()
    moment = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)  # the sync's clock, naive meaning UTC
    assert sorted(r[0] for r in rows) == KEYS
    assert {tuple(r[1:]) for r in rows} == {(1, 1, moment, moment, "inserted")}
    again = sync_verify_repair(db, sheet([seller_row(k) for k in KEYS])).summary
    assert again.counts.unchanged == len(KEYS)  # what COPY stored hashes the same as the sheet


def test_property_40_a_planned_insert_whose_key_exists_by_now_turns_the_copy_into_the_statement(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "COPY_INSERTS_FROM", 1)
    db = Database(engine=engine, clock=FixedClock(dt.datetime(2026, 3, 1)))
    statements: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def race(conn: sa.Connection, cursor: Any, statement: str, *args: Any) -> None:
        if statement == bulk.NEW_IDS and not statements:
            with engine.begin() as other:  # the app inserts one of the planned keys after the diff read the table
                insert_raced_seller(other)
        if statement in (bulk.NEW_IDS, bulk.CHUNK_STATEMENT):
            statements.append("copy" if statement == bulk.NEW_IDS else "statement")

    try:
        run = sync_verify_repair(db, sheet([seller_row(k) for k in KEYS]))
    finally:
        sa.event.remove(engine, "before_cursor_execute", race)
    assert statements == ["copy", "statement"]  # the COPY met the key and rolled back; the statement wrote the chunk
    assert run.summary.counts.inserted == len(KEYS) - 1 and run.summary.counts.failed == 0
    with engine.connect() as conn:
        name = conn.execute(sa.text("SELECT name FROM sellers WHERE seller_number = :k"), {"k": RACED}).scalar_one()
        actions = record_actions(conn, run.summary.sync_id)
        ids = conn.execute(sa.text("SELECT count(*) FROM sellers")).scalar_one()
    assert name == "entered in the app" and actions[RACED] == "conflict"
    assert {actions[k] for k in KEYS if k != RACED} == {"inserted"} and ids == len(KEYS)


def test_property_29_a_connection_lost_on_the_copy_path_is_reestablished_and_the_chunk_retried(
    engine: sa.Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "COPY_INSERTS_FROM", 1)
    admin = make_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    killed: list[int] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def kill(conn: sa.Connection, cursor: Any, statement: str, *args: Any) -> None:
        if statement == bulk.NEW_IDS and not killed:
            pid = conn.connection.driver_connection.info.backend_pid  # type: ignore[union-attr]
            with admin.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            killed.append(pid)

    db = Database(engine=engine, clock=FixedClock(dt.datetime(2026, 3, 1)))
    try:
        run = sync_verify_repair(db, sheet([seller_row(k) for k in KEYS]), sleep=lambda seconds: None)
    finally:
        sa.event.remove(engine, "before_cursor_execute", kill)
    assert len(killed) == 1
    assert run.summary.status is SyncStatus.SUCCEEDED and run.summary.counts.inserted == len(KEYS)
    assert run.verification.clean


def test_property_30_a_record_refused_on_the_copy_path_is_isolated_and_the_others_written(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "COPY_INSERTS_FROM", 1)
    refused = KEYS[1]
    tamper.install_reject_trigger(engine, refused)  # the trigger fires inside COPY sellers, too
    db = Database(engine=engine, clock=FixedClock(dt.datetime(2026, 3, 1)))
    try:
        run = sync_verify_repair(db, sheet([seller_row(k) for k in KEYS]))
    finally:
        tamper.drop_reject_trigger(engine)
    assert run.summary.status is SyncStatus.PARTIAL and run.summary.counts.failed == 1
    assert tamper.seller_numbers(engine) == set(KEYS) - {refused}
    with engine.connect() as conn:
        [failed] = [e for e in db.audit.errors(conn, run.summary.sync_id) if e["rule"] == "write_failed"]
    assert failed["seller_number"] == refused and "refused by the test trigger" in failed["message"]


def test_property_29_a_connection_lost_inside_a_copy_is_reestablished_and_the_chunk_retried(
    engine: sa.Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backend dies between drawing the ids and the COPY into `sellers`: the COPY fails on a dead connection,
    which is recognised as lost (not as a refused row), and the whole chunk is retried on a new one."""
    monkeypatch.setattr(bulk, "COPY_INSERTS_FROM", 1)
    admin = make_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    pids: list[int] = []
    killed: list[int] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def remember(conn: sa.Connection, cursor: Any, statement: str, *args: Any) -> None:
        if statement == bulk.NEW_IDS:
            pids.append(conn.connection.driver_connection.info.backend_pid)  # type: ignore[union-attr]

    real_csv = bulk._csv

    def kill_then_csv(columns: dict[str, Any]) -> bytes:
        if pids and not killed:
            with admin.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pids[-1]})
            killed.append(pids[-1])
        return real_csv(columns)

    monkeypatch.setattr(bulk, "_csv", kill_then_csv)
    db = Database(engine=engine, clock=FixedClock(dt.datetime(2026, 3, 1)))
    try:
        run = sync_verify_repair(db, sheet([seller_row(k) for k in KEYS]), sleep=lambda seconds: None)
    finally:
        sa.event.remove(engine, "before_cursor_execute", remember)
    assert len(killed) == 1 and len(pids) == 2  # the COPY path ran twice: killed, then retried
    assert run.summary.status is SyncStatus.SUCCEEDED and run.summary.counts.inserted == len(KEYS)
    assert run.verification.clean
    with engine.connect() as conn:
        rules = [e["rule"] for e in db.audit.errors(conn, run.summary.sync_id)]
    assert rules == ["recovery:reconnect"]
