"""Who trades and where: the DSO's grid model (congestion points, the resources under them),
aggregator accounts with their API tokens, virtual end nodes and consented memberships.

Each operation loads, checks, saves and audits in one VTN transaction, so what it returns is
committed. An `Actor` is the caller: the DSO (operator token) or one aggregator (its token's
subject); an aggregator sees and changes only its own nodes (issue 8).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from market.errors import Conflict, Forbidden, MarketError, NotFound
from market.model import (
    Aggregator,
    AggregatorId,
    CongestionPoint,
    Membership,
    NodeId,
    ProsumerId,
    VirtualEndNode,
)
from market.store import Market, PointResource
from oadr.model import VenId
from vtn.admin import tokens
from vtn.admin.tokens import TokenRole
from vtn.store.audit import AuditEntry
from vtn.store.db import Store


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller: `name` for the audit log; `aggregator_id` None means the DSO."""

    name: str
    aggregator_id: AggregatorId | None = None

    @property
    def is_dso(self) -> bool:
        return self.aggregator_id is None

    def may_see(self, aggregator_id: str) -> bool:
        return self.aggregator_id is None or self.aggregator_id == aggregator_id

    def require_dso(self, what: str) -> None:
        if not self.is_dso:
            raise Forbidden(f"only the DSO may {what}")


async def audit(
    market: Market, actor: Actor, action: str, subject: str, now: datetime, **detail: Any
) -> None:
    await market.tx.audit.add(
        AuditEntry(at=now, actor=actor.name, action=action, subject=subject, detail=detail)
    )


# --- grid model -----------------------------------------------------------------------------------


async def create_point(
    store: Store, point: CongestionPoint, *, actor: Actor, now: datetime
) -> CongestionPoint:
    actor.require_dso("define congestion points")
    if point.capacity_kw <= 0:
        raise MarketError(f"capacity_kw must be positive, not {point.capacity_kw}")
    async with store.transaction() as tx:
        market = Market.on(tx)
        if await market.grid.point(point.point_id) is not None:
            raise Conflict(f"congestion point {point.point_id!r} already exists")
        await market.grid.add_point(point, now)
        await audit(market, actor, "market.point.create", point.point_id, now,
                    capacity_kw=str(point.capacity_kw))  # fmt: skip
    return point


async def add_resource(
    store: Store, resource: PointResource, *, actor: Actor, now: datetime
) -> PointResource:
    """Place a prosumer resource under a congestion point (it sits under one point only)."""
    actor.require_dso("change the grid model")
    async with store.transaction() as tx:
        market = Market.on(tx)
        if await market.grid.point(resource.point_id) is None:
            raise NotFound(f"no congestion point {resource.point_id!r}")
        placed = await market.grid.resource(resource.prosumer_id)
        if placed is not None:
            raise Conflict(
                f"prosumer {resource.prosumer_id!r} already sits under {placed.point_id!r}"
            )
        resource = replace(resource, added_at=now)
        await market.grid.add_resource(resource)
        await audit(market, actor, "market.point.resource", resource.point_id, now,
                    prosumer_id=resource.prosumer_id, ven_id=resource.ven_id)  # fmt: skip
    return resource


async def points(store: Store) -> list[tuple[CongestionPoint, list[PointResource]]]:
    async with store.transaction() as tx:
        market = Market.on(tx)
        return [(p, await market.grid.resources(p.point_id)) for p in await market.grid.points()]


# --- aggregators ----------------------------------------------------------------------------------


async def create_aggregator(
    store: Store, aggregator: Aggregator, *, actor: Actor, now: datetime
) -> str:
    """Open an aggregator's account; returns its first API token (shown once, stored hashed)."""
    actor.require_dso("open aggregator accounts")
    made = tokens.new_token(
        f"aggregator:{aggregator.aggregator_id}", TokenRole.AGGREGATOR, now,
        subject=aggregator.aggregator_id,
    )  # fmt: skip
    async with store.transaction() as tx:
        market = Market.on(tx)
        if await market.aggregators.get(aggregator.aggregator_id) is not None:
            raise Conflict(f"aggregator {aggregator.aggregator_id!r} already exists")
        await market.aggregators.add(aggregator, now)
        await tx.tokens.add(made.record)
        await audit(market, actor, "market.aggregator.create", aggregator.aggregator_id, now,
                    token_id=made.record.token_id)  # fmt: skip
    return made.token


async def aggregators(store: Store, *, actor: Actor) -> list[Aggregator]:
    async with store.transaction() as tx:
        found = await Market.on(tx).aggregators.all()
    return [a for a in found if actor.may_see(a.aggregator_id)]


# --- virtual end nodes ----------------------------------------------------------------------------


async def create_node(
    store: Store, node: VirtualEndNode, *, actor: Actor, now: datetime
) -> VirtualEndNode:
    if not actor.may_see(node.aggregator_id):
        raise Forbidden(f"an aggregator registers nodes for itself, not {node.aggregator_id!r}")
    async with store.transaction() as tx:
        market = Market.on(tx)
        if await market.aggregators.get(node.aggregator_id) is None:
            raise NotFound(f"no aggregator {node.aggregator_id!r}")
        if await market.grid.point(node.point_id) is None:
            raise NotFound(f"no congestion point {node.point_id!r}")
        if await market.nodes.get(node.node_id) is not None:
            raise Conflict(f"node {node.node_id!r} already exists")
        if node.ven_id is not None and any(
            other.ven_id == node.ven_id for other in await market.nodes.page()
        ):
            raise Conflict(f"venID {node.ven_id!r} already stands for another node")
        await market.nodes.add(node, now)
        await audit(market, actor, "market.node.create", node.node_id, now,
                    aggregator_id=node.aggregator_id, point_id=node.point_id)  # fmt: skip
    return node


async def owned_node(market: Market, node_id: str, actor: Actor) -> VirtualEndNode:
    """The node, if the caller may act on it: 404 unknown, 403 another aggregator's."""
    node = await market.nodes.get(node_id)
    if node is None:
        raise NotFound(f"no node {node_id!r}")
    if not actor.may_see(node.aggregator_id):
        raise Forbidden(f"node {node_id!r} belongs to another aggregator")
    return node


async def nodes(store: Store, *, actor: Actor) -> list[VirtualEndNode]:
    async with store.transaction() as tx:
        return await Market.on(tx).nodes.page(aggregator_id=actor.aggregator_id)


async def node_detail(
    store: Store, node_id: str, *, actor: Actor
) -> tuple[VirtualEndNode, list[Membership]]:
    async with store.transaction() as tx:
        market = Market.on(tx)
        node = await owned_node(market, node_id, actor)
        return node, await market.nodes.members(node_id, active_only=False)


async def add_member(
    store: Store,
    node_id: NodeId,
    prosumer_id: ProsumerId,
    consent_ref: str,
    *,
    actor: Actor,
    now: datetime,
) -> Membership:
    """A prosumer joins a node: only with recorded consent, only a resource the grid model puts
    under the node's congestion point, and in at most one active node per point (no double
    counting of the same flexibility)."""
    if not consent_ref.strip():
        raise MarketError("a prosumer joins only with recorded consent: consent_ref is empty")
    async with store.transaction() as tx:
        market = Market.on(tx)
        node = await owned_node(market, node_id, actor)
        resource = await market.grid.resource(prosumer_id)
        if resource is None:
            raise NotFound(f"prosumer {prosumer_id!r} is not in the grid model")
        if resource.point_id != node.point_id:
            raise Conflict(
                f"prosumer {prosumer_id!r} sits under {resource.point_id!r}, "
                f"not under the node's congestion point {node.point_id!r}"
            )
        active = await market.nodes.active_membership(prosumer_id, node.point_id)
        if active is not None:
            where = "this node" if active.node_id == node_id else "another node"
            raise Conflict(
                f"prosumer {prosumer_id!r} is already in {where} under {node.point_id!r}"
            )
        membership = Membership(
            node_id=node_id, prosumer_id=prosumer_id, consent_ref=consent_ref, joined_at=now
        )
        await market.nodes.join(membership, node.point_id)
        await audit(market, actor, "market.node.join", node_id, now,
                    prosumer_id=prosumer_id, consent_ref=consent_ref)  # fmt: skip
    return membership


async def remove_member(
    store: Store, node_id: NodeId, prosumer_id: ProsumerId, *, actor: Actor, now: datetime
) -> None:
    async with store.transaction() as tx:
        market = Market.on(tx)
        await owned_node(market, node_id, actor)
        if not await market.nodes.leave(node_id, prosumer_id, now):
            raise NotFound(f"prosumer {prosumer_id!r} is not an active member of {node_id!r}")
        await audit(market, actor, "market.node.leave", node_id, now, prosumer_id=prosumer_id)


@dataclass(frozen=True)
class MarketGrid:
    """The grid model as the forecast reads it (`forecast.trigger.Grid`): the congestion points,
    and the venIDs of the prosumer gateways under each."""

    store: Store

    async def points(self) -> list[CongestionPoint]:
        async with self.store.transaction() as tx:
            return await Market.on(tx).grid.points()

    async def members(self, point_id: str) -> list[VenId]:
        async with self.store.transaction() as tx:
            resources = await Market.on(tx).grid.resources(point_id)
        return [r.ven_id for r in resources if r.ven_id is not None]
