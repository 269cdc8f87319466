"""Repositories of the market's grid model and accounts: congestion points and the prosumer
resources under them, aggregators, virtual end nodes and their consented memberships.

They map rows to `market.model` values and back and decide nothing: the rules (one active node
per prosumer and congestion point, nodes only under known points) live in `market.service`; the
database's unique constraint is only the last guard against a race.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from market.model import (
    Aggregator,
    AggregatorId,
    CongestionPoint,
    CongestionPointId,
    Membership,
    NodeId,
    ProsumerId,
    VirtualEndNode,
)
from market.store.tables import (
    market_aggregators,
    market_memberships,
    market_nodes,
    market_point_resources,
    market_points,
)
from oadr.model import VenId


@dataclass(frozen=True, slots=True, kw_only=True)
class PointResource:
    """A prosumer resource placed under a congestion point by the DSO's grid model."""

    prosumer_id: ProsumerId
    point_id: CongestionPointId
    ven_id: VenId | None  # its gateway's venID at this VTN, whose telemetry measures it
    added_at: datetime


def _node(row: RowMapping) -> VirtualEndNode:
    return VirtualEndNode(
        node_id=NodeId(row["node_id"]),
        aggregator_id=AggregatorId(row["aggregator_id"]),
        point_id=CongestionPointId(row["point_id"]),
        name=row["name"],
        ven_id=None if row["ven_id"] is None else VenId(row["ven_id"]),
    )


def _membership(row: RowMapping) -> Membership:
    return Membership(
        node_id=NodeId(row["node_id"]),
        prosumer_id=ProsumerId(row["prosumer_id"]),
        consent_ref=row["consent_ref"],
        joined_at=row["joined_at"],
        left_at=row["left_at"],
    )


class Grid:
    """Congestion points and the resources under them."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add_point(self, point: CongestionPoint, now: datetime) -> None:
        await self.connection.execute(
            insert(market_points).values(
                point_id=point.point_id,
                name=point.name,
                capacity_kw=point.capacity_kw,
                created_at=now,
            )
        )

    async def point(self, point_id: str) -> CongestionPoint | None:
        query = select(market_points).where(market_points.c.point_id == point_id)
        row = (await self.connection.execute(query)).mappings().first()
        return None if row is None else _point(row)

    async def points(self) -> list[CongestionPoint]:
        query = select(market_points).order_by(market_points.c.point_id)
        return [_point(row) for row in (await self.connection.execute(query)).mappings()]

    async def add_resource(self, resource: PointResource) -> None:
        await self.connection.execute(
            insert(market_point_resources).values(
                prosumer_id=resource.prosumer_id,
                point_id=resource.point_id,
                ven_id=resource.ven_id,
                added_at=resource.added_at,
            )
        )

    async def resource(self, prosumer_id: str) -> PointResource | None:
        query = select(market_point_resources).where(
            market_point_resources.c.prosumer_id == prosumer_id
        )
        row = (await self.connection.execute(query)).mappings().first()
        return None if row is None else _resource(row)

    async def resources(self, point_id: str) -> list[PointResource]:
        query = (
            select(market_point_resources)
            .where(market_point_resources.c.point_id == point_id)
            .order_by(market_point_resources.c.prosumer_id)
        )
        return [_resource(row) for row in (await self.connection.execute(query)).mappings()]


def _point(row: RowMapping) -> CongestionPoint:
    return CongestionPoint(
        point_id=CongestionPointId(row["point_id"]),
        name=row["name"],
        capacity_kw=row["capacity_kw"],
    )


def _resource(row: RowMapping) -> PointResource:
    return PointResource(
        prosumer_id=ProsumerId(row["prosumer_id"]),
        point_id=CongestionPointId(row["point_id"]),
        ven_id=None if row["ven_id"] is None else VenId(row["ven_id"]),
        added_at=row["added_at"],
    )


class Aggregators:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, aggregator: Aggregator, now: datetime) -> None:
        await self.connection.execute(
            insert(market_aggregators).values(
                aggregator_id=aggregator.aggregator_id,
                name=aggregator.name,
                fingerprint=aggregator.fingerprint,
                created_at=now,
            )
        )

    async def get(self, aggregator_id: str) -> Aggregator | None:
        query = select(market_aggregators).where(
            market_aggregators.c.aggregator_id == aggregator_id
        )
        row = (await self.connection.execute(query)).mappings().first()
        return None if row is None else _aggregator(row)

    async def all(self) -> list[Aggregator]:
        query = select(market_aggregators).order_by(market_aggregators.c.aggregator_id)
        return [_aggregator(row) for row in (await self.connection.execute(query)).mappings()]


def _aggregator(row: RowMapping) -> Aggregator:
    return Aggregator(
        aggregator_id=AggregatorId(row["aggregator_id"]),
        name=row["name"],
        fingerprint=row["fingerprint"],
    )


class Nodes:
    """Virtual end nodes and their memberships (kept after a prosumer leaves)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, node: VirtualEndNode, now: datetime) -> None:
        await self.connection.execute(
            insert(market_nodes).values(
                node_id=node.node_id,
                aggregator_id=node.aggregator_id,
                point_id=node.point_id,
                name=node.name,
                ven_id=node.ven_id,
                created_at=now,
            )
        )

    async def get(self, node_id: str) -> VirtualEndNode | None:
        query = select(market_nodes).where(market_nodes.c.node_id == node_id)
        row = (await self.connection.execute(query)).mappings().first()
        return None if row is None else _node(row)

    async def page(self, *, aggregator_id: str | None = None) -> list[VirtualEndNode]:
        query = select(market_nodes).order_by(market_nodes.c.node_id)
        if aggregator_id is not None:
            query = query.where(market_nodes.c.aggregator_id == aggregator_id)
        return [_node(row) for row in (await self.connection.execute(query)).mappings()]

    async def by_ids(self, node_ids: Sequence[str]) -> dict[NodeId, VirtualEndNode]:
        if not node_ids:
            return {}
        query = select(market_nodes).where(market_nodes.c.node_id.in_(list(node_ids)))
        nodes = [_node(row) for row in (await self.connection.execute(query)).mappings()]
        return {node.node_id: node for node in nodes}

    async def join(self, membership: Membership, point_id: CongestionPointId) -> None:
        await self.connection.execute(
            insert(market_memberships).values(
                node_id=membership.node_id,
                prosumer_id=membership.prosumer_id,
                consent_ref=membership.consent_ref,
                joined_at=membership.joined_at,
                left_at=None,
                active_point_id=point_id,
            )
        )

    async def leave(self, node_id: str, prosumer_id: str, now: datetime) -> bool:
        result = await self.connection.execute(
            update(market_memberships)
            .where(
                and_(
                    market_memberships.c.node_id == node_id,
                    market_memberships.c.prosumer_id == prosumer_id,
                    market_memberships.c.left_at.is_(None),
                )
            )
            .values(left_at=now, active_point_id=None)
        )
        return bool(result.rowcount)

    async def members(self, node_id: str, *, active_only: bool = True) -> list[Membership]:
        query = (
            select(market_memberships)
            .where(market_memberships.c.node_id == node_id)
            .order_by(market_memberships.c.id)
        )
        if active_only:
            query = query.where(market_memberships.c.left_at.is_(None))
        return [_membership(row) for row in (await self.connection.execute(query)).mappings()]

    async def active_membership(self, prosumer_id: str, point_id: str) -> Membership | None:
        """The prosumer's active membership in any node under this congestion point."""
        query = select(market_memberships).where(
            and_(
                market_memberships.c.prosumer_id == prosumer_id,
                market_memberships.c.active_point_id == point_id,
            )
        )
        row = (await self.connection.execute(query)).mappings().first()
        return None if row is None else _membership(row)
