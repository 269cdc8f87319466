"""Conformance cases and their verdicts: what a case is, what it recorded, how it ended.

A `Case` names the certification test-plan entry it follows (OPENADR-2.0b-TESTPLAN.md: N
registration, E events, P opt, R reports, G general/security; `1` = HTTP pull), the spec clause
it checks, and a coroutine that drives the peer. The coroutine talks to the peer only through
objects that write every message into a `Wire`, so a failing case can show what was exchanged.
It ends by returning (pass), raising `CaseFailed` (fail, with the reason) or `CaseSkipped`
(skip, saying what the peer or the operator must provide). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, NoReturn, TypeVar

Peer = TypeVar("Peer")


class Group(StrEnum):
    """The test plan's groups, in the order a run reports them."""

    REGISTRATION = "registration"
    EVENTS = "events"
    REPORTS = "reports"
    OPT = "opt"
    POLL = "poll"
    SECURITY = "security"


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


class CaseFailed(Exception):
    """The peer did something the clause does not allow, or not what it requires."""


class CaseSkipped(Exception):
    """The case cannot run here; the message says what the peer or operator must provide."""


def check(condition: object, reason: str) -> None:
    """Fail the running case with `reason` unless `condition` holds."""
    if not condition:
        raise CaseFailed(reason)


def fail(reason: str) -> NoReturn:
    raise CaseFailed(reason)


def skip(reason: str) -> NoReturn:
    raise CaseSkipped(reason)


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP exchange on the wire: who sent it, where, the body, and the reply.

    `request`/`reply` are the bodies as text (XML, or a TLS/HTTP error note); `status` is the
    HTTP status, None when no HTTP reply came (a refused handshake, a timeout).
    """

    at: datetime
    sender: str  # "ven" or "vtn" (and which one, e.g. "ven[1]")
    service: str
    request: str
    reply: str
    status: int | None


@dataclass
class Wire:
    """Everything exchanged while one case runs, in order."""

    exchanges: list[Exchange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def record(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)

    def note(self, text: str) -> None:
        """A line for the report that is not a message (what the harness asked a hook to do)."""
        self.notes.append(text)


@dataclass(frozen=True, slots=True)
class Case(Generic[Peer]):
    """One conformance case: `run(peer, wire)` drives the peer and raises on failure."""

    case_id: str  # ours, e.g. "VTN-REG-01"
    plan_ids: tuple[str, ...]  # the test plan's ids it follows, e.g. ("N1_0010",)
    title: str
    clause: str  # what it checks, in the spec's or the test plan's words
    group: Group
    run: Callable[[Peer, Wire], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CaseResult:
    case_id: str
    plan_ids: tuple[str, ...]
    title: str
    clause: str
    group: Group
    verdict: Verdict
    reason: str
    duration_s: float
    exchanges: tuple[Exchange, ...] = ()
    notes: tuple[str, ...] = ()


def result_of(
    case: Case[Peer], verdict: Verdict, reason: str, duration_s: float, wire: Wire
) -> CaseResult:
    return CaseResult(
        case_id=case.case_id,
        plan_ids=case.plan_ids,
        title=case.title,
        clause=case.clause,
        group=case.group,
        verdict=verdict,
        reason=reason,
        duration_s=duration_s,
        exchanges=tuple(wire.exchanges),
        notes=tuple(wire.notes),
    )


@dataclass(frozen=True, slots=True)
class Summary:
    passed: int
    failed: int
    skipped: int

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped


def summarize(results: list[CaseResult]) -> Summary:
    return Summary(
        passed=sum(r.verdict is Verdict.PASS for r in results),
        failed=sum(r.verdict is Verdict.FAIL for r in results),
        skipped=sum(r.verdict is Verdict.SKIP for r in results),
    )


def select(cases: list[Case[Peer]], groups: frozenset[Group] | None) -> list[Case[Peer]]:
    """The cases of the chosen groups (all when None), in their given order."""
    return [c for c in cases if groups is None or c.group in groups]
