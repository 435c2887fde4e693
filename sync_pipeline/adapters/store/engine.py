"""The one place that builds database engines, for SQLite (the embedded default) and Postgres."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa

POSTGRES_SCHEME_ALIASES = ("postgres://", "postgresql://")  # both mean psycopg 3 here


def _md5(text: str | None) -> str | None:
    return None if text is None else hashlib.md5(text.encode("utf-8")).hexdigest()


def normalise_url(url: str) -> str:
    """Accept the URL forms operators paste: postgres:// and postgresql:// both mean psycopg 3."""
    for alias in POSTGRES_SCHEME_ALIASES:
        if url.startswith(alias):
            return "postgresql+psycopg://" + url[len(alias) :]
    return url


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """An engine for `url`; SQLite gets foreign keys, WAL, a busy timeout and the md5() function Postgres has."""
    url = normalise_url(url)
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
            dbapi_connection.create_function("md5", 1, _md5, deterministic=True)
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)  # a dropped connection is replaced before use (Requirement 7.2)
    # Sessions in UTC whatever the server's TimeZone: timestamptz cast to text (the content hash), CURRENT_TIMESTAMP
    # and COPY of zone-less text all follow the session zone. JIT off: the sync's statements are large but simple
    # (a chunk's write, the verification's hash scan), and Postgres's default JIT compiled each one for 0.3-0.7 s,
    # more than the statement itself took. libpq options, so they survive pool resets.
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("options", "-c TimeZone=UTC -c jit=off")
    kwargs["connect_args"] = connect_args
    return sa.create_engine(url, **kwargs)


def is_postgres(engine: sa.Engine) -> bool:
    return engine.dialect.name == "postgresql"
