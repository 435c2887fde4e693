"""A named lease in `sync_locks`: short critical sections (the alert-rule evaluation) that must not run twice at once
in any process, where a crashed holder may block others for the length of the lease. The sync itself uses
`adapters.store.lock.SyncLock`, which dies with its holder."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from sync_pipeline.adapters.store.tables import sync_locks


class LeaseLock:
    """Acquire, renew and release a named lease; each call is its own short transaction on `engine`."""

    def __init__(self, engine: sa.Engine, name: str) -> None:
        self.engine = engine
        self.name = name

    def acquire(self, holder: str, *, now: dt.datetime, lease: dt.timedelta) -> bool:
        """Take the lock when it is free or its lease has expired; True when `holder` now holds it."""
        expires = now + lease
        with self.engine.begin() as conn:
            # Taking over an expired lease is a conditional UPDATE, so two contenders cannot both win it.
            taken = conn.execute(
                sync_locks.update()
                .where(sync_locks.c.name == self.name)
                .where(sa.or_(sync_locks.c.expires_at <= now, sync_locks.c.holder == holder))
                .values(holder=holder, acquired_at=now, expires_at=expires)
            ).rowcount
            if taken:
                return True
            exists = conn.execute(sa.select(sync_locks.c.holder).where(sync_locks.c.name == self.name)).first()
            if exists is not None:
                return False
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sync_locks.insert().values(name=self.name, holder=holder, acquired_at=now, expires_at=expires)
                )
            return True
        except sa.exc.IntegrityError:  # another contender inserted the row first
            return False

    def renew(self, conn: sa.Connection, holder: str, *, now: dt.datetime, lease: dt.timedelta) -> bool:
        """Extend the lease inside the caller's transaction; False when the lock was lost (lease taken over)."""
        renewed = conn.execute(
            sync_locks.update()
            .where(sync_locks.c.name == self.name, sync_locks.c.holder == holder)
            .values(expires_at=now + lease)
        ).rowcount
        return bool(renewed)

    def release(self, holder: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sync_locks.delete().where(sync_locks.c.name == self.name, sync_locks.c.holder == holder))

    def holder(self, *, now: dt.datetime) -> str | None:
        """The current holder of an unexpired lease, if any."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sync_locks.c.holder).where(sync_locks.c.name == self.name, sync_locks.c.expires_at > now)
            ).scalar_one_or_none()
