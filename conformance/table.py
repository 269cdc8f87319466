"""The comparison table of docs/conformance.md: case by case, our parts against OpenLEADR's.

    FLEX4GRID_CONFORMANCE_RESULTS=/tmp/conformance .venv/bin/python -m pytest \
        tests/integration/test_conformance_ours.py tests/interop/test_conformance_openleadr.py
    .venv/bin/python -m conformance.table /tmp/conformance --update docs/conformance.md

The tests write one JSON file of verdicts per run (`report.results_json`); this module turns
them into one Markdown table per suite and replaces the text between the `<!-- table -->`
and `<!-- /table -->` markers of the document.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from conformance.model import Case

BEGIN, END = "<!-- table -->", "<!-- /table -->"
_MARK = {"pass": "pass", "fail": "**FAIL**", "skip": "skip"}
RUNS = {  # file stem -> column title, per suite
    "vtn": {"ours-vtn": "Flex4Grid VTN", "openleadr-vtn": "OpenLEADR VTN"},
    "ven": {"ours-ven": "Flex4Grid VEN", "openleadr-ven": "OpenLEADR VEN"},
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(
    cases: Sequence[Case[Any]], columns: Mapping[str, Mapping[str, dict[str, str]]]
) -> str:
    """One row per case; a column per run: its verdict, and for a fail or skip the reason."""
    titles = list(columns)
    lines = [
        "| case | test plan | title | " + " | ".join(titles) + " |",
        "|---|---|---|" + "---|" * len(titles),
    ]
    for case in cases:
        cells = []
        for title in titles:
            row = columns[title].get(case.case_id)
            if row is None:
                cells.append("–")
                continue
            reason = f": {_cell(row['reason'])}" if row["reason"] else ""
            cells.append(_MARK[row["verdict"]] + reason)
        lines.append(
            f"| {case.case_id} | {' '.join(case.plan_ids)} | {_cell(case.title)} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def tables(directory: Path) -> str:
    from conformance.ven_cases import CASES as VEN_CASES
    from conformance.vtn_suite import CASES as VTN_CASES

    parts = []
    for suite, cases in (("vtn", VTN_CASES), ("ven", VEN_CASES)):
        columns: dict[str, dict[str, dict[str, str]]] = {}
        for stem, title in RUNS[suite].items():
            path = directory / f"{stem}.json"
            if path.exists():
                columns[title] = {row["case_id"]: row for row in json.loads(path.read_text())}
        heading = (
            "VTN cases (the harness plays the VENs)"
            if suite == "vtn"
            else ("VEN cases (the scripted test VTN grades the VEN)")
        )
        parts.append(f"### {heading}\n\n{markdown(cases, columns)}")
    return "\n\n".join(parts)


def update(document: str, table: str) -> str:
    head, rest = document.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table}\n{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.table")
    parser.add_argument("results", type=Path, help="directory of the runs' JSON verdicts")
    parser.add_argument("--update", type=Path, metavar="DOC.md", help="rewrite its table")
    args = parser.parse_args(argv)
    table = tables(args.results)
    if args.update:
        args.update.write_text(update(args.update.read_text(), table))
    else:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
