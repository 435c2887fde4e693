"""The Alembic migrations in sql/ and their runner: upgrade/downgrade round trips, the migrated schema against
tables.py, ensure_migrated, concurrent upgrades, and revision 0002's timestamps with their zone (existing rows kept
through upgrade and downgrade, `UtcDateTime` reading aware UTC), on empty SQLite and Postgres databases.

Touches no sync code and none of the shared migrated fixtures: every test starts from an empty database of its own.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from sync_pipeline.adapters.store import migrations
from sync_pipeline.adapters.store.engine import make_engine
from sync_pipeline.adapters.store.migrations import (
    MigrationError,
    current,
    downgrade,
    ensure_migrated,
    head,
    upgrade,
)
from sync_pipeline.adapters.store.tables import metadata, properties, sellers, sync_audit_logs, sync_config

VERSION_TABLE = "alembic_version"
SCHEMA_TABLES = {table.name for table in metadata.sorted_tables}
WRITE_VERBS = ("CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE", "BEGIN IMMEDIATE")


def _admin_engine(url: str) -> sa.Engine:
    return make_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a brand-new database with no tables at all: once on SQLite, once on Postgres."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server_url: str = request.getfixturevalue("postgres_server_url")
    name = f"spt_{uuid.uuid4().hex[:12]}_mig"
    admin = _admin_engine(server_url)
    # The name is generated above, never data; CREATE DATABASE takes no bound parameters.
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def empty_engine(empty_database_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(empty_database_url)
    yield engine
    engine.dispose()


def _table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def _schema_names(engine: sa.Engine) -> set[str]:
    """Every named primary key, unique constraint, foreign key and index the database reports."""
    inspector = sa.inspect(engine)
    names: set[str] = set()
    for table in SCHEMA_TABLES:
        names.add(inspector.get_pk_constraint(table)["name"] or f"<unnamed pk on {table}>")
        names.update(uq["name"] or f"<unnamed unique on {table}>" for uq in inspector.get_unique_constraints(table))
        names.update(fk["name"] or f"<unnamed fk on {table}>" for fk in inspector.get_foreign_keys(table))
        # Postgres also lists the index behind each unique constraint; that one is counted as the constraint.
        names.update(str(ix["name"]) for ix in inspector.get_indexes(table) if "duplicates_constraint" not in ix)
    return names


def _metadata_names() -> set[str]:
    names: set[str] = set()
    for table in metadata.sorted_tables:
        names.update(str(constraint.name) for constraint in table.constraints)
        names.update(str(index.name) for index in table.indexes)
    return names


def test_current_is_none_on_an_empty_database(empty_engine: sa.Engine) -> None:
    assert current(empty_engine) is None
    assert _table_names(empty_engine) == set()


def test_head_revision_constant_is_alembics_head(empty_engine: sa.Engine) -> None:
    """ensure_migrated trusts HEAD_REVISION without asking Alembic: it must be the newest migration's revision, and
    `current` (a plain read of alembic_version) must agree with Alembic's own reading."""
    assert head() == migrations.HEAD_REVISION
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        alembics_reading = MigrationContext.configure(conn).get_current_revision()
    assert current(empty_engine) == alembics_reading == migrations.HEAD_REVISION


def test_upgrade_downgrade_to_base_and_upgrade_again(empty_engine: sa.Engine) -> None:
    upgrade(empty_engine)
    assert current(empty_engine) == head()
    assert _table_names(empty_engine) == SCHEMA_TABLES | {VERSION_TABLE}

    downgrade(empty_engine, "base")
    assert current(empty_engine) is None
    assert _table_names(empty_engine) == {VERSION_TABLE}

    upgrade(empty_engine)
    assert current(empty_engine) == head()
    assert _table_names(empty_engine) == SCHEMA_TABLES | {VERSION_TABLE}


def test_migrated_schema_matches_tables_py(empty_engine: sa.Engine) -> None:
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(context, metadata) == []
    # compare_metadata matches some objects by columns, so check the names the naming convention gives as well.
    assert _schema_names(empty_engine) == _metadata_names()


def test_migrated_schema_applies_server_defaults_and_cascades(empty_engine: sa.Engine) -> None:
    upgrade(empty_engine)
    with empty_engine.begin() as conn:
        seller_id = conn.execute(sellers.insert().values(seller_number="S-0001").returning(sellers.c.id)).scalar_one()
        conn.execute(properties.insert().values(seller_id=seller_id, property_type="land"))
        row = conn.execute(sa.select(sellers.c.version, sellers.c.created_at, sellers.c.updated_at)).one()
        assert row.version == 1
        assert row.created_at is not None and row.updated_at is not None
        assert conn.execute(sa.select(properties.c.created_at)).scalar_one() is not None

        conn.execute(sellers.delete().where(sellers.c.id == seller_id))
        assert conn.execute(sa.select(sa.func.count()).select_from(properties)).scalar_one() == 0


def test_ensure_migrated_migrates_an_empty_database(empty_engine: sa.Engine) -> None:
    ensure_migrated(empty_engine)
    assert current(empty_engine) == head()
    assert _table_names(empty_engine) == SCHEMA_TABLES | {VERSION_TABLE}


def test_ensure_migrated_does_nothing_on_a_migrated_database(empty_engine: sa.Engine) -> None:
    upgrade(empty_engine)
    with empty_engine.begin() as conn:
        conn.execute(sellers.insert().values(seller_number="S-0001"))

    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.strip().upper())

    sa.event.listen(empty_engine, "before_cursor_execute", record)
    try:
        ensure_migrated(empty_engine)
    finally:
        sa.event.remove(empty_engine, "before_cursor_execute", record)

    assert current(empty_engine) == head()
    assert statements, "ensure_migrated should have read the current revision"
    assert [s for s in statements if s.startswith(WRITE_VERBS) or "PG_ADVISORY" in s] == []
    with empty_engine.connect() as conn:
        assert conn.execute(sa.select(sellers.c.seller_number)).scalars().all() == ["S-0001"]


def test_ensure_migrated_refuses_a_database_migrated_by_newer_code(empty_engine: sa.Engine) -> None:
    upgrade(empty_engine)
    version = sa.table(VERSION_TABLE, sa.column("version_num"))
    with empty_engine.begin() as conn:
        conn.execute(version.update().values(version_num="9999"))

    with pytest.raises(MigrationError, match="'9999'"):
        ensure_migrated(empty_engine)
    assert current(empty_engine) == "9999"


def _upgrade_in_a_child_process(url: str, barrier: Any, errors: Any) -> None:
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    try:
        barrier.wait(timeout=60)
        upgrade(engine)
    except BaseException as exc:
        errors.put(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        engine.dispose()


def test_concurrent_upgrades_of_an_empty_database_both_succeed(empty_database_url: str) -> None:
    # Open the database once first: two connections racing to switch a brand-new SQLite file to WAL (make_engine's
    # connect hook) can fail with "database is locked" before any migration starts. That race is the engine's;
    # this test is about the migrations, so it starts from an existing file that still has no tables.
    opener = make_engine(empty_database_url, poolclass=sa.pool.NullPool)
    with opener.connect():
        pass
    opener.dispose()

    # Processes, not threads: the in-process lock would serialise threads and hide what the database lock does.
    workers = 2
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(workers)
    errors = spawn.Queue()
    children = [
        spawn.Process(target=_upgrade_in_a_child_process, args=(empty_database_url, barrier, errors))
        for _ in range(workers)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)

    reported: list[str] = []
    while not errors.empty():
        reported.append(errors.get(timeout=5))
    assert reported == []
    assert [child.exitcode for child in children] == [0] * workers
    engine = make_engine(empty_database_url, poolclass=sa.pool.NullPool)
    try:
        assert current(engine) == head()
        with engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(sa.table(VERSION_TABLE))).scalar_one()
        assert count == 1
    finally:
        engine.dispose()


def test_missing_sql_folder_is_reported_with_its_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "no_such_sql"
    monkeypatch.setattr(migrations, "SCRIPT_LOCATION", missing)
    with pytest.raises(MigrationError, match=re.escape(str(missing))):
        migrations.alembic_config()


def test_revision_0002_keeps_every_moment_through_upgrade_and_downgrade(empty_engine: sa.Engine) -> None:
    """Rows written naive (UTC by convention) under 0001 read back as the same moments, aware, under 0002 — and naive
    again after the downgrade — on both backends, whatever the session's time zone would have been."""
    upgrade(empty_engine, "0001")
    naive = dt.datetime(2026, 3, 1, 23, 30, 15, 123456)
    audit = sa.table(
        "sync_audit_logs",
        sa.column("sync_id"),
        sa.column("kind"),
        sa.column("status"),
        sa.column("started_at", sa.DateTime()),
        sa.column("finished_at", sa.DateTime()),
    )
    with empty_engine.begin() as conn:
        conn.execute(
            audit.insert().values(sync_id="s1", kind="manual", status="succeeded", started_at=naive, finished_at=None)
        )

    upgrade(empty_engine, "0002")
    with empty_engine.connect() as conn:
        row = conn.execute(sa.select(sync_audit_logs.c.started_at, sync_audit_logs.c.finished_at)).one()
    assert row.started_at == naive.replace(tzinfo=dt.UTC) and row.started_at.tzinfo is not None
    assert row.finished_at is None
    if empty_engine.dialect.name == "postgresql":
        with empty_engine.connect() as conn:
            kind = conn.execute(
                sa.text(
                    "SELECT data_type FROM information_schema.columns "
                    "WHERE table_name = 'sync_audit_logs' AND column_name = 'started_at'"
                )
            ).scalar_one()
        assert kind == "timestamp with time zone"

    downgrade(empty_engine, "0001")
    with empty_engine.connect() as conn:
        assert conn.execute(sa.select(audit.c.started_at)).scalar_one() == naive
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        assert conn.execute(sa.select(sync_audit_logs.c.started_at)).scalar_one() == naive.replace(tzinfo=dt.UTC)


def test_utc_datetime_stores_any_zone_as_utc_and_reads_aware_utc(empty_engine: sa.Engine) -> None:
    upgrade(empty_engine)
    tokyo = dt.datetime(2026, 3, 2, 8, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
    with empty_engine.begin() as conn:
        conn.execute(sync_config.insert().values(key="k", value="v", updated_at=tokyo))
        stored = conn.execute(sa.select(sync_config.c.updated_at)).scalar_one()
        # The moment survives, in UTC, and the text the content hash reads is the UTC wall time on both backends.
        assert stored == tokyo and stored.utcoffset() == dt.timedelta(0)
        text = conn.execute(sa.select(sa.func.substr(sa.cast(sync_config.c.updated_at, sa.Text), 1, 19))).scalar_one()
        assert text == "2026-03-01 23:30:00"


def test_revision_0007_drops_the_lock_expiry_and_the_downgrade_restores_it(empty_engine: sa.Engine) -> None:
    """`sync_locks.expires_at` meant nothing once every lock died with its holder: 0007 drops it, keeping the
    labels; the downgrade brings it back NOT NULL, filled from `acquired_at`."""
    upgrade(empty_engine, "0006")
    acquired = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    locks = sa.table(
        "sync_locks",
        sa.column("name"),
        sa.column("holder"),
        sa.column("acquired_at", sa.DateTime(timezone=True)),
        sa.column("expires_at", sa.DateTime(timezone=True)),
    )
    with empty_engine.begin() as conn:
        conn.execute(locks.insert().values(name="seller_sync", holder="s1", acquired_at=acquired, expires_at=acquired))
    upgrade(empty_engine, "0007")
    columns = {c["name"] for c in sa.inspect(empty_engine).get_columns("sync_locks")}
    assert "expires_at" not in columns and {"name", "holder", "acquired_at"} <= columns
    with empty_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT holder FROM sync_locks")).scalar_one() == "s1"
    downgrade(empty_engine, "0006")
    [restored] = [c for c in sa.inspect(empty_engine).get_columns("sync_locks") if c["name"] == "expires_at"]
    assert restored["nullable"] is False
    with empty_engine.connect() as conn:
        expires, started = conn.execute(sa.text("SELECT expires_at, acquired_at FROM sync_locks")).one()
    assert expires == started
