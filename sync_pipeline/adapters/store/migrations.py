"""Schema migrations (Alembic, under sql/): upgrade, downgrade and current revision, run programmatically.

Alembic is imported only when a migration has to run (or its revisions be read): every process checks the schema on
start, and a database already at HEAD_REVISION needs one query for that, not Alembic's 0.3 s of imports.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from sync_pipeline.adapters.store.engine import is_postgres
from sync_pipeline.domain.errors import ErrorCategory, SyncError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

logger = logging.getLogger(__name__)

# The repository root holds sql/ beside the package: .../<root>/sync_pipeline/adapters/store/migrations.py.
REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT_LOCATION = REPO_ROOT / "sql"

# Any fixed 64-bit key works, as long as nothing else in the database takes an advisory lock on it;
# this one is the ASCII of "syncmigr".
MIGRATION_LOCK_KEY = 0x73796E636D696772

ALEMBIC_LOGGER = "alembic"
# The newest revision in sql/versions; test_migrations checks it is Alembic's head, so a new migration must move it.
HEAD_REVISION = "0009"
VERSION_TABLE = "alembic_version"

# Alembic's `context` and `op` are process-wide proxies: two threads migrating at once (even different databases)
# would run each other's operations, so a process runs one migration at a time.
_ONE_MIGRATION_AT_A_TIME = threading.Lock()


class MigrationError(SyncError):
    """The schema cannot be brought to the revision this code expects; the message says what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCategory.CONFIGURATION, message)


def script_location() -> Path:
    """The sql/ folder, which ships beside the package (a repository checkout or an editable install)."""
    if not (SCRIPT_LOCATION / "env.py").is_file():
        raise MigrationError(
            f"Alembic migrations not found: expected {SCRIPT_LOCATION}/env.py. Run from a checkout of the repository"
            " (or an editable install) so that sql/ sits beside the sync_pipeline package."
        )
    return SCRIPT_LOCATION


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic Config for sql/ without an alembic.ini; with `connection`, env.py migrates that connection."""
    from alembic.config import Config

    config = Config()
    # Config values go through configparser interpolation, hence the doubled '%'.
    config.set_main_option("script_location", str(script_location()).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")  # 0002_add_x.py: pass rev_id="0002"
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _script_directory() -> ScriptDirectory:
    # Revisions do not change while the process runs; reading them once keeps ensure_migrated to one query.
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision in sql/versions."""
    revision = _script_directory().get_current_head()
    if revision is None:
        raise MigrationError(f"No migrations found in {SCRIPT_LOCATION / 'versions'}.")
    return revision


def current(engine: sa.Engine) -> str | None:
    """The revision the database is at, or None when it has never been migrated."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        revisions = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(revisions) > 1:
        raise MigrationError(f"The database has several schema revisions at once ({sorted(revisions)}).")
    return revisions[0] if revisions else None


@contextmanager
def migration_connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection inside one transaction that no other migrating process can enter until it commits.

    Postgres: a transaction-scoped advisory lock, so that two processes starting on a new database do not both
    create the schema (the second waits, then finds the database at head). READ COMMITTED so that the waiter sees
    the winner's alembic_version once it gets the lock. SQLite: BEGIN IMMEDIATE takes the write lock up front for
    the same reason, with foreign keys off for the duration (checked before commit), because batch migrations
    recreate tables and dropping a parent table with foreign keys on would cascade-delete its children.
    """
    if is_postgres(engine):
        with engine.connect().execution_options(isolation_level="READ COMMITTED") as conn, conn.begin():
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
            yield conn
        return
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect() as conn:
        # PRAGMA foreign_keys is a no-op inside a transaction, so it goes before BEGIN.
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.commit()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
                violations = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if violations:
                    raise MigrationError(
                        f"The migration left {len(violations)} rows breaking foreign keys (first: {violations[0]});"
                        " it was rolled back. Fix the migration's data step and run it again."
                    )
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        finally:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()


@contextmanager
def _alembic_logging(verbose: bool) -> Iterator[None]:
    # Alembic logs every step at INFO; keep that out of sync logs unless asked for, or unless the operator has
    # configured the "alembic" logger themselves.
    alembic_logger = logging.getLogger(ALEMBIC_LOGGER)
    if verbose or alembic_logger.level != logging.NOTSET:
        yield
        return
    alembic_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        alembic_logger.setLevel(logging.NOTSET)


def _run(engine: sa.Engine, alembic_command: Callable[[Config], None], verbose: bool) -> None:
    with _ONE_MIGRATION_AT_A_TIME, _alembic_logging(verbose), migration_connection(engine) as conn:
        alembic_command(alembic_config(conn))


def upgrade(engine: sa.Engine, revision: str = "head", *, verbose: bool = False) -> None:
    """Upgrade the database to `revision` in one transaction, serialised against other migrating processes."""
    from alembic import command

    _run(engine, lambda config: command.upgrade(config, revision), verbose)


def downgrade(engine: sa.Engine, revision: str, *, verbose: bool = False) -> None:
    """Downgrade the database to `revision` ("base" drops every table; "-1" undoes the latest migration)."""
    from alembic import command

    _run(engine, lambda config: command.downgrade(config, revision), verbose)


def ensure_migrated(engine: sa.Engine) -> None:
    """Bring the database to head if it is not there yet; when it is, this only reads alembic_version."""
    revision = current(engine)
    if revision == HEAD_REVISION:
        return
    from alembic.util.exc import CommandError

    target = head()
    if revision == target:
        return
    if revision is not None:
        try:
            _script_directory().get_revision(revision)
        except CommandError as exc:
            raise MigrationError(
                f"The database is at schema revision {revision!r}, which this version of sync_pipeline does not"
                f" know (its newest is {target!r}): it was migrated by newer code. Deploy that version, or"
                " downgrade the database with it."
            ) from exc
    logger.info("Migrating the database from %s to %s", revision or "an empty schema", target)
    upgrade(engine)
