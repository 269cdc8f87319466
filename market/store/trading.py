"""Repositories of trading: flex requests with their status history, bids (every revision),
awards, measured deliveries and settlement statements. Rows <-> `market.model`; no decisions.

Per-block volumes are JSON lists of exact decimal strings; prices and factors are `DecimalText`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from market.model import (
    AggregatorId,
    Award,
    Bid,
    BidId,
    CongestionPointId,
    Delivery,
    FlexRequest,
    NodeId,
    Pricing,
    RequestId,
    RequestStatus,
)
from market.store.tables import (
    market_awards,
    market_bids,
    market_deliveries,
    market_request_history,
    market_requests,
    market_statements,
)


def _texts(values: Sequence[Decimal]) -> list[str]:
    return [str(value) for value in values]


def _decimals(values: Sequence[str]) -> tuple[Decimal, ...]:
    return tuple(Decimal(value) for value in values)


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChange:
    status: RequestStatus
    actor: str
    at: datetime


def _request(row: RowMapping) -> FlexRequest:
    return FlexRequest(
        request_id=RequestId(row["request_id"]),
        point_id=CongestionPointId(row["point_id"]),
        start=row["starts_at"],
        isp=timedelta(seconds=row["isp_s"]),
        needed_kw=_decimals(row["needed_kw"]),
        price_cap_eur_per_kwh=row["price_cap_eur_per_kwh"],
        gate_closure=row["gate_closure"],
        pricing=Pricing(row["pricing"]),
        status=RequestStatus(row["status"]),
        created_at=row["created_at"],
    )


class Requests:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, request: FlexRequest, actor: str) -> None:
        await self.connection.execute(
            insert(market_requests).values(
                request_id=request.request_id,
                point_id=request.point_id,
                starts_at=request.start,
                isp_s=int(request.isp.total_seconds()),
                needed_kw=_texts(request.needed_kw),
                price_cap_eur_per_kwh=request.price_cap_eur_per_kwh,
                gate_closure=request.gate_closure,
                pricing=request.pricing.value,
                status=request.status.value,
                created_at=request.created_at,
                updated_at=request.created_at,
            )
        )
        await self._history(request.request_id, request.status, actor, request.created_at)

    async def get(self, request_id: str, *, for_update: bool = False) -> FlexRequest | None:
        query = select(market_requests).where(market_requests.c.request_id == request_id)
        if for_update:
            query = query.with_for_update()  # PostgreSQL: one clearer at a time; SQLite: no-op
        row = (await self.connection.execute(query)).mappings().first()
        return None if row is None else _request(row)

    async def page(
        self, *, status: RequestStatus | None = None, offset: int = 0, limit: int = 100
    ) -> list[FlexRequest]:
        query = select(market_requests).order_by(
            market_requests.c.starts_at, market_requests.c.request_id
        )
        if status is not None:
            query = query.where(market_requests.c.status == status.value)
        rows = await self.connection.execute(query.offset(offset).limit(limit))
        return [_request(row) for row in rows.mappings()]

    async def due(self, now: datetime) -> list[RequestId]:
        """Requests still open or closed (not yet cleared) whose gate closure has passed."""
        query = (
            select(market_requests.c.request_id)
            .where(
                and_(
                    market_requests.c.status.in_(
                        [RequestStatus.OPEN.value, RequestStatus.CLOSED.value]
                    ),
                    market_requests.c.gate_closure <= now,
                )
            )
            .order_by(market_requests.c.gate_closure, market_requests.c.request_id)
        )
        return [RequestId(row) for row in (await self.connection.execute(query)).scalars()]

    async def next_gate_closure(self) -> datetime | None:
        query = select(func.min(market_requests.c.gate_closure)).where(
            market_requests.c.status == RequestStatus.OPEN.value
        )
        value: datetime | None = (await self.connection.execute(query)).scalar_one_or_none()
        return value

    async def set_status(
        self, request_id: str, status: RequestStatus, actor: str, now: datetime
    ) -> None:
        await self.connection.execute(
            update(market_requests)
            .where(market_requests.c.request_id == request_id)
            .values(status=status.value, updated_at=now)
        )
        await self._history(request_id, status, actor, now)

    async def history(self, request_id: str) -> list[StatusChange]:
        query = (
            select(market_request_history)
            .where(market_request_history.c.request_id == request_id)
            .order_by(market_request_history.c.id)
        )
        return [
            StatusChange(status=RequestStatus(row["status"]), actor=row["actor"], at=row["at"])
            for row in (await self.connection.execute(query)).mappings()
        ]

    async def _history(
        self, request_id: str, status: RequestStatus, actor: str, at: datetime
    ) -> None:
        await self.connection.execute(
            insert(market_request_history).values(
                request_id=request_id, status=status.value, actor=actor, at=at
            )
        )


def _bid(row: RowMapping) -> Bid:
    return Bid(
        bid_id=BidId(row["bid_id"]),
        request_id=RequestId(row["request_id"]),
        node_id=NodeId(row["node_id"]),
        aggregator_id=AggregatorId(row["aggregator_id"]),
        offered_kw=_decimals(row["offered_kw"]),
        price_eur_per_kwh=row["price_eur_per_kwh"],
        divisible=bool(row["divisible"]),
        valid_until=row["valid_until"],
        submitted_at=row["submitted_at"],
        revision=int(row["revision"]),
    )


class Bids:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, bid: Bid) -> None:
        """Store one revision; earlier revisions stay."""
        await self.connection.execute(
            insert(market_bids).values(
                bid_id=bid.bid_id,
                revision=bid.revision,
                request_id=bid.request_id,
                node_id=bid.node_id,
                aggregator_id=bid.aggregator_id,
                offered_kw=_texts(bid.offered_kw),
                price_eur_per_kwh=bid.price_eur_per_kwh,
                divisible=bid.divisible,
                valid_until=bid.valid_until,
                submitted_at=bid.submitted_at,
            )
        )

    async def latest(self, bid_id: str) -> Bid | None:
        query = (
            select(market_bids)
            .where(market_bids.c.bid_id == bid_id)
            .order_by(market_bids.c.revision.desc())
            .limit(1)
        )
        row = (await self.connection.execute(query)).mappings().first()
        return None if row is None else _bid(row)

    async def revisions(self, bid_id: str) -> list[Bid]:
        query = (
            select(market_bids)
            .where(market_bids.c.bid_id == bid_id)
            .order_by(market_bids.c.revision)
        )
        return [_bid(row) for row in (await self.connection.execute(query)).mappings()]

    async def for_request(
        self, request_id: str, *, aggregator_id: str | None = None, latest_only: bool = True
    ) -> list[Bid]:
        query = select(market_bids).where(market_bids.c.request_id == request_id)
        if aggregator_id is not None:
            query = query.where(market_bids.c.aggregator_id == aggregator_id)
        query = query.order_by(market_bids.c.bid_id, market_bids.c.revision)
        bids = [_bid(row) for row in (await self.connection.execute(query)).mappings()]
        if not latest_only:
            return bids
        latest: dict[BidId, Bid] = {}
        for bid in bids:  # ordered by revision: the last one wins
            latest[bid.bid_id] = bid
        return list(latest.values())


def _award(row: RowMapping) -> Award:
    return Award(
        request_id=RequestId(row["request_id"]),
        bid_id=BidId(row["bid_id"]),
        node_id=NodeId(row["node_id"]),
        aggregator_id=AggregatorId(row["aggregator_id"]),
        awarded_kw=_decimals(row["awarded_kw"]),
        price_eur_per_kwh=row["price_eur_per_kwh"],
        activation_factor=row["activation_factor"],
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredAward:
    award: Award
    event_id: str | None  # set once dispatched


class Awards:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, award: Award, now: datetime) -> None:
        await self.connection.execute(
            insert(market_awards).values(
                request_id=award.request_id,
                bid_id=award.bid_id,
                node_id=award.node_id,
                aggregator_id=award.aggregator_id,
                awarded_kw=_texts(award.awarded_kw),
                price_eur_per_kwh=award.price_eur_per_kwh,
                activation_factor=award.activation_factor,
                event_id=None,
                created_at=now,
            )
        )

    async def for_request(
        self, request_id: str, *, aggregator_id: str | None = None
    ) -> list[StoredAward]:
        query = select(market_awards).where(market_awards.c.request_id == request_id)
        if aggregator_id is not None:
            query = query.where(market_awards.c.aggregator_id == aggregator_id)
        query = query.order_by(market_awards.c.created_at, market_awards.c.bid_id)
        return [
            StoredAward(award=_award(row), event_id=row["event_id"])
            for row in (await self.connection.execute(query)).mappings()
        ]

    async def set_event(self, request_id: str, bid_id: str, event_id: str) -> None:
        await self.connection.execute(
            update(market_awards)
            .where(and_(market_awards.c.request_id == request_id, market_awards.c.bid_id == bid_id))
            .values(event_id=event_id)
        )


class Deliveries:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(
        self,
        request_id: str,
        delivery: Delivery,
        method_params: dict[str, Any],
        now: datetime,
    ) -> None:
        await self.connection.execute(
            insert(market_deliveries).values(
                request_id=request_id,
                bid_id=delivery.bid_id,
                block=delivery.block,
                node_id=delivery.node_id,
                baseline_kw=delivery.baseline_kw,
                actual_kw=delivery.actual_kw,
                method=delivery.method,
                method_params=method_params,
                measured_at=now,
            )
        )

    async def for_request(self, request_id: str) -> list[Delivery]:
        query = (
            select(market_deliveries)
            .where(market_deliveries.c.request_id == request_id)
            .order_by(market_deliveries.c.bid_id, market_deliveries.c.block)
        )
        return [
            Delivery(
                bid_id=BidId(row["bid_id"]),
                node_id=NodeId(row["node_id"]),
                block=int(row["block"]),
                baseline_kw=row["baseline_kw"],
                actual_kw=row["actual_kw"],
                method=row["method"],
            )
            for row in (await self.connection.execute(query)).mappings()
        ]


class Statements:
    """Settlement statements as issued: the JSON body (with its CSV rendering beside it)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(
        self, request_id: str, aggregator_id: str, body: dict[str, Any], now: datetime
    ) -> None:
        await self.connection.execute(
            insert(market_statements).values(
                request_id=request_id, aggregator_id=aggregator_id, body=body, created_at=now
            )
        )

    async def page(
        self, *, request_id: str | None = None, aggregator_id: str | None = None
    ) -> list[dict[str, Any]]:
        query = select(market_statements.c.body).order_by(
            market_statements.c.created_at,
            market_statements.c.request_id,
            market_statements.c.aggregator_id,
        )
        if request_id is not None:
            query = query.where(market_statements.c.request_id == request_id)
        if aggregator_id is not None:
            query = query.where(market_statements.c.aggregator_id == aggregator_id)
        return [dict(body) for body in (await self.connection.execute(query)).scalars()]
