"""Running conformance cases: one after another, each with a deadline, a wire and a stopwatch.

Cases run in order because a VTN or VEN under test is one stateful peer (the certification
harness sequences its cases too); a case that needs earlier state (a registration) sets it up
through the peer object, so any single case also runs alone (`--only`).
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable, Sequence

from conformance.model import (
    Case,
    CaseFailed,
    CaseResult,
    CaseSkipped,
    Peer,
    Verdict,
    Wire,
    result_of,
)

DEFAULT_CASE_TIMEOUT_S = 30.0


async def run_case(case: Case[Peer], peer: Peer, timeout_s: float) -> CaseResult:
    wire = Wire()
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            await case.run(peer, wire)
    except CaseFailed as failed:
        verdict, reason = Verdict.FAIL, str(failed)
    except CaseSkipped as skipped:
        verdict, reason = Verdict.SKIP, str(skipped)
    except TimeoutError:
        verdict, reason = Verdict.FAIL, f"no conclusion within {timeout_s:.0f} s"
    except Exception as exc:  # a peer that breaks the harness's expectations fails the case
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        verdict, reason = Verdict.FAIL, f"unexpected error: {last}"
    else:
        verdict, reason = Verdict.PASS, ""
    return result_of(case, verdict, reason, time.monotonic() - started, wire)


async def run_cases(
    cases: Sequence[Case[Peer]],
    peer: Peer,
    *,
    timeout_s: float = DEFAULT_CASE_TIMEOUT_S,
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    results: list[CaseResult] = []
    for case in cases:
        result = await run_case(case, peer, timeout_s)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
