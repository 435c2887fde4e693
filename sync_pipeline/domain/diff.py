"""Classify each valid sheet row against the database state: insert, update, unchanged or conflict.

The rules are DESIGN.md's "Sync semantics": the sync remembers what it last applied (row hash, synced version and
time), so a row is *edited outside* when its version or `updated_at` moved on since; a sheet change on such a row is
a conflict, won by the newer timestamp (the sheet's 更新日時 against the row's `updated_at`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

KEY = "seller_number"
STATE_COLUMNS: tuple[str, ...] = ("seller_number", "row_hash", "version", "synced_version", "updated_at", "synced_at")
# What the diff needs of every database row; the sync bookkeeping only of the rows whose hash differs (`classify`).
DIFF_COLUMNS: tuple[str, ...] = ("seller_number", "row_hash", "version")
BOOKKEEPING_COLUMNS: tuple[str, ...] = ("synced_version", "updated_at", "synced_at")


class Action(enum.StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    CONFLICT_SHEET_WINS = "conflict_sheet_wins"  # written, and logged as a conflict
    CONFLICT_DB_WINS = "conflict_db_wins"  # kept as the application left it, and logged
    # A seller the sync wrote before that has since vanished from the database (deleted behind the sync's back):
    # not quietly re-inserted as if new. Verification reports it as a gap and the resync restores it when
    # automatic recovery is on, so the audit log tells the story (gaps found = gaps resynced).
    MISSING = "missing"

    @property
    def writes(self) -> bool:
        return self in {Action.INSERT, Action.UPDATE, Action.CONFLICT_SHEET_WINS}


# The values of the actions that write, for column tests (`np.isin(plan["action"], WRITING_ACTIONS)`): mapping
# `Action(a).writes` over a column is one Python call per row.
WRITING_ACTIONS: tuple[str, ...] = tuple(a.value for a in Action if a.writes)


def empty_state() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in STATE_COLUMNS})


def text_array(values: pd.Series) -> pa.ChunkedArray:
    """A text column as Arrow large strings, whatever its pandas dtype (object, `str`, string[pyarrow], ArrowDtype):
    the Arrow-backed ones without copying the text. Missing values are null."""
    dtype = values.dtype
    if isinstance(dtype, pd.ArrowDtype) or (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        array = pa.array(values.array)  # their own Arrow data (a chunked array)
    else:
        array = pa.array(values.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    chunked = array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])
    return chunked if chunked.type == pa.large_string() else chunked.cast(pa.large_string())


def text_series(values: pa.ChunkedArray) -> pd.Series:
    """Arrow strings as a pandas `str` column, without copying them."""
    return values.to_pandas(types_mapper={values.type: pd.StringDtype("pyarrow", na_value=np.nan)}.get)


def is_in(values: pd.Series, keys: Iterable[str]) -> np.ndarray:
    """`values.isin(keys)` for text, as a hash lookup in Arrow (pandas turns an Arrow column into Python strings)."""
    wanted = pa.array(list(keys), type=pa.large_string())
    if not len(wanted) or not len(values):
        return np.zeros(len(values), dtype=bool)
    return np.asarray(pc.is_in(text_array(values), value_set=wanted).to_numpy(), dtype=bool)


def positions(keys: pa.ChunkedArray, among: pa.ChunkedArray) -> np.ndarray:
    """For each of `keys`, its position in `among` (a column of distinct keys), -1 where absent; no Python object per
    key.

    The database returns rows in the order the sync wrote them, which is mostly the sheet's: keys equal at the same
    position pair without hashing; only the others go through Arrow's hash lookup, against the rows still unpaired
    (keys are distinct on both sides, so a row paired by position is nobody else's). A hash lookup of 1,000,000 keys
    takes 0.4 to 0.6 s here, most of the compare's own work.
    """
    at = np.full(len(keys), -1, dtype=np.int64)
    common = min(len(keys), len(among))
    if common:
        same = pc.fill_null(pc.equal(keys.slice(0, common), among.slice(0, common)), False)
        aligned = np.flatnonzero(np.asarray(same.to_numpy(), dtype=bool))
        at[aligned] = aligned
    rest = np.flatnonzero(at < 0)
    if len(rest) and len(among):
        free = np.ones(len(among), dtype=bool)
        free[at[at >= 0]] = False
        unpaired = np.flatnonzero(free)
        if len(unpaired):
            probe = keys if len(rest) == len(keys) else keys.take(pa.array(rest))
            table = among if len(unpaired) == len(among) else among.take(pa.array(unpaired))
            found = pc.index_in(probe, value_set=table)  # type: ignore[attr-defined]
            hit = np.asarray(pc.fill_null(found, -1).to_numpy(), dtype=np.int64)
            at[rest[hit >= 0]] = unpaired[hit[hit >= 0]]
    return at


def take(values: pd.Series, at: np.ndarray) -> pd.Series:
    """`values` at positions `at` (-1 gives a missing value), keeping the column's dtype; without copying when `at`
    is every position in order (the database rows came in the sheet's order)."""
    if len(at) == len(values) and np.array_equal(at, np.arange(len(at))):
        return values.reset_index(drop=True)
    return pd.Series(values.array.take(at, allow_fill=True), name=values.name)


def utc_times(values: pd.Series) -> pd.Series:
    """Timestamps as aware UTC: the database reads them aware, the sheet parser gives naive UTC; mixed, they would not
    compare (pandas refuses naive against aware)."""
    return pd.to_datetime(values, utc=True)


def edited_outside(state: pd.DataFrame) -> pd.Series:
    """True where a row changed after the sync last wrote it (by version or by timestamp)."""
    version_moved = state["version"].astype("Int64") != state["synced_version"].astype("Int64")
    updated = utc_times(state["updated_at"])
    synced = utc_times(state["synced_at"])
    time_moved = updated > synced
    never_synced = state["synced_version"].isna()
    return (version_moved.fillna(True) | time_moved.fillna(False) | never_synced).astype(bool)


def sheet_newer(sheet_time: pd.Series, db_time: pd.Series) -> np.ndarray:
    """Where the sheet's 更新日時 is strictly newer than the database row's `updated_at` (a conflict's tie-break).

    A sheet row without 更新日時 cannot claim to be newer than an edit made in the application."""
    newer = utc_times(sheet_time.reset_index(drop=True)) > utc_times(db_time.reset_index(drop=True))
    return np.asarray(newer.fillna(False).to_numpy(dtype=bool, na_value=False))


# The action codes of classify, in the order of this tuple.
_ACTIONS = (Action.INSERT, Action.UPDATE, Action.UNCHANGED, Action.CONFLICT_SHEET_WINS, Action.CONFLICT_DB_WINS)
_INSERT, _UPDATE, _UNCHANGED, _SHEET_WINS, _DB_WINS = range(len(_ACTIONS))
_ACTION_VALUES = np.array([a.value for a in _ACTIONS], dtype=object)
# No bookkeeping loaded for a row: what `take` fills the plan's columns with.
_NO_BOOKKEEPING = pd.DataFrame(
    {
        "synced_version": pd.Series([], dtype="Int64"),
        "updated_at": pd.Series([], dtype="datetime64[us, UTC]"),
        "synced_at": pd.Series([], dtype="datetime64[us, UTC]"),
    }
)

BookkeepingLoader = Callable[[list[str]], pd.DataFrame]


def classify(
    sheet: pd.DataFrame,
    state: pd.DataFrame,
    *,
    force_keys: frozenset[str] = frozenset(),
    load_bookkeeping: BookkeepingLoader | None = None,
) -> pd.DataFrame:
    """The plan: `sheet` with `action`, `expected_version` (None for inserts) and the database side's columns
    (`db_row_hash`, `db_version`, `db_synced_version`, `db_updated_at`, `db_synced_at`).

    `sheet` is SheetSnapshot.valid; `state` has STATE_COLUMNS for (at least) the sheet's keys, or only DIFF_COLUMNS
    with `load_bookkeeping` given: it is then called once with the keys whose bookkeeping is needed (rows whose hash
    differs, forced rows) and returns their STATE_COLUMNS; the other rows' bookkeeping columns stay empty in the
    plan. Keys in `force_keys` are rewritten from the sheet whatever their hash (an operator's or the verifier's
    resync). Keys are unique on both sides (ingestion rejects duplicates; the table has a unique constraint).

    Column work only: the keys are paired by a hash join in Arrow, and the rows whose content hash equals the
    database's are settled by that alone; versions and timestamps are looked at only for the rows whose hash differs
    (none, on a sync with nothing changed).
    """
    keys = text_array(sheet[KEY])
    at = positions(keys, text_array(state[KEY]))
    db_version = take(state["version"], at)
    present = db_version.notna().to_numpy(dtype=bool)
    db_hash = take(state["row_hash"], at)
    same_hash = present & np.asarray(
        pc.fill_null(pc.equal(text_array(sheet["row_hash"]), text_array(db_hash)), False).to_numpy(), dtype=bool
    )
    forced = present & is_in(sheet[KEY], force_keys) if force_keys else np.zeros(len(at), dtype=bool)
    book = _bookkeeping(state, at, keys, np.flatnonzero(present & (~same_hash | forced)), load_bookkeeping)

    codes = np.full(len(at), _UPDATE, dtype=np.int8)
    codes[same_hash] = _UNCHANGED  # equal hashes imply a database row
    differs = np.flatnonzero(present & ~same_hash)
    if len(differs):
        rows = pd.DataFrame(
            {
                "version": db_version.iloc[differs].reset_index(drop=True),
                **{name: book[name].iloc[differs].reset_index(drop=True) for name in BOOKKEEPING_COLUMNS},
            }
        )
        outside = edited_outside(rows).to_numpy(dtype=bool)
        newer = sheet_newer(sheet["sheet_updated_at"].iloc[differs], rows["updated_at"])
        codes[differs[outside & newer]] = _SHEET_WINS
        codes[differs[outside & ~newer]] = _DB_WINS
    codes[forced] = _UPDATE
    codes[~present] = _INSERT

    plan = sheet.reset_index(drop=True)
    plan["db_row_hash"] = db_hash
    plan["db_version"] = db_version
    for name in BOOKKEEPING_COLUMNS:
        plan[f"db_{name}"] = book[name]
    plan["action"] = _ACTION_VALUES[codes]
    # Python ints and None: a plain `map` infers float64 (1.0, NaN) when inserts and updates are mixed, and Postgres
    # COPY then refuses "1.0" for the integer staging column (invalid input syntax for type integer).
    expected = np.full(len(at), None, dtype=object)
    if present.any():
        expected[present] = db_version[present].astype("int64").tolist()
    plan["expected_version"] = expected
    return plan


def _bookkeeping(
    state: pd.DataFrame,
    at: np.ndarray,
    keys: pa.ChunkedArray,
    needed: np.ndarray,
    load: BookkeepingLoader | None,
) -> dict[str, pd.Series]:
    """BOOKKEEPING_COLUMNS for every sheet row (`at`: its row in `state`), from `state` when it has them, else from
    `load` for the `needed` rows (empty elsewhere)."""
    if all(name in state.columns for name in BOOKKEEPING_COLUMNS):
        return {name: take(state[name], at) for name in BOOKKEEPING_COLUMNS}
    if load is None:
        raise ValueError(f"the state has no {', '.join(BOOKKEEPING_COLUMNS)} and there is no loader for them")
    source = _NO_BOOKKEEPING
    where = np.full(len(at), -1, dtype=np.int64)
    if len(needed):
        wanted = keys.take(pa.array(needed))
        loaded = load(wanted.to_pylist())
        where[needed] = positions(wanted, text_array(loaded[KEY]))
        source = loaded
    return {name: take(source[name], where) for name in BOOKKEEPING_COLUMNS}


def mark_missing(
    plan: pd.DataFrame, written_before: frozenset[str], *, force_keys: frozenset[str] = frozenset()
) -> pd.DataFrame:
    """Planned inserts of sellers the sync had written before become MISSING (a resync's forced keys excepted)."""
    inserts = plan["action"].to_numpy() == Action.INSERT.value
    if not inserts.any() or not written_before:
        return plan
    gone = inserts & is_in(plan[KEY], written_before) & ~is_in(plan[KEY], force_keys)
    if gone.any():
        plan = plan.copy()
        plan.loc[gone, "action"] = Action.MISSING.value
    return plan
