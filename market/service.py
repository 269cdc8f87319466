"""The market's trading steps (issue 8): a flex request moves open → closed → cleared →
dispatched → measured → settled, and every step is stored and audited (measuring is
`market.measurement`).

Each step loads, decides with the pure modules (`market.clearing`, `market.lifecycle`,
`market.settlement`), saves and commits in one VTN transaction, so a reply never acknowledges
something a crash could lose; refused input raises before anything is written, so it changes
nothing. Dispatch goes through the VTN's own event service (`market.dispatch`). `due` and
`next_gate_closure` are what the gate-closure task (`market.gate`) asks each round.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from market import clearing, dispatch, lifecycle, settlement
from market.accounts import Actor, audit, owned_node
from market.errors import Conflict, Forbidden, MarketError, NotFound
from market.model import (
    KW_QUANTUM,
    PRICE_QUANTUM,
    Bid,
    FlexRequest,
    RequestId,
    RequestStatus,
)
from market.store import Market, StatusChange, StoredAward
from vtn.services import operator
from vtn.services.context import Context
from vtn.store.db import Store

_S = RequestStatus


def _on_grid(value: Decimal, quantum: Decimal) -> bool:
    return value.is_finite() and value == value.quantize(quantum)


def check_request(request: FlexRequest, now: datetime) -> None:
    """What a DSO's flex request must satisfy before it is published (else 400 with why)."""
    if not request.needed_kw:
        raise MarketError("a flex request needs at least one block")
    if request.isp <= timedelta(0) or timedelta(days=1) % request.isp:
        raise MarketError(f"the ISP {request.isp} must divide a day")
    for index, kw in enumerate(request.needed_kw):
        if kw < 0 or not _on_grid(kw, KW_QUANTUM):
            raise MarketError(f"block {index}: needed_kw {kw} must be >= 0 with at most 3 decimals")
    if not any(kw > 0 for kw in request.needed_kw):
        raise MarketError("a flex request needs some kW in at least one block")
    cap = request.price_cap_eur_per_kwh
    if cap <= 0 or not _on_grid(cap, PRICE_QUANTUM):
        raise MarketError(f"price cap {cap} must be positive with at most 4 decimals")
    if request.gate_closure <= now:
        raise MarketError(f"gate closure {request.gate_closure.isoformat()} is not in the future")
    if request.gate_closure > request.start:
        raise MarketError("gate closure must be at or before the first block starts")


async def load_request(market: Market, request_id: str, *, for_update: bool = False) -> FlexRequest:
    request = await market.requests.get(request_id, for_update=for_update)
    if request is None:
        raise NotFound(f"no flex request {request_id!r}")
    return request


async def advance(
    market: Market, request: FlexRequest, to: RequestStatus, actor: Actor, now: datetime
) -> FlexRequest:
    status = lifecycle.advance(request.status, to)
    await market.requests.set_status(request.request_id, status, actor.name, now)
    await audit(market, actor, f"market.request.{status.value}", request.request_id, now)
    return dataclasses.replace(request, status=status)


# --- requests -------------------------------------------------------------------------------------


async def create_request(
    store: Store, request: FlexRequest, *, actor: Actor, now: datetime
) -> FlexRequest:
    actor.require_dso("publish flex requests")
    request = dataclasses.replace(request, status=_S.OPEN, created_at=now)
    check_request(request, now)
    async with store.transaction() as tx:
        market = Market.on(tx)
        if await market.grid.point(request.point_id) is None:
            raise NotFound(f"no congestion point {request.point_id!r}")
        if await market.requests.get(request.request_id) is not None:
            raise Conflict(f"flex request {request.request_id!r} already exists")
        await market.requests.add(request, actor.name)
        await audit(market, actor, "market.request.open", request.request_id, now,
                    point_id=request.point_id,
                    needed_kw=[str(kw) for kw in request.needed_kw],
                    price_cap_eur_per_kwh=str(request.price_cap_eur_per_kwh),
                    gate_closure=request.gate_closure.isoformat())  # fmt: skip
    return request


async def requests(
    store: Store, *, status: RequestStatus | None = None, offset: int = 0, limit: int = 100
) -> list[FlexRequest]:
    """Flex requests are the DSO's public call for flexibility: every account sees them."""
    async with store.transaction() as tx:
        return await Market.on(tx).requests.page(status=status, offset=offset, limit=limit)


async def request_detail(store: Store, request_id: str) -> tuple[FlexRequest, list[StatusChange]]:
    async with store.transaction() as tx:
        market = Market.on(tx)
        request = await load_request(market, request_id)
        return request, await market.requests.history(request_id)


# --- bids -----------------------------------------------------------------------------------------


async def submit_bid(store: Store, bid: Bid, *, actor: Actor, now: datetime) -> Bid:
    """Submit a bid, or revise it (same bid id, revision + 1) until gate closure."""
    async with store.transaction() as tx:
        market = Market.on(tx)
        request = await load_request(market, bid.request_id)
        node = await owned_node(market, bid.node_id, actor)
        bid = dataclasses.replace(bid, aggregator_id=node.aggregator_id, submitted_at=now)
        previous = await market.bids.latest(bid.bid_id)
        if previous is not None:
            if not actor.may_see(previous.aggregator_id):
                raise Forbidden(f"bid {bid.bid_id!r} belongs to another aggregator")
            if (previous.request_id, previous.node_id) != (bid.request_id, bid.node_id):
                raise Conflict(
                    f"bid {bid.bid_id!r} is for request {previous.request_id!r} from node "
                    f"{previous.node_id!r}; a revision cannot move it"
                )
            bid = dataclasses.replace(bid, revision=previous.revision + 1)
        else:
            bid = dataclasses.replace(bid, revision=1)
        clearing.validate_bid(request, bid, node, now)  # raises BidRefused: nothing stored
        await market.bids.add(bid)
        await audit(market, actor, "market.bid.submit", bid.bid_id, now,
                    request_id=bid.request_id, node_id=bid.node_id, revision=bid.revision,
                    offered_kw=[str(kw) for kw in bid.offered_kw],
                    price_eur_per_kwh=str(bid.price_eur_per_kwh))  # fmt: skip
    return bid


async def bids(
    store: Store, request_id: str, *, actor: Actor, revisions: bool = False
) -> list[Bid]:
    async with store.transaction() as tx:
        market = Market.on(tx)
        await load_request(market, request_id)
        return await market.bids.for_request(
            request_id, aggregator_id=actor.aggregator_id, latest_only=not revisions
        )


# --- gate closure and clearing --------------------------------------------------------------------


async def close_request(
    store: Store, request_id: str, *, actor: Actor, now: datetime
) -> FlexRequest:
    actor.require_dso("close a request")
    async with store.transaction() as tx:
        market = Market.on(tx)
        request = await load_request(market, request_id, for_update=True)
        if not lifecycle.is_gate_closed(request, now):
            raise Conflict(
                f"gate closure of {request_id!r} is {request.gate_closure.isoformat()}: "
                "bids are still allowed"
            )
        return await advance(market, request, _S.CLOSED, actor, now)


async def cancel_request(
    store: Store, request_id: str, *, actor: Actor, now: datetime
) -> FlexRequest:
    """The DSO withdraws a request before it is cleared (no aggregator holds an order yet)."""
    actor.require_dso("cancel a request")
    async with store.transaction() as tx:
        market = Market.on(tx)
        request = await load_request(market, request_id, for_update=True)
        return await advance(market, request, _S.CANCELLED, actor, now)


async def clear_request(
    store: Store, request_id: str, *, actor: Actor, now: datetime
) -> clearing.Clearing:
    """Close (if still open and past gate closure) and clear: store the awards."""
    actor.require_dso("clear a request")
    async with store.transaction() as tx:
        market = Market.on(tx)
        request = await load_request(market, request_id, for_update=True)
        if request.status is _S.OPEN:
            if not lifecycle.is_gate_closed(request, now):
                raise Conflict(
                    f"gate closure of {request_id!r} is {request.gate_closure.isoformat()}: "
                    "it cannot be cleared before"
                )
            request = await advance(market, request, _S.CLOSED, actor, now)
        lifecycle.advance(request.status, _S.CLEARED)  # refuse before computing anything
        offered = await market.bids.for_request(request_id, latest_only=False)
        nodes = await market.nodes.by_ids(sorted({b.node_id for b in offered}))
        result = clearing.clear(request, offered, now, nodes=nodes)
        for award in result.awards:
            await market.awards.add(award, now)
        await advance(market, request, _S.CLEARED, actor, now)
        await audit(market, actor, "market.request.awards", request_id, now,
                    awards={a.bid_id: [str(kw) for kw in a.awarded_kw] for a in result.awards},
                    clearing_price_eur_per_kwh=[
                        None if p is None else str(p) for p in result.clearing_price_eur_per_kwh
                    ],
                    rejected=[list(r) for r in result.rejected])  # fmt: skip
    return result


@dataclass(frozen=True, slots=True, kw_only=True)
class AwardView:
    award: StoredAward
    opt: dispatch.OptStatus | None  # None until dispatched (or for a node without a VEN)


async def awards(store: Store, request_id: str, *, actor: Actor) -> list[AwardView]:
    async with store.transaction() as tx:
        market = Market.on(tx)
        await load_request(market, request_id)
        found = await market.awards.for_request(request_id, aggregator_id=actor.aggregator_id)
        nodes = await market.nodes.by_ids([s.award.node_id for s in found])
        views: list[AwardView] = []
        for stored in found:
            ven_id = nodes[stored.award.node_id].ven_id
            opt = None
            if stored.event_id is not None and ven_id is not None:
                opt = await dispatch.opt_status(tx, stored.event_id, ven_id)
            views.append(AwardView(award=stored, opt=opt))
        return views


# --- dispatch -------------------------------------------------------------------------------------


async def dispatch_request(
    context: Context, request_id: str, *, actor: Actor, market_context: str, now: datetime
) -> list[StoredAward]:
    """Send each award as an OpenADR event to its node's VEN, then mark the request dispatched.

    Events are made one by one through the VTN's event service (each its own commit, audited);
    their ids are derived from the award, so a dispatch interrupted half-way and run again
    finds the events already made and only fills in what is missing.
    """
    actor.require_dso("dispatch awards")
    async with context.store.transaction() as tx:
        market = Market.on(tx)
        request = await load_request(market, request_id)
        lifecycle.advance(request.status, _S.DISPATCHED)
        stored = await market.awards.for_request(request_id)
        nodes = await market.nodes.by_ids([s.award.node_id for s in stored])
    undeliverable: list[str] = []
    for item in stored:
        node = nodes[item.award.node_id]
        if item.event_id is not None:
            continue
        if node.ven_id is None:
            undeliverable.append(item.award.bid_id)  # recorded below; the DSO must follow up
            continue
        event = dispatch.event_for(request, item.award, node, node.ven_id,
                                   market_context=market_context, now=now)  # fmt: skip
        async with context.store.transaction() as tx:
            exists = await tx.events.get(event.event_id) is not None
        if not exists:
            await operator.create_event(context, event, actor=actor.name, now=now)
        async with context.store.transaction() as tx:
            await Market.on(tx).awards.set_event(request_id, item.award.bid_id, event.event_id)
    async with context.store.transaction() as tx:
        market = Market.on(tx)
        request = await load_request(market, request_id, for_update=True)
        await advance(market, request, _S.DISPATCHED, actor, now)
        if undeliverable:
            await audit(market, actor, "market.dispatch.undeliverable", request_id, now,
                        bids=undeliverable, reason="node has no venID")  # fmt: skip
        return await market.awards.for_request(request_id)


# --- measurement and settlement -------------------------------------------------------------------


def period_of(request: FlexRequest) -> str:
    return f"{request.start.isoformat()}/{request.end.isoformat()}"


async def settle_request(
    store: Store,
    request_id: str,
    *,
    actor: Actor,
    now: datetime,
    tolerance: Decimal = settlement.DEFAULT_TOLERANCE,
    penalty_eur_per_kwh: Decimal | None = None,
) -> list[dict[str, Any]]:
    """One statement per aggregator (JSON, with its CSV rendering under `csv`)."""
    actor.require_dso("settle")
    async with store.transaction() as tx:
        market = Market.on(tx)
        request = await load_request(market, request_id, for_update=True)
        lifecycle.advance(request.status, _S.SETTLED)
        stored = [s.award for s in await market.awards.for_request(request_id)]
        deliveries = await market.deliveries.for_request(request_id)
        try:
            issued = settlement.settle(request, stored, deliveries, tolerance,
                                       penalty_eur_per_kwh, period=period_of(request))  # fmt: skip
        except ValueError as err:
            raise MarketError(str(err)) from None
        bodies = [statement.to_json() | {"csv": statement.to_csv()} for statement in issued]
        for statement, body in zip(issued, bodies, strict=True):
            await market.statements.add(request_id, statement.aggregator_id, body, now)
        await advance(market, request, _S.SETTLED, actor, now)
        await audit(market, actor, "market.request.statements", request_id, now,
                    net_eur={s.aggregator_id: str(s.net_eur) for s in issued})  # fmt: skip
    return bodies


async def statements(
    store: Store, *, actor: Actor, request_id: str | None = None
) -> list[dict[str, Any]]:
    async with store.transaction() as tx:
        return await Market.on(tx).statements.page(
            request_id=request_id, aggregator_id=actor.aggregator_id
        )


# --- the gate-closure task ------------------------------------------------------------------------


async def due(store: Store, now: datetime) -> list[RequestId]:
    async with store.transaction() as tx:
        return await Market.on(tx).requests.due(now)


async def next_gate_closure(store: Store) -> datetime | None:
    async with store.transaction() as tx:
        return await Market.on(tx).requests.next_gate_closure()
