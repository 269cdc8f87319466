"""A flex request moves open → closed → cleared → dispatched → measured → settled (or cancelled)."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest

from market import lifecycle
from market.errors import InvalidTransition
from market.model import RequestStatus as S
from tests.factories import HOUR, NOW, make_flex_request

FORWARD = [
    (S.OPEN, S.CLOSED),
    (S.CLOSED, S.CLEARED),
    (S.CLEARED, S.DISPATCHED),
    (S.DISPATCHED, S.MEASURED),
    (S.MEASURED, S.SETTLED),
    (S.OPEN, S.CANCELLED),
    (S.CLOSED, S.CANCELLED),
]


@pytest.mark.parametrize(("frm", "to"), FORWARD, ids=[f"{a}->{b}" for a, b in FORWARD])
def test_each_listed_step_is_allowed(frm: S, to: S) -> None:
    assert lifecycle.advance(frm, to) is to


UNLISTED = [pair for pair in itertools.product(S, S) if pair not in FORWARD]


@pytest.mark.parametrize(("frm", "to"), UNLISTED, ids=[f"{a}->{b}" for a, b in UNLISTED])
def test_every_other_step_is_refused_with_409(frm: S, to: S) -> None:
    with pytest.raises(InvalidTransition) as caught:
        lifecycle.advance(frm, to)
    assert caught.value.status == 409
    assert frm.value in caught.value.message and to.value in caught.value.message


def test_the_full_life_walks_through_every_step_in_order() -> None:
    status = S.OPEN
    for to in (S.CLOSED, S.CLEARED, S.DISPATCHED, S.MEASURED, S.SETTLED):
        status = lifecycle.advance(status, to)
    assert status is S.SETTLED
    assert lifecycle.allowed(S.SETTLED) == frozenset()


def test_no_step_can_be_skipped_or_undone() -> None:
    with pytest.raises(InvalidTransition):
        lifecycle.advance(S.OPEN, S.CLEARED)
    with pytest.raises(InvalidTransition):
        lifecycle.advance(S.CLEARED, S.OPEN)
    with pytest.raises(InvalidTransition, match="cancelled"):
        lifecycle.advance(S.CLEARED, S.CANCELLED)  # awards exist: too late to withdraw


@pytest.mark.parametrize(
    ("now", "closed"),
    [(NOW, False), (NOW + HOUR - HOUR / 3600, False), (NOW + HOUR, True), (NOW + 2 * HOUR, True)],
    ids=["well-before", "a-second-before", "at-gate-closure", "after"],
)
def test_the_gate_is_shut_from_the_closure_instant(now: datetime, closed: bool) -> None:
    request = make_flex_request(gate_closure=NOW + HOUR)
    assert lifecycle.is_gate_closed(request, now) is closed
