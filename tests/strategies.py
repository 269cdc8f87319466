"""Hypothesis strategies for valid `oadr.model` values of all 23 payload types.

"Valid" means: the value, once encoded, is schema-valid 2.0b and within the profile rules we rely
on (OPENADR-2.0b-NOTES.md). What the strategies promise:
- ids: 1-16 characters of letters, digits and `-_.:` (never surrounding whitespace);
  reportRequestIDs other than METADATA ones are never "0".
- free text (descriptions, vtnComment, modificationReason, venName...): 1-24 characters of any
  assigned, non-control, non-surrogate unicode, without leading or trailing whitespace. XML
  cannot carry control characters, and whitespace at the ends of text is not preserved by
  every XML pipeline (canonicalisation, pretty-printing peers), so we do not promise it.
- datetimes: aware UTC, microsecond precision, 2000-01-01 to 2100-01-01; an event's whole active
  period lies within these bounds, so interval starts computed from it do too.
- durations: whole seconds, 0 to 7 days (`timedelta`).
- floats: finite, never NaN, infinity or -0.0 (any magnitude: we write Python repr); power
  attributes (xs:decimal) are hundredths, which repr writes without an exponent.
- enums from `oadr.enums`; extension-capable strings (report names and types, reading types,
  data quality) are a known value or an `x-` token.
- events: interval uids 0..n-1 in order, at least one signal and one interval per signal, every
  signal's intervals (and a baseline's) add up to the active period's duration, signal name and
  type from the profile's table, SIMPLE levels 0-3.
- item bases follow the XSD's fixed descriptions and units, `ITEM_BASE_FIXED`.
- collections hold at most 3 items so examples stay small and fast.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Final, TypeVar

import openleadr
from hypothesis import strategies as st
from lxml import etree

from oadr import model as m
from oadr.enums import (
    DataQuality,
    EventStatus,
    ItemKind,
    OptReason,
    OptType,
    ReadingType,
    ReportName,
    ReportType,
    ResponseCode,
    ResponseRequired,
    SignalName,
    SignalType,
    TransportName,
)

_T = TypeVar("_T")
S = st.SearchStrategy

ID_ALPHABET: Final = string.ascii_letters + string.digits + "-_.:"
SI_SCALE_CODES: Final = ("p", "n", "micro", "m", "c", "d", "k", "M", "G", "T", "none")
CURRENCY_DESCRIPTIONS: Final = ("currency", "currencyPerKW", "currencyPerKWh")
PROFILE_NAMES: Final = ("2.0a", "2.0b")
MIN_DATETIME: Final = datetime(2000, 1, 1, tzinfo=UTC)
MAX_DATETIME: Final = datetime(2100, 1, 1, tzinfo=UTC)
MAX_DURATION: Final = timedelta(days=7)
MAX_ITEMS: Final = 3


def _iso_currency_codes() -> tuple[str, ...]:
    """itemUnits of currency items: the ISO 4217 enumeration the 2.0b XSD imports."""
    xsd = Path(openleadr.__file__).parent / "schema" / "oadr_ISO_ISO3AlphaCurrencyCode_20100407.xsd"
    tree = etree.parse(str(xsd))
    values = tree.xpath(
        "//xsd:enumeration/@value", namespaces={"xsd": "http://www.w3.org/2001/XMLSchema"}
    )
    assert isinstance(values, list)
    return tuple(sorted({str(v) for v in values}))


ISO_CURRENCY_CODES: Final = _iso_currency_codes()


@dataclass(frozen=True, slots=True)
class ItemBaseRule:
    """What the XSD fixes for one itemBase element; an empty tuple means free text."""

    descriptions: tuple[str, ...]
    units: tuple[str, ...]
    scaled: bool = True  # siScaleCode present (pulseCount has pulseFactor instead)
    power_attributes: bool = False  # power:powerAttributes required


_CURRENCY_RULE = ItemBaseRule(CURRENCY_DESCRIPTIONS, ISO_CURRENCY_CODES)
ITEM_BASE_FIXED: Final[Mapping[ItemKind, ItemBaseRule]] = {
    ItemKind.POWER_REAL: ItemBaseRule(("RealPower",), ("W", "J/s"), power_attributes=True),
    ItemKind.POWER_APPARENT: ItemBaseRule(("ApparentPower",), ("VA",), power_attributes=True),
    ItemKind.POWER_REACTIVE: ItemBaseRule(("ReactivePower",), ("VAR",), power_attributes=True),
    ItemKind.ENERGY_REAL: ItemBaseRule(("RealEnergy",), ("Wh",)),
    ItemKind.ENERGY_APPARENT: ItemBaseRule(("ApparentEnergy",), ("VAh",)),
    ItemKind.ENERGY_REACTIVE: ItemBaseRule(("ReactiveEnergy",), ("VARh",)),
    ItemKind.VOLTAGE: ItemBaseRule(("Voltage",), ("V",)),
    ItemKind.CURRENT: ItemBaseRule(("Current",), ("A",)),
    ItemKind.FREQUENCY: ItemBaseRule(("Frequency",), ("Hz",)),
    ItemKind.TEMPERATURE: ItemBaseRule(("temperature",), ("celsius", "fahrenheit")),
    ItemKind.THERM: ItemBaseRule(("Therm",), ("thm",)),
    ItemKind.PULSE_COUNT: ItemBaseRule(("pulse count",), ("count",), scaled=False),
    ItemKind.CURRENCY: _CURRENCY_RULE,
    ItemKind.CURRENCY_PER_KWH: _CURRENCY_RULE,
    ItemKind.CURRENCY_PER_KW: _CURRENCY_RULE,
    ItemKind.CURRENCY_PER_THM: _CURRENCY_RULE,
    ItemKind.CUSTOM_UNIT: ItemBaseRule((), ()),
}

# Profile spec §8.3.3 as tabulated in OPENADR-2.0b-NOTES.md: the signal types each name allows.
SIGNAL_TYPES_BY_NAME: Final[Mapping[SignalName, tuple[SignalType, ...]]] = {
    SignalName.SIMPLE: (SignalType.LEVEL,),
    SignalName.SIMPLE_LOWER: (SignalType.LEVEL,),
    **dict.fromkeys(
        (SignalName.ELECTRICITY_PRICE, SignalName.ENERGY_PRICE, SignalName.DEMAND_CHARGE),
        (SignalType.PRICE, SignalType.PRICE_RELATIVE, SignalType.PRICE_MULTIPLIER),
    ),
    SignalName.BID_PRICE: (SignalType.PRICE,),
    SignalName.BID_LOAD: (SignalType.SETPOINT,),
    SignalName.BID_ENERGY: (SignalType.SETPOINT,),
    SignalName.CHARGE_STATE: (SignalType.SETPOINT, SignalType.DELTA, SignalType.MULTIPLIER),
    SignalName.LOAD_DISPATCH: (
        SignalType.SETPOINT,
        SignalType.DELTA,
        SignalType.MULTIPLIER,
        SignalType.LEVEL,
    ),
    SignalName.LOAD_CONTROL: (
        SignalType.LOAD_CONTROL_CAPACITY,
        SignalType.LOAD_CONTROL_LEVEL_OFFSET,
        SignalType.LOAD_CONTROL_SETPOINT,
        SignalType.LOAD_CONTROL_PERCENT_OFFSET,
    ),
}


# --- scalars -------------------------------------------------------------------------------------


def ids() -> S[str]:
    return st.text(ID_ALPHABET, min_size=1, max_size=16)


def free_texts() -> S[str]:
    chars = st.characters(exclude_categories=("Cc", "Cs", "Cn", "Co"))
    return st.text(chars, min_size=1, max_size=24).filter(lambda s: s == s.strip())


def x_tokens() -> S[str]:
    """EiExtensionTokenType (`x-\\S.*`), kept to id characters."""
    return ids().map(lambda s: "x-" + s)


def uris() -> S[str]:
    host = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12)
    return st.builds(lambda h, p: f"http://{h}.example.org/{p}", host, ids())


def datetimes(latest: datetime = MAX_DATETIME) -> S[datetime]:
    naive = st.datetimes(
        min_value=MIN_DATETIME.replace(tzinfo=None), max_value=latest.replace(tzinfo=None)
    )
    return naive.map(lambda d: d.replace(tzinfo=UTC))


def durations(max_seconds: int = int(MAX_DURATION.total_seconds())) -> S[timedelta]:
    return st.integers(0, max_seconds).map(lambda s: timedelta(seconds=s))


def floats(min_value: float | None = None, max_value: float | None = None) -> S[float]:
    finite = st.floats(min_value, max_value, allow_nan=False, allow_infinity=False)
    return finite.map(lambda x: 0.0 if x == 0 else x)  # no -0.0


def unsigned_ints() -> S[int]:
    return st.integers(0, 2**32 - 1)


def _opt(strategy: S[_T]) -> S[_T | None]:
    return st.none() | strategy


def _few(strategy: S[_T], min_size: int = 0, max_size: int = MAX_ITEMS) -> S[tuple[_T, ...]]:
    return st.lists(strategy, min_size=min_size, max_size=max_size).map(tuple)


def _extensible(known: type[ReportName | ReportType | ReadingType | DataQuality]) -> S[str]:
    return st.sampled_from([str(v.value) for v in known]) | x_tokens()


def report_names() -> S[str]:
    return _extensible(ReportName)


def report_types() -> S[str]:
    return _extensible(ReportType)


def reading_types() -> S[str]:
    return _extensible(ReadingType)


def data_qualities() -> S[str]:
    return _extensible(DataQuality)


def response_codes() -> S[int]:
    return st.sampled_from([int(c) for c in ResponseCode])


# --- shared parts --------------------------------------------------------------------------------


def ei_responses() -> S[m.EiResponse]:
    return st.builds(
        m.EiResponse,
        code=response_codes(),
        request_id=st.just(m.RequestId("")) | ids().map(m.RequestId),
        description=_opt(free_texts()),
    )


def targets(max_per_kind: int = 2) -> S[m.Target]:
    def kind() -> S[tuple[str, ...]]:
        return _few(ids(), max_size=max_per_kind)

    return st.builds(
        m.Target,
        end_device_assets=kind(),
        group_ids=kind(),
        group_names=kind(),
        resource_ids=kind(),
        ven_ids=kind().map(lambda t: tuple(m.VenId(v) for v in t)),
        party_ids=kind(),
    )


def device_targets() -> S[m.Target]:
    """Signal-level targets and oadrDeviceClass: endDeviceAsset mrids only."""
    return st.builds(m.Target, end_device_assets=_few(ids(), min_size=1, max_size=2))


def power_attributes() -> S[m.PowerAttributes]:
    hundredths = st.integers(0, 10**6).map(lambda n: n / 100)
    return st.builds(m.PowerAttributes, hertz=hundredths, voltage=hundredths, ac=st.booleans())


@st.composite
def item_bases(draw: st.DrawFn, kind: ItemKind | None = None) -> m.ItemBase:
    kind = kind if kind is not None else draw(st.sampled_from(ItemKind))
    rule = ITEM_BASE_FIXED[kind]
    description = draw(st.sampled_from(rule.descriptions) if rule.descriptions else free_texts())
    units = draw(st.sampled_from(rule.units) if rule.units else free_texts())
    return m.ItemBase(
        kind=kind,
        description=description,
        units=units,
        scale=draw(st.sampled_from(SI_SCALE_CODES)) if rule.scaled else None,
        power_attributes=draw(power_attributes()) if rule.power_attributes else None,
        pulse_factor=None if rule.scaled else draw(floats(min_value=1e-6)),
    )


def time_windows() -> S[m.TimeWindow]:
    return st.builds(m.TimeWindow, start=datetimes(), duration=durations())


# --- events --------------------------------------------------------------------------------------


def signal_values(name: SignalName, signal_type: SignalType) -> S[float]:
    """Payload values the profile allows for this signal (NOTES: signal names table)."""
    if name in (SignalName.SIMPLE, SignalName.SIMPLE_LOWER):
        return st.sampled_from((0.0, 1.0, 2.0, 3.0))
    if signal_type is SignalType.LEVEL:
        return st.integers(-10, 10).map(float)
    if signal_type in (SignalType.LOAD_CONTROL_CAPACITY, SignalType.MULTIPLIER):
        return floats(0.0, 1.0)
    if signal_type is SignalType.LOAD_CONTROL_PERCENT_OFFSET:
        return floats(-1.0, 1.0)
    if signal_type is SignalType.LOAD_CONTROL_LEVEL_OFFSET:
        return st.integers(-10, 10).filter(bool).map(float)
    return floats()


@st.composite
def _parts(draw: st.DrawFn, total: timedelta) -> tuple[timedelta, ...]:
    """1..3 whole-second durations adding up to `total`."""
    seconds = int(total.total_seconds())
    cuts = sorted(draw(_few(st.integers(0, seconds), max_size=MAX_ITEMS - 1)))
    bounds = [0, *cuts, seconds]
    return tuple(timedelta(seconds=b - a) for a, b in pairwise(bounds))


@st.composite
def event_intervals(
    draw: st.DrawFn, start: datetime, total: timedelta, values: S[float]
) -> tuple[m.EventInterval, ...]:
    """uids 0..n-1; each interval's optional start is where it falls in the period."""
    intervals = []
    offset = timedelta()
    for uid, duration in enumerate(draw(_parts(total))):
        with_start = draw(st.booleans())
        intervals.append(
            m.EventInterval(
                uid=uid,
                duration=duration,
                value=draw(values),
                start=start + offset if with_start else None,
            )
        )
        offset += duration
    return tuple(intervals)


@st.composite
def event_signals(draw: st.DrawFn, start: datetime, total: timedelta) -> m.EventSignal:
    name = draw(st.sampled_from(list(SIGNAL_TYPES_BY_NAME)))
    signal_type = draw(st.sampled_from(SIGNAL_TYPES_BY_NAME[name]))
    values = signal_values(name, signal_type)
    return m.EventSignal(
        signal_name=name,
        signal_type=signal_type,
        signal_id=draw(ids()),
        intervals=draw(event_intervals(start, total, values)),
        item_base=draw(_opt(item_bases())),
        current_value=draw(_opt(values)),
        target=draw(_opt(device_targets())),
    )


@st.composite
def event_baselines(draw: st.DrawFn, start: datetime, total: timedelta) -> m.EventBaseline:
    return m.EventBaseline(
        baseline_id=draw(ids()),
        baseline_name=draw(free_texts()),
        start=start,
        duration=total,
        intervals=draw(event_intervals(start, total, floats())),
        resource_ids=draw(_few(ids())),
        item_base=draw(_opt(item_bases())),
    )


@st.composite
def events(draw: st.DrawFn) -> m.Event:
    total = draw(durations(2 * 24 * 3600))
    # The whole period stays within the bounds: interval starts are start + the durations before.
    start = draw(datetimes(latest=MAX_DATETIME - total))
    return m.Event(
        event_id=m.EventId(draw(ids())),
        modification_number=draw(unsigned_ints()),
        market_context=draw(uris()),
        created=draw(datetimes()),
        status=draw(st.sampled_from(EventStatus)),
        active_period=m.ActivePeriod(
            start=start,
            duration=total,
            start_after=draw(_opt(durations())),
            notification=draw(_opt(durations())),
            ramp_up=draw(_opt(durations())),
            recovery=draw(_opt(durations())),
        ),
        signals=draw(_few(event_signals(start, total), min_size=1, max_size=2)),
        target=draw(targets()),
        response_required=draw(st.sampled_from(ResponseRequired)),
        priority=draw(_opt(unsigned_ints())),
        test_event=draw(_opt(st.booleans())),
        vtn_comment=draw(_opt(free_texts())),
        modified=draw(_opt(datetimes())),
        modification_reason=draw(_opt(free_texts())),
        baseline=draw(_opt(event_baselines(start, total))),
    )


def event_responses() -> S[m.EventResponse]:
    return st.builds(
        m.EventResponse,
        code=response_codes(),
        request_id=ids().map(m.RequestId),
        event_id=ids().map(m.EventId),
        modification_number=unsigned_ints(),
        opt_type=st.sampled_from(OptType),
        description=_opt(free_texts()),
    )


# --- reports -------------------------------------------------------------------------------------


@st.composite
def sampling_rates(draw: st.DrawFn) -> m.SamplingRate:
    low, high = sorted(draw(_few(durations(), min_size=2, max_size=2)))
    return m.SamplingRate(min_period=low, max_period=high, on_change=draw(st.booleans()))


def report_descriptions() -> S[m.ReportDescription]:
    return st.builds(
        m.ReportDescription,
        r_id=ids().map(m.RId),
        report_type=report_types(),
        reading_type=reading_types(),
        subject=_opt(targets(max_per_kind=1)),
        data_source=_opt(targets(max_per_kind=1)),
        item_base=_opt(item_bases()),
        market_context=_opt(uris()),
        sampling_rate=_opt(sampling_rates()),
    )


def load_control_values() -> S[m.LoadControlValue]:
    return st.builds(
        m.LoadControlValue,
        current=floats(),
        minimum=_opt(floats()),
        maximum=_opt(floats()),
        normal=_opt(floats()),
    )


def resource_statuses() -> S[m.ResourceStatus]:
    load_control = st.builds(
        m.LoadControlState,
        capacity=_opt(load_control_values()),
        level_offset=_opt(load_control_values()),
        percent_offset=_opt(load_control_values()),
        setpoint=_opt(load_control_values()),
    )
    return st.builds(
        m.ResourceStatus,
        online=st.booleans(),
        manual_override=st.booleans(),
        load_control=_opt(load_control),
    )


def report_payloads() -> S[m.ReportPayload]:
    return st.builds(
        m.ReportPayload,
        r_id=ids().map(m.RId),
        value=floats() | resource_statuses(),
        confidence=_opt(st.integers(0, 100)),
        accuracy=_opt(floats()),
        data_quality=_opt(data_qualities()),
    )


def report_intervals() -> S[m.ReportInterval]:
    return st.builds(
        m.ReportInterval,
        start=_opt(datetimes()),
        payloads=_few(report_payloads(), min_size=1),
        duration=_opt(durations()),
        uid=_opt(ids()),
    )


def metadata_reports() -> S[m.Report]:
    """What a RegisterReport carries: descriptions, reportRequestID 0, no intervals."""
    metadata_names = [str(n.value) for n in ReportName if n.value.startswith("METADATA_")]
    return st.builds(
        m.Report,
        report_specifier_id=ids().map(m.ReportSpecifierId),
        created=datetimes(),
        report_request_id=st.just(m.METADATA_REPORT_REQUEST_ID),
        report_name=_opt(st.sampled_from(metadata_names) | x_tokens()),
        report_id=_opt(ids().map(m.ReportId)),
        descriptions=_few(report_descriptions(), min_size=1),
        duration=_opt(durations()),
    )


def report_request_ids() -> S[m.ReportRequestId]:
    return ids().filter(lambda s: s != m.METADATA_REPORT_REQUEST_ID).map(m.ReportRequestId)


def data_reports() -> S[m.Report]:
    """What an UpdateReport carries: readings in intervals, for one report request."""
    return st.builds(
        m.Report,
        report_specifier_id=ids().map(m.ReportSpecifierId),
        created=datetimes(),
        report_request_id=report_request_ids(),
        report_name=_opt(report_names()),
        report_id=ids().map(m.ReportId),
        intervals=_few(report_intervals(), min_size=1),
        start=_opt(datetimes()),
        duration=_opt(durations()),
    )


def specifier_payloads() -> S[m.SpecifierPayload]:
    return st.builds(
        m.SpecifierPayload,
        r_id=ids().map(m.RId),
        reading_type=reading_types(),
        item_base=_opt(item_bases()),
    )


def report_requests() -> S[m.ReportRequest]:
    return st.builds(
        m.ReportRequest,
        report_request_id=report_request_ids(),
        report_specifier_id=ids().map(m.ReportSpecifierId),
        granularity=durations(),
        report_back_duration=durations(),
        specifier_payloads=_few(specifier_payloads(), min_size=1),
        interval=_opt(time_windows()),
    )


def cancel_reports() -> S[m.CancelReport]:
    return st.builds(
        m.CancelReport,
        request_id=ids().map(m.RequestId),
        report_request_ids=_few(report_request_ids(), min_size=1),
        report_to_follow=st.booleans(),
        ven_id=_opt(ids().map(m.VenId)),
    )


# --- the 23 payloads ------------------------------------------------------------------------------


def _request_ids() -> S[m.RequestId]:
    return ids().map(m.RequestId)


def _ven_ids() -> S[m.VenId]:
    return ids().map(m.VenId)


def query_registrations() -> S[m.QueryRegistration]:
    return st.builds(m.QueryRegistration, request_id=_request_ids())


def create_party_registrations() -> S[m.CreatePartyRegistration]:
    return st.builds(
        m.CreatePartyRegistration,
        request_id=_request_ids(),
        report_only=st.booleans(),
        xml_signature=st.booleans(),
        profile_name=st.sampled_from(PROFILE_NAMES),
        transport_name=st.sampled_from([str(t.value) for t in TransportName]),
        transport_address=_opt(uris()),
        ven_name=_opt(free_texts()),
        http_pull_model=_opt(st.booleans()),
        registration_id=_opt(ids().map(m.RegistrationId)),
        ven_id=_opt(_ven_ids()),
    )


def created_party_registrations() -> S[m.CreatedPartyRegistration]:
    profile = st.builds(
        m.Profile,
        profile_name=st.sampled_from(PROFILE_NAMES),
        transports=st.lists(
            st.sampled_from([str(t.value) for t in TransportName]), min_size=1, unique=True
        ).map(tuple),
    )
    return st.builds(
        m.CreatedPartyRegistration,
        response=ei_responses(),
        vtn_id=ids().map(m.VtnId),
        profiles=_few(profile, min_size=1, max_size=2),
        registration_id=_opt(ids().map(m.RegistrationId)),
        ven_id=_opt(_ven_ids()),
        requested_poll_freq=_opt(durations()),
    )


def cancel_party_registrations() -> S[m.CancelPartyRegistration]:
    return st.builds(
        m.CancelPartyRegistration,
        request_id=_request_ids(),
        registration_id=ids().map(m.RegistrationId),
        ven_id=_opt(_ven_ids()),
    )


def canceled_party_registrations() -> S[m.CanceledPartyRegistration]:
    return st.builds(
        m.CanceledPartyRegistration,
        response=ei_responses(),
        registration_id=_opt(ids().map(m.RegistrationId)),
        ven_id=_opt(_ven_ids()),
    )


def request_reregistrations() -> S[m.RequestReregistration]:
    return st.builds(m.RequestReregistration, ven_id=_ven_ids())


def request_events() -> S[m.RequestEvent]:
    return st.builds(
        m.RequestEvent,
        request_id=_request_ids(),
        ven_id=_ven_ids(),
        reply_limit=_opt(unsigned_ints()),
    )


def distribute_events() -> S[m.DistributeEvent]:
    return st.builds(
        m.DistributeEvent,
        request_id=_request_ids(),
        vtn_id=ids().map(m.VtnId),
        events=_few(events(), max_size=2),
        response=_opt(ei_responses()),
    )


def created_events() -> S[m.CreatedEvent]:
    return st.builds(
        m.CreatedEvent,
        response=ei_responses(),
        ven_id=_ven_ids(),
        event_responses=_few(event_responses()),
    )


def responses() -> S[m.Response]:
    return st.builds(m.Response, response=ei_responses(), ven_id=_opt(_ven_ids()))


@st.composite
def create_opts(draw: st.DrawFn) -> m.CreateOpt:
    """An availability schedule, or an opt tied to one event (NOTES: Reports and opt)."""
    for_event = draw(st.booleans())
    return m.CreateOpt(
        request_id=draw(_request_ids()),
        opt_id=m.OptId(draw(ids())),
        opt_type=draw(st.sampled_from(OptType)),
        opt_reason=draw(st.sampled_from(OptReason)),
        ven_id=draw(_ven_ids()),
        created=draw(datetimes()),
        target=draw(targets()),
        market_context=None if for_event else draw(_opt(uris())),
        availability=None if for_event else draw(_few(time_windows(), min_size=1)),
        event_id=m.EventId(draw(ids())) if for_event else None,
        modification_number=draw(unsigned_ints()) if for_event else None,
        device_class=draw(_opt(device_targets())),
    )


def created_opts() -> S[m.CreatedOpt]:
    return st.builds(m.CreatedOpt, response=ei_responses(), opt_id=ids().map(m.OptId))


def cancel_opts() -> S[m.CancelOpt]:
    return st.builds(
        m.CancelOpt, request_id=_request_ids(), opt_id=ids().map(m.OptId), ven_id=_ven_ids()
    )


def canceled_opts() -> S[m.CanceledOpt]:
    return st.builds(m.CanceledOpt, response=ei_responses(), opt_id=_opt(ids().map(m.OptId)))


def register_reports() -> S[m.RegisterReport]:
    return st.builds(
        m.RegisterReport,
        request_id=_request_ids(),
        reports=_few(metadata_reports()),
        ven_id=_opt(_ven_ids()),
        report_request_id=_opt(report_request_ids()),
    )


def registered_reports() -> S[m.RegisteredReport]:
    return st.builds(
        m.RegisteredReport,
        response=ei_responses(),
        report_requests=_few(report_requests()),
        ven_id=_opt(_ven_ids()),
    )


def create_reports() -> S[m.CreateReport]:
    return st.builds(
        m.CreateReport,
        request_id=_request_ids(),
        report_requests=_few(report_requests(), min_size=1),
        ven_id=_opt(_ven_ids()),
    )


def created_reports() -> S[m.CreatedReport]:
    return st.builds(
        m.CreatedReport,
        response=ei_responses(),
        pending_reports=_few(report_request_ids()),
        ven_id=_opt(_ven_ids()),
    )


def update_reports() -> S[m.UpdateReport]:
    return st.builds(
        m.UpdateReport,
        request_id=_request_ids(),
        reports=_few(data_reports(), max_size=2),
        ven_id=_opt(_ven_ids()),
    )


def updated_reports() -> S[m.UpdatedReport]:
    return st.builds(
        m.UpdatedReport,
        response=ei_responses(),
        cancel_report=_opt(cancel_reports()),
        ven_id=_opt(_ven_ids()),
    )


def canceled_reports() -> S[m.CanceledReport]:
    return st.builds(
        m.CanceledReport,
        response=ei_responses(),
        pending_reports=_few(report_request_ids()),
        ven_id=_opt(_ven_ids()),
    )


def polls() -> S[m.Poll]:
    return st.builds(m.Poll, ven_id=_ven_ids())


PAYLOAD_STRATEGIES: Final[Mapping[type[m.Payload], Callable[[], S[m.Payload]]]] = {
    m.QueryRegistration: query_registrations,
    m.CreatePartyRegistration: create_party_registrations,
    m.CreatedPartyRegistration: created_party_registrations,
    m.CancelPartyRegistration: cancel_party_registrations,
    m.CanceledPartyRegistration: canceled_party_registrations,
    m.RequestReregistration: request_reregistrations,
    m.RequestEvent: request_events,
    m.DistributeEvent: distribute_events,
    m.CreatedEvent: created_events,
    m.Response: responses,
    m.CreateOpt: create_opts,
    m.CreatedOpt: created_opts,
    m.CancelOpt: cancel_opts,
    m.CanceledOpt: canceled_opts,
    m.RegisterReport: register_reports,
    m.RegisteredReport: registered_reports,
    m.CreateReport: create_reports,
    m.CreatedReport: created_reports,
    m.UpdateReport: update_reports,
    m.UpdatedReport: updated_reports,
    m.CancelReport: cancel_reports,
    m.CanceledReport: canceled_reports,
    m.Poll: polls,
}


def payloads() -> S[m.Payload]:
    """Any of the 23 payload types."""
    return st.one_of([strategy() for strategy in PAYLOAD_STRATEGIES.values()])
