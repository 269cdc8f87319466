"""Bidding: what a node can offer on a flex request, and at what price (issue 9).

Pure. For each ISP block of a `FlexRequest` the node offers what its members can give then,
summed, and never more than that (a bid is a promise the members must keep):

- A member gives `available_kw` (from its devices and recent telemetry, see
  `disaggregation.member_available_kw`) for at most its preference `max_shift` from the start
  of the request; in blocks that start later it gives nothing (it would refuse such an event).
- The node offers `derating` (default 0.9) of the members' sum: metering noise and a member
  changing its mind must not make it under-deliver. It never offers more than the DSO needs in
  a block (the clearing would not take more), and rounds down to the market's 1 W quantum.
- Price: `price_share_of_cap` (default 0.9) of the DSO's price cap, but never below the
  aggregator's `price_floor_eur_per_kwh` (what the members are promised per kWh). When the
  floor is above the cap, or the node has nothing to offer, there is no bid.
- Bids are divisible (the members' shares scale), valid until the request's end (the market
  refuses a bid that lapses before the flexibility is delivered).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from market.model import KW_QUANTUM, PRICE_QUANTUM, FlexRequest, NodeId


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberOffer:
    """What one member of the node can give, and for how long it accepts to."""

    member: str
    available_kw: Decimal
    max_shift: timedelta = timedelta(hours=2)


@dataclass(frozen=True, slots=True, kw_only=True)
class Strategy:
    price_floor_eur_per_kwh: Decimal
    price_share_of_cap: Decimal = Decimal("0.9")
    derating: Decimal = Decimal("0.9")

    def __post_init__(self) -> None:
        if self.price_floor_eur_per_kwh < 0:
            raise ValueError("the price floor must not be negative")
        for name in ("price_share_of_cap", "derating"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be within (0, 1]")


@dataclass(frozen=True, slots=True, kw_only=True)
class BidPlan:
    """A bid to submit (market/http BidSubmit) for one node."""

    node_id: NodeId
    offered_kw: tuple[Decimal, ...]
    price_eur_per_kwh: Decimal
    divisible: bool
    valid_until: datetime


def available_per_block(request: FlexRequest, members: Sequence[MemberOffer]) -> list[Decimal]:
    """The members' sum in each block, each member only while within its `max_shift`."""
    totals = []
    for index in range(len(request.needed_kw)):
        block_end = request.block_start(index) + request.isp
        totals.append(
            sum(
                (
                    max(Decimal(0), m.available_kw)
                    for m in members
                    if block_end - request.start <= m.max_shift
                ),
                Decimal(0),
            )
        )
    return totals


def price(request: FlexRequest, strategy: Strategy) -> Decimal | None:
    """The bid price, or None when the floor is above the DSO's cap (module docstring)."""
    if strategy.price_floor_eur_per_kwh > request.price_cap_eur_per_kwh:
        return None
    asked = (request.price_cap_eur_per_kwh * strategy.price_share_of_cap).quantize(
        PRICE_QUANTUM, rounding=ROUND_DOWN
    )
    return max(strategy.price_floor_eur_per_kwh, asked)


def bid(
    request: FlexRequest, node_id: NodeId, members: Sequence[MemberOffer], strategy: Strategy
) -> BidPlan | None:
    """The node's bid on `request`, or None when it has nothing to offer at an acceptable price."""
    at = price(request, strategy)
    if at is None:
        return None
    offered = tuple(
        min(needed, available * strategy.derating).quantize(KW_QUANTUM, rounding=ROUND_DOWN)
        for needed, available in zip(
            request.needed_kw, available_per_block(request, members), strict=True
        )
    )
    offered = tuple(max(Decimal(0), kw) for kw in offered)
    if not any(kw > 0 for kw in offered):
        return None
    return BidPlan(
        node_id=node_id,
        offered_kw=offered,
        price_eur_per_kwh=at,
        divisible=True,
        valid_until=request.end,
    )
