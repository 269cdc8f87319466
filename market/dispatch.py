"""Dispatch: each award (UFTP FlexOrder) becomes one OpenADR event to its node's VEN (issue 8).

The event carries one LOAD_DISPATCH signal of type `delta` in kW (OpenADR 2.0b profile spec,
signal table: LOAD_DISPATCH delta = "change in load relative to the baseline"), one interval per
ISP block of the request, valued at minus the awarded kW: power is positive when drawn from the
grid, and the order is a reduction. We chose LOAD_DISPATCH over SIMPLE because the award is an
amount of kW per block, which SIMPLE's levels 0-3 cannot carry. It is targeted at the node's
venID only, and goes through the VTN's own event service (`vtn.services.operator`), so delivery,
push, opt tracking and the audit log are the VTN's. Its eventID is derived from the request and
bid, so dispatching again after a crash finds the event already made instead of doubling it.

`event_for` is pure; `opt_status` reads what the node's VEN answered.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from market.model import Award, FlexRequest, VirtualEndNode
from oadr.enums import EventStatus, ItemKind, OptType, ResponseRequired, SignalName, SignalType
from oadr.model import (
    ActivePeriod,
    Event,
    EventId,
    EventInterval,
    EventSignal,
    ItemBase,
    PowerAttributes,
    Target,
    VenId,
)
from vtn.store.db import Tx

KW = ItemBase(
    kind=ItemKind.POWER_REAL,
    description="RealPower",
    units="W",
    scale="k",
    power_attributes=PowerAttributes(hertz=50.0, voltage=230.0, ac=True),
)


def event_id_for(award: Award) -> EventId:
    """A stable eventID per (request, bid): short enough for any store, the same every time."""
    digest = hashlib.sha256(f"{award.request_id}\0{award.bid_id}".encode()).hexdigest()
    return EventId(f"flex-order-{digest[:24]}")


def event_for(
    request: FlexRequest,
    award: Award,
    node: VirtualEndNode,
    ven_id: VenId,
    *,
    market_context: str,
    now: datetime,
) -> Event:
    """The LOAD_DISPATCH event that orders `award` from `node` (module docstring)."""
    intervals = tuple(
        EventInterval(uid=index, duration=request.isp, value=-float(kw))
        for index, kw in enumerate(award.awarded_kw)
    )
    signal = EventSignal(
        signal_name=SignalName.LOAD_DISPATCH,
        signal_type=SignalType.DELTA,
        signal_id="flex-order",
        intervals=intervals,
        item_base=KW,
    )
    return Event(
        event_id=event_id_for(award),
        modification_number=0,
        market_context=market_context,
        created=now,
        status=EventStatus.FAR,
        active_period=ActivePeriod(start=request.start, duration=request.end - request.start),
        signals=(signal,),
        target=Target(ven_ids=(ven_id,)),
        response_required=ResponseRequired.ALWAYS,
        vtn_comment=f"flex order: request {request.request_id}, bid {award.bid_id}, "
        f"node {node.node_id}",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class OptStatus:
    """What the node's VEN did with the award's event."""

    ven_id: VenId
    delivered_at: datetime | None  # when the VTN sent it (poll or push); None: not yet
    opt: OptType | None  # optIn/optOut once answered
    responded_at: datetime | None


async def opt_status(tx: Tx, event_id: str, ven_id: VenId) -> OptStatus:
    for sent in await tx.deliveries.for_event(event_id):
        if sent.ven_id == ven_id:
            return OptStatus(
                ven_id=ven_id,
                delivered_at=sent.delivered_at,
                opt=sent.opt_type,
                responded_at=sent.responded_at,
            )
    return OptStatus(ven_id=ven_id, delivered_at=None, opt=None, responded_at=None)
