"""Running a case: each way a case can end becomes its verdict, with the reason and the wire."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from conformance.model import Case, Exchange, Group, Verdict, Wire, check, select, skip
from conformance.runner import run_case, run_cases


async def _passes(peer: None, wire: Wire) -> None:
    wire.record(Exchange(datetime.now(UTC), "ven", "OadrPoll", "<a/>", "<b/>", 200))


async def _fails(peer: None, wire: Wire) -> None:
    wire.note("asked the hook")
    check(wire.exchanges, "the VTN said 452")


async def _skips(peer: None, wire: Wire) -> None:
    skip("needs a second VEN identity")


async def _hangs(peer: None, wire: Wire) -> None:
    await asyncio.sleep(10)


async def _crashes(peer: None, wire: Wire) -> None:
    raise KeyError("venID")


def make_case(run: object, group: Group = Group.REGISTRATION) -> Case[None]:
    return Case("X-01", ("N1_0010",), "title", "clause", group, run)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("run", "verdict", "reason"),
    [
        (_passes, Verdict.PASS, ""),
        (_fails, Verdict.FAIL, "the VTN said 452"),
        (_skips, Verdict.SKIP, "needs a second VEN identity"),
        (_hangs, Verdict.FAIL, "no conclusion within 0 s"),
        (_crashes, Verdict.FAIL, "unexpected error: KeyError: 'venID'"),
    ],
    ids=["pass", "fail", "skip", "timeout", "crash"],
)
async def test_a_case_ends_in_its_verdict(run: object, verdict: Verdict, reason: str) -> None:
    result = await run_case(make_case(run), None, timeout_s=0.05)
    assert (result.verdict, result.reason) == (verdict, reason)
    assert result.duration_s >= 0


async def test_the_wire_and_notes_travel_with_the_result() -> None:
    passed = await run_case(make_case(_passes), None, timeout_s=1)
    failed = await run_case(make_case(_fails), None, timeout_s=1)
    assert [x.service for x in passed.exchanges] == ["OadrPoll"]
    assert failed.notes == ("asked the hook",)


async def test_cases_run_in_order_and_report_as_they_finish() -> None:
    seen: list[Verdict] = []
    cases = [make_case(_passes), make_case(_skips), make_case(_fails)]
    results = await run_cases(cases, None, timeout_s=1, on_result=lambda r: seen.append(r.verdict))
    assert seen == [r.verdict for r in results] == [Verdict.PASS, Verdict.SKIP, Verdict.FAIL]


def test_only_the_chosen_groups_are_selected() -> None:
    cases = [make_case(_passes, Group.EVENTS), make_case(_passes, Group.SECURITY)]
    assert select(cases, None) == cases
    assert select(cases, frozenset({Group.SECURITY})) == cases[1:]
