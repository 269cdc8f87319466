"""What the console's pages show, read in one VTN transaction: congestion points with load and
forecast, the market (optionally one aggregator's share of it), a prosumer's readings and the
market awards its node was paid for.

A prosumer's reward per event (computed in `console.rewards`, explained on its page): for a
market award, its share of the node's settled payment for that award, pro rata to the kWh each
member delivered (mean power during the event against the same length just before), or, before
settlement, an estimate marked "estimated" (delivered kWh, at most the kWh ordered, times the
award's price); for a direct DSO event, the operator's rate (`ConsoleExtension.
direct_event_rate_eur_per_kwh`, default 0: "no payment for direct events") times its kWh. EUR,
Decimal, rounded to cents.

Read-only, and each function is told whose view it builds: `aggregator_id=None` is the DSO's
view of everything; an aggregator id filters every list to that aggregator's own rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from forecast.store import Forecasts
from market.model import Bid, FlexRequest, VirtualEndNode
from market.store import Market, StoredAward
from market.store.grid import PointResource
from market.store.tables import market_awards, market_point_resources
from vtn.store.db import Tx
from vtn.store.reports import Reading

BUCKET = timedelta(minutes=15)
HISTORY = timedelta(hours=24)
POWER_SUFFIX = ".power"  # the rIDs of power readings (kW), as the gateway names them


def chart(
    chart_id: str, traces: list[dict[str, Any]], *, y_title: str, title: str = ""
) -> dict[str, Any]:
    """One plotly.js figure as JSON: rendered by static/charts.js, no inline script."""
    return {
        "id": chart_id,
        "data": traces,
        "layout": {
            "title": {"text": title},
            "margin": {"l": 50, "r": 10, "t": 30 if title else 10, "b": 40},
            "yaxis": {"title": {"text": y_title}},
            "xaxis": {"type": "date"},
            "legend": {"orientation": "h"},
            "autosize": True,
        },
    }


def bucketed(readings: Iterable[Reading], bucket: timedelta = BUCKET) -> dict[datetime, float]:
    """Mean per VEN per bucket, then summed over VENs: the load the VENs draw together (kW)."""
    per_ven: dict[tuple[str, datetime], list[float]] = defaultdict(list)
    for r in readings:
        if r.start is None or r.value is None:
            continue
        epoch = r.start.timestamp()
        start = r.start - timedelta(seconds=epoch % bucket.total_seconds())
        per_ven[(r.ven_id, start)].append(r.value)
    total: dict[datetime, float] = defaultdict(float)
    for (_, start), values in per_ven.items():
        total[start] += sum(values) / len(values)
    return dict(sorted(total.items()))


async def power_readings(tx: Tx, ven_ids: Sequence[str], since: datetime) -> list[Reading]:
    found: list[Reading] = []
    for ven_id in ven_ids:
        rows = await tx.readings.query(ven_id=ven_id, start=since, limit=100_000)
        found += [r for r in rows if r.r_id.endswith(POWER_SUFFIX)]
    return found


# --- congestion points ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PointView:
    point_id: str
    name: str
    capacity_kw: float
    resources: list[PointResource]
    latest_load_kw: float | None
    light: str | None  # worst forecast light ahead: green/orange/red; None without a forecast
    chart: dict[str, Any]


async def grid_points(tx: Tx, now: datetime) -> list[PointView]:
    market = Market.on(tx)
    forecasts = Forecasts(tx.connection)
    views = []
    for point in await market.grid.points():
        resources = await market.grid.resources(point.point_id)
        ven_ids = [r.ven_id for r in resources if r.ven_id is not None]
        load = bucketed(await power_readings(tx, ven_ids, now - HISTORY))
        stored = await forecasts.latest(point.point_id)
        times = [t.isoformat() for t in load]
        traces: list[dict[str, Any]] = [
            {
                "type": "scatter",
                "mode": "lines",
                "name": "load (kW)",
                "x": times,
                "y": list(load.values()),
            },
        ]
        light = None
        if stored is not None:
            forecast = stored.forecast
            ahead = [forecast.start + forecast.isp * i for i in range(len(forecast))]
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": "forecast P50 (kW)",
                    "x": [t.isoformat() for t in ahead],
                    "y": list(forecast.p50_kw),
                    "line": {"dash": "dot"},
                }
            )
            times += [t.isoformat() for t in ahead]
            order = ["green", "orange", "red"]
            light = max((lt.value for lt in stored.lights), key=order.index, default="green")
        capacity = float(point.capacity_kw)
        if times:
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": "capacity (kW)",
                    "x": [min(times), max(times)],
                    "y": [capacity, capacity],
                    "line": {"color": "#c0392b"},
                }
            )
        views.append(
            PointView(
                point_id=point.point_id,
                name=point.name,
                capacity_kw=capacity,
                resources=resources,
                latest_load_kw=list(load.values())[-1] if load else None,
                light=light,
                chart=chart(f"point-{point.point_id}", traces, y_title="kW"),
            )
        )
    return views


# --- the market -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestView:
    request: FlexRequest
    bids: list[Bid]
    awards: list[StoredAward]
    deliveries: list[dict[str, Any]]  # per block: baseline, actual, delivered (kW)


@dataclass(frozen=True)
class MarketView:
    requests: list[RequestView]
    statements: list[dict[str, Any]]
    nodes: list[tuple[VirtualEndNode, list[Any]]] = field(default_factory=list)


async def market(tx: Tx, *, aggregator_id: str | None, limit: int = 50) -> MarketView:
    """The DSO's view (aggregator_id None) or one aggregator's: only its own bids, awards,
    deliveries, statements and nodes. Flex requests are public calls: every role sees them."""
    m = Market.on(tx)
    own_nodes = await m.nodes.page(aggregator_id=aggregator_id)
    own_node_ids = {n.node_id for n in own_nodes}
    views = []
    for request in await m.requests.page(limit=limit):
        delivered = [
            {
                "node_id": d.node_id,
                "bid_id": d.bid_id,
                "block": d.block,
                "baseline_kw": d.baseline_kw,
                "actual_kw": d.actual_kw,
                "delivered_kw": d.delivered_kw,
                "method": d.method,
            }
            for d in await m.deliveries.for_request(request.request_id)
            if aggregator_id is None or d.node_id in own_node_ids
        ]
        views.append(
            RequestView(
                request=request,
                bids=await m.bids.for_request(request.request_id, aggregator_id=aggregator_id),
                awards=await m.awards.for_request(request.request_id, aggregator_id=aggregator_id),
                deliveries=delivered,
            )
        )
    nodes = [(node, await m.nodes.members(node.node_id)) for node in own_nodes]
    statements = await m.statements.page(aggregator_id=aggregator_id)
    return MarketView(requests=views, statements=statements, nodes=nodes)


# --- a prosumer's market events -------------------------------------------------------------------


@dataclass(frozen=True)
class MarketEvent:
    """An award dispatched as an OpenADR event to a node the prosumer was a member of when the
    award's request started: what `console.rewards.market` shares out."""

    request: FlexRequest
    stored: StoredAward
    node: VirtualEndNode
    member_ven_ids: tuple[str, ...]  # the members' gateways then (theirs and mine)
    statement: dict[str, Any] | None  # the aggregator's settlement statement; None: not yet


async def _ven_of_prosumer(tx: Tx) -> dict[str, str]:
    rows = await tx.connection.execute(
        select(market_point_resources.c.prosumer_id, market_point_resources.c.ven_id)
    )
    return {prosumer_id: ven_id for prosumer_id, ven_id in rows if ven_id is not None}


async def market_events(tx: Tx, ven_id: str) -> dict[str, MarketEvent]:
    """By eventID: the dispatched awards of the nodes this gateway's prosumer belonged to."""
    m = Market.on(tx)
    ven_of = await _ven_of_prosumer(tx)
    mine = {prosumer_id for prosumer_id, ven in ven_of.items() if ven == ven_id}
    if not mine:
        return {}
    nodes = {}
    memberships = {}
    for node in await m.nodes.page():
        members = await m.nodes.members(node.node_id, active_only=False)
        if any(member.prosumer_id in mine for member in members):
            nodes[node.node_id] = node
            memberships[node.node_id] = members
    found: dict[str, MarketEvent] = {}
    if not nodes:
        return found
    dispatched = select(market_awards.c.request_id).where(
        market_awards.c.node_id.in_(list(nodes)), market_awards.c.event_id.is_not(None)
    )
    for request_id in sorted(set((await tx.connection.execute(dispatched)).scalars())):
        request = await m.requests.get(request_id)
        if request is None:
            continue
        for stored in await m.awards.for_request(request.request_id):
            node_id = stored.award.node_id
            if stored.event_id is None or node_id not in nodes:
                continue
            then = [
                member.prosumer_id
                for member in memberships[node_id]
                if member.joined_at <= request.start
                and (member.left_at is None or member.left_at > request.start)
            ]
            if not mine.intersection(then):
                continue  # joined after, or left before, this request
            statements = await m.statements.page(
                request_id=request.request_id, aggregator_id=stored.award.aggregator_id
            )
            found[stored.event_id] = MarketEvent(
                request=request,
                stored=stored,
                node=nodes[node_id],
                member_ven_ids=tuple(sorted({ven_of[p] for p in then if p in ven_of})),
                statement=statements[-1] if statements else None,
            )
    return found
