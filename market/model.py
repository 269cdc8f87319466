"""The local flexibility market's vocabulary, in USEF/UFTP terms: pure values, no I/O.

A DSO publishes a `FlexRequest` for one congestion point: kW of reduction needed per ISP (time
block, 15 minutes by default) with a price cap and a gate closure time. Aggregators answer with
`Bid`s (UFTP FlexOffer) from their virtual end nodes. Clearing turns bids into `Award`s (UFTP
FlexOrder, with an activation factor); each award is dispatched to its node as an OpenADR
LOAD_DISPATCH event, measured against a baseline and settled (UFTP FlexSettlement).

Units: power in kW (positive = reduction of grid import, the direction the DSO buys), energy in
kWh, money in EUR; every market quantity is a `Decimal`. Times are aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import NewType

from oadr.model import VenId

AggregatorId = NewType("AggregatorId", str)
CongestionPointId = NewType("CongestionPointId", str)
NodeId = NewType("NodeId", str)  # a virtual end node
ProsumerId = NewType("ProsumerId", str)  # one prosumer's resource (its gateway's VEN)
RequestId = NewType("RequestId", str)
BidId = NewType("BidId", str)

DEFAULT_ISP = timedelta(minutes=15)
CENT = Decimal("0.01")  # EUR has two decimals: amounts are quantized to this
PRICE_QUANTUM = Decimal("0.0001")  # prices in EUR/kWh carry at most four decimals
KW_QUANTUM = Decimal("0.001")  # volumes in kW carry at most three decimals (1 W)


class RequestStatus(StrEnum):
    """A flex request's life: each step is stored and audited; none is skipped."""

    OPEN = "open"  # bids may be submitted and revised
    CLOSED = "closed"  # gate closure passed; no more bids
    CLEARED = "cleared"  # awards decided
    DISPATCHED = "dispatched"  # awards sent as OpenADR events
    MEASURED = "measured"  # delivery computed against baselines
    SETTLED = "settled"  # statements issued
    CANCELLED = "cancelled"  # withdrawn by the DSO before clearing


class Pricing(StrEnum):
    PAY_AS_BID = "pay-as-bid"  # each award is paid its own bid price (default)
    PAY_AS_CLEAR = "pay-as-clear"  # every award in a block is paid that block's marginal price


@dataclass(frozen=True, slots=True, kw_only=True)
class CongestionPoint:
    """A feeder or transformer the DSO watches: the resources under it share its capacity."""

    point_id: CongestionPointId
    name: str
    capacity_kw: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Aggregator:
    aggregator_id: AggregatorId
    name: str
    fingerprint: str | None = None  # its certificate (role `aggregator`), if it has one


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualEndNode:
    """An aggregator's portfolio of prosumers under one congestion point; one VEN to the DSO."""

    node_id: NodeId
    aggregator_id: AggregatorId
    point_id: CongestionPointId
    name: str
    ven_id: VenId | None = None  # the venID its upstream VEN registered with at the VTN


@dataclass(frozen=True, slots=True, kw_only=True)
class Membership:
    """A prosumer in a node, with the consent that allows it (no consent, no membership)."""

    node_id: NodeId
    prosumer_id: ProsumerId
    consent_ref: str  # where the prosumer's signed consent is kept
    joined_at: datetime
    left_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FlexRequest:
    """What the DSO needs: `needed_kw[i]` of reduction in block i, starting at `start`."""

    request_id: RequestId
    point_id: CongestionPointId
    start: datetime
    isp: timedelta
    needed_kw: tuple[Decimal, ...]
    price_cap_eur_per_kwh: Decimal
    gate_closure: datetime
    pricing: Pricing = Pricing.PAY_AS_BID
    status: RequestStatus = RequestStatus.OPEN
    created_at: datetime

    @property
    def end(self) -> datetime:
        return self.start + self.isp * len(self.needed_kw)

    def block_start(self, index: int) -> datetime:
        return self.start + self.isp * index

    @property
    def block_hours(self) -> Decimal:
        """One block's length in hours: kW x block_hours = kWh."""
        return Decimal(int(self.isp.total_seconds())) / Decimal(3600)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bid:
    """A FlexOffer from one node: `offered_kw[i]` in block i (zero where it offers nothing)."""

    bid_id: BidId
    request_id: RequestId
    node_id: NodeId
    aggregator_id: AggregatorId
    offered_kw: tuple[Decimal, ...]
    price_eur_per_kwh: Decimal
    divisible: bool  # False: all-or-nothing across all its blocks
    valid_until: datetime
    submitted_at: datetime
    revision: int = 1  # revisable until gate closure; the latest revision counts


@dataclass(frozen=True, slots=True, kw_only=True)
class Award:
    """A FlexOrder: what was bought from one bid, and at what price."""

    request_id: RequestId
    bid_id: BidId
    node_id: NodeId
    aggregator_id: AggregatorId
    awarded_kw: tuple[Decimal, ...]  # per block, <= the bid's offered_kw
    price_eur_per_kwh: Decimal  # the price paid (bid price, or the block's clearing price)
    activation_factor: Decimal  # awarded energy / offered energy, 0 < factor <= 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """Measured delivery of one award in one block: delivered = baseline - actual (kW)."""

    bid_id: BidId
    node_id: NodeId
    block: int
    baseline_kw: Decimal
    actual_kw: Decimal
    method: str  # the baseline method and its parameters, recorded with the settlement

    @property
    def delivered_kw(self) -> Decimal:
        return self.baseline_kw - self.actual_kw
