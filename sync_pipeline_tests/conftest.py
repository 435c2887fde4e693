"""Shared fixtures: a fresh, migrated database per test on SQLite and on the real Postgres, Hypothesis profiles, and
the Sheets API emulator with a trusted service account (per module; a module that seeds its own overrides
`emulator`)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from sync_pipeline.adapters.store.engine import make_engine
from sync_pipeline.adapters.store.migrations import upgrade
from sync_pipeline_tests.support.service_account import ServiceAccountKey, write_service_account_key
from sync_pipeline_tests.support.sheets_emulator import SheetsEmulator

settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

DEFAULT_POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _admin_engine(url: str) -> sa.Engine:
    return make_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The Postgres server to test against; with CI=true a missing server fails the run instead of skipping."""
    url = os.environ.get("SYNC_TEST_POSTGRES_URL", DEFAULT_POSTGRES_SERVER)
    try:
        with _admin_engine(url).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        message = f"PostgreSQL is not reachable at {url} ({exc.orig}); start it or set SYNC_TEST_POSTGRES_URL"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def postgres_template(postgres_server_url: str) -> Iterator[tuple[str, str]]:
    """A migrated template database for this test session; each test gets a copy of it."""
    name = f"spt_{uuid.uuid4().hex[:10]}_tpl"
    admin = _admin_engine(postgres_server_url)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    upgrade(engine)
    engine.dispose()
    yield postgres_server_url, name
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite_template") / "template.db"
    engine = make_engine(f"sqlite:///{path}", poolclass=sa.pool.NullPool)
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _fresh_postgres(template: tuple[str, str]) -> Iterator[str]:
    server_url, template_name = template
    name = f"spt_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(server_url)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, migrated, empty database: once on SQLite, once on Postgres."""
    if request.param == "sqlite":
        path = tmp_path / "sync.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
    else:
        yield from _fresh_postgres(request.getfixturevalue("postgres_template"))


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def emulator() -> Iterator[SheetsEmulator]:
    """A Sheets API emulator on 127.0.0.1 for the module's tests (each test adds the spreadsheets it needs)."""
    with SheetsEmulator() as running:
        yield running


@pytest.fixture(scope="module")
def service_account(emulator: SheetsEmulator, tmp_path_factory: pytest.TempPathFactory) -> ServiceAccountKey:
    """A service-account key file whose token_uri is the emulator's; the emulator checks its JWT grants' signature."""
    key = write_service_account_key(tmp_path_factory.mktemp("credentials"), emulator.token_uri)
    emulator.trust_service_account(key.client_email, key.public_key_pem)
    return key
