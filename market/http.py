"""The market's admin API routes under /admin/v1/market/, and `MarketExtension`, which plugs
them and the gate-closure task into the VTN (`VtnConfig(extensions=(MarketExtension(),))`).

Handlers read, call `market.accounts` / `market.service`, reply JSON. Authentication, 400s for
malformed bodies and the OpenAPI document are the VTN admin API's; a `MarketError` becomes
`{"error", "code"}` with its status here (422 a refused bid, 403 another aggregator's thing,
404 unknown, 409 a clash or a step out of order). The caller is the token: an operator or viewer
acts for the DSO and sees everything, an aggregator's token for that aggregator only.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from market import accounts, measurement, schemas, service
from market.accounts import Actor
from market.errors import MarketError
from market.gate import GateKeeper
from market.model import (
    Aggregator,
    AggregatorId,
    Bid,
    BidId,
    CongestionPoint,
    CongestionPointId,
    FlexRequest,
    Membership,
    NodeId,
    ProsumerId,
    RequestId,
    RequestStatus,
    VirtualEndNode,
)
from market.store import PointResource
from oadr.model import VenId
from vtn.admin import bodies
from vtn.admin.middleware import PREFIX, TOKEN, ApiError, error_response
from vtn.admin.openapi import Param, Route
from vtn.admin.schemas import DEFAULT_MARKET_CONTEXT, Done
from vtn.admin.tokens import TokenRole
from vtn.services.context import Context

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = PREFIX + "/market"


@dataclass
class MarketApp:
    context: Context
    clock: Callable[[], datetime]
    market_context: str
    gate: GateKeeper


MARKET = web.AppKey("flex4grid.market", MarketApp)


def _market(request: web.Request) -> MarketApp:
    return request.app[MARKET]


def _actor(request: web.Request) -> Actor:
    token = request[TOKEN]
    if token.role == TokenRole.AGGREGATOR:
        return Actor(name=token.name, aggregator_id=AggregatorId(token.subject or ""))
    return Actor(name=token.name)


def _refusals(handler: Handler) -> Handler:
    """A MarketError becomes its status and reason; everything else is the admin middleware's."""

    @functools.wraps(handler)
    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except MarketError as err:
            return error_response(err.status, err.message)

    return run


# --- grid model and accounts ----------------------------------------------------------------------


@_refusals
async def create_point(request: web.Request) -> web.Response:
    body = await bodies.read(request, schemas.PointCreate)
    point = CongestionPoint(
        point_id=CongestionPointId(body.point_id), name=body.name, capacity_kw=body.capacity_kw
    )
    made = await accounts.create_point(
        _market(request).context.store, point, actor=_actor(request), now=_market(request).clock()
    )
    return bodies.reply(schemas.PointOut(point=made, resources=[]), 201)


@_refusals
async def list_points(request: web.Request) -> web.Response:
    found = await accounts.points(_market(request).context.store)
    return bodies.reply([schemas.PointOut(point=p, resources=r).model_dump(mode="json")
                   for p, r in found])  # fmt: skip


@_refusals
async def add_resource(request: web.Request) -> web.Response:
    body = await bodies.read(request, schemas.ResourceAdd)
    market = _market(request)
    resource = PointResource(
        prosumer_id=ProsumerId(body.prosumer_id),
        point_id=CongestionPointId(request.match_info["point_id"]),
        ven_id=None if body.ven_id is None else VenId(body.ven_id),
        added_at=market.clock(),
    )
    made = await accounts.add_resource(
        market.context.store, resource, actor=_actor(request), now=market.clock()
    )
    return bodies.reply(made, 201)


@_refusals
async def create_aggregator(request: web.Request) -> web.Response:
    body = await bodies.read(request, schemas.AggregatorCreate)
    market = _market(request)
    aggregator = Aggregator(
        aggregator_id=AggregatorId(body.aggregator_id), name=body.name, fingerprint=body.fingerprint
    )
    token = await accounts.create_aggregator(
        market.context.store, aggregator, actor=_actor(request), now=market.clock()
    )
    return bodies.reply(schemas.AggregatorCreated(aggregator=aggregator, token=token), 201)


@_refusals
async def list_aggregators(request: web.Request) -> web.Response:
    found = await accounts.aggregators(_market(request).context.store, actor=_actor(request))
    return bodies.reply(found)


@_refusals
async def create_node(request: web.Request) -> web.Response:
    body = await bodies.read(request, schemas.NodeCreate)
    market, actor = _market(request), _actor(request)
    owner = body.aggregator_id or actor.aggregator_id
    if owner is None:
        raise ApiError(400, "aggregator_id is required when the DSO registers a node")
    node = VirtualEndNode(
        node_id=NodeId(body.node_id),
        aggregator_id=AggregatorId(owner),
        point_id=CongestionPointId(body.point_id),
        name=body.name,
        ven_id=None if body.ven_id is None else VenId(body.ven_id),
    )
    made = await accounts.create_node(market.context.store, node, actor=actor, now=market.clock())
    return bodies.reply(made, 201)


@_refusals
async def list_nodes(request: web.Request) -> web.Response:
    return bodies.reply(await accounts.nodes(_market(request).context.store, actor=_actor(request)))


@_refusals
async def get_node(request: web.Request) -> web.Response:
    node, members = await accounts.node_detail(
        _market(request).context.store, request.match_info["node_id"], actor=_actor(request)
    )
    return bodies.reply(schemas.NodeDetail(node=node, members=members))


@_refusals
async def add_member(request: web.Request) -> web.Response:
    body = await bodies.read(request, schemas.MemberAdd)
    market = _market(request)
    made = await accounts.add_member(
        market.context.store,
        NodeId(request.match_info["node_id"]),
        ProsumerId(body.prosumer_id),
        body.consent_ref,
        actor=_actor(request),
        now=market.clock(),
    )
    return bodies.reply(made, 201)


@_refusals
async def remove_member(request: web.Request) -> web.Response:
    market = _market(request)
    node_id, prosumer_id = request.match_info["node_id"], request.match_info["prosumer_id"]
    await accounts.remove_member(market.context.store, NodeId(node_id), ProsumerId(prosumer_id),
                                 actor=_actor(request), now=market.clock())  # fmt: skip
    return bodies.reply(Done(detail=f"{prosumer_id} left {node_id}"))


# --- requests and bids ----------------------------------------------------------------------------


@_refusals
async def create_request(request: web.Request) -> web.Response:
    body = await bodies.read(request, schemas.RequestCreate)
    market = _market(request)
    now = market.clock()
    flex = FlexRequest(
        request_id=RequestId(body.request_id or market.context.new_id()),
        point_id=CongestionPointId(body.point_id),
        start=body.start.astimezone(UTC),
        isp=body.isp,
        needed_kw=tuple(body.needed_kw),
        price_cap_eur_per_kwh=body.price_cap_eur_per_kwh,
        gate_closure=body.gate_closure.astimezone(UTC),
        pricing=body.pricing,
        created_at=now,
    )
    made = await service.create_request(market.context.store, flex, actor=_actor(request), now=now)
    market.gate.wake()  # its gate closure may be the next one
    return bodies.reply(made, 201)


def _status(request: web.Request) -> RequestStatus | None:
    text = request.query.get("status")
    if text is None:
        return None
    try:
        return RequestStatus(text)
    except ValueError:
        raise ApiError(400, f"status must be one of {', '.join(RequestStatus)}") from None


@_refusals
async def list_requests(request: web.Request) -> web.Response:
    found = await service.requests(_market(request).context.store, status=_status(request))
    return bodies.reply(found)


@_refusals
async def get_request(request: web.Request) -> web.Response:
    flex, history = await service.request_detail(
        _market(request).context.store, request.match_info["request_id"]
    )
    return bodies.reply(schemas.RequestDetail(
        request=flex,
        history=[schemas.StatusChangeOut(status=h.status, actor=h.actor, at=h.at)
                 for h in history],
    ))  # fmt: skip


@_refusals
async def submit_bid(request: web.Request) -> web.Response:
    body = await bodies.read(request, schemas.BidSubmit)
    market, actor = _market(request), _actor(request)
    now = market.clock()
    bid = Bid(
        bid_id=BidId(body.bid_id or market.context.new_id()),
        request_id=RequestId(request.match_info["request_id"]),
        node_id=NodeId(body.node_id),
        aggregator_id=actor.aggregator_id or AggregatorId(""),  # the node's owner, in the service
        offered_kw=tuple(body.offered_kw),
        price_eur_per_kwh=body.price_eur_per_kwh,
        divisible=body.divisible,
        valid_until=body.valid_until.astimezone(UTC),
        submitted_at=now,
    )
    made = await service.submit_bid(market.context.store, bid, actor=actor, now=now)
    return bodies.reply(made, 201)


@_refusals
async def list_bids(request: web.Request) -> web.Response:
    found = await service.bids(
        _market(request).context.store,
        request.match_info["request_id"],
        actor=_actor(request),
        revisions=request.query.get("revisions") in ("1", "true"),
    )
    return bodies.reply(found)


# --- the request's steps --------------------------------------------------------------------------


@_refusals
async def close_request(request: web.Request) -> web.Response:
    market = _market(request)
    made = await service.close_request(market.context.store, request.match_info["request_id"],
                                       actor=_actor(request), now=market.clock())  # fmt: skip
    return bodies.reply(made)


@_refusals
async def cancel_request(request: web.Request) -> web.Response:
    market = _market(request)
    made = await service.cancel_request(market.context.store, request.match_info["request_id"],
                                        actor=_actor(request), now=market.clock())  # fmt: skip
    return bodies.reply(made)


@_refusals
async def clear_request(request: web.Request) -> web.Response:
    market = _market(request)
    result = await service.clear_request(market.context.store, request.match_info["request_id"],
                                         actor=_actor(request), now=market.clock())  # fmt: skip
    return bodies.reply(schemas.ClearingOut(
        awards=list(result.awards),
        clearing_price_eur_per_kwh=list(result.clearing_price_eur_per_kwh),
        rejected=[schemas.Rejected(bid_id=b, reason=r) for b, r in result.rejected],
    ))  # fmt: skip


def _award_out(view: service.AwardView) -> schemas.AwardOut:
    opt = view.opt
    return schemas.AwardOut(
        award=view.award.award,
        event_id=view.award.event_id,
        opt=None if opt is None else schemas.OptOut(
            ven_id=opt.ven_id, delivered_at=opt.delivered_at, opt=opt.opt,
            responded_at=opt.responded_at,
        ),
    )  # fmt: skip


@_refusals
async def dispatch_request(request: web.Request) -> web.Response:
    market, actor = _market(request), _actor(request)
    request_id = request.match_info["request_id"]
    await service.dispatch_request(market.context, request_id, actor=actor,
                                   market_context=market.market_context,
                                   now=market.clock())  # fmt: skip
    views = await service.awards(market.context.store, request_id, actor=actor)
    return bodies.reply([_award_out(v).model_dump(mode="json") for v in views])


@_refusals
async def list_awards(request: web.Request) -> web.Response:
    views = await service.awards(
        _market(request).context.store, request.match_info["request_id"], actor=_actor(request)
    )
    return bodies.reply([_award_out(v).model_dump(mode="json") for v in views])


@_refusals
async def measure_request(request: web.Request) -> web.Response:
    body = await bodies.read(request, schemas.MeasureBody)
    market = _market(request)
    method = measurement.baseline_method(body.method, body.params)
    found = await measurement.measure_request(
        market.context.store,
        request.match_info["request_id"],
        method,
        actor=_actor(request),
        now=market.clock(),
    )
    return bodies.reply([schemas.DeliveryOut(
        bid_id=d.bid_id, node_id=d.node_id, block=d.block, baseline_kw=d.baseline_kw,
        actual_kw=d.actual_kw, delivered_kw=d.delivered_kw, method=d.method,
    ).model_dump(mode="json") for d in found])  # fmt: skip


@_refusals
async def settle_request(request: web.Request) -> web.Response:
    body = await bodies.read(request, schemas.SettleBody)
    market = _market(request)
    issued = await service.settle_request(
        market.context.store,
        request.match_info["request_id"],
        actor=_actor(request),
        now=market.clock(),
        tolerance=body.tolerance,
        penalty_eur_per_kwh=body.penalty_eur_per_kwh,
    )
    return bodies.reply(issued)


@_refusals
async def list_statements(request: web.Request) -> web.Response:
    found = await service.statements(_market(request).context.store, actor=_actor(request),
                                     request_id=request.query.get("request_id"))  # fmt: skip
    if request.query.get("format") == "csv":
        return web.Response(text="".join(s["csv"] for s in found), content_type="text/csv")
    return bodies.reply(found)


_R = M + "/requests/{request_id}"
_N = M + "/nodes/{node_id}"

ROUTES: tuple[Route, ...] = (
    Route("POST", M + "/points", create_point, "define a congestion point (DSO)",
          schemas.PointOut, 201, body=schemas.PointCreate),
    Route("GET", M + "/points", list_points, "congestion points and their resources",
          list[schemas.PointOut]),
    Route("POST", M + "/points/{point_id}/resources", add_resource,
          "place a prosumer resource under a congestion point (DSO)", PointResource, 201,
          body=schemas.ResourceAdd),
    Route("POST", M + "/aggregators", create_aggregator,
          "open an aggregator account and make its first token (DSO)",
          schemas.AggregatorCreated, 201, body=schemas.AggregatorCreate),
    Route("GET", M + "/aggregators", list_aggregators, "aggregators (an aggregator: itself)",
          list[Aggregator]),
    Route("POST", M + "/nodes", create_node, "register a virtual end node", VirtualEndNode, 201,
          body=schemas.NodeCreate),
    Route("GET", M + "/nodes", list_nodes, "virtual end nodes (an aggregator: its own)",
          list[VirtualEndNode]),
    Route("GET", _N, get_node, "one node with its memberships", schemas.NodeDetail),
    Route("POST", _N + "/members", add_member, "a prosumer joins, with consent",
          Membership, 201, body=schemas.MemberAdd),
    Route("DELETE", _N + "/members/{prosumer_id}", remove_member, "a prosumer leaves",
          Done),
    Route("POST", M + "/requests", create_request, "publish a flex request (DSO)", FlexRequest,
          201, body=schemas.RequestCreate),
    Route("GET", M + "/requests", list_requests, "flex requests", list[FlexRequest],
          query=(Param("status", "only requests in this state", enum=tuple(RequestStatus)),)),
    Route("GET", _R, get_request, "one flex request and its status history",
          schemas.RequestDetail),
    Route("POST", _R + "/bids", submit_bid,
          "submit a bid, or revise one (same bid_id) until gate closure", Bid, 201,
          body=schemas.BidSubmit),
    Route("GET", _R + "/bids", list_bids, "bids (an aggregator: its own)", list[Bid],
          query=(Param("revisions", "every revision, not only the latest", enum=("true",)),)),
    Route("POST", _R + "/close", close_request, "close at gate closure (DSO)", FlexRequest),
    Route("POST", _R + "/cancel", cancel_request, "withdraw it before clearing (DSO)",
          FlexRequest),
    Route("POST", _R + "/clear", clear_request, "clear: merit order per block (DSO)",
          schemas.ClearingOut),
    Route("POST", _R + "/dispatch", dispatch_request,
          "send the awards as LOAD_DISPATCH events (DSO)", list[schemas.AwardOut]),
    Route("GET", _R + "/awards", list_awards,
          "awards with their events' opt status (an aggregator: its own)",
          list[schemas.AwardOut]),
    Route("POST", _R + "/measure", measure_request,
          "baseline and delivery from the nodes' telemetry (DSO)", list[schemas.DeliveryOut],
          body=schemas.MeasureBody),
    Route("POST", _R + "/settle", settle_request, "settlement statements (DSO)",
          list[schemas.Statement], body=schemas.SettleBody),
    Route("GET", M + "/statements", list_statements,
          "settlement statements (an aggregator: its own); format=csv for CSV",
          list[schemas.Statement],
          query=(Param("request_id", "only this request"),
                 Param("format", "json (default) or csv", enum=("json", "csv")))),
)  # fmt: skip


@dataclass(frozen=True)
class MarketExtension:
    """The market on the VTN: its routes, and the gate-closure task started with the app.

    `clock`: where every market decision takes its `now` from; None is the VTN's own clock
    (real time, or `flex4grid demo`'s simulated one); tests inject theirs. `auto_clear` runs the
    gate-closure task; `market_context` is the dispatched events'.
    """

    clock: Callable[[], datetime] | None = None
    market_context: str = DEFAULT_MARKET_CONTEXT
    auto_clear: bool = True
    auto_dispatch: bool = True
    routes: Sequence[Route] = field(default=ROUTES)

    def setup(self, app: web.Application, context: Context) -> None:
        clock = self.clock or context.clock
        gate = GateKeeper(context, clock=clock, market_context=self.market_context,
                          dispatch=self.auto_dispatch)  # fmt: skip
        app[MARKET] = MarketApp(context=context, clock=clock,
                                market_context=self.market_context, gate=gate)  # fmt: skip
        if not self.auto_clear:
            return

        async def _start(app: web.Application) -> None:
            gate.start()

        async def _stop(app: web.Application) -> None:
            await gate.stop()

        app.on_startup.append(_start)
        app.on_shutdown.append(_stop)
