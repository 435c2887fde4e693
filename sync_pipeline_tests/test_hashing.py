"""The content hash: the vectorised column path (row_hashes, used by every sync) agrees with the one-record path
(record_hash) for any values, missing ones included. Pure domain; touches no database (the SQL side is compared with
it in test_sync_properties)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from sync_pipeline.domain.fields import FIELDS, FieldKind
from sync_pipeline.domain.hashing import record_hash, row_hashes

VALUES = {
    FieldKind.DATE: st.none() | st.dates(dt.date(1950, 1, 1), dt.date(2199, 12, 31)),
    FieldKind.DATETIME: st.none()
    | st.datetimes(dt.datetime(1950, 1, 1), dt.datetime(2199, 12, 31)).map(lambda d: d.replace(microsecond=0)),
    FieldKind.AMOUNT: st.none() | st.integers(0, 10**15),
}
TEXT = st.none() | st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20)
records = st.fixed_dictionaries({f.name: VALUES.get(f.kind, TEXT) for f in FIELDS})


@given(st.lists(records, min_size=1, max_size=20))
def test_row_hashes_agree_with_record_hash(rows: list[dict[str, object]]) -> None:
    frame = pd.DataFrame(rows, dtype=object)
    assert list(row_hashes(frame)) == [record_hash(r) for r in rows]


def test_a_changed_amount_changes_the_hash_on_both_paths() -> None:
    base = {f.name: None for f in FIELDS} | {"seller_number": "AA00001", "assessed_amount": 12_000_000}
    assert record_hash(base) != record_hash(base | {"assessed_amount": 12_000_001})
    assert list(row_hashes(pd.DataFrame([base], dtype=object))) == [record_hash(base)]
