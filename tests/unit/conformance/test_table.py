"""The docs table: a row per case, a column per run, reasons for fails and skips, and the
document's table replaced between its markers only."""

from __future__ import annotations

from conformance.model import Case, Group
from conformance.table import BEGIN, END, markdown, update


async def _run(peer: None, wire: object) -> None:
    return None


CASES: list[Case[None]] = [
    Case("VTN-A", ("N1_0010",), "Query", "c", Group.REGISTRATION, _run),
    Case("VTN-B", ("E1_1020",), "Event | price", "c", Group.EVENTS, _run),
]


def test_a_row_per_case_and_a_column_per_run() -> None:
    table = markdown(
        CASES,
        {
            "ours": {"VTN-A": {"verdict": "pass", "reason": ""},
                     "VTN-B": {"verdict": "pass", "reason": ""}},
            "theirs": {"VTN-A": {"verdict": "fail", "reason": "no venID"}},
        },
    )  # fmt: skip
    lines = table.splitlines()
    assert lines[0] == "| case | test plan | title | ours | theirs |"
    assert lines[2] == "| VTN-A | N1_0010 | Query | pass | **FAIL**: no venID |"
    assert lines[3] == "| VTN-B | E1_1020 | Event \\| price | pass | – |"


def test_update_replaces_only_the_marked_table() -> None:
    document = f"intro\n{BEGIN}\nold\n{END}\noutro\n"
    assert update(document, "new") == f"intro\n{BEGIN}\nnew\n{END}\noutro\n"
