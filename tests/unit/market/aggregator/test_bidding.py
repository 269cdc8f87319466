"""Bidding: what a node offers per ISP block, never more than its members can give."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from market.aggregator import bidding
from market.aggregator.bidding import MemberOffer, Strategy
from market.model import NodeId
from tests.factories import make_flex_request

D = Decimal
NODE = NodeId("node-1")
FLOOR = Strategy(price_floor_eur_per_kwh=D("0.10"))


def offer(member: str, kw: str, minutes: int = 120) -> MemberOffer:
    return MemberOffer(member=member, available_kw=D(kw), max_shift=timedelta(minutes=minutes))


def test_the_node_offers_its_members_sum_derated_and_capped_by_the_need() -> None:
    request = make_flex_request(needed_kw=(D(10), D(3), D(10), D(10)))
    plan = bidding.bid(request, NODE, [offer("a", "4"), offer("b", "4.5")], FLOOR)
    assert plan is not None
    # 8.5 kW x 0.9 = 7.65, except where the DSO needs only 3.
    assert plan.offered_kw == (D("7.650"), D("3.000"), D("7.650"), D("7.650"))
    assert plan.divisible and plan.valid_until == request.end
    assert plan.node_id == NODE


def test_a_member_gives_only_within_its_max_shift() -> None:
    request = make_flex_request()  # four 15-minute blocks
    plan = bidding.bid(request, NODE, [offer("a", "10"), offer("b", "10", minutes=30)], FLOOR)
    assert plan is not None
    assert plan.offered_kw == (D("10.000"), D("10.000"), D("9.000"), D("9.000"))


def test_offers_are_rounded_down_to_the_watt() -> None:
    request = make_flex_request(needed_kw=(D(100),))
    plan = bidding.bid(request, NODE, [offer("a", "1.23456")], FLOOR)
    assert plan is not None and plan.offered_kw == (D("1.111"),)


@pytest.mark.parametrize(
    ("cap", "floor", "price"),
    [("0.5", "0.10", "0.45"), ("0.5", "0.48", "0.48"), ("0.5", "0.5", "0.5"),
     ("0.3333", "0.1", "0.2999")],
    ids=["share-of-cap", "floor-above-share", "floor-at-cap", "rounded-down"],
)  # fmt: skip
def test_the_price_is_a_share_of_the_cap_never_below_the_floor(
    cap: str, floor: str, price: str
) -> None:
    request = make_flex_request(price_cap_eur_per_kwh=D(cap))
    plan = bidding.bid(request, NODE, [offer("a", "5")], Strategy(price_floor_eur_per_kwh=D(floor)))
    assert plan is not None and plan.price_eur_per_kwh == D(price)


def test_no_bid_when_the_floor_is_above_the_cap() -> None:
    request = make_flex_request(price_cap_eur_per_kwh=D("0.05"))
    assert bidding.bid(request, NODE, [offer("a", "5")], FLOOR) is None


def test_no_bid_when_members_have_nothing_to_give() -> None:
    request = make_flex_request()
    assert bidding.bid(request, NODE, [offer("a", "0"), offer("b", "-2")], FLOOR) is None
    assert bidding.bid(request, NODE, [], FLOOR) is None


@pytest.mark.parametrize(
    "changes",
    [{"price_floor_eur_per_kwh": D(-1)}, {"derating": D(0)}, {"price_share_of_cap": D("1.1")}],
    ids=["negative-floor", "zero-derating", "share-above-one"],
)
def test_a_strategy_that_cannot_work_is_refused(changes: dict[str, Decimal]) -> None:
    with pytest.raises(ValueError):
        replace(FLOOR, **changes)
