"""What the console's pages show, read in one VTN transaction: congestion points with load and
forecast, the market (optionally one aggregator's share of it), a prosumer's readings.

Read-only, and each function is told whose view it builds: `aggregator_id=None` is the DSO's
view of everything; an aggregator id filters every list to that aggregator's own rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from forecast.store import Forecasts
from market.model import Bid, FlexRequest, VirtualEndNode
from market.store import Market, StoredAward
from market.store.grid import PointResource
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
