"""UFTP (Shapeshifter 3.x) adapter for the DSO role, on the `shapeshifter-uftp` message classes.

Maps our market model to and from the library's messages, so aggregators that already speak
UFTP can trade: `FlexRequest` → UFTP FlexRequest, UFTP FlexOffer → `Bid`s, `Award` → FlexOrder,
`Statement` → FlexSettlement. No transport here: `to_xml`/`from_xml` are the library's
serializer, and sending, signing and service discovery stay with the library's clients.

An adapter, not pure: importing `shapeshifter_uftp` brings in its FastAPI service and asyncio.

Our readings of the mapping:

- Power: UFTP ISP power is in whole watts, positive for more consumption; the DSO buys
  reduction, so our `needed_kw`/`offered_kw`/`awarded_kw` (positive = reduction) become
  negative watts. kW carry 3 decimals, so watts are exact integers.
- Time: a message covers one `Period` (a local day in `UftpContext.time_zone`); ISPs are
  numbered from 1 at local midnight, counting real ISPs (so DST days have 92 or 100). A request
  crossing local midnight cannot be one message and is refused.
- Prices: a UFTP offer option's and order's `Price` is the total for the option or order in EUR
  (4 decimals); ours is EUR/kWh. Option price = bid price x offered kWh; a FlexOffer option's
  EUR/kWh is its price / offered kWh, rounded half-even to 4 decimals.
- Divisibility: `MinActivationFactor` 1.00 is all-or-nothing; anything lower is divisible.
- FlexOrder ISPs carry the *awarded* power per ISP; the activation factor (awarded / offered
  energy) is rounded up to UFTP's 2 decimals so it never falls below the offer's minimum. A
  divisible bid cut unevenly across ISPs thus differs from its offer's ISP list, which strict
  Shapeshifter AGRs reject; ours accept it (the factor alone cannot express per-ISP cuts).
- FlexSettlement: one FlexOrderSettlement per award with Price = what is paid for delivered
  energy, Penalty = the shortfall penalty, NetSettlement = Price - Penalty, each the exact sum of
  the statement lines to UFTP's 4 decimals (the statement's own totals are in cents). The library
  insists on at least one ContractSettlement; we send one for the request as "market contract"
  `market:<request id>` with requested and ordered power per ISP.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_UP, Decimal
from typing import Final
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

from shapeshifter_uftp import transport
from shapeshifter_uftp import uftp as uftp_messages
from shapeshifter_uftp.uftp import (
    AvailableRequested,
    ContractSettlement,
    ContractSettlementISP,
    ContractSettlementPeriod,
    FlexOffer,
    FlexOfferOption,
    FlexOfferOptionISP,
    FlexOrder,
    FlexOrderISP,
    FlexOrderSettlement,
    FlexOrderSettlementISP,
    FlexSettlement,
    PayloadMessage,
)
from shapeshifter_uftp.uftp import FlexRequest as UftpFlexRequest
from shapeshifter_uftp.uftp import FlexRequestISP as UftpFlexRequestISP
from xsdata.exceptions import ParserError
from xsdata.models.datatype import XmlDate, XmlDuration

from market.errors import BidRefused, MarketError
from market.model import (
    PRICE_QUANTUM,
    AggregatorId,
    Award,
    Bid,
    BidId,
    CongestionPointId,
    FlexRequest,
    NodeId,
)
from market.settlement import Statement

WATTS_PER_KW: Final = Decimal(1000)
UFTP_QUANTUM: Final = Decimal("0.0001")  # UFTP amounts carry 4 fraction digits
FACTOR_QUANTUM: Final = Decimal("0.01")  # UFTP activation factors carry 2
CURRENCY: Final = "EUR"


@dataclass(frozen=True, slots=True, kw_only=True)
class UftpContext:
    """Market-wide UFTP settings: our domain, the market's zone, how points are addressed."""

    dso_domain: str  # e.g. "dso.flex4grid.example"
    ea_prefix: str  # entity address prefix, e.g. "ea1.2026-01.example.flex4grid"
    time_zone: str = "Europe/Amsterdam"

    def congestion_point(self, point_id: CongestionPointId) -> str:
        """Our congestion point as a UFTP entity address: `<prefix>:<point id>`."""
        return f"{self.ea_prefix}:{point_id}"

    def point_id(self, entity_address: str) -> CongestionPointId:
        prefix, _, point = entity_address.partition(":")
        if prefix != self.ea_prefix or not point:
            raise MarketError(f"congestion point {entity_address!r} is not one of ours")
        return CongestionPointId(point)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """The addressing every UFTP payload message carries."""

    sender_domain: str
    recipient_domain: str
    message_id: str
    conversation_id: str
    time_stamp: datetime

    @classmethod
    def new(
        cls, sender: str, recipient: str, now: datetime, conversation_id: str | None = None
    ) -> Envelope:
        """A fresh message id (UUID4); a new conversation unless one is continued."""
        return cls(
            sender_domain=sender,
            recipient_domain=recipient,
            message_id=str(uuid.uuid4()),
            conversation_id=conversation_id or str(uuid.uuid4()),
            time_stamp=now,
        )

    def fields(self) -> dict[str, str]:
        return {
            "sender_domain": self.sender_domain,
            "recipient_domain": self.recipient_domain,
            "message_id": self.message_id,
            "conversation_id": self.conversation_id,
            "time_stamp": _timestamp(self.time_stamp),
        }


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def to_xml(message: PayloadMessage) -> str:
    """The library's UFTP XML serialization."""
    return str(transport.to_xml(message))


def from_xml(xml: str | bytes) -> PayloadMessage:
    """Parse UFTP XML with the library; refuses what its message classes refuse.

    The root element names the class, which is passed to the parser explicitly: left to find
    it, xsdata would consider every dataclass of that name, our own `FlexRequest` included.
    A DOCTYPE is refused outright (no entities, no external references).
    """
    data = xml.encode() if isinstance(xml, str) else xml
    if b"<!DOCTYPE" in data.upper():
        raise MarketError("a DOCTYPE is not allowed in a UFTP message")
    try:
        _, root = next(ElementTree.iterparse(io.BytesIO(data), events=("start",)))
        tag = root.tag.rpartition("}")[2]
        message_class = _MESSAGE_CLASSES.get(tag)
        if message_class is None:
            raise MarketError(f"not a UFTP payload message: {tag}")
        message = transport.parser.from_bytes(data, message_class)
    except (ValueError, TypeError, ElementTree.ParseError, ParserError) as exc:
        raise MarketError(f"not a valid UFTP message: {exc}") from exc
    if not isinstance(message, PayloadMessage):
        raise MarketError(f"not a UFTP payload message: {type(message).__name__}")
    return message


_MESSAGE_CLASSES: Final[dict[str, type[PayloadMessage]]] = {
    name: cls
    for name in uftp_messages.__all__
    if isinstance(cls := getattr(uftp_messages, name), type) and issubclass(cls, PayloadMessage)
}


# --- time and power ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a request sits in UFTP terms: its local day and its first ISP number (from 1)."""

    period: date
    first_isp: int


def placement(request: FlexRequest, ctx: UftpContext) -> Placement:
    """The request's local day and first ISP number; refuses one that crosses local midnight."""
    local_start = request.start.astimezone(ctx.zone)
    period = local_start.date()
    elapsed = request.start - _local_midnight(period, ctx)
    if elapsed % request.isp:
        raise MarketError(f"request start {request.start.isoformat()} is not on an ISP boundary")
    if (request.end - timedelta(microseconds=1)).astimezone(ctx.zone).date() != period:
        raise MarketError("a request crossing local midnight cannot be one UFTP message")
    return Placement(period=period, first_isp=int(elapsed / request.isp) + 1)


def _local_midnight(period: date, ctx: UftpContext) -> datetime:
    return datetime.combine(period, time(), tzinfo=ctx.zone)


def isp_start(period: date, number: int, isp: timedelta, ctx: UftpContext) -> datetime:
    """The instant (UTC) ISP `number` (from 1) of the local day `period` starts.

    Added in UTC: aware arithmetic within one zone is wall-clock time, wrong across DST.
    """
    return _local_midnight(period, ctx).astimezone(UTC) + isp * (number - 1)


def _watts(reduction_kw: Decimal) -> int:
    """Our reduction (positive kW) as UFTP power (negative W = less consumption)."""
    watts = -reduction_kw * WATTS_PER_KW
    if watts != watts.to_integral_value():
        raise MarketError(f"{reduction_kw} kW is not a whole number of watts")
    return int(watts)


def _reduction_kw(watts: int) -> Decimal:
    return -Decimal(watts) / WATTS_PER_KW


def _isp_duration(isp: timedelta) -> XmlDuration:
    minutes, rest = divmod(int(isp.total_seconds()), 60)
    if rest or minutes <= 0:
        raise MarketError(f"ISP {isp} is not a whole number of minutes")
    return XmlDuration(f"PT{minutes}M")


def _isp_of(duration: XmlDuration) -> timedelta:
    return timedelta(
        days=duration.days or 0,
        hours=duration.hours or 0,
        minutes=duration.minutes or 0,
        seconds=float(duration.seconds or 0),
    )


def _max_isps_per_day(isp: timedelta) -> int:
    """ISPs in the longest (25-hour, DST) day: a bound on ISP numbers a peer may send."""
    if isp <= timedelta(0):
        raise MarketError(f"ISP {isp} is not a positive duration")
    return int(timedelta(hours=25) / isp)


def _energy_kwh(kw: Sequence[Decimal], isp: timedelta) -> Decimal:
    hours = Decimal(int(isp.total_seconds())) / Decimal(3600)
    return sum(kw, Decimal(0)) * hours


# --- FlexRequest ------------------------------------------------------------------------------


def to_flex_request(
    request: FlexRequest,
    envelope: Envelope,
    ctx: UftpContext,
    *,
    revision: int = 1,
) -> UftpFlexRequest:
    """A UFTP FlexRequest: each block one ISP, Requested where reduction is needed.

    The request expires at gate closure: offers after it are not considered.
    """
    where = placement(request, ctx)
    isps = [
        UftpFlexRequestISP(
            disposition=AvailableRequested.REQUESTED if kw > 0 else AvailableRequested.AVAILABLE,
            min_power=_watts(kw),
            max_power=_watts(kw),
            start=where.first_isp + i,
            duration=1,
        )
        for i, kw in enumerate(request.needed_kw)
    ]
    return UftpFlexRequest(
        **envelope.fields(),
        isp_duration=_isp_duration(request.isp),
        time_zone=ctx.time_zone,
        period=XmlDate.from_date(where.period),
        congestion_point=ctx.congestion_point(request.point_id),
        isps=isps,
        revision=revision,
        expiration_date_time=_timestamp(request.gate_closure),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Blocks:
    """ISP powers of a UFTP message read back as our blocks."""

    point_id: CongestionPointId
    start: datetime
    isp: timedelta
    kw: tuple[Decimal, ...]


def _blocks(
    period: XmlDate,
    duration: XmlDuration,
    point: str,
    powers: Sequence[tuple[int, int, int]],  # (start, duration, watts)
    ctx: UftpContext,
) -> Blocks:
    isp = _isp_of(duration)
    per_day = _max_isps_per_day(isp)
    by_number: dict[int, Decimal] = {}
    for start, count, watts in powers:
        if start < 1 or count < 1 or start + count - 1 > per_day:
            raise MarketError(f"ISPs {start}+{count} are not within one day")
        for number in range(start, start + count):
            if number in by_number:
                raise MarketError(f"ISP {number} appears twice")
            by_number[number] = _reduction_kw(watts)
    if not by_number:
        raise MarketError("no ISPs")
    first, last = min(by_number), max(by_number)
    kw = tuple(by_number.get(n, Decimal(0)) for n in range(first, last + 1))
    return Blocks(
        point_id=ctx.point_id(point),
        start=isp_start(period.to_date(), first, isp, ctx),
        isp=isp,
        kw=kw,
    )


def request_blocks(message: UftpFlexRequest, ctx: UftpContext) -> Blocks:
    """What a UFTP FlexRequest asks for, per ISP (the upper bound of reduction, MinPower)."""
    return _blocks(
        message.period,
        message.isp_duration,
        message.congestion_point,
        [(i.start, i.duration, i.min_power) for i in message.isps],
        ctx,
    )


# --- FlexOffer -> Bid ---------------------------------------------------------------------------


def bids_from_offer(
    offer: FlexOffer,
    request: FlexRequest,
    ctx: UftpContext,
    *,
    node_id: NodeId,
    aggregator_id: AggregatorId,
    submitted_at: datetime,
) -> list[Bid]:
    """One `Bid` per offer option, for `request`; `validate_bid` still applies to each.

    The bid id is `<offer message id>/<option reference>`, so a revised offer (a new message)
    is a new bid. ISPs outside the request, another congestion point or ISP length, or a
    different period are refused here, before anything is stored.
    """
    where = placement(request, ctx)
    if ctx.point_id(offer.congestion_point) != request.point_id:
        raise BidRefused(f"offer is for {offer.congestion_point}, not the request's point")
    if _isp_of(offer.isp_duration) != request.isp:
        raise BidRefused(f"offer ISP {offer.isp_duration} differs from the request's")
    if offer.period.to_date() != where.period:
        raise BidRefused(f"offer period {offer.period} is not the request's {where.period}")
    try:
        valid_until = datetime.fromisoformat(offer.expiration_date_time)
    except ValueError as exc:
        raise BidRefused(f"expiration {offer.expiration_date_time!r} is not a date-time") from exc
    if valid_until.tzinfo is None:
        raise BidRefused(f"expiration {offer.expiration_date_time!r} has no UTC offset")
    return [
        _bid_from_option(
            option, request, where, offer.message_id, node_id, aggregator_id, valid_until,
            submitted_at,
        )
        for option in offer.offer_options
    ]  # fmt: skip


def _bid_from_option(
    option: FlexOfferOption,
    request: FlexRequest,
    where: Placement,
    message_id: str | None,
    node_id: NodeId,
    aggregator_id: AggregatorId,
    valid_until: datetime,
    submitted_at: datetime,
) -> Bid:
    offered = [Decimal(0)] * len(request.needed_kw)
    for isp in option.isps:
        first, count = isp.start - where.first_isp, isp.duration
        # checked before looping, so a hostile Duration cannot make us count to a billion
        if first < 0 or count < 1 or first + count > len(offered):
            raise BidRefused(
                f"option {option.option_reference}: ISPs {isp.start}+{count} are not requested"
            )
        for block in range(first, first + count):
            offered[block] = _reduction_kw(isp.power)
    energy_kwh = _energy_kwh(offered, request.isp)
    if energy_kwh <= 0:
        raise BidRefused(f"option {option.option_reference} offers no reduction")
    price = (Decimal(option.price) / energy_kwh).quantize(PRICE_QUANTUM, ROUND_HALF_EVEN)
    return Bid(
        bid_id=BidId(f"{message_id}/{option.option_reference}"),
        request_id=request.request_id,
        node_id=node_id,
        aggregator_id=aggregator_id,
        offered_kw=tuple(offered),
        price_eur_per_kwh=price,
        divisible=Decimal(option.min_activation_factor) < 1,
        valid_until=valid_until,
        submitted_at=submitted_at,
    )


def to_flex_offer(
    bid: Bid, request: FlexRequest, envelope: Envelope, ctx: UftpContext, *, request_message_id: str
) -> FlexOffer:
    """The AGR side of `bids_from_offer`, for tests and simulated UFTP aggregators."""
    where = placement(request, ctx)
    option = FlexOfferOption(
        isps=[
            _offer_isp(where.first_isp + i, kw) for i, kw in enumerate(bid.offered_kw) if kw != 0
        ],
        option_reference=bid.bid_id,
        price=_uftp_amount(bid.price_eur_per_kwh * _energy_kwh(bid.offered_kw, request.isp)),
        min_activation_factor=FACTOR_QUANTUM if bid.divisible else Decimal(1),
    )
    return FlexOffer(
        **envelope.fields(),
        isp_duration=_isp_duration(request.isp),
        time_zone=ctx.time_zone,
        period=XmlDate.from_date(where.period),
        congestion_point=ctx.congestion_point(request.point_id),
        offer_options=[option],
        expiration_date_time=_timestamp(bid.valid_until),
        flex_request_message_id=request_message_id,
        currency=CURRENCY,
    )


def _offer_isp(number: int, kw: Decimal) -> FlexOfferOptionISP:
    return FlexOfferOptionISP(power=_watts(kw), start=number, duration=1)


def _uftp_amount(eur: Decimal) -> Decimal:
    return eur.quantize(UFTP_QUANTUM, ROUND_HALF_EVEN)


# --- Award -> FlexOrder -------------------------------------------------------------------------


def order_reference(award: Award) -> str:
    """The order number we give an award; settlement refers back to it."""
    return f"{award.request_id}/{award.bid_id}"


def to_flex_order(
    award: Award,
    request: FlexRequest,
    envelope: Envelope,
    ctx: UftpContext,
    *,
    offer_message_id: str,
    option_reference: str,
) -> FlexOrder:
    """A FlexOrder for one award: awarded power per ISP, total price, activation factor."""
    where = placement(request, ctx)
    return FlexOrder(
        **envelope.fields(),
        isp_duration=_isp_duration(request.isp),
        time_zone=ctx.time_zone,
        period=XmlDate.from_date(where.period),
        congestion_point=ctx.congestion_point(request.point_id),
        isps=[
            FlexOrderISP(power=_watts(kw), start=where.first_isp + i, duration=1)
            for i, kw in enumerate(award.awarded_kw)
            if kw != 0
        ],
        flex_offer_message_id=offer_message_id,
        price=_uftp_amount(award.price_eur_per_kwh * _energy_kwh(award.awarded_kw, request.isp)),
        currency=CURRENCY,
        order_reference=order_reference(award),
        option_reference=option_reference,
        activation_factor=award.activation_factor.quantize(FACTOR_QUANTUM, ROUND_UP),
    )


def order_blocks(order: FlexOrder, ctx: UftpContext) -> Blocks:
    """The awarded kW per ISP a FlexOrder carries."""
    return _blocks(
        order.period,
        order.isp_duration,
        order.congestion_point,
        [(i.start, i.duration, i.power) for i in order.isps],
        ctx,
    )


# --- Statement -> FlexSettlement ----------------------------------------------------------------


def to_flex_settlement(
    statement: Statement,
    request: FlexRequest,
    awards: Sequence[Award],
    envelope: Envelope,
    ctx: UftpContext,
) -> FlexSettlement:
    """One FlexOrderSettlement per award in the statement (see the module docstring)."""
    where = placement(request, ctx)
    period = XmlDate.from_date(where.period)
    mine = [a for a in awards if a.aggregator_id == statement.aggregator_id]
    orders: list[FlexOrderSettlement] = []
    for award in mine:
        lines = [ln for ln in statement.lines if ln.bid_id == award.bid_id]
        if not lines:
            continue
        hours = request.block_hours
        payment = sum((ln.payment_eur for ln in lines), Decimal(0))
        penalty = sum((ln.penalty_eur for ln in lines), Decimal(0))
        orders.append(
            FlexOrderSettlement(
                isps=[
                    FlexOrderSettlementISP(
                        start=where.first_isp + ln.block,
                        duration=1,
                        baseline_power=_watts_of(ln.baseline_kw),
                        ordered_flex_power=_watts(_round_w(ln.awarded_kwh / hours)),
                        actual_power=_watts_of(ln.actual_kw),
                        delivered_flex_power=_watts(_round_w(ln.delivered_kwh / hours)),
                        power_deficiency=_watts(_round_w(ln.shortfall_kwh / hours)),
                    )
                    for ln in lines
                ],
                order_reference=order_reference(award),
                period=period,
                baseline_reference=", ".join(statement.methods) or None,
                congestion_point=ctx.congestion_point(request.point_id),
                price=_uftp_amount(payment),
                penalty=_uftp_amount(penalty),
                net_settlement=_uftp_amount(payment) - _uftp_amount(penalty),
            )
        )
    if not orders:
        raise MarketError(f"statement for {statement.aggregator_id} has no settled orders")
    return FlexSettlement(
        **envelope.fields(),
        flex_order_settlements=orders,
        contract_settlements=[_market_contract(request, mine, where)],
        period_start=period,
        period_end=period,
        currency=CURRENCY,
    )


def _round_w(kw: Decimal) -> Decimal:
    return kw.quantize(Decimal("0.001"), ROUND_HALF_EVEN)


def _watts_of(kw: Decimal | None) -> int:
    """Absolute power (baseline, actual) in W, positive = consumption; 0 when not measured."""
    return 0 if kw is None else int((kw * WATTS_PER_KW).to_integral_value(ROUND_HALF_EVEN))


def _market_contract(
    request: FlexRequest, awards: Sequence[Award], where: Placement
) -> ContractSettlement:
    isps = [
        ContractSettlementISP(
            start=where.first_isp + i,
            duration=1,
            reserved_power=0,
            requested_power=_watts(need),
            ordered_power=_watts(sum((a.awarded_kw[i] for a in awards), Decimal(0))),
        )
        for i, need in enumerate(request.needed_kw)
    ]
    return ContractSettlement(
        periods=[ContractSettlementPeriod(isps=isps, period=XmlDate.from_date(where.period))],
        contract_id=f"market:{request.request_id}",
    )
