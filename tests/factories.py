"""Plain `make_*()` factories for `oadr.model` values with sensible, valid defaults.

Each takes keyword overrides for any field of what it builds (`make_event(priority=1)`); the
defaults hang off one fixed `NOW`, so tests read as offsets from it. Every payload type has a
factory (`PAYLOAD_FACTORIES` lists them), so tables over all 23 payloads need no hand-built
values. Defaults are valid by the rules in `oadr.events`, `oadr.opts` and `oadr.reports`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from market.model import (
    AggregatorId,
    Bid,
    BidId,
    CongestionPointId,
    FlexRequest,
    NodeId,
    VirtualEndNode,
)
from market.model import RequestId as MarketRequestId
from oadr.enums import (
    EventStatus,
    ItemKind,
    OptReason,
    OptType,
    ReadingType,
    ReportName,
    ReportType,
    SignalName,
    SignalType,
)
from oadr.model import (
    ActivePeriod,
    CanceledOpt,
    CanceledPartyRegistration,
    CanceledReport,
    CancelOpt,
    CancelPartyRegistration,
    CancelReport,
    CreatedEvent,
    CreatedOpt,
    CreatedPartyRegistration,
    CreatedReport,
    CreateOpt,
    CreatePartyRegistration,
    CreateReport,
    DistributeEvent,
    EiResponse,
    Event,
    EventId,
    EventInterval,
    EventResponse,
    EventSignal,
    ItemBase,
    OptId,
    Payload,
    Poll,
    PowerAttributes,
    QueryRegistration,
    RegisteredReport,
    RegisterReport,
    RegistrationId,
    Report,
    ReportDescription,
    ReportInterval,
    ReportPayload,
    ReportRequest,
    ReportRequestId,
    ReportSpecifierId,
    RequestEvent,
    RequestId,
    RequestReregistration,
    Response,
    RId,
    SamplingRate,
    SpecifierPayload,
    Target,
    TimeWindow,
    UpdatedReport,
    UpdateReport,
    VenId,
    VtnId,
)
from ven.model import DeviceKind, DeviceState

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)

VEN_ID = VenId("ven-1")
VTN_ID = VtnId("vtn-1")
REGISTRATION_ID = RegistrationId("reg-1")
REQUEST_ID = RequestId("req-1")
EVENT_ID = EventId("event-1")
MARKET_CONTEXT = "http://market.flex4grid.example/energy"
REPORT_SPECIFIER_ID = ReportSpecifierId("telemetry-usage-1")
R_ID = RId("meter-power")


# --- shared parts -------------------------------------------------------------------------------


def make_ei_response(**overrides: Any) -> EiResponse:
    return replace(EiResponse(code=200, request_id=REQUEST_ID, description="OK"), **overrides)


def make_target(**overrides: Any) -> Target:
    return replace(Target(), **overrides)


def make_item_base(kind: ItemKind = ItemKind.POWER_REAL, **overrides: Any) -> ItemBase:
    attributes = PowerAttributes(hertz=50.0, voltage=230.0, ac=True)
    item = ItemBase(
        kind=kind, description="RealPower", units="W", scale="k", power_attributes=attributes
    )
    return replace(item, **overrides)


def make_window(
    start: datetime = NOW + HOUR, duration: timedelta = HOUR, **overrides: Any
) -> TimeWindow:
    return replace(TimeWindow(start=start, duration=duration), **overrides)


# --- events ---------------------------------------------------------------------------------------


def make_intervals(
    values: Sequence[float] = (1.0,), durations: Sequence[timedelta] | None = None
) -> tuple[EventInterval, ...]:
    """Intervals uid 0..n-1; `durations` defaults to one hour each."""
    spans = list(durations) if durations is not None else [HOUR] * len(values)
    return tuple(
        EventInterval(uid=i, duration=d, value=v)
        for i, (v, d) in enumerate(zip(values, spans, strict=True))
    )


def make_signal(
    values: Sequence[float] = (1.0,),
    durations: Sequence[timedelta] | None = None,
    **overrides: Any,
) -> EventSignal:
    """A SIMPLE level signal with one interval per value (one hour each by default)."""
    signal = EventSignal(
        signal_name=SignalName.SIMPLE,
        signal_type=SignalType.LEVEL,
        signal_id="signal-1",
        intervals=make_intervals(values, durations),
        current_value=0.0,
    )
    return replace(signal, **overrides)


def make_active_period(
    start: datetime = NOW + HOUR, duration: timedelta = HOUR, **overrides: Any
) -> ActivePeriod:
    return replace(ActivePeriod(start=start, duration=duration), **overrides)


def make_event(start: datetime = NOW + HOUR, duration: timedelta = HOUR, **overrides: Any) -> Event:
    """A far SIMPLE event at `start` for `duration`: one signal, one interval of level 1.

    An open-ended event (duration 0) gets one open-ended interval.
    """
    event = Event(
        event_id=EVENT_ID,
        modification_number=0,
        market_context=MARKET_CONTEXT,
        created=NOW - HOUR,
        status=EventStatus.FAR,
        active_period=make_active_period(start, duration),
        signals=(make_signal(durations=(duration,)),),
    )
    return replace(event, **overrides)


def make_event_response(**overrides: Any) -> EventResponse:
    response = EventResponse(
        code=200,
        request_id=REQUEST_ID,
        event_id=EVENT_ID,
        modification_number=0,
        opt_type=OptType.OPT_IN,
    )
    return replace(response, **overrides)


# --- reports --------------------------------------------------------------------------------------


def make_sampling_rate(
    min_period: timedelta = MINUTE, max_period: timedelta = HOUR, **overrides: Any
) -> SamplingRate:
    return replace(
        SamplingRate(min_period=min_period, max_period=max_period, on_change=False), **overrides
    )


def make_report_description(r_id: RId = R_ID, **overrides: Any) -> ReportDescription:
    description = ReportDescription(
        r_id=r_id,
        report_type=ReportType.USAGE,
        reading_type=ReadingType.DIRECT_READ,
        item_base=make_item_base(),
        sampling_rate=make_sampling_rate(),
    )
    return replace(description, **overrides)


def make_metadata_report(
    report_name: str | None = ReportName.METADATA_TELEMETRY_USAGE,
    r_ids: Sequence[RId] = (R_ID,),
    **overrides: Any,
) -> Report:
    """A METADATA report as a RegisterReport carries it (reportRequestID 0, no data)."""
    report = Report(
        report_specifier_id=REPORT_SPECIFIER_ID,
        created=NOW,
        report_name=report_name,
        descriptions=tuple(make_report_description(r) for r in r_ids),
        duration=HOUR,
    )
    return replace(report, **overrides)


def make_report_request(
    report_request_id: str = "rr-1",
    r_ids: Sequence[RId] = (R_ID,),
    **overrides: Any,
) -> ReportRequest:
    """A periodic, open-ended request: sample every minute, report every 10 minutes."""
    request = ReportRequest(
        report_request_id=ReportRequestId(report_request_id),
        report_specifier_id=REPORT_SPECIFIER_ID,
        granularity=MINUTE,
        report_back_duration=10 * MINUTE,
        specifier_payloads=tuple(
            SpecifierPayload(r_id=r, reading_type=ReadingType.DIRECT_READ) for r in r_ids
        ),
    )
    return replace(request, **overrides)


def make_data_report(
    report_request_id: str = "rr-1",
    values: Sequence[float] = (1.5,),
    r_id: RId = R_ID,
    start: datetime = NOW,
    **overrides: Any,
) -> Report:
    """A TELEMETRY_USAGE data report (as an UpdateReport carries it), one minute per value."""
    intervals = tuple(
        ReportInterval(
            start=start + i * MINUTE,
            duration=MINUTE,
            payloads=(ReportPayload(r_id=r_id, value=v),),
        )
        for i, v in enumerate(values)
    )
    report = Report(
        report_specifier_id=REPORT_SPECIFIER_ID,
        created=start,
        report_request_id=ReportRequestId(report_request_id),
        report_name=ReportName.TELEMETRY_USAGE,
        intervals=intervals,
        start=start,
        duration=len(values) * MINUTE,
    )
    return replace(report, **overrides)


# --- payloads: registration -----------------------------------------------------------------------


def make_query_registration(**overrides: Any) -> QueryRegistration:
    return replace(QueryRegistration(request_id=REQUEST_ID), **overrides)


def make_create_party_registration(**overrides: Any) -> CreatePartyRegistration:
    return replace(CreatePartyRegistration(request_id=REQUEST_ID, ven_name="ven one"), **overrides)


def make_created_party_registration(**overrides: Any) -> CreatedPartyRegistration:
    created = CreatedPartyRegistration(
        response=make_ei_response(),
        vtn_id=VTN_ID,
        registration_id=REGISTRATION_ID,
        ven_id=VEN_ID,
        requested_poll_freq=10 * timedelta(seconds=1),
    )
    return replace(created, **overrides)


def make_cancel_party_registration(**overrides: Any) -> CancelPartyRegistration:
    cancel = CancelPartyRegistration(
        request_id=REQUEST_ID, registration_id=REGISTRATION_ID, ven_id=VEN_ID
    )
    return replace(cancel, **overrides)


def make_canceled_party_registration(**overrides: Any) -> CanceledPartyRegistration:
    canceled = CanceledPartyRegistration(
        response=make_ei_response(), registration_id=REGISTRATION_ID, ven_id=VEN_ID
    )
    return replace(canceled, **overrides)


def make_request_reregistration(**overrides: Any) -> RequestReregistration:
    return replace(RequestReregistration(ven_id=VEN_ID), **overrides)


# --- payloads: EiEvent ----------------------------------------------------------------------------


def make_request_event(**overrides: Any) -> RequestEvent:
    return replace(RequestEvent(request_id=REQUEST_ID, ven_id=VEN_ID), **overrides)


def make_distribute_event(
    events: Sequence[Event] | None = None, **overrides: Any
) -> DistributeEvent:
    distribute = DistributeEvent(
        request_id=REQUEST_ID,
        vtn_id=VTN_ID,
        events=tuple(events) if events is not None else (make_event(),),
        response=make_ei_response(),
    )
    return replace(distribute, **overrides)


def make_created_event(**overrides: Any) -> CreatedEvent:
    created = CreatedEvent(
        response=make_ei_response(),
        ven_id=VEN_ID,
        event_responses=(make_event_response(),),
    )
    return replace(created, **overrides)


def make_response(**overrides: Any) -> Response:
    return replace(Response(response=make_ei_response(), ven_id=VEN_ID), **overrides)


# --- payloads: EiOpt ------------------------------------------------------------------------------


def make_create_opt(**overrides: Any) -> CreateOpt:
    """An optOut schedule: one availability window over the default event's hour."""
    opt = CreateOpt(
        request_id=REQUEST_ID,
        opt_id=OptId("opt-1"),
        opt_type=OptType.OPT_OUT,
        opt_reason=OptReason.PARTICIPATING,
        ven_id=VEN_ID,
        created=NOW - MINUTE,
        market_context=MARKET_CONTEXT,
        availability=(make_window(),),
    )
    return replace(opt, **overrides)


def make_event_opt(
    event_id: EventId = EVENT_ID, modification_number: int | None = 0, **overrides: Any
) -> CreateOpt:
    """An optOut tied to one event (qualifiedEventID, no marketContext, no windows)."""
    fields: dict[str, Any] = {
        "opt_id": OptId("opt-event-1"),
        "market_context": None,
        "availability": None,
        "event_id": event_id,
        "modification_number": modification_number,
    }
    return make_create_opt(**(fields | overrides))


def make_created_opt(**overrides: Any) -> CreatedOpt:
    return replace(CreatedOpt(response=make_ei_response(), opt_id=OptId("opt-1")), **overrides)


def make_cancel_opt(**overrides: Any) -> CancelOpt:
    return replace(
        CancelOpt(request_id=REQUEST_ID, opt_id=OptId("opt-1"), ven_id=VEN_ID), **overrides
    )


def make_canceled_opt(**overrides: Any) -> CanceledOpt:
    return replace(CanceledOpt(response=make_ei_response(), opt_id=OptId("opt-1")), **overrides)


# --- payloads: EiReport ---------------------------------------------------------------------------


def make_register_report(**overrides: Any) -> RegisterReport:
    register = RegisterReport(
        request_id=REQUEST_ID, reports=(make_metadata_report(),), ven_id=VEN_ID
    )
    return replace(register, **overrides)


def make_registered_report(**overrides: Any) -> RegisteredReport:
    return replace(RegisteredReport(response=make_ei_response(), ven_id=VEN_ID), **overrides)


def make_create_report(**overrides: Any) -> CreateReport:
    create = CreateReport(
        request_id=REQUEST_ID, report_requests=(make_report_request(),), ven_id=VEN_ID
    )
    return replace(create, **overrides)


def make_created_report(**overrides: Any) -> CreatedReport:
    created = CreatedReport(
        response=make_ei_response(),
        pending_reports=(ReportRequestId("rr-1"),),
        ven_id=VEN_ID,
    )
    return replace(created, **overrides)


def make_update_report(**overrides: Any) -> UpdateReport:
    update = UpdateReport(request_id=REQUEST_ID, reports=(make_data_report(),), ven_id=VEN_ID)
    return replace(update, **overrides)


def make_updated_report(**overrides: Any) -> UpdatedReport:
    return replace(UpdatedReport(response=make_ei_response(), ven_id=VEN_ID), **overrides)


def make_cancel_report(**overrides: Any) -> CancelReport:
    cancel = CancelReport(
        request_id=REQUEST_ID,
        report_request_ids=(ReportRequestId("rr-1"),),
        report_to_follow=False,
        ven_id=VEN_ID,
    )
    return replace(cancel, **overrides)


def make_canceled_report(**overrides: Any) -> CanceledReport:
    return replace(CanceledReport(response=make_ei_response(), ven_id=VEN_ID), **overrides)


# --- payloads: OadrPoll ---------------------------------------------------------------------------


def make_poll(**overrides: Any) -> Poll:
    return replace(Poll(ven_id=VEN_ID), **overrides)


PAYLOAD_FACTORIES: dict[type[Payload], Callable[[], Payload]] = {
    QueryRegistration: make_query_registration,
    CreatePartyRegistration: make_create_party_registration,
    CreatedPartyRegistration: make_created_party_registration,
    CancelPartyRegistration: make_cancel_party_registration,
    CanceledPartyRegistration: make_canceled_party_registration,
    RequestReregistration: make_request_reregistration,
    RequestEvent: make_request_event,
    DistributeEvent: make_distribute_event,
    CreatedEvent: make_created_event,
    Response: make_response,
    CreateOpt: make_create_opt,
    CreatedOpt: make_created_opt,
    CancelOpt: make_cancel_opt,
    CanceledOpt: make_canceled_opt,
    RegisterReport: make_register_report,
    RegisteredReport: make_registered_report,
    CreateReport: make_create_report,
    CreatedReport: make_created_report,
    UpdateReport: make_update_report,
    UpdatedReport: make_updated_report,
    CancelReport: make_cancel_report,
    CanceledReport: make_canceled_report,
    Poll: make_poll,
}


def make_payload(payload_type: type[Payload]) -> Payload:
    """A valid default instance of any of the 23 payload types."""
    return PAYLOAD_FACTORIES[payload_type]()


# --- gateway devices (ven.model.DeviceState as telemetry reports them) ---------------------------


def heat_pump(**changes: Any) -> DeviceState:
    pump = DeviceState(
        device_id="hp",
        kind=DeviceKind.HEAT_PUMP,
        power_kw=2.0,
        at=NOW,
        temperature_c=21.0,
        setpoint_c=21.0,
        own_setpoint_c=21.0,
        max_power_kw=3.0,
        min_setpoint_c=5.0,
        max_setpoint_c=28.0,
    )
    return replace(pump, **changes)


def ev(**changes: Any) -> DeviceState:
    car = DeviceState(
        device_id="ev",
        kind=DeviceKind.EV_CHARGER,
        power_kw=11.0,
        at=NOW,
        soc=0.6,
        max_power_kw=11.0,
        capacity_kwh=60.0,
    )
    return replace(car, **changes)


def battery(**changes: Any) -> DeviceState:
    store = DeviceState(
        device_id="bat",
        kind=DeviceKind.BATTERY,
        power_kw=0.0,
        at=NOW,
        soc=0.8,
        max_power_kw=5.0,
        max_feed_in_kw=5.0,
        capacity_kwh=10.0,
    )
    return replace(store, **changes)


def pv(**changes: Any) -> DeviceState:
    return replace(
        DeviceState(device_id="pv", kind=DeviceKind.PV, power_kw=-2.0, at=NOW, max_feed_in_kw=5.0),
        **changes,
    )


def base_load(**changes: Any) -> DeviceState:
    return replace(
        DeviceState(device_id="base", kind=DeviceKind.BASE_LOAD, power_kw=0.5, at=NOW), **changes
    )


# --- market (issue 8): a request at congestion point cp-1, a bid and a node that fit it ---

MARKET_REQUEST_ID = MarketRequestId("mreq-1")
POINT_ID = CongestionPointId("cp-1")
AGGREGATOR_ID = AggregatorId("agg-1")
NODE_ID = NodeId("node-1")


def make_flex_request(**overrides: Any) -> FlexRequest:
    """Four 15-minute blocks of 10 kW from NOW + 2 h, cap 0.5 EUR/kWh, gate at NOW + 1 h."""
    request = FlexRequest(
        request_id=MARKET_REQUEST_ID,
        point_id=POINT_ID,
        start=NOW + 2 * HOUR,
        isp=timedelta(minutes=15),
        needed_kw=(Decimal(10),) * 4,
        price_cap_eur_per_kwh=Decimal("0.5"),
        gate_closure=NOW + HOUR,
        created_at=NOW,
    )
    return replace(request, **overrides)


def make_bid(**overrides: Any) -> Bid:
    """A divisible bid of 5 kW in each of `make_flex_request()`'s blocks at 0.2 EUR/kWh."""
    bid = Bid(
        bid_id=BidId("bid-1"),
        request_id=MARKET_REQUEST_ID,
        node_id=NODE_ID,
        aggregator_id=AGGREGATOR_ID,
        offered_kw=(Decimal(5),) * 4,
        price_eur_per_kwh=Decimal("0.2"),
        divisible=True,
        valid_until=NOW + 4 * HOUR,
        submitted_at=NOW,
    )
    return replace(bid, **overrides)


def make_node(**overrides: Any) -> VirtualEndNode:
    """`make_bid()`'s node: agg-1's portfolio under cp-1."""
    node = VirtualEndNode(
        node_id=NODE_ID, aggregator_id=AGGREGATOR_ID, point_id=POINT_ID, name="node one"
    )
    return replace(node, **overrides)
