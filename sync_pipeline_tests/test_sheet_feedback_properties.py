"""Properties of the feedback planner (`domain.feedback.plan_feedback`) over random sheets of notes and rejections.

Random rejected cells (some without a cell of their own, several on one cell, duplicates on key cells) meet random
notes already in the sheet — the sync's own (marked) and people's — and the plan must:
- never touch a note it did not write (no change on a cell whose note is a person's);
- annotate every finding on its cell, or on the row's key cell when a person's note sits on the cell, and leave it
  unannotated only when both carry people's notes;
- leave none of its old notes behind that no longer applies;
- plan nothing the second time over the sheet it produced (no request for an unchanged sheet), even at a later time.
"""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import given
from hypothesis import strategies as st

from sync_pipeline.domain.feedback import (
    MARKER,
    Cell,
    FeedbackPlan,
    Finding,
    findings_from,
    is_ours,
    note_text,
    plan_feedback,
)
from sync_pipeline.domain.sheet import HeaderReport, Rejection

ROWS = st.integers(min_value=2, max_value=12)
COLUMNS = st.integers(min_value=0, max_value=5)  # column 0 is the key (売主番号)
CELLS = st.tuples(ROWS, COLUMNS)
RULES = st.sampled_from(["required", "seller_number_format", "duplicate_seller_number", "invalid_date", "too_long"])
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30)


@st.composite
def findings(draw: st.DrawFn) -> Finding:
    row = draw(ROWS)
    col = draw(st.one_of(st.none(), COLUMNS))
    message = draw(TEXT)
    return Finding(
        cell=(row, col) if col is not None else None,
        key_cell=(row, 0),
        label=draw(st.sampled_from(["売主番号", "氏名", "反響日", "備考"])),
        rule=draw(RULES),
        message=message,
    )


def _persons_note(text: str) -> str:
    return text if not text.startswith(MARKER) else "memo " + text


OURS = st.builds(lambda f: note_text([f], "2026-01-01 09:00 (Asia/Tokyo)"), findings())
PEOPLES = TEXT.map(_persons_note)
NOTES = st.dictionaries(CELLS, st.one_of(OURS, PEOPLES), max_size=25)
FINDINGS = st.lists(findings(), max_size=20)
FOUND_AT = st.sampled_from(["2026-12-07 09:00 (Asia/Tokyo)", "2026-12-08 18:30 (Asia/Tokyo)"])


def _applied(current: Mapping[Cell, str], plan: FeedbackPlan) -> dict[Cell, str]:
    """The sheet's notes once Google has applied the plan's one batchUpdate."""
    notes = dict(current)
    for change in plan.changes:
        if change.note:
            notes[change.cell] = change.note
        else:
            notes.pop(change.cell, None)
    return notes


@given(FINDINGS, NOTES, FOUND_AT)
def test_feedback_never_touches_a_note_it_did_not_write(
    found: list[Finding], current: dict[Cell, str], found_at: str
) -> None:
    plan = plan_feedback(found, current, found_at=found_at)
    for change in plan.changes:
        assert is_ours(current.get(change.cell, MARKER)), f"{change.a1} holds a person's note: {current[change.cell]!r}"
    after = _applied(current, plan)
    people = {cell: text for cell, text in current.items() if not is_ours(text)}
    assert {cell: after.get(cell) for cell in people} == people  # byte for byte


@given(FINDINGS, NOTES, FOUND_AT)
def test_every_finding_is_annotated_unless_people_hold_both_of_its_cells(
    found: list[Finding], current: dict[Cell, str], found_at: str
) -> None:
    plan = plan_feedback(found, current, found_at=found_at)
    after = _applied(current, plan)
    for finding in found:
        cells = [c for c in (finding.cell, finding.key_cell) if c is not None]
        shown = [c for c in cells if is_ours(after.get(c, "")) and finding.message in after[c]]
        if not shown:
            assert all(current.get(c) and not is_ours(current[c]) for c in cells), finding
            assert (finding.cell or finding.key_cell) in plan.blocked
        elif finding.cell is not None and not (current.get(finding.cell) and not is_ours(current[finding.cell])):
            assert finding.cell in shown  # on its own cell whenever that cell is free of people's notes


@given(FINDINGS, NOTES, FOUND_AT)
def test_no_note_of_the_sync_outlives_its_finding(
    found: list[Finding], current: dict[Cell, str], found_at: str
) -> None:
    plan = plan_feedback(found, current, found_at=found_at)
    after = _applied(current, plan)
    assert {cell for cell, text in after.items() if is_ours(text)} == set(plan.annotated)
    stale = {c for c, t in current.items() if is_ours(t)} - set(plan.annotated)
    assert plan.cleared == len(stale)
    assert plan.written + plan.cleared == len(plan.changes)
    assert plan.written + plan.unchanged == len(plan.annotated)


@given(FINDINGS, NOTES, FOUND_AT, FOUND_AT)
def test_a_second_sync_of_the_same_sheet_plans_nothing(
    found: list[Finding], current: dict[Cell, str], first: str, second: str
) -> None:
    after = _applied(current, plan_feedback(found, current, found_at=first))
    again = plan_feedback(found, after, found_at=second)
    assert again.changes == ()
    assert again.unchanged == len(again.annotated)


def test_a_note_names_the_column_the_cell_and_says_what_the_cli_says() -> None:
    header = HeaderReport(
        mapping={"seller_number": "売主番号", "name": "氏名"}, columns={"seller_number": 0, "name": 1}, header_row=1
    )
    message = "氏名 in B5 is empty; fill it in (the row is not synced until then)."
    rejection = Rejection(sheet_row=5, rule="required", message=message, cell="B5", column="氏名", field="name")
    (finding,) = findings_from([rejection], header)
    assert finding.cell == (5, 1) and finding.key_cell == (5, 0)
    plan = plan_feedback([finding], {}, found_at="2026-12-07 09:00 (Asia/Tokyo)")
    (change,) = plan.changes
    assert change.a1 == "B5"
    lines = change.note.split("\n")
    assert lines[0].startswith(MARKER)
    assert "氏名（B5）: 必須の項目が空です。" in lines[1]
    assert lines[2].strip() == message
    assert "検出: 2026-12-07 09:00 (Asia/Tokyo)" in lines


def test_a_changed_message_rewrites_the_note_with_the_new_time() -> None:
    old = Finding(cell=(7, 0), key_cell=(7, 0), label="売主番号", rule="seller_number_format", message="was FB0006")
    new = Finding(cell=(7, 0), key_cell=(7, 0), label="売主番号", rule="seller_number_format", message="is FB0007")
    current = {(7, 0): note_text([old], "2026-01-01 09:00 (Asia/Tokyo)")}
    plan = plan_feedback([new], current, found_at="2026-12-07 09:00 (Asia/Tokyo)")
    (change,) = plan.changes
    assert "is FB0007" in change.note and "2026-12-07 09:00" in change.note and "was FB0006" not in change.note
    assert (plan.written, plan.cleared, plan.unchanged) == (1, 0, 0)
