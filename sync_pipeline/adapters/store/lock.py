"""The sync lock (P39): one sync at a time in any process, and a lock that dies with its holder.

Whether the lock is held is decided by something the operating system or the database server releases when the
holder dies, never by a timer:

- Postgres: a session-level `pg_try_advisory_lock(key)` on a connection of its own (a NullPool engine, so closing
  the connection ends the session), kept open for the whole sync. A killed process, a lost network link or a
  terminated backend ends the session, and the server drops the lock with it.
- SQLite file: `fcntl.flock` on `<database file>.lock` beside the database. The kernel releases it when the process
  dies (its file descriptors close). Two opens of the file conflict even inside one process.
- SQLite in memory: a process-local lock (nothing outside the process can see the database anyway).

The row in `sync_locks` no longer decides anything; it is a label that says *who* holds the lock and since when
(the advisory lock and the file lock only know a backend pid or an open file), for `status`, for the message that
refuses a second sync, and to notice a takeover: a row left by a holder that died without releasing is found and
replaced by the next holder, which then knows whose sync it is taking over. A reader believes the row only while the
real lock is held.

Other names (the alert-rule evaluation, the alert deliveries) are locks of the same kind with keys of their own
(`lock_key`, a lock file per name), so a crashed holder never blocks them either.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import sqlalchemy as sa

from sync_pipeline.adapters.store.engine import is_postgres, make_engine
from sync_pipeline.adapters.store.tables import sync_locks

SYNC_LOCK = "seller_sync"
# A fixed 64-bit key nothing else in the database uses (the migrations use "syncmigr"): the ASCII of "synclock".
SYNC_LOCK_KEY = 0x73796E636C6F636B
LOCK_FILE_SUFFIX = ".lock"


def lock_key(name: str) -> int:
    """The advisory-lock key of the lock `name`: SYNC_LOCK_KEY for the sync, else 63 bits of the name's md5."""
    if name == SYNC_LOCK:
        return SYNC_LOCK_KEY
    return int.from_bytes(hashlib.md5(name.encode("utf-8")).digest()[:8], "big") >> 1


# In-memory SQLite: one lock per process and database name, shared by the SyncLock objects of that process.
_MEMORY_LOCKS: dict[str, threading.Lock] = {}
_MEMORY_LOCKS_GUARD = threading.Lock()


@dataclass(frozen=True)
class LockHolder:
    """Who holds the sync lock, as its label row says (believed only while the lock itself is held)."""

    holder: str
    acquired_at: dt.datetime


@dataclass(frozen=True)
class Acquired:
    """What `try_acquire` found: whether it got the lock, and the label of a previous holder that died holding it."""

    ok: bool
    taken_over: LockHolder | None = None  # a holder whose label was left behind: it died without releasing

    def __bool__(self) -> bool:
        return self.ok


class SyncLockLostError(RuntimeError):
    """The lock's own session ended while the sync held it (its backend was terminated) and could not be taken back."""


class SyncLock:
    """One sync's hold on the lock: `try_acquire(holder)`, `ensure_held()`, `release()`; a context manager.

    One object per sync: it owns the connection (Postgres) or open file (SQLite) that holds the lock.
    """

    def __init__(self, engine: sa.Engine, name: str = SYNC_LOCK) -> None:
        self.engine = engine
        self.name = name
        self.holder: str | None = None
        self._conn: sa.Connection | None = None
        self._lock_engine: sa.Engine | None = None
        self._file: IO[bytes] | None = None
        self._memory: threading.Lock | None = None

    # -- the context manager: `with SyncLock(engine) as lock:` releases whatever happens ------------------------
    def __enter__(self) -> SyncLock:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    # -- acquire / check / release ------------------------------------------------------------------------------
    def try_acquire(self, holder: str, *, now: dt.datetime) -> Acquired:
        """Take the lock if nobody holds it, without waiting; label it with `holder`. Falsy when another holds it."""
        if self.holder is not None:
            raise RuntimeError(f"this SyncLock is already held by {self.holder}; use one SyncLock per sync")
        if not self._take():
            return Acquired(False)
        self.holder = holder
        try:
            previous = self._write_label(holder, now)
        except BaseException:
            self.release()
            raise
        return Acquired(True, taken_over=previous)

    def is_held(self) -> bool:
        """True while this object holds the lock (as far as it knows: `ensure_held` asks the server)."""
        return self.holder is not None

    def ensure_held(self) -> bool:
        """Before writing more: check the lock is still ours, and take it back if its session was lost meanwhile.

        Returns True when it had to be taken back (the caller logs that as a recovery action). Raises
        SyncLockLostError when the session was lost and another sync holds the lock now.
        """
        if self.holder is None:
            raise SyncLockLostError("the sync lock is not held")
        if not is_postgres(self.engine) or self._session_alive():
            return False
        self._close_postgres()
        if not self._take_postgres():
            holder = self.holder
            self.holder = None
            raise SyncLockLostError(
                f"the sync lock's database session was lost and another sync took the lock; sync {holder} stopped "
                "before writing more"
            )
        return True

    def release(self) -> None:
        """Give the lock back (idempotent). The label row is removed first, while the lock still guards it."""
        if self.holder is not None:
            # A dead database: nothing to clean, the lock dies with the session.
            with contextlib.suppress(sa.exc.SQLAlchemyError), self.engine.begin() as conn:
                conn.execute(
                    sync_locks.delete().where(sync_locks.c.name == self.name, sync_locks.c.holder == self.holder)
                )
        self.holder = None
        self._close_postgres()
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None
        if self._memory is not None:
            self._memory.release()
            self._memory = None

    # -- per backend ----------------------------------------------------------------------------------------------
    def _take(self) -> bool:
        if is_postgres(self.engine):
            return self._take_postgres()
        path = lock_file_path(self.engine, self.name)
        if path is None:
            return self._take_memory()
        return self._take_file(path)

    def _take_postgres(self) -> bool:
        # Its own engine without a pool: the session that holds the lock must end when we close it, never go back
        # to a pool still holding the lock. Autocommit: the session must not sit idle inside a transaction.
        self._lock_engine = make_engine(
            self.engine.url.render_as_string(hide_password=False),
            poolclass=sa.pool.NullPool,
            isolation_level="AUTOCOMMIT",
        )
        try:
            self._conn = self._lock_engine.connect()
            got = bool(self._conn.execute(sa.select(sa.func.pg_try_advisory_lock(lock_key(self.name)))).scalar_one())
        except BaseException:
            self._close_postgres()
            raise
        if not got:
            self._close_postgres()
        return got

    def _session_alive(self) -> bool:
        if self._conn is None:
            return False
        try:
            held = self._conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND pid = pg_backend_pid() AND ((classid::bigint << 32) | objid::bigint) = :key"
                ),
                {"key": lock_key(self.name)},
            ).scalar_one()
        except sa.exc.DBAPIError:
            return False
        return bool(held)

    def _close_postgres(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                self._conn.close()
            self._conn = None
        if self._lock_engine is not None:
            self._lock_engine.dispose()
            self._lock_engine = None

    def _take_file(self, path: Path) -> bool:
        handle = path.open("a+b")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise
        self._file = handle
        return True

    def _take_memory(self) -> bool:
        key = f"{self.engine.url}#{self.name}"
        with _MEMORY_LOCKS_GUARD:
            lock = _MEMORY_LOCKS.setdefault(key, threading.Lock())
        if not lock.acquire(blocking=False):
            return False
        self._memory = lock
        return True

    def _write_label(self, holder: str, now: dt.datetime) -> LockHolder | None:
        """Replace the label row; return the one a dead holder left behind, if any."""
        with self.engine.begin() as conn:
            left = conn.execute(
                sa.select(sync_locks.c.holder, sync_locks.c.acquired_at).where(sync_locks.c.name == self.name)
            ).first()
            conn.execute(sync_locks.delete().where(sync_locks.c.name == self.name))
            conn.execute(sync_locks.insert().values(name=self.name, holder=holder, acquired_at=now))
        return None if left is None else LockHolder(left.holder, left.acquired_at)


def lock_file_path(engine: sa.Engine, name: str = SYNC_LOCK) -> Path | None:
    """`<database file>.lock` (the sync) or `<database file>.<name>.lock` for a SQLite file; None for in-memory
    SQLite (and Postgres)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    middle = "" if name == SYNC_LOCK else f".{name}"
    return Path(os.path.abspath(database) + middle + LOCK_FILE_SUFFIX)


def current_holder(engine: sa.Engine, name: str = SYNC_LOCK) -> LockHolder | None:
    """Who holds the sync lock now; None when nobody does (a label left by a dead holder is not believed).

    Postgres: looked up in pg_locks, without touching the lock. SQLite: a probe that takes the lock and gives it
    straight back when it is free (so a sync starting in that same instant can be refused once, as by any holder).
    """
    if is_postgres(engine):
        with engine.connect() as conn:
            held = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND ((classid::bigint << 32) | objid::bigint) = :key "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"key": lock_key(name)},
            ).scalar_one()
        if not held:
            return None
    else:
        probe = SyncLock(engine, name)
        if probe._take():
            probe.release()
            return None
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(sync_locks.c.holder, sync_locks.c.acquired_at).where(sync_locks.c.name == name)
        ).first()
    # Held, but the label is not written yet (the holder is between the two steps): someone holds it all the same.
    return LockHolder("unknown", dt.datetime.min) if row is None else LockHolder(row.holder, row.acquired_at)
