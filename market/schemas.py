"""The market API's JSON: request bodies (pydantic, validated at the edge) and replies.

Bodies only check shape and types (a number is a number, a time carries its zone); the market's
rules (no negative volume, at most four decimals in a price, gate closure, ownership) are the
service's and the pure modules', so they answer with their own status and reason. Decimals
travel as JSON strings in replies, so 0.1234 EUR/kWh is never a float on the wire.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from market.model import (
    DEFAULT_ISP,
    Aggregator,
    Award,
    Bid,
    CongestionPoint,
    FlexRequest,
    Membership,
    Pricing,
    RequestStatus,
    VirtualEndNode,
)
from market.store.grid import PointResource
from oadr.enums import OptType

_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"  # ids appear in URLs and CSV: keep them plain


def _id() -> Any:
    return Field(min_length=1, max_length=128, pattern=_ID_PATTERN)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PointCreate(_Body):
    point_id: str = _id()
    name: str = Field(min_length=1, max_length=255)
    capacity_kw: Decimal = Field(allow_inf_nan=False)


class ResourceAdd(_Body):
    prosumer_id: str = _id()
    ven_id: str | None = Field(default=None, description="its gateway's venID (telemetry)")


class AggregatorCreate(_Body):
    aggregator_id: str = _id()
    name: str = Field(min_length=1, max_length=255)
    fingerprint: str | None = Field(default=None, description="its certificate, if any")


class NodeCreate(_Body):
    node_id: str = _id()
    point_id: str
    name: str = Field(min_length=1, max_length=255)
    ven_id: str | None = Field(default=None, description="the node's upstream VEN's venID")
    aggregator_id: str | None = Field(
        default=None, description="whose node; an aggregator's token implies its own"
    )


class MemberAdd(_Body):
    prosumer_id: str
    consent_ref: str = Field(max_length=1024, description="where the signed consent is kept")


class RequestCreate(_Body):
    request_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=_ID_PATTERN)
    point_id: str
    start: AwareDatetime
    isp: timedelta = DEFAULT_ISP
    needed_kw: list[Decimal] = Field(description="kW of reduction per block")
    price_cap_eur_per_kwh: Decimal = Field(allow_inf_nan=False)
    gate_closure: AwareDatetime
    pricing: Pricing = Pricing.PAY_AS_BID


class BidSubmit(_Body):
    bid_id: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=_ID_PATTERN,
        description="an existing bid id revises that bid (until gate closure)",
    )  # fmt: skip
    node_id: str
    offered_kw: list[Decimal] = Field(description="kW offered per block (0 where none)")
    price_eur_per_kwh: Decimal = Field(allow_inf_nan=False)
    divisible: bool = True
    valid_until: AwareDatetime


class MeasureBody(_Body):
    method: str = Field(default="10-of-10", description="10-of-10, high-x-of-y, "
                        "meter-before-meter-after")  # fmt: skip
    params: dict[str, Any] = Field(default_factory=dict)


class SettleBody(_Body):
    tolerance: Decimal = Field(default=Decimal("0.1"), allow_inf_nan=False)
    penalty_eur_per_kwh: Decimal | None = Field(default=None, allow_inf_nan=False)


# --- replies --------------------------------------------------------------------------------------


class PointOut(BaseModel):
    point: CongestionPoint
    resources: list[PointResource]


class AggregatorCreated(BaseModel):
    aggregator: Aggregator
    token: str = Field(description="the aggregator's API token; shown once")


class NodeDetail(BaseModel):
    node: VirtualEndNode
    members: list[Membership]


class StatusChangeOut(BaseModel):
    status: RequestStatus
    actor: str
    at: datetime


class RequestDetail(BaseModel):
    request: FlexRequest
    history: list[StatusChangeOut]


class Rejected(BaseModel):
    bid_id: str
    reason: str


class ClearingOut(BaseModel):
    awards: list[Award]
    clearing_price_eur_per_kwh: list[Decimal | None]
    rejected: list[Rejected]


class OptOut(BaseModel):
    ven_id: str
    delivered_at: datetime | None
    opt: OptType | None
    responded_at: datetime | None


class AwardOut(BaseModel):
    award: Award
    event_id: str | None
    opt: OptOut | None = Field(description="its event's delivery and the VEN's answer")


class DeliveryOut(BaseModel):
    bid_id: str
    node_id: str
    block: int
    baseline_kw: Decimal
    actual_kw: Decimal
    delivered_kw: Decimal
    method: str


class Statement(BaseModel):
    """A settlement statement (`market.settlement.Statement.to_json()`) and its CSV."""

    model_config = ConfigDict(extra="allow")
    aggregator_id: str
    request_id: str
    period: str
    totals: dict[str, str]
    csv: str


BidOut = Bid
