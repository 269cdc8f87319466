"""Typed, frozen values for every OpenADR 2.0b payload (the 23 children of oadrSignedObject).

Names follow the spec less the `oadr`/`ei` prefix (`oadrDistributeEvent` -> `DistributeEvent`);
the one exception is `EiResponse` (eiResponse), kept apart from the `Response` payload
(oadrResponse). Times are aware UTC datetimes, durations `timedelta`, collections tuples, so
every value is hashable and `decode(encode(m)) == m` is a plain equality.
Where the schema admits `x-` extension tokens (report names, report and reading types, data
quality) the field is a `str` and `oadr.enums` lists the known values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NewType, TypeVar, dataclass_transform

from oadr.enums import (
    PROFILE_2_0B,
    EventStatus,
    ItemKind,
    OptReason,
    OptType,
    ResponseRequired,
    SignalName,
    SignalType,
    TransportName,
)

VenId = NewType("VenId", str)
VtnId = NewType("VtnId", str)
RegistrationId = NewType("RegistrationId", str)
RequestId = NewType("RequestId", str)
EventId = NewType("EventId", str)
OptId = NewType("OptId", str)
ReportRequestId = NewType("ReportRequestId", str)
ReportSpecifierId = NewType("ReportSpecifierId", str)
ReportId = NewType("ReportId", str)
RId = NewType("RId", str)

METADATA_REPORT_REQUEST_ID = ReportRequestId("0")


_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, kw_only_default=True)
def _frozen(cls: type[_T]) -> type[_T]:
    return dataclass(frozen=True, slots=True, kw_only=True)(cls)


# --- shared parts -------------------------------------------------------------------------------


@_frozen
class EiResponse:
    """eiResponse: the outcome of the request it answers (requestID may be empty, never absent)."""

    code: int
    request_id: RequestId = RequestId("")
    description: str | None = None


@_frozen
class Target:
    """eiTarget (also reportSubject, reportDataSource, oadrDeviceClass): who a thing is for.

    `end_device_assets` holds power:endDeviceAsset/mrid values (signal-level targets).
    """

    end_device_assets: tuple[str, ...] = ()
    group_ids: tuple[str, ...] = ()
    group_names: tuple[str, ...] = ()
    resource_ids: tuple[str, ...] = ()
    ven_ids: tuple[VenId, ...] = ()
    party_ids: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not (
            self.end_device_assets
            or self.group_ids
            or self.group_names
            or self.resource_ids
            or self.ven_ids
            or self.party_ids
        )


@_frozen
class PowerAttributes:
    hertz: float
    voltage: float
    ac: bool


@_frozen
class ItemBase:
    """emix:itemBase, the unit of a signal or a reading (e.g. powerReal, kW, scale `k`).

    `scale` is the siScaleCode (`none`, `k`, `M`, ...); pulseCount carries `pulse_factor`
    instead; power items carry `power_attributes`.
    """

    kind: ItemKind
    description: str
    units: str
    scale: str | None = "none"
    power_attributes: PowerAttributes | None = None
    pulse_factor: float | None = None


@_frozen
class TimeWindow:
    """xcal properties with dtstart and duration (reportInterval, an opt availability window)."""

    start: datetime
    duration: timedelta


# --- events ---------------------------------------------------------------------------------------


@_frozen
class ActivePeriod:
    """eiActivePeriod: when the event runs, its randomization window and notice periods."""

    start: datetime
    duration: timedelta  # 0 means open-ended
    start_after: timedelta | None = None  # tolerance/tolerate/startafter (randomization)
    notification: timedelta | None = None  # x-eiNotification
    ramp_up: timedelta | None = None  # x-eiRampUp
    recovery: timedelta | None = None  # x-eiRecovery


@_frozen
class EventInterval:
    """One interval of an event signal or baseline: uid 0..n-1, its duration and value."""

    uid: int
    duration: timedelta
    value: float
    start: datetime | None = None


@_frozen
class EventSignal:
    signal_name: SignalName
    signal_type: SignalType
    signal_id: str
    intervals: tuple[EventInterval, ...]
    item_base: ItemBase | None = None
    current_value: float | None = None
    target: Target | None = None


@_frozen
class EventBaseline:
    baseline_id: str
    baseline_name: str
    start: datetime
    duration: timedelta
    intervals: tuple[EventInterval, ...]
    resource_ids: tuple[str, ...] = ()
    item_base: ItemBase | None = None


@_frozen
class Event:
    """oadrEvent: an eiEvent with its descriptor, plus oadrResponseRequired."""

    event_id: EventId
    modification_number: int
    market_context: str
    created: datetime
    status: EventStatus
    active_period: ActivePeriod
    signals: tuple[EventSignal, ...]
    target: Target = Target()
    response_required: ResponseRequired = ResponseRequired.ALWAYS
    priority: int | None = None
    test_event: bool | None = None
    vtn_comment: str | None = None
    modified: datetime | None = None
    modification_reason: str | None = None
    baseline: EventBaseline | None = None


@_frozen
class EventResponse:
    """One eventResponse in an oadrCreatedEvent: opt for one event modification."""

    code: int
    request_id: RequestId
    event_id: EventId
    modification_number: int
    opt_type: OptType
    description: str | None = None


# --- reports --------------------------------------------------------------------------------------


@_frozen
class SamplingRate:
    min_period: timedelta
    max_period: timedelta
    on_change: bool


@_frozen
class ReportDescription:
    """oadrReportDescription: one data point (rID) a report can carry."""

    r_id: RId
    report_type: str
    reading_type: str
    subject: Target | None = None
    data_source: Target | None = None
    item_base: ItemBase | None = None
    market_context: str | None = None
    sampling_rate: SamplingRate | None = None


@_frozen
class LoadControlValue:
    current: float
    minimum: float | None = None
    maximum: float | None = None
    normal: float | None = None


@_frozen
class LoadControlState:
    capacity: LoadControlValue | None = None
    level_offset: LoadControlValue | None = None
    percent_offset: LoadControlValue | None = None
    setpoint: LoadControlValue | None = None


@_frozen
class ResourceStatus:
    """oadrPayloadResourceStatus: the data of a TELEMETRY_STATUS report."""

    online: bool
    manual_override: bool
    load_control: LoadControlState | None = None


@_frozen
class ReportPayload:
    """oadrReportPayload: one reading of one rID."""

    r_id: RId
    value: float | ResourceStatus
    confidence: int | None = None
    accuracy: float | None = None
    data_quality: str | None = None


@_frozen
class ReportInterval:
    start: datetime | None
    payloads: tuple[ReportPayload, ...]
    duration: timedelta | None = None
    uid: str | None = None


@_frozen
class Report:
    """oadrReport: a report's metadata (RegisterReport) or its data (UpdateReport)."""

    report_specifier_id: ReportSpecifierId
    created: datetime
    report_request_id: ReportRequestId = METADATA_REPORT_REQUEST_ID
    report_name: str | None = None
    report_id: ReportId | None = None
    descriptions: tuple[ReportDescription, ...] = ()
    intervals: tuple[ReportInterval, ...] = ()
    start: datetime | None = None
    duration: timedelta | None = None


@_frozen
class SpecifierPayload:
    r_id: RId
    reading_type: str
    item_base: ItemBase | None = None


@_frozen
class ReportRequest:
    """oadrReportRequest with its reportSpecifier flattened in.

    granularity: sample period (0 = one reading); report_back_duration: how often to send;
    interval: absent = one-shot, duration 0 = open-ended.
    """

    report_request_id: ReportRequestId
    report_specifier_id: ReportSpecifierId
    granularity: timedelta
    report_back_duration: timedelta
    specifier_payloads: tuple[SpecifierPayload, ...]
    interval: TimeWindow | None = None


# --- registration ---------------------------------------------------------------------------------


@_frozen
class Profile:
    profile_name: str
    transports: tuple[str, ...]


@_frozen
class QueryRegistration:
    request_id: RequestId


@_frozen
class CreatePartyRegistration:
    request_id: RequestId
    report_only: bool = False
    xml_signature: bool = False
    profile_name: str = PROFILE_2_0B
    transport_name: str = TransportName.SIMPLE_HTTP
    transport_address: str | None = None
    ven_name: str | None = None
    http_pull_model: bool | None = True
    registration_id: RegistrationId | None = None
    ven_id: VenId | None = None


@_frozen
class CreatedPartyRegistration:
    response: EiResponse
    vtn_id: VtnId
    profiles: tuple[Profile, ...] = (
        Profile(profile_name=PROFILE_2_0B, transports=(TransportName.SIMPLE_HTTP,)),
    )
    registration_id: RegistrationId | None = None
    ven_id: VenId | None = None
    requested_poll_freq: timedelta | None = None


@_frozen
class CancelPartyRegistration:
    request_id: RequestId
    registration_id: RegistrationId
    ven_id: VenId | None = None


@_frozen
class CanceledPartyRegistration:
    response: EiResponse
    registration_id: RegistrationId | None = None
    ven_id: VenId | None = None


@_frozen
class RequestReregistration:
    ven_id: VenId


# --- EiEvent --------------------------------------------------------------------------------------


@_frozen
class RequestEvent:
    request_id: RequestId
    ven_id: VenId
    reply_limit: int | None = None


@_frozen
class DistributeEvent:
    request_id: RequestId
    vtn_id: VtnId
    events: tuple[Event, ...] = ()
    response: EiResponse | None = None


@_frozen
class CreatedEvent:
    response: EiResponse
    ven_id: VenId
    event_responses: tuple[EventResponse, ...] = ()


@_frozen
class Response:
    """oadrResponse: a bare acknowledgement (also the answer to an empty oadrPoll)."""

    response: EiResponse
    ven_id: VenId | None = None


# --- EiOpt ----------------------------------------------------------------------------------------


@_frozen
class CreateOpt:
    """An opt schedule (availability windows) or an opt tied to one event (event_id set)."""

    request_id: RequestId
    opt_id: OptId
    opt_type: OptType
    opt_reason: OptReason
    ven_id: VenId
    created: datetime
    target: Target = Target()
    market_context: str | None = None
    availability: tuple[TimeWindow, ...] | None = None
    event_id: EventId | None = None
    modification_number: int | None = None
    device_class: Target | None = None


@_frozen
class CreatedOpt:
    response: EiResponse
    opt_id: OptId


@_frozen
class CancelOpt:
    request_id: RequestId
    opt_id: OptId
    ven_id: VenId


@_frozen
class CanceledOpt:
    response: EiResponse
    opt_id: OptId | None = None


# --- EiReport -------------------------------------------------------------------------------------


@_frozen
class RegisterReport:
    request_id: RequestId
    reports: tuple[Report, ...] = ()
    ven_id: VenId | None = None
    report_request_id: ReportRequestId | None = None


@_frozen
class RegisteredReport:
    response: EiResponse
    report_requests: tuple[ReportRequest, ...] = ()
    ven_id: VenId | None = None


@_frozen
class CreateReport:
    request_id: RequestId
    report_requests: tuple[ReportRequest, ...]
    ven_id: VenId | None = None


@_frozen
class CreatedReport:
    response: EiResponse
    pending_reports: tuple[ReportRequestId, ...] = ()
    ven_id: VenId | None = None


@_frozen
class UpdateReport:
    request_id: RequestId
    reports: tuple[Report, ...] = ()
    ven_id: VenId | None = None


@_frozen
class CancelReport:
    request_id: RequestId
    report_request_ids: tuple[ReportRequestId, ...]
    report_to_follow: bool = False
    ven_id: VenId | None = None


@_frozen
class UpdatedReport:
    response: EiResponse
    cancel_report: CancelReport | None = None
    ven_id: VenId | None = None


@_frozen
class CanceledReport:
    response: EiResponse
    pending_reports: tuple[ReportRequestId, ...] = ()
    ven_id: VenId | None = None


# --- OadrPoll -------------------------------------------------------------------------------------


@_frozen
class Poll:
    ven_id: VenId


Payload = (
    QueryRegistration
    | CreatePartyRegistration
    | CreatedPartyRegistration
    | CancelPartyRegistration
    | CanceledPartyRegistration
    | RequestReregistration
    | RequestEvent
    | DistributeEvent
    | CreatedEvent
    | Response
    | CreateOpt
    | CreatedOpt
    | CancelOpt
    | CanceledOpt
    | RegisterReport
    | RegisteredReport
    | CreateReport
    | CreatedReport
    | UpdateReport
    | UpdatedReport
    | CancelReport
    | CanceledReport
    | Poll
)

PAYLOAD_TYPES: tuple[type[Payload], ...] = (
    QueryRegistration,
    CreatePartyRegistration,
    CreatedPartyRegistration,
    CancelPartyRegistration,
    CanceledPartyRegistration,
    RequestReregistration,
    RequestEvent,
    DistributeEvent,
    CreatedEvent,
    Response,
    CreateOpt,
    CreatedOpt,
    CancelOpt,
    CanceledOpt,
    RegisterReport,
    RegisteredReport,
    CreateReport,
    CreatedReport,
    UpdateReport,
    UpdatedReport,
    CancelReport,
    CanceledReport,
    Poll,
)


def element_name(payload_type: type[Payload]) -> str:
    """The oadrSignedObject child that carries this payload type, e.g. `oadrDistributeEvent`."""
    return "oadr" + payload_type.__name__
