"""Classify each valid sheet row against the database state: insert, update, unchanged or conflict.

The rules are DESIGN.md's "Sync semantics": the sync remembers what it last applied (row hash, synced version and
time), so a row is *edited outside* when its version or `updated_at` moved on since; a sheet change on such a row is
a conflict, won by the newer timestamp (the sheet's 更新日時 against the row's `updated_at`).
"""

from __future__ import annotations

import enum

import pandas as pd

KEY = "seller_number"
STATE_COLUMNS: tuple[str, ...] = ("seller_number", "row_hash", "version", "synced_version", "updated_at", "synced_at")


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


def empty_state() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in STATE_COLUMNS})


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


def classify(sheet: pd.DataFrame, state: pd.DataFrame, *, force_keys: frozenset[str] = frozenset()) -> pd.DataFrame:
    """The plan: `sheet` with `action`, `expected_version` (None for inserts) and the database side's timestamps.

    `sheet` is SheetSnapshot.valid; `state` has STATE_COLUMNS for (at least) the sheet's keys. Keys in
    `force_keys` are rewritten from the sheet whatever their hash (an operator's or the verifier's resync).
    """
    db = state.loc[:, list(STATE_COLUMNS)].rename(columns={c: f"db_{c}" for c in STATE_COLUMNS if c != KEY})
    plan = sheet.merge(db, on=KEY, how="left", validate="one_to_one")
    present = plan["db_version"].notna()
    same_hash = present & (plan["row_hash"] == plan["db_row_hash"])
    outside = pd.Series(False, index=plan.index)
    if present.any():
        outside[present] = edited_outside(
            plan.loc[present, ["db_version", "db_synced_version", "db_updated_at", "db_synced_at"]].set_axis(
                ["version", "synced_version", "updated_at", "synced_at"], axis=1
            )
        )
    sheet_time = utc_times(plan["sheet_updated_at"])
    db_time = utc_times(plan["db_updated_at"])
    # A sheet row without 更新日時 cannot claim to be newer than an edit made in the application.
    sheet_newer = (sheet_time > db_time).fillna(False).astype(bool)
    forced = plan[KEY].isin(force_keys)

    action = pd.Series(Action.UPDATE.value, index=plan.index, dtype=object)
    action[present & same_hash] = Action.UNCHANGED.value
    conflict = present & ~same_hash & outside
    action[conflict & sheet_newer] = Action.CONFLICT_SHEET_WINS.value
    action[conflict & ~sheet_newer] = Action.CONFLICT_DB_WINS.value
    action[present & forced] = Action.UPDATE.value
    action[~present] = Action.INSERT.value
    plan["action"] = action
    # Python ints and None: a plain `map` infers float64 (1.0, NaN) when inserts and updates are mixed, and Postgres
    # COPY then refuses "1.0" for the integer staging column (invalid input syntax for type integer).
    db_version = plan["db_version"]
    plan["expected_version"] = db_version.astype("Int64").astype(object).where(db_version.notna(), None)
    return plan


def mark_missing(
    plan: pd.DataFrame, written_before: frozenset[str], *, force_keys: frozenset[str] = frozenset()
) -> pd.DataFrame:
    """Planned inserts of sellers the sync had written before become MISSING (a resync's forced keys excepted)."""
    gone = (plan["action"] == Action.INSERT.value) & plan[KEY].isin(written_before) & ~plan[KEY].isin(force_keys)
    if gone.any():
        plan = plan.copy()
        plan.loc[gone, "action"] = Action.MISSING.value
    return plan
