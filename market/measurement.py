"""Measurement and verification of a dispatched flex request (issue 8): baselines from the
awarded nodes' telemetry, delivered = baseline - actual per block, stored with the method.

A node is measured by its members' gateways (the VENs the grid model names for its active
members' resources), or by the node's own VEN when no member has one. Their TELEMETRY_USAGE
readings become per-ISP day series (`market.metering`), the chosen `market.baseline` method
estimates each node's baseline, and `market.baseline.delivered` shares it out to the awards.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from market import baseline, lifecycle, metering
from market.accounts import Actor, audit
from market.errors import Conflict, InsufficientData, MarketError
from market.model import Delivery, FlexRequest, NodeId, RequestStatus, VirtualEndNode
from market.service import advance, load_request
from market.store import Market
from oadr.enums import ReportName
from oadr.model import VenId
from vtn.store.db import Store, Tx
from vtn.store.reports import Reading

HISTORY_DAYS = 45  # telemetry read back for baselines (TenOfTen's default look-back)


BASELINES: dict[str, type[baseline.TenOfTen | baseline.HighXOfY | baseline.MeterBeforeMeterAfter]]
BASELINES = {
    "10-of-10": baseline.TenOfTen,
    "high-x-of-y": baseline.HighXOfY,
    "meter-before-meter-after": baseline.MeterBeforeMeterAfter,
}


def baseline_method(name: str, params: dict[str, Any]) -> baseline.Baseline:
    """A baseline method by name with its parameters (as a settlement records them)."""
    kind = BASELINES.get(name)
    if kind is None:
        raise MarketError(f"unknown baseline method {name!r}; known: {', '.join(BASELINES)}")
    converted: dict[str, Any] = {}
    for key, value in params.items():
        try:
            if key == "adjustment_cap":
                converted[key] = Decimal(str(value))
            elif key == "excluded_days":
                converted[key] = frozenset(date.fromisoformat(str(day)) for day in value)
            elif key == "adjust":
                if not isinstance(value, bool):
                    raise TypeError("must be true or false")
                converted[key] = value
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TypeError("must be a positive integer")
            else:
                converted[key] = value
        except (TypeError, ValueError, ArithmeticError) as err:
            raise MarketError(f"baseline {name}: parameter {key}: {err}") from None
    try:
        return kind(**converted)
    except TypeError as err:
        raise MarketError(f"baseline {name}: {err}") from None


async def _meters(market: Market, node: VirtualEndNode) -> list[VenId]:
    """The VENs whose telemetry measures a node: its members' gateways, else the node's VEN."""
    found: list[VenId] = []
    for member in await market.nodes.members(node.node_id):
        resource = await market.grid.resource(member.prosumer_id)
        if resource is not None and resource.ven_id is not None:
            found.append(resource.ven_id)
    if not found and node.ven_id is not None:
        found.append(node.ven_id)
    return found


async def _readings(tx: Tx, ven_id: VenId, start: datetime, end: datetime) -> list[Reading]:
    page, offset = 5000, 0
    found: list[Reading] = []
    while True:
        batch = await tx.readings.query(
            ven_id=ven_id, start=start, end=end, offset=offset, limit=page
        )
        found.extend(batch)
        if len(batch) < page:
            return found
        offset += page


async def _node_series(
    tx: Tx, meters: Sequence[VenId], request: FlexRequest, blocks: baseline.EventBlocks
) -> dict[date, list[Decimal | None]]:
    first = datetime.combine(
        blocks.day - timedelta(days=HISTORY_DAYS), datetime.min.time(), request.start.tzinfo
    )
    last = datetime.combine(blocks.day + timedelta(days=1), datetime.min.time(), first.tzinfo)
    readings: list[metering.MeterReading] = []
    keys: list[str] = []
    for ven_id in meters:
        rids: set[str] = set()
        for r in await _readings(tx, ven_id, first, last):
            if r.report_name != ReportName.TELEMETRY_USAGE or r.value is None or r.start is None:
                continue  # status reports and readings without a time measure nothing
            rids.add(r.r_id)
            readings.append(metering.reading(f"{ven_id}/{r.r_id}", r.start, r.value))
        # Each rID is one meter; a VEN that sent nothing still counts, as a meter of gaps.
        keys += [f"{ven_id}/{rid}" for rid in sorted(rids) or [""]]
    return metering.day_series(readings, keys, request.isp)


async def measure_request(
    store: Store,
    request_id: str,
    method: baseline.Baseline,
    *,
    actor: Actor,
    now: datetime,
) -> list[Delivery]:
    """Baseline each awarded node from its meters' telemetry; delivered = baseline - actual.

    A node whose baseline cannot be computed (too little telemetry) gets no deliveries: it
    is settled as having delivered nothing, and the reason is in the audit log.
    """
    actor.require_dso("measure delivery")
    async with store.transaction() as tx:
        market = Market.on(tx)
        request = await load_request(market, request_id, for_update=True)
        lifecycle.advance(request.status, RequestStatus.MEASURED)
        if now < request.end:
            raise Conflict(f"request {request_id!r} runs until {request.end.isoformat()}")
        blocks = baseline.event_blocks(request)
        stored = [s.award for s in await market.awards.for_request(request_id)]
        nodes = await market.nodes.by_ids(sorted({a.node_id for a in stored}))
        baselines: dict[NodeId, tuple[Decimal, ...]] = {}
        actuals: dict[NodeId, tuple[Decimal | None, ...]] = {}
        unmeasured: dict[str, str] = {}
        for node_id, node in nodes.items():
            series = await _node_series(tx, await _meters(market, node), request, blocks)
            history, event_day, actual = metering.split(series, blocks)
            try:
                baselines[node_id] = method.estimate(history, event_day, blocks)
            except InsufficientData as err:
                unmeasured[node_id] = err.message
                continue
            actuals[node_id] = actual
        found = baseline.delivered(stored, baselines, actuals, method=method)
        for delivery in found:
            await market.deliveries.add(request_id, delivery, method.params(), now)
        await advance(market, request, RequestStatus.MEASURED, actor, now)
        await audit(market, actor, "market.request.deliveries", request_id, now,
                    method=baseline.describe(method), deliveries=len(found),
                    unmeasured=unmeasured)  # fmt: skip
    return found
