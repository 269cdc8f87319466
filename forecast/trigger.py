"""How a red window becomes an action: a market FlexRequest or a direct OpenADR event.

`Trigger` is what the forecast service calls; `VtnTrigger` implements it on the VTN: an event
goes through the operator's event service (`vtn.services.operator.create_event`: validated,
stored, audited, pushed to the VENs it targets, as if the operator had made it), and a flex
request goes to the market through `FlexMarket`, a Protocol the market's service is adapted to
where the parts are wired (the forecast never imports the market's service): `MarketRequests`
is that adapter, given the service's create_request bound to its store and the DSO's actor.

Which VENs are under a congestion point is the market's grid model; `Grid` is the little of it
the forecast needs (`StaticGrid` serves tests and the CLI until the lead wires the market's).

The event: one SIMPLE level signal over the window with one interval per ISP, level 1, 2 or 3
by how far the forecast exceeds the capacity (up to 10 %, up to 25 %, beyond: OpenADR 2.0b
§8.1 SIMPLE levels moderate/high/special), targeted at the point's VENs by venID. Its eventID
is the window's action id, so a retried run cannot create it twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from market.errors import Conflict
from market.model import KW_QUANTUM, CongestionPoint, CongestionPointId, FlexRequest, RequestId
from oadr.enums import EventStatus, SignalName, SignalType
from oadr.errors import InvalidId
from oadr.model import ActivePeriod, Event, EventId, EventInterval, EventSignal, Target, VenId
from vtn.services import operator
from vtn.services.context import Context

MARKET_CONTEXT = "http://flex4grid.eu/congestion"


class Grid(Protocol):
    """The congestion points and the VENs under each (the market's grid model)."""

    async def points(self) -> Sequence[CongestionPoint]: ...

    async def members(self, point_id: str) -> Sequence[VenId]: ...


@dataclass(frozen=True)
class StaticGrid:
    """A fixed grid model: for tests, the CLI and deployments without the market."""

    congestion_points: tuple[CongestionPoint, ...]
    ven_ids: Mapping[str, tuple[VenId, ...]] = field(default_factory=dict)

    async def points(self) -> Sequence[CongestionPoint]:
        return self.congestion_points

    async def members(self, point_id: str) -> Sequence[VenId]:
        return self.ven_ids.get(point_id, ())


class FlexMarket(Protocol):
    """The market's "create a flex request" (market/service.py), adapted where it is wired."""

    async def create_flex_request(
        self,
        *,
        point_id: str,
        start: datetime,
        isp: timedelta,
        needed_kw: tuple[Decimal, ...],
        gate_closure: datetime,
        reference: str,
        actor: str,
        now: datetime,
    ) -> str:
        """Open a request; returns its id. `reference` is the forecast's action id, for
        the market's own idempotency and its audit trail."""
        ...


class Trigger(Protocol):
    async def request_flex(
        self,
        point_id: str,
        window_start: datetime,
        needed_kw: Sequence[float],
        *,
        isp: timedelta,
        gate_closure: datetime,
        reference: str,
        actor: str,
        now: datetime,
    ) -> str: ...

    async def create_event(
        self,
        point_id: str,
        window_start: datetime,
        needed_kw: Sequence[float],
        *,
        isp: timedelta,
        capacity_kw: float,
        reference: str,
        actor: str,
        now: datetime,
    ) -> str: ...


def level(needed_kw: float, capacity_kw: float) -> int:
    """SIMPLE level for an excess over capacity: 1 up to 10 %, 2 up to 25 %, 3 beyond."""
    share = needed_kw / capacity_kw if capacity_kw > 0 else 1.0
    return 1 if share <= 0.10 else 2 if share <= 0.25 else 3


def congestion_event(
    reference: str,
    window_start: datetime,
    needed_kw: Sequence[float],
    *,
    isp: timedelta,
    capacity_kw: float,
    ven_ids: Sequence[VenId],
    now: datetime,
    market_context: str = MARKET_CONTEXT,
) -> Event:
    """The OpenADR event for one red window (pure)."""
    if not ven_ids:
        # An event without a target reaches every VEN of the VTN: never for one feeder.
        raise ValueError("no VENs under this congestion point: nobody to send an event to")
    intervals = tuple(
        EventInterval(uid=i, duration=isp, value=float(level(kw, capacity_kw)))
        for i, kw in enumerate(needed_kw)
    )
    return Event(
        event_id=EventId(reference),
        modification_number=0,
        market_context=market_context,
        created=now,
        status=EventStatus.FAR,
        active_period=ActivePeriod(start=window_start, duration=isp * len(needed_kw)),
        signals=(
            EventSignal(
                signal_name=SignalName.SIMPLE,
                signal_type=SignalType.LEVEL,
                signal_id="congestion",
                intervals=intervals,
                current_value=0.0,
            ),
        ),
        target=Target(ven_ids=tuple(ven_ids)),
        vtn_comment=f"forecast congestion, {max(needed_kw):.1f} kW over capacity at peak",
    )


@dataclass(frozen=True)
class VtnTrigger:
    context: Context
    grid: Grid
    market: FlexMarket | None = None
    market_context: str = MARKET_CONTEXT

    async def create_event(
        self,
        point_id: str,
        window_start: datetime,
        needed_kw: Sequence[float],
        *,
        isp: timedelta,
        capacity_kw: float,
        reference: str,
        actor: str,
        now: datetime,
    ) -> str:
        event = congestion_event(
            reference,
            window_start,
            needed_kw,
            isp=isp,
            capacity_kw=capacity_kw,
            ven_ids=await self.grid.members(point_id),
            now=now,
            market_context=self.market_context,
        )
        try:
            created = await operator.create_event(self.context, event, actor=actor, now=now)
        except InvalidId:
            async with self.context.store.transaction() as tx:
                if await tx.events.get(reference) is None:
                    raise
            return reference  # made by an earlier run that crashed before recording it
        return created.event_id

    async def request_flex(
        self,
        point_id: str,
        window_start: datetime,
        needed_kw: Sequence[float],
        *,
        isp: timedelta,
        gate_closure: datetime,
        reference: str,
        actor: str,
        now: datetime,
    ) -> str:
        if self.market is None:
            raise LookupError("the policy asks for flex requests but no market is wired")
        return await self.market.create_flex_request(
            point_id=point_id,
            start=window_start,
            isp=isp,
            needed_kw=tuple(Decimal(str(kw)).quantize(KW_QUANTUM) for kw in needed_kw),
            gate_closure=gate_closure,
            reference=reference,
            actor=actor,
            now=now,
        )


# The market service's "publish a request", bound to its store and the DSO's actor where the
# parts are wired: `lambda request, now: market_service.create_request(store, request,
# actor=dso, now=now)`.
Publish = Callable[[FlexRequest, datetime], Awaitable[FlexRequest]]


@dataclass(frozen=True)
class MarketRequests:
    """`FlexMarket` on the market's service: a red window becomes a `FlexRequest` whose id is
    the window's action id, so a retried run meets the market's duplicate check (Conflict), and
    that is taken as "already published"."""

    publish: Publish
    price_cap_eur_per_kwh: Decimal

    async def create_flex_request(
        self,
        *,
        point_id: str,
        start: datetime,
        isp: timedelta,
        needed_kw: tuple[Decimal, ...],
        gate_closure: datetime,
        reference: str,
        actor: str,
        now: datetime,
    ) -> str:
        request = FlexRequest(
            request_id=RequestId(reference),
            point_id=CongestionPointId(point_id),
            start=start,
            isp=isp,
            needed_kw=needed_kw,
            price_cap_eur_per_kwh=self.price_cap_eur_per_kwh,
            gate_closure=gate_closure,
            created_at=now,
        )
        try:
            published = await self.publish(request, now)
        except Conflict:
            return reference  # published by an earlier run that died before recording it
        return published.request_id
