"""Feedback to the sheet (issue 19): the cell notes a sync writes onto the rejected cells, planned without any I/O.

The people who can fix a rejected row edit the sheet and never read the sync's logs, so a full sync of a Google
sheet (setting `sheet_feedback = notes`) leaves a note on every rejected cell saying what is wrong, and clears the
notes it wrote earlier once they no longer apply. People's own notes are theirs:

- A note is the sync's when its first line starts with `MARKER`; every other note is a person's and is never changed
  or removed (`plan_feedback` cannot produce a change on such a cell: the Hypothesis properties in
  `test_sheet_feedback_properties.py` check it over random sheets).
- Where a person's note already sits on a rejected cell, the finding goes onto the row's key cell (売主番号)
  instead; when that one carries a person's note too, the finding is not annotated (counted as `blocked`).
- Several findings on one cell (or moved onto one key cell) share one note, one line pair each.
- A note is rewritten only when what it says changes: its `検出` (found) line keeps the time the finding was first
  noted, so a second sync of an unchanged sheet plans no change at all — and sends no request.

Cells are `(sheet row, column index)`: the 1-based row as the sheet numbers it, the 0-based column (A = 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sync_pipeline.domain.fields import KEY_FIELD
from sync_pipeline.domain.sheet import HeaderReport, Rejection, a1

Cell = tuple[int, int]  # (1-based sheet row, 0-based column index)

MARKER = "[sync_pipeline]"  # the first characters of every note the sync writes, and of no other
HEADLINE = f"{MARKER} この行はデータベースに取り込まれていません。"
FOUND_PREFIX = "検出: "
FOOTER = "直すと次の同期でこのメモは消えます（このメモは同期が書いたものです）。"

# What each rule means, in the words of the people who edit the sheet; the CLI's message follows on the next line.
RULE_HEADINGS: Mapping[str, str] = {
    "required": "必須の項目が空です。",
    "seller_number_format": "売主番号の形式が正しくありません。",
    "duplicate_seller_number": "同じ売主番号が他の行にもあります。",
    "too_long": "長すぎて保存できません。",
}
DEFAULT_HEADING = "この値は読み取れません。"


@dataclass(frozen=True)
class Finding:
    """One rejection as the sheet shows it: the cell to annotate, the row's key cell, and what to say."""

    cell: Cell | None  # None: the rejection names no cell (the note goes to the key cell)
    key_cell: Cell | None  # the row's 売主番号 cell, where a finding moves when its own cell has a person's note
    label: str  # the column's header text, as the office sees it (氏名)
    rule: str
    message: str  # the rejection's message, word for word as the CLI shows it

    @property
    def where(self) -> str:
        return a1(*self.cell) if self.cell is not None else ""

    def lines(self) -> tuple[str, str]:
        place = f"{self.label}（{self.where}）" if self.where else self.label
        return f"・{place}: {RULE_HEADINGS.get(self.rule, DEFAULT_HEADING)}", f"  {self.message}"


@dataclass(frozen=True)
class NoteChange:
    """Set one cell's note to `note`; an empty `note` clears it."""

    cell: Cell
    note: str

    @property
    def a1(self) -> str:
        return a1(*self.cell)


@dataclass(frozen=True)
class FeedbackPlan:
    """The changes that bring the sheet's notes in line with the findings, and what they amount to."""

    changes: tuple[NoteChange, ...]
    written: int  # notes added or rewritten
    cleared: int  # notes of the sync removed because they no longer apply
    unchanged: int  # notes of the sync that already say the right thing
    blocked: tuple[Cell, ...]  # rejected cells left unannotated: a person's note on the cell and on its key cell
    annotated: tuple[Cell, ...]  # the cells that carry the sync's notes once the changes are made, in sheet order


def is_ours(note: str) -> bool:
    """Whether a note is one the sync wrote (and may therefore change or clear)."""
    return note.startswith(MARKER)


def note_body(note: str) -> str:
    """What a note says, without its found time: two notes with the same body need no rewrite."""
    return "\n".join(line for line in note.split("\n") if not line.startswith(FOUND_PREFIX))


def note_text(findings: Sequence[Finding], found_at: str) -> str:
    """The note for one cell: the marker headline, two lines per finding (in cell order), when, and what happens."""
    lines = [HEADLINE]
    for finding in sorted(findings, key=_order):
        lines.extend(finding.lines())
    lines += [f"{FOUND_PREFIX}{found_at}", FOOTER]
    return "\n".join(lines)


def findings_from(rejections: Iterable[Rejection], header: HeaderReport) -> tuple[Finding, ...]:
    """The findings of a sync's rejections, located with the header's column positions."""
    key_col = header.columns.get(KEY_FIELD)
    found = []
    for r in rejections:
        col = header.columns.get(r.field) if r.field is not None else None
        found.append(
            Finding(
                cell=(r.sheet_row, col) if col is not None else None,
                key_cell=(r.sheet_row, key_col) if key_col is not None else None,
                label=r.column or r.field or "",
                rule=r.rule,
                message=r.message,
            )
        )
    return tuple(found)


def plan_feedback(findings: Sequence[Finding], current: Mapping[Cell, str], *, found_at: str) -> FeedbackPlan:
    """The note changes after a sync: `current` holds the sheet's notes now (every cell with one), `found_at` the
    time to write on notes that are new or say something new."""
    people = {cell for cell, text in current.items() if text and not is_ours(text)}
    targets: dict[Cell, list[Finding]] = {}
    blocked: list[Cell] = []
    for finding in findings:
        target = _target(finding, people)
        if target is None:
            blocked.append(finding.cell or finding.key_cell or (0, 0))
        else:
            targets.setdefault(target, []).append(finding)

    changes: list[NoteChange] = []
    unchanged = 0
    for cell in sorted(targets):
        wanted = note_text(targets[cell], found_at)
        existing = current.get(cell, "")
        if existing and note_body(existing) == note_body(wanted):
            unchanged += 1  # keeps the time the finding was first noted
        else:
            changes.append(NoteChange(cell, wanted))
    written = len(changes)
    stale = sorted(cell for cell, text in current.items() if is_ours(text) and cell not in targets)
    changes += [NoteChange(cell, "") for cell in stale]
    return FeedbackPlan(
        changes=tuple(changes),
        written=written,
        cleared=len(stale),
        unchanged=unchanged,
        blocked=tuple(sorted(set(blocked))),
        annotated=tuple(sorted(targets)),
    )


def _target(finding: Finding, people: set[Cell]) -> Cell | None:
    """The finding's own cell, else its row's key cell, whichever carries no person's note."""
    for cell in (finding.cell, finding.key_cell):
        if cell is not None and cell not in people:
            return cell
    return None


def _order(finding: Finding) -> tuple[int, int, str, str]:
    row, col = finding.cell or finding.key_cell or (0, 0)
    return row, col, finding.rule, finding.message
