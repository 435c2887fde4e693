"""The service layer's handle on one database: its engine, repositories and clock, migrated on first use."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import sqlalchemy as sa

from sync_pipeline.adapters.store.audit import AuditStore
from sync_pipeline.adapters.store.config import SettingsStore
from sync_pipeline.adapters.store.engine import make_engine
from sync_pipeline.adapters.store.lock import LeaseLock
from sync_pipeline.adapters.store.migrations import ensure_migrated
from sync_pipeline.adapters.store.sellers import SellerStore
from sync_pipeline.domain.clock import Clock, SystemClock
from sync_pipeline.domain.settings import Settings


@dataclass
class Database:
    """Everything a use case needs to talk to the seller database."""

    engine: sa.Engine
    clock: Clock = field(default_factory=SystemClock)
    sellers: SellerStore = field(default_factory=SellerStore)
    audit: AuditStore = field(default_factory=AuditStore)
    config: SettingsStore = field(default_factory=SettingsStore)

    @functools.cached_property
    def lock(self) -> LeaseLock:
        return LeaseLock(self.engine)

    @property
    def url(self) -> str:
        """The URL for messages (password hidden)."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def url_with_password(self) -> str:
        """The URL to hand to another component that opens its own engine (never logged)."""
        return self.engine.url.render_as_string(hide_password=False)

    def settings(self, *, write_defaults: bool = True) -> Settings:
        """The settings in force now (read at every use, so changes apply without a restart).

        The first read writes the defaults into `sync_config`; `write_defaults=False` (dry runs, `verify`) reads the
        same values and leaves the database untouched.
        """
        with self.engine.connect() as conn:
            settings = self.config.load(conn, now=self.clock.now())
            if write_defaults:
                conn.commit()
            else:
                conn.rollback()
        return settings


def open_database(url: str, *, clock: Clock | None = None, migrate: bool = True) -> Database:
    """A Database for `url`; an empty database is migrated to the current schema first."""
    engine = make_engine(url)
    if migrate:
        ensure_migrated(engine)
    return Database(engine=engine, clock=clock or SystemClock())
