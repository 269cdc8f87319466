"""The admin API's JSON: request bodies (pydantic, validated at the edge) and what they become.

Requests are friendlier than the OpenADR model: a signal is a name, a type (defaulted from the
name), a unit (`kW`, `kWh`, a currency per kWh) and intervals of duration and value; the
server fills eventID, created, status and interval uids. Replies are the stored model values as
`vtn.store.jsonform` dumps them (snake_case fields, ISO 8601 times and durations), so the
OpenAPI document describes both from the same types.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from oadr.enums import EventStatus, ItemKind, OptType, ResponseRequired, SignalName, SignalType
from oadr.errors import ReportNotSupported
from oadr.model import (
    ActivePeriod,
    CreateOpt,
    Event,
    EventId,
    EventInterval,
    EventSignal,
    ItemBase,
    PowerAttributes,
    Report,
    ReportRequest,
    ReportRequestId,
    ReportSpecifierId,
    RId,
    SpecifierPayload,
    Target,
    TimeWindow,
    VenId,
)
from vtn.store.audit import AuditEntry
from vtn.store.reports import Reading
from vtn.vens import Status, VenRecord

DEFAULT_MARKET_CONTEXT = "http://flex4grid.org/market/default"

T = TypeVar("T")

Unit = Literal["kW", "kWh", "EUR/kWh", "EUR/kW", "EUR"]
_ITEM_BASES: dict[str, ItemBase] = {
    "kW": ItemBase(
        kind=ItemKind.POWER_REAL,
        description="RealPower",
        units="W",
        scale="k",
        power_attributes=PowerAttributes(hertz=50.0, voltage=230.0, ac=True),
    ),
    "kWh": ItemBase(kind=ItemKind.ENERGY_REAL, description="RealEnergy", units="Wh", scale="k"),
    "EUR/kWh": ItemBase(
        kind=ItemKind.CURRENCY_PER_KWH, description="currencyPerKWh", units="EUR", scale="none"
    ),
    "EUR/kW": ItemBase(
        kind=ItemKind.CURRENCY_PER_KW, description="currencyPerKW", units="EUR", scale="none"
    ),
    "EUR": ItemBase(kind=ItemKind.CURRENCY, description="currency", units="EUR", scale="none"),
}

# The signal type a name gets when the request names none (profile spec §8.3.3).
DEFAULT_SIGNAL_TYPE: dict[SignalName, SignalType] = {
    SignalName.SIMPLE: SignalType.LEVEL,
    SignalName.SIMPLE_LOWER: SignalType.LEVEL,
    SignalName.ELECTRICITY_PRICE: SignalType.PRICE,
    SignalName.ENERGY_PRICE: SignalType.PRICE,
    SignalName.DEMAND_CHARGE: SignalType.PRICE,
    SignalName.BID_PRICE: SignalType.PRICE,
    SignalName.BID_LOAD: SignalType.SETPOINT,
    SignalName.BID_ENERGY: SignalType.SETPOINT,
    SignalName.CHARGE_STATE: SignalType.SETPOINT,
    SignalName.LOAD_DISPATCH: SignalType.SETPOINT,
    SignalName.LOAD_CONTROL: SignalType.LOAD_CONTROL_CAPACITY,
}
# Power signals whose values are kW unless the request says otherwise.
_KW_BY_DEFAULT = {
    (SignalName.LOAD_DISPATCH, SignalType.SETPOINT),
    (SignalName.LOAD_DISPATCH, SignalType.DELTA),
    (SignalName.BID_LOAD, SignalType.SETPOINT),
}

# pydantic reads a duration from ISO 8601 text or a number of seconds; say both in the schema.
_DURATION_SCHEMA = {
    "anyOf": [{"type": "string", "format": "duration"}, {"type": "number", "minimum": 0}],
    "description": "ISO 8601 duration (PT15M) or seconds, whole seconds",
}


def _whole_seconds(value: timedelta) -> timedelta:
    # The 2.0b duration type (xcal:DurationValueType) has whole seconds only: a fraction could
    # be stored but never sent to a VEN.
    if value.microseconds:
        raise ValueError("OpenADR 2.0b durations are whole seconds")
    return value


NonNegativeDuration = Annotated[
    timedelta,
    Field(ge=timedelta(0)),
    AfterValidator(_whole_seconds),
    WithJsonSchema(_DURATION_SCHEMA, mode="validation"),
]
Id = Annotated[str, Field(min_length=1, max_length=128)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntervalIn(_Body):
    duration: NonNegativeDuration
    value: float


class SignalIn(_Body):
    name: SignalName = SignalName.SIMPLE
    type: SignalType | None = Field(
        default=None, description="default: the usual type for the name"
    )
    unit: Unit | None = Field(default=None, description="default: kW for load dispatch setpoints")
    intervals: list[IntervalIn] = Field(min_length=1)
    signal_id: Id | None = None


class TargetIn(_Body):
    ven_ids: list[Id] = []
    group_ids: list[Id] = []
    resource_ids: list[Id] = []
    party_ids: list[Id] = []

    def to_model(self) -> Target:
        return Target(
            ven_ids=tuple(VenId(v) for v in self.ven_ids),
            group_ids=tuple(self.group_ids),
            resource_ids=tuple(self.resource_ids),
            party_ids=tuple(self.party_ids),
        )


class EventCreate(_Body):
    """A new event; targets empty = every VEN; duration default = the intervals' sum."""

    event_id: Id | None = Field(default=None, description="default: assigned by the VTN")
    market_context: Annotated[str, Field(min_length=1)] = DEFAULT_MARKET_CONTEXT
    start: AwareDatetime
    duration: NonNegativeDuration | None = Field(default=None, description="0: open-ended")
    signals: list[SignalIn] = Field(min_length=1)
    targets: TargetIn = TargetIn()
    priority: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="1 highest; 0 none"
    )
    start_after: NonNegativeDuration | None = Field(
        default=None, description="randomization window"
    )
    notification: NonNegativeDuration | None = None
    ramp_up: NonNegativeDuration | None = None
    recovery: NonNegativeDuration | None = None
    response_required: ResponseRequired = ResponseRequired.ALWAYS
    test_event: bool = False
    vtn_comment: str | None = None


class EventPatch(_Body):
    """Fields to change; each change is one new modification (modificationNumber + 1)."""

    start: AwareDatetime | None = None
    duration: NonNegativeDuration | None = None
    signals: list[SignalIn] | None = Field(default=None, min_length=1)
    targets: TargetIn | None = None
    priority: Annotated[int, Field(ge=0)] | None = None
    start_after: NonNegativeDuration | None = None
    response_required: ResponseRequired | None = None
    test_event: bool | None = None
    vtn_comment: str | None = None
    modification_reason: str | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> EventPatch:
        if not self.model_fields_set:
            raise ValueError("the patch changes nothing")
        return self


class GroupsBody(_Body):
    groups: list[Id]


class ProvisionBody(_Body):
    fingerprint: Annotated[str, Field(min_length=1, max_length=64)]
    ven_name: str | None = None
    ven_id: Id | None = None
    groups: list[Id] = []


class ReportRequestBody(_Body):
    """Ask a VEN for a report it registered; r_ids default to every rID of that report."""

    report_specifier_id: Id
    r_ids: list[Id] | None = None
    granularity: NonNegativeDuration = timedelta(minutes=1)
    report_back_duration: NonNegativeDuration = timedelta(minutes=5)
    start: AwareDatetime | None = Field(
        default=None, description="with duration: a report interval"
    )
    duration: NonNegativeDuration | None = Field(default=None, description="0: open-ended")
    report_request_id: Id | None = Field(default=None, description="default: assigned by the VTN")


# --- replies --------------------------------------------------------------------------------------


class Error(BaseModel):
    error: str
    code: int = Field(description="the OpenADR response code for a rule's refusal, else HTTP")
    detail: list[dict[str, Any]] | None = None


class VenDetail(BaseModel):
    ven: VenRecord
    registered_reports: list[Report]
    report_requests: list[ReportRequest]
    opts: list[CreateOpt]
    pending_messages: int


class VenDelivery(BaseModel):
    """One VEN's view of one event: which modification it was sent and what it answered."""

    ven_id: str
    targeted: bool
    delivered_modification: int | None
    delivered_at: datetime | None
    up_to_date: bool
    opt_type: OptType | None
    opt_modification_number: int | None
    response_code: int | None
    responded_at: datetime | None


class EventDetail(BaseModel):
    event: Event
    deliveries: list[VenDelivery]


class OptOut(BaseModel):
    ven_id: str
    opt: CreateOpt


class Page(BaseModel, Generic[T]):
    items: list[T]
    offset: int
    limit: int
    next_offset: int | None = Field(description="null: this is the last page")


VenPage = Page[VenRecord]
EventPage = Page[Event]
ReadingPage = Page[Reading]
AuditPage = Page[AuditEntry]
OptPage = Page[OptOut]


class Done(BaseModel):
    ok: bool = True
    detail: str


VenStatusFilter = Status
EventFilter = Literal["all", "active", "pending"]


# --- requests -> model values (pure) --------------------------------------------------------------


def signals(items: list[SignalIn]) -> tuple[EventSignal, ...]:
    built: list[EventSignal] = []
    for position, item in enumerate(items):
        signal_type = item.type or DEFAULT_SIGNAL_TYPE[item.name]
        unit = item.unit or ("kW" if (item.name, signal_type) in _KW_BY_DEFAULT else None)
        built.append(
            EventSignal(
                signal_name=item.name,
                signal_type=signal_type,
                signal_id=item.signal_id or f"signal-{position}",
                intervals=tuple(
                    EventInterval(uid=uid, duration=interval.duration, value=interval.value)
                    for uid, interval in enumerate(item.intervals)
                ),
                item_base=None if unit is None else _ITEM_BASES[unit],
            )
        )
    return tuple(built)


def _length(built: tuple[EventSignal, ...]) -> timedelta:
    return sum((i.duration for i in built[0].intervals), timedelta(0))


def event(body: EventCreate, *, created: datetime) -> Event:
    """The event a create request describes; the operator service sets id and status rules."""
    built = signals(body.signals)
    return Event(
        event_id=EventId(body.event_id or ""),
        modification_number=0,
        market_context=body.market_context,
        created=created,
        status=EventStatus.FAR,
        active_period=ActivePeriod(
            start=body.start,
            duration=body.duration if body.duration is not None else _length(built),
            start_after=body.start_after,
            notification=body.notification,
            ramp_up=body.ramp_up,
            recovery=body.recovery,
        ),
        signals=built,
        target=body.targets.to_model(),
        response_required=body.response_required,
        priority=body.priority,
        test_event=body.test_event,
        vtn_comment=body.vtn_comment,
    )


def changes(current: Event, patch: EventPatch) -> dict[str, Any]:
    """The `oadr.events.modify` keyword changes a patch makes to `current`."""
    given = patch.model_fields_set
    result: dict[str, Any] = {}
    period = current.active_period
    if "signals" in given and patch.signals is not None:
        result["signals"] = signals(patch.signals)
        if "duration" not in given and period.duration != timedelta(0):
            period = dataclasses.replace(period, duration=_length(result["signals"]))
    if "start" in given and patch.start is not None:
        period = dataclasses.replace(period, start=patch.start)
    if "duration" in given and patch.duration is not None:
        period = dataclasses.replace(period, duration=patch.duration)
    if "start_after" in given:
        period = dataclasses.replace(period, start_after=patch.start_after)
    if period != current.active_period:
        result["active_period"] = period
    if "targets" in given:
        result["target"] = (patch.targets or TargetIn()).to_model()
    for name in ("priority", "test_event", "vtn_comment", "modification_reason"):
        if name in given:
            result[name] = getattr(patch, name)
    if "response_required" in given and patch.response_required is not None:
        result["response_required"] = patch.response_required
    return result


def report_request(
    body: ReportRequestBody, registered: list[Report], request_id: str
) -> ReportRequest:
    """The oadrReportRequest for a registered report; rIDs it does not have stay for the rules
    (`oadr.reports.validate_report_request`) to refuse with the right code."""
    report = next(
        (r for r in registered if r.report_specifier_id == body.report_specifier_id), None
    )
    if report is None:
        raise ReportNotSupported(
            f"reportSpecifierID {body.report_specifier_id!r} is not registered"
        )
    descriptions = {d.r_id: d for d in report.descriptions}
    r_ids = body.r_ids if body.r_ids is not None else list(descriptions)
    interval = None
    if body.start is not None:
        interval = TimeWindow(start=body.start, duration=body.duration or timedelta(0))
    return ReportRequest(
        report_request_id=ReportRequestId(body.report_request_id or request_id),
        report_specifier_id=ReportSpecifierId(body.report_specifier_id),
        granularity=body.granularity,
        report_back_duration=body.report_back_duration,
        specifier_payloads=tuple(
            SpecifierPayload(
                r_id=RId(r_id),
                reading_type=descriptions[RId(r_id)].reading_type
                if RId(r_id) in descriptions
                else "x-notApplicable",
                item_base=descriptions[RId(r_id)].item_base if RId(r_id) in descriptions else None,
            )
            for r_id in r_ids
        ),
        interval=interval,
    )
