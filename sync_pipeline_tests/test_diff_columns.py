"""The column paths of the diff and of the bulk reads equal their plain definitions.

`domain.diff.classify` pairs keys in Arrow and reads the sync bookkeeping only of rows whose hash differs; a
Hypothesis test checks it against the plain pandas merge it replaced, for object and Arrow-backed columns and with the
bookkeeping loaded lazily. `adapters.store.reads` reads Postgres through aggregated CSV text; a database test checks
that awkward keys (quotes, commas, newlines, empty strings) and NULLs come back as the plain DBAPI rows do, on SQLite
and Postgres. No sheet source, no Dagster.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from sync_pipeline.adapters.store.reads import HASH_SCHEMA, STATE_SCHEMA, read_rows
from sync_pipeline.adapters.store.sellers import SellerStore, content_hash_expression
from sync_pipeline.adapters.store.tables import properties, sellers
from sync_pipeline.domain.diff import DIFF_COLUMNS, STATE_COLUMNS, Action, classify, edited_outside, utc_times

BASE = dt.datetime(2025, 3, 1, 9, 0, 0)
ARROW_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)


def plain_classify(sheet: pd.DataFrame, state: pd.DataFrame, force_keys: frozenset[str]) -> pd.DataFrame:
    """The definition: classify as a pandas merge over Python objects (the implementation before the column path)."""
    db = state.loc[:, list(STATE_COLUMNS)].rename(columns={c: f"db_{c}" for c in STATE_COLUMNS if c != "seller_number"})
    plan = sheet.merge(db.astype(object), on="seller_number", how="left", validate="one_to_one")
    present = plan["db_version"].notna()
    same_hash = present & (plan["row_hash"] == plan["db_row_hash"])
    outside = pd.Series(False, index=plan.index)
    if present.any():
        outside[present] = edited_outside(
            plan.loc[present, ["db_version", "db_synced_version", "db_updated_at", "db_synced_at"]].set_axis(
                ["version", "synced_version", "updated_at", "synced_at"], axis=1
            )
        )
    sheet_newer = (utc_times(plan["sheet_updated_at"]) > utc_times(plan["db_updated_at"])).fillna(False).astype(bool)
    forced = plan["seller_number"].isin(force_keys)
    action = pd.Series(Action.UPDATE.value, index=plan.index, dtype=object)
    action[present & same_hash] = Action.UNCHANGED.value
    conflict = present & ~same_hash & outside
    action[conflict & sheet_newer] = Action.CONFLICT_SHEET_WINS.value
    action[conflict & ~sheet_newer] = Action.CONFLICT_DB_WINS.value
    action[present & forced] = Action.UPDATE.value
    action[~present] = Action.INSERT.value
    plan["action"] = action
    plan["expected_version"] = pd.Series([None if pd.isna(v) else int(v) for v in plan["db_version"]], dtype=object)
    return plan


row_states = st.fixed_dictionaries(
    {
        "in_db": st.booleans(),
        "same_hash": st.booleans(),
        "db_hash_null": st.booleans(),
        "version": st.integers(1, 4),
        "synced_version": st.one_of(st.none(), st.integers(1, 4)),
        "updated_hours": st.integers(-3, 3),
        "synced_hours": st.one_of(st.none(), st.integers(-3, 3)),
        "sheet_hours": st.one_of(st.none(), st.integers(-3, 3)),
        "forced": st.booleans(),
    }
)


def _frames(
    rows: list[dict[str, object]], orphans: int, shuffle: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame, frozenset[str]]:
    sheet, state, forced = [], [], set()
    for i, r in enumerate(rows):
        key = f"AB{i:05d}"
        sheet_time = None if r["sheet_hours"] is None else BASE + dt.timedelta(hours=r["sheet_hours"])  # type: ignore[operator]
        sheet.append({"seller_number": key, "row_hash": f"h{i}", "sheet_updated_at": sheet_time, "sheet_row": i + 2})
        if r["forced"]:
            forced.add(key)
        if r["in_db"]:
            synced = None if r["synced_hours"] is None else BASE + dt.timedelta(hours=r["synced_hours"])  # type: ignore[operator]
            db_hash = None if r["db_hash_null"] else f"h{i}" if r["same_hash"] else f"other{i}"
            state.append(
                {
                    "seller_number": key,
                    "row_hash": db_hash,
                    "version": r["version"],
                    "synced_version": r["synced_version"],
                    "updated_at": (BASE + dt.timedelta(hours=r["updated_hours"])).replace(tzinfo=dt.UTC),  # type: ignore[operator]
                    "synced_at": None if synced is None else synced.replace(tzinfo=dt.UTC),
                }
            )
    for j in range(orphans):  # database rows the sheet does not have
        state.append({"seller_number": f"ZZ{j:05d}", "row_hash": "z", "version": 1, "synced_version": 1})
    sheet_frame = pd.DataFrame(sheet, columns=["seller_number", "row_hash", "sheet_updated_at", "sheet_row"]).astype(
        object
    )
    state_frame = pd.DataFrame(state, columns=list(STATE_COLUMNS)).astype(object)
    # Shuffled, the keys pair by hash lookup; in sheet order, mostly by position (domain.diff.positions).
    state_frame = state_frame.sample(frac=1, random_state=len(rows)) if shuffle else state_frame
    return sheet_frame, state_frame, frozenset(forced)


def _typed(state: pd.DataFrame) -> pd.DataFrame:
    """The state as the store returns it: Arrow strings, nullable integers, aware UTC datetimes."""
    return pd.DataFrame(
        {
            "seller_number": state["seller_number"].astype(ARROW_TEXT),
            "row_hash": state["row_hash"].astype(ARROW_TEXT),
            "version": state["version"].astype("Int64"),
            "synced_version": state["synced_version"].astype("Int64"),
            "updated_at": pd.to_datetime(state["updated_at"], utc=True).astype("datetime64[us, UTC]"),
            "synced_at": pd.to_datetime(state["synced_at"], utc=True).astype("datetime64[us, UTC]"),
        }
    )


@given(
    rows=st.lists(row_states, max_size=30), orphans=st.integers(0, 3), arrow_sheet=st.booleans(), shuffle=st.booleans()
)
def test_classify_column_path_equals_the_plain_merge(
    rows: list[dict[str, object]], orphans: int, arrow_sheet: bool, shuffle: bool
) -> None:
    sheet, state, forced = _frames(rows, orphans, shuffle)
    expected = plain_classify(sheet, state, forced)
    if arrow_sheet:
        sheet = sheet.astype({"seller_number": ARROW_TEXT, "row_hash": ARROW_TEXT})
    typed = _typed(state)
    asked: list[list[str]] = []

    def load(keys: list[str]) -> pd.DataFrame:
        asked.append(keys)
        return typed[typed["seller_number"].isin(keys)]

    full = classify(sheet, state, force_keys=forced)
    lazy = classify(sheet, typed.loc[:, list(DIFF_COLUMNS)], force_keys=forced, load_bookkeeping=load)
    for plan in (full, lazy):
        assert plan["action"].tolist() == expected["action"].tolist()
        assert plan["expected_version"].tolist() == expected["expected_version"].tolist()
        assert list(plan["seller_number"]) == list(expected["seller_number"])
        assert list(plan.columns) == list(expected.columns)
    # The lazy path asks only for rows whose hash differs or that are forced, at most once, and has their bookkeeping.
    examined = expected["db_version"].notna() & (
        (expected["row_hash"] != expected["db_row_hash"]) | expected["seller_number"].isin(forced)
    )
    assert len(asked) <= 1
    assert sorted(asked[0] if asked else []) == sorted(expected.loc[examined, "seller_number"])
    got = utc_times(lazy.loc[examined, "db_updated_at"]).tolist()
    assert got == utc_times(expected.loc[examined, "db_updated_at"]).tolist()


def test_classify_of_a_sync_with_nothing_changed_loads_no_bookkeeping() -> None:
    sheet, state, _ = _frames([{**_SAME, "sheet_hours": 1} for _ in range(5)], 0)

    def refuse(keys: list[str]) -> pd.DataFrame:
        raise AssertionError(f"bookkeeping loaded for {keys}")

    plan = classify(sheet, _typed(state).loc[:, list(DIFF_COLUMNS)], load_bookkeeping=refuse)
    assert set(plan["action"]) == {Action.UNCHANGED.value}
    assert plan["expected_version"].tolist() == [2] * 5


_SAME = {
    "in_db": True,
    "same_hash": True,
    "db_hash_null": False,
    "version": 2,
    "synced_version": 2,
    "updated_hours": 0,
    "synced_hours": 0,
    "sheet_hours": 0,
    "forced": False,
}

AWKWARD_KEYS = ['AB"1', "AB,2", "AB\n3", "AB 4", "ＡＢ５", "AB\\6", "AB'7"]


def test_bulk_reads_equal_the_plain_rows(engine: sa.Engine) -> None:
    """Keys with quotes, commas, newlines or backslashes, NULL against empty text, missing properties and timestamps
    with microseconds come back from the bulk path (aggregated CSV on Postgres) as the plain DBAPI rows have them."""
    moment = dt.datetime(2025, 3, 1, 9, 0, 0, 123456, tzinfo=dt.UTC)
    with engine.begin() as conn:
        for i, key in enumerate(AWKWARD_KEYS):
            ids = conn.execute(
                sa.insert(sellers)
                .values(
                    seller_number=key,
                    name=None if i % 2 else f'名前,"{i}"',
                    row_hash=[None, "", "abc"][i % 3],
                    version=i + 1,
                    synced_version=None if i == 3 else i,
                    synced_at=None if i == 4 else moment,
                    updated_at=moment + dt.timedelta(seconds=i),
                )
                .returning(sellers.c.id)
            ).scalar_one()
            if i % 3:
                conn.execute(sa.insert(properties).values(seller_id=ids, property_address=f"所在地\n{i}"))
    store = SellerStore()
    with engine.connect() as conn:
        dialect = conn.dialect.name
        state = store.load_state(conn).sort_values("seller_number", ignore_index=True)
        keyed = store.load_state(conn, keys=AWKWARD_KEYS).sort_values("seller_number", ignore_index=True)
        plain_state = read_rows(conn, sa.select(*(sellers.c[c] for c in STATE_COLUMNS)), STATE_SCHEMA)
        hashes = store.verification_hashes(conn).sort_values("seller_number", ignore_index=True)
        plain_hashes = read_rows(
            conn,
            sa.select(
                sellers.c.seller_number,
                content_hash_expression(dialect=dialect).label("db_hash"),
                sellers.c.synced_version,
                properties.c.id.is_not(None).label("has_property"),
            ).select_from(sellers.outerjoin(properties, properties.c.seller_id == sellers.c.id)),
            HASH_SCHEMA,
        ).sort_values("seller_number", ignore_index=True)
        narrow = store.load_state(conn, columns=DIFF_COLUMNS)
    plain_state = plain_state.sort_values("seller_number", ignore_index=True)
    pd.testing.assert_frame_equal(state, plain_state)
    pd.testing.assert_frame_equal(keyed, plain_state)
    pd.testing.assert_frame_equal(hashes, plain_hashes)
    assert sorted(state["seller_number"]) == sorted(AWKWARD_KEYS)
    assert state["row_hash"].isna().sum() == 3 and (state["row_hash"] == "").sum() == 2  # NULL is not ''
    assert state["updated_at"].min() == pd.Timestamp(moment)
    assert hashes["has_property"].sum() == 4
    assert list(narrow.columns) == list(DIFF_COLUMNS) and len(narrow) == len(AWKWARD_KEYS)
    assert pa.types.is_large_string(pa.array(state["seller_number"].array).type)
