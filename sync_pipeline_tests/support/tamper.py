"""Test helpers that change the seller database behind the sync's back, the way another application might.

Plain SQL through SQLAlchemy Core on the real database (SQLite or Postgres); nothing here goes through the sync.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from sync_pipeline.adapters.store.tables import properties, sellers

REJECT_TRIGGER = "reject_seller_for_test"


def delete_sellers(engine: sa.Engine, keys: Iterable[str]) -> None:
    """Delete sellers (their properties go with them: ON DELETE CASCADE, and explicitly for safety)."""
    keys = sorted(keys)
    if not keys:
        return
    with engine.begin() as conn:
        ids = sa.select(sellers.c.id).where(sellers.c.seller_number.in_(keys)).scalar_subquery()
        conn.execute(properties.delete().where(properties.c.seller_id.in_(ids)))
        conn.execute(sellers.delete().where(sellers.c.seller_number.in_(keys)))


def delete_properties(engine: sa.Engine, keys: Iterable[str]) -> None:
    """Delete the property records of sellers, leaving the sellers themselves untouched."""
    keys = sorted(keys)
    if not keys:
        return
    with engine.begin() as conn:
        ids = sa.select(sellers.c.id).where(sellers.c.seller_number.in_(keys)).scalar_subquery()
        conn.execute(properties.delete().where(properties.c.seller_id.in_(ids)))


def raw_edit(engine: sa.Engine, keys: Iterable[str], **values: Any) -> None:
    """Change columns of sellers with SQL that bumps neither `version` nor `updated_at` (a careless script)."""
    keys = sorted(keys)
    if not keys:
        return
    values = values or {"name": "書き換え済み"}
    with engine.begin() as conn:
        conn.execute(sellers.update().where(sellers.c.seller_number.in_(keys)).values(**values))


def raw_edit_property(engine: sa.Engine, keys: Iterable[str], **values: Any) -> None:
    keys = sorted(keys)
    if not keys:
        return
    with engine.begin() as conn:
        ids = sa.select(sellers.c.id).where(sellers.c.seller_number.in_(keys)).scalar_subquery()
        conn.execute(properties.update().where(properties.c.seller_id.in_(ids)).values(**values))


def app_edit(engine: sa.Engine, keys: Iterable[str], at: dt.datetime, **values: Any) -> None:
    """Change sellers the way the application does: bump the version and set `updated_at` (newer than the sheet)."""
    keys = sorted(keys)
    if not keys:
        return
    values = values or {"status": "アプリで更新"}
    with engine.begin() as conn:
        conn.execute(
            sellers.update()
            .where(sellers.c.seller_number.in_(keys))
            .values(version=sellers.c.version + 1, updated_at=at, **values)
        )


def insert_foreign_seller(engine: sa.Engine, key: str, at: dt.datetime, **values: Any) -> None:
    """A seller row the application created on its own (never synced, no property record)."""
    with engine.begin() as conn:
        conn.execute(
            sellers.insert().values(seller_number=key, name="外部登録", created_at=at, updated_at=at, **values)
        )


def install_reject_trigger(engine: sa.Engine, key: str) -> None:
    """A trigger that refuses any insert or update of seller `key`, on SQLite or Postgres (the DDL is ours)."""
    literal = key.replace("'", "''")
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                f"CREATE FUNCTION {REJECT_TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.seller_number = '{literal}' THEN "
                f"RAISE EXCEPTION 'seller {literal} refused by the test trigger'; END IF; "
                "RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER {REJECT_TRIGGER} BEFORE INSERT OR UPDATE ON sellers "
                f"FOR EACH ROW EXECUTE FUNCTION {REJECT_TRIGGER}()"
            )
        else:
            for event in ("INSERT", "UPDATE"):
                conn.exec_driver_sql(
                    f"CREATE TRIGGER {REJECT_TRIGGER}_{event.lower()} BEFORE {event} ON sellers "
                    f"WHEN NEW.seller_number = '{literal}' "
                    f"BEGIN SELECT RAISE(ABORT, 'seller {literal} refused by the test trigger'); END"
                )


def drop_reject_trigger(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {REJECT_TRIGGER} ON sellers")
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {REJECT_TRIGGER}()")
        else:
            for event in ("insert", "update"):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {REJECT_TRIGGER}_{event}")


def dump(engine: sa.Engine) -> list[tuple[Any, ...]]:
    """Every seller with its property, as comparable tuples (to prove that nothing was written)."""
    query = (
        sa.select(*sellers.c, *properties.c)
        .select_from(sellers.outerjoin(properties, properties.c.seller_id == sellers.c.id))
        .order_by(sellers.c.seller_number)
    )
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


def seller_numbers(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(sellers.c.seller_number)).scalars())
