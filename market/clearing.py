"""Clearing a flex request at gate closure: merit order per ISP block (issue 8, USEF FlexOrder).

Pure: the request, its bids, the clearing instant (and optionally the nodes) go in; awards, the
per-block clearing prices and the rejected bids with their reasons come out.

Rules (our readings of issue 8, where USEF leaves the choice to the market):

- Only the latest revision of each bid id counts (highest `revision`, then latest
  `submitted_at`); earlier revisions are superseded, not rejected, and are not listed.
- A bid is rejected, with its reason, if it is for another request, was submitted at or after
  gate closure, has expired (`valid_until` before the clearing instant), is priced above the cap,
  has a block count other than the request's, a negative volume or no volume at all, or (when
  `nodes` is given) comes from a node that is unknown or not under the request's congestion point.
- Merit order: cheapest first; equal prices go to the earlier `submitted_at`, then the smaller
  bid id, so the result never depends on the order bids are passed in. A bid's price applies to
  all its blocks, so one global order is the merit order of every block.
- A divisible bid takes `min(offered, remaining need)` in each block independently.
- An all-or-nothing bid is accepted whole (every block it offers) only if it fits the remaining
  need in *every* block; otherwise it is skipped and cheaper-to-pricier order continues with the
  next bid. So no block is ever awarded more than the DSO asked for, and an AON bid never pushes
  a block over its need. (We chose this strict rule over letting AON bids overshoot: the DSO pays
  for energy, and energy it did not ask for is a cost without a congestion benefit.)
- A block's clearing price is the highest price among bids awarded a non-zero volume in it (the
  marginal accepted price); None if nothing was awarded there.
- Pay-as-bid: an award is paid its bid price. Pay-as-clear: an award spanning several blocks is
  paid the mean of its blocks' clearing prices weighted by its awarded kW in each block,
  quantized to `PRICE_QUANTUM` with ROUND_HALF_EVEN (never above the cap: every clearing price
  is an accepted bid price ≤ cap on the 0.0001 grid, and the mean of grid values cannot round
  above their maximum).
- activation factor = awarded kWh / offered kWh (the block length cancels), rounded *up* to
  `FACTOR_QUANTUM` so a non-zero award never shows a factor of 0; it stays ≤ 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, ROUND_UP, Decimal
from typing import Final

from market.errors import BidRefused
from market.lifecycle import is_gate_closed
from market.model import (
    KW_QUANTUM,
    PRICE_QUANTUM,
    Award,
    Bid,
    BidId,
    FlexRequest,
    NodeId,
    Pricing,
    RequestStatus,
    VirtualEndNode,
)

FACTOR_QUANTUM: Final = Decimal("0.000001")
ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Clearing:
    """The outcome of clearing one request."""

    awards: tuple[Award, ...]  # in merit order
    clearing_price_eur_per_kwh: tuple[Decimal | None, ...]  # per block; None: nothing bought
    rejected: tuple[tuple[BidId, str], ...]  # (bid, reason): ineligible by id, then merit order

    def awarded_kw(self, block: int) -> Decimal:
        """Total kW bought in one block."""
        return sum((a.awarded_kw[block] for a in self.awards), ZERO)


def merit_key(bid: Bid) -> tuple[Decimal, datetime, str]:
    """Cheapest first; ties to the earlier submission, then the smaller bid id."""
    return (bid.price_eur_per_kwh, bid.submitted_at, bid.bid_id)


def latest_revisions(bids: Sequence[Bid]) -> list[Bid]:
    """The latest revision of each bid id (highest revision, then latest submission)."""
    latest: dict[BidId, Bid] = {}
    for bid in bids:
        seen = latest.get(bid.bid_id)
        if seen is None or (bid.revision, bid.submitted_at) > (seen.revision, seen.submitted_at):
            latest[bid.bid_id] = bid
    return list(latest.values())


def _has_places(value: Decimal, quantum: Decimal) -> bool:
    """True if `value` is finite and exact on the grid of `quantum` (value, not notation)."""
    return value.is_finite() and value == value.quantize(quantum)


def validate_bid(request: FlexRequest, bid: Bid, node: VirtualEndNode, now: datetime) -> None:
    """Refuse a bid the market must not store: raises `BidRefused(reason)`, returns None if fine.

    The service calls this before storing anything, so a refused bid changes nothing.
    """
    if is_gate_closed(request, now):
        raise BidRefused(
            f"gate closure for request {request.request_id} was {request.gate_closure.isoformat()}"
        )
    if request.status is not RequestStatus.OPEN:
        raise BidRefused(f"request {request.request_id} is {request.status.value}, not open")
    if bid.request_id != request.request_id:
        raise BidRefused(f"bid is for request {bid.request_id}, not {request.request_id}")
    if bid.node_id != node.node_id:
        raise BidRefused(f"bid names node {bid.node_id} but node {node.node_id} was given")
    if node.point_id != request.point_id:
        raise BidRefused(f"node {node.node_id} is not under congestion point {request.point_id}")
    if node.aggregator_id != bid.aggregator_id:
        raise BidRefused(f"node {node.node_id} belongs to another aggregator")
    _check_volumes(request, bid)
    _check_price(request, bid)
    if bid.valid_until < request.end:
        raise BidRefused(
            f"bid valid until {bid.valid_until.isoformat()}, "
            f"before the request ends at {request.end.isoformat()}"
        )


def _check_volumes(request: FlexRequest, bid: Bid) -> None:
    if len(bid.offered_kw) != len(request.needed_kw):
        raise BidRefused(
            f"bid has {len(bid.offered_kw)} blocks, request has {len(request.needed_kw)}"
        )
    for block, kw in enumerate(bid.offered_kw):
        if not kw.is_finite():
            raise BidRefused(f"volume in block {block} is not a number")
        if kw < 0:
            raise BidRefused(f"negative volume {kw} kW in block {block}")
        if not _has_places(kw, KW_QUANTUM):
            raise BidRefused(f"volume {kw} kW in block {block} has more than 3 decimals")
    if all(kw == 0 for kw in bid.offered_kw):
        raise BidRefused("bid offers no volume in any block")


def _check_price(request: FlexRequest, bid: Bid) -> None:
    price = bid.price_eur_per_kwh
    if not price.is_finite():
        raise BidRefused("price is not a number")
    if price < 0:
        raise BidRefused(f"negative price {price} EUR/kWh")
    if not _has_places(price, PRICE_QUANTUM):
        raise BidRefused(f"price {price} EUR/kWh has more than 4 decimals")
    if price > request.price_cap_eur_per_kwh:
        raise BidRefused(
            f"price {price} EUR/kWh is above the cap {request.price_cap_eur_per_kwh} EUR/kWh"
        )


def rejection(
    request: FlexRequest,
    bid: Bid,
    now: datetime,
    nodes: Mapping[NodeId, VirtualEndNode] | None = None,
) -> str | None:
    """Why `bid` cannot take part in clearing `request` at `now`, or None if it can."""
    if bid.request_id != request.request_id:
        return f"bid is for request {bid.request_id}, not {request.request_id}"
    if bid.submitted_at >= request.gate_closure:
        return "submitted after gate closure"
    if bid.valid_until < now:
        return f"expired at {bid.valid_until.isoformat()}"
    if nodes is not None:
        node = nodes.get(bid.node_id)
        if node is None:
            return f"unknown node {bid.node_id}"
        if node.point_id != request.point_id:
            return f"node {bid.node_id} is not under congestion point {request.point_id}"
    if not bid.price_eur_per_kwh.is_finite() or bid.price_eur_per_kwh < 0:
        return "invalid price"
    if bid.price_eur_per_kwh > request.price_cap_eur_per_kwh:
        return "price above the cap"
    if len(bid.offered_kw) != len(request.needed_kw):
        return f"bid has {len(bid.offered_kw)} blocks, request has {len(request.needed_kw)}"
    if not all(kw.is_finite() for kw in bid.offered_kw):
        return "invalid volume"
    if any(kw < 0 for kw in bid.offered_kw):
        return "negative volume"
    if all(kw == 0 for kw in bid.offered_kw):
        return "no volume offered"
    return None


def clear(
    request: FlexRequest,
    bids: Sequence[Bid],
    now: datetime,
    *,
    nodes: Mapping[NodeId, VirtualEndNode] | None = None,
) -> Clearing:
    """Clear `request` with `bids` at `now` by the rules in this module's docstring."""
    rejected: list[tuple[BidId, str]] = []
    eligible: list[Bid] = []
    # Eligibility first, merit order after: a NaN price must be rejected, not compared.
    for bid in sorted(latest_revisions(bids), key=lambda b: b.bid_id):
        reason = rejection(request, bid, now, nodes)
        if reason is None:
            eligible.append(bid)
        else:
            rejected.append((bid.bid_id, reason))

    eligible.sort(key=merit_key)
    remaining = [max(kw, ZERO) for kw in request.needed_kw]
    taken: list[tuple[Bid, tuple[Decimal, ...]]] = []
    for bid in eligible:
        take = _take(bid, remaining)
        if isinstance(take, str):
            rejected.append((bid.bid_id, take))
            continue
        remaining = [left - kw for left, kw in zip(remaining, take, strict=True)]
        taken.append((bid, take))

    prices = _clearing_prices(len(request.needed_kw), taken)
    awards = tuple(
        Award(
            request_id=request.request_id,
            bid_id=bid.bid_id,
            node_id=bid.node_id,
            aggregator_id=bid.aggregator_id,
            awarded_kw=take,
            price_eur_per_kwh=_award_price(request.pricing, bid, take, prices),
            activation_factor=_activation_factor(bid.offered_kw, take),
        )
        for bid, take in taken
    )
    return Clearing(awards=awards, clearing_price_eur_per_kwh=prices, rejected=tuple(rejected))


def _take(bid: Bid, remaining: Sequence[Decimal]) -> tuple[Decimal, ...] | str:
    """What `bid` gets from the `remaining` need per block, or why it gets nothing."""
    if bid.divisible:
        take = tuple(
            min(offer, left) for offer, left in zip(bid.offered_kw, remaining, strict=True)
        )
        if all(kw == 0 for kw in take):
            return "no remaining need in the blocks it offers"
        return take
    for block, (offer, left) in enumerate(zip(bid.offered_kw, remaining, strict=True)):
        if offer > left:
            return f"all-or-nothing bid exceeds the remaining need in block {block}"
    return bid.offered_kw


def _clearing_prices(
    blocks: int, taken: Sequence[tuple[Bid, tuple[Decimal, ...]]]
) -> tuple[Decimal | None, ...]:
    prices: list[Decimal | None] = [None] * blocks
    for bid, take in taken:
        for i, kw in enumerate(take):
            current = prices[i]
            if kw > 0 and (current is None or bid.price_eur_per_kwh > current):
                prices[i] = bid.price_eur_per_kwh
    return tuple(prices)


def _award_price(
    pricing: Pricing,
    bid: Bid,
    take: tuple[Decimal, ...],
    prices: tuple[Decimal | None, ...],
) -> Decimal:
    if pricing is Pricing.PAY_AS_BID:
        return bid.price_eur_per_kwh
    weighted = ZERO
    total_kw = ZERO
    for kw, price in zip(take, prices, strict=True):
        if kw > 0 and price is not None:  # price is set wherever this award took volume
            weighted += kw * price
            total_kw += kw
    return (weighted / total_kw).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_EVEN)


def _activation_factor(offered: tuple[Decimal, ...], take: tuple[Decimal, ...]) -> Decimal:
    offered_kw = sum(offered, ZERO)
    factor = (sum(take, ZERO) / offered_kw).quantize(FACTOR_QUANTUM, rounding=ROUND_UP)
    return min(factor, Decimal(1))
