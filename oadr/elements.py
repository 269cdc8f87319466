"""The parts payloads share, to and from XML: targets, item bases, intervals, events, reports.

`oadr.codec` assembles whole payloads from these. Decoding runs only on schema-valid trees, so a
required child is there; what the schema cannot check (value ranges, enumerations it leaves open)
is checked here and refused with the matching `OadrError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import TypeVar

from lxml import etree

from oadr import xmlvalues as xv
from oadr.enums import EventStatus, ItemKind, ResponseRequired, SignalName, SignalType
from oadr.errors import InvalidData, SignalNotSupported
from oadr.model import (
    ActivePeriod,
    EiResponse,
    Event,
    EventBaseline,
    EventId,
    EventInterval,
    EventSignal,
    ItemBase,
    LoadControlState,
    LoadControlValue,
    PowerAttributes,
    Report,
    ReportDescription,
    ReportId,
    ReportInterval,
    ReportPayload,
    ReportRequest,
    ReportRequestId,
    ReportSpecifierId,
    RequestId,
    ResourceStatus,
    RId,
    SamplingRate,
    SpecifierPayload,
    Target,
    TimeWindow,
    VenId,
)
from oadr.xmlvalues import EI, EMIX, OADR, POWER, PYLD, SCALE, STRM, XCAL, qname

Element = etree._Element
_T = TypeVar("_T")


# --- generic helpers ------------------------------------------------------------------------------


def sub(parent: Element, namespace: str, local: str, text: str | None = None) -> Element:
    child = etree.SubElement(parent, qname(namespace, local))
    if text is not None:
        child.text = text
    return child


# Child lookups go through iterchildren(tag), which lxml runs in C; find() with a tag name takes
# the slower ElementPath route. Decoding is most of the receive path, so this matters.


def find(element: Element, namespace: str, local: str) -> Element | None:
    return next(element.iterchildren(qname(namespace, local)), None)


def children(element: Element, namespace: str, local: str) -> Iterator[Element]:
    return element.iterchildren(qname(namespace, local))


def descend(element: Element | None, *steps: tuple[str, str]) -> Element | None:
    """Follow child steps (namespace, local) down; None as soon as one is missing."""
    for namespace, local in steps:
        if element is None:
            return None
        element = find(element, namespace, local)
    return element


def require(element: Element, namespace: str, local: str) -> Element:
    found = next(element.iterchildren(qname(namespace, local)), None)
    if found is None:
        # Schema validation makes this unreachable for required children; keep a clear error.
        raise InvalidData(f"{etree.QName(element).localname} lacks {local}")
    return found


def text_of(element: Element, namespace: str, local: str) -> str:
    return require(element, namespace, local).text or ""


def optional_text(element: Element, namespace: str, local: str) -> str | None:
    """The text of an optional child; an empty element counts as absent (OpenLEADR writes
    `<ei:venID/>` where it means "no venID")."""
    found = next(element.iterchildren(qname(namespace, local)), None)
    return None if found is None or not found.text else found.text


def all_text(element: Element, namespace: str, local: str) -> tuple[str, ...]:
    return tuple(child.text or "" for child in element.iterchildren(qname(namespace, local)))


def enum_value(enum: Callable[[str], _T], text: str, what: str) -> _T:
    try:
        return enum(text.strip())
    except ValueError as exc:
        raise InvalidData(f"unknown {what} {text[:40]!r}") from exc


# --- wrapped values: <xcal:dtstart><xcal:date-time>, <xcal:duration><xcal:duration> -----------


def add_dtstart(parent: Element, value: datetime) -> None:
    sub(sub(parent, XCAL, "dtstart"), XCAL, "date-time", xv.format_datetime(value))


def add_duration(parent: Element, namespace: str, local: str, value: timedelta) -> None:
    sub(sub(parent, namespace, local), XCAL, "duration", xv.format_duration(value))


def read_dtstart(parent: Element) -> datetime | None:
    found = find(parent, XCAL, "dtstart")
    return None if found is None else xv.parse_datetime(text_of(found, XCAL, "date-time"))


def read_duration(
    parent: Element, namespace: str = XCAL, local: str = "duration"
) -> timedelta | None:
    found = find(parent, namespace, local)
    return None if found is None else xv.parse_duration(text_of(found, XCAL, "duration"))


def add_window(parent: Element, window: TimeWindow) -> None:
    properties = sub(parent, XCAL, "properties")
    add_dtstart(properties, window.start)
    add_duration(properties, XCAL, "duration", window.duration)


def read_window(properties: Element) -> TimeWindow:
    start = read_dtstart(properties)
    duration = read_duration(properties)
    if start is None or duration is None:
        raise InvalidData("a time window needs dtstart and duration")
    return TimeWindow(start=start, duration=duration)


# --- eiResponse -----------------------------------------------------------------------------------


def add_response(parent: Element, response: EiResponse, local: str = "eiResponse") -> None:
    element = sub(parent, EI, local)
    sub(element, EI, "responseCode", f"{int(response.code):03d}")
    if response.description is not None:
        sub(element, EI, "responseDescription", response.description)
    sub(element, PYLD, "requestID", response.request_id)


def read_response(element: Element) -> EiResponse:
    return EiResponse(
        code=xv.parse_int(text_of(element, EI, "responseCode")),
        request_id=RequestId(text_of(element, PYLD, "requestID")),
        description=optional_text(element, EI, "responseDescription"),
    )


# --- targets --------------------------------------------------------------------------------------


def add_target(
    parent: Element, target: Target, namespace: str = EI, local: str = "eiTarget"
) -> None:
    element = sub(parent, namespace, local)
    for mrid in target.end_device_assets:
        sub(sub(element, POWER, "endDeviceAsset"), POWER, "mrid", mrid)
    for values, name in (
        (target.group_ids, "groupID"),
        (target.group_names, "groupName"),
        (target.resource_ids, "resourceID"),
        (target.ven_ids, "venID"),
        (target.party_ids, "partyID"),
    ):
        for value in values:
            sub(element, EI, name, value)


def read_target(element: Element) -> Target:
    """Targets we act on; pnode, serviceArea, meterAsset and the like are not read (README)."""
    return Target(
        end_device_assets=tuple(
            text_of(asset, POWER, "mrid")
            for asset in element.iterchildren(qname(POWER, "endDeviceAsset"))
        ),
        group_ids=all_text(element, EI, "groupID"),
        group_names=all_text(element, EI, "groupName"),
        resource_ids=all_text(element, EI, "resourceID"),
        ven_ids=tuple(VenId(v) for v in all_text(element, EI, "venID")),
        party_ids=all_text(element, EI, "partyID"),
    )


# --- itemBase (units) -----------------------------------------------------------------------------

_POWER_KINDS = {ItemKind.POWER_REAL, ItemKind.POWER_APPARENT, ItemKind.POWER_REACTIVE}
_POWER_NS_KINDS = _POWER_KINDS | {
    ItemKind.ENERGY_REAL,
    ItemKind.ENERGY_APPARENT,
    ItemKind.ENERGY_REACTIVE,
    ItemKind.VOLTAGE,
}
_ITEM_TAGS: dict[str, ItemKind] = {
    qname(POWER if kind in _POWER_NS_KINDS else OADR, kind.value): kind for kind in ItemKind
}


def add_item_base(parent: Element, item: ItemBase) -> None:
    namespace = POWER if item.kind in _POWER_NS_KINDS else OADR
    element = sub(parent, namespace, item.kind.value)
    sub(element, namespace, "itemDescription", item.description)
    sub(element, namespace, "itemUnits", item.units)
    if item.kind is ItemKind.PULSE_COUNT:
        if item.pulse_factor is None:
            raise ValueError("a pulseCount item needs pulse_factor")
        sub(element, OADR, "pulseFactor", xv.format_float(item.pulse_factor))
    else:
        sub(element, SCALE, "siScaleCode", item.scale or "none")
    if item.kind in _POWER_KINDS:
        if item.power_attributes is None:
            raise ValueError(f"a {item.kind.value} item needs power_attributes")
        attributes = sub(element, POWER, "powerAttributes")
        sub(attributes, POWER, "hertz", xv.format_float(item.power_attributes.hertz))
        sub(attributes, POWER, "voltage", xv.format_float(item.power_attributes.voltage))
        sub(attributes, POWER, "ac", xv.format_bool(item.power_attributes.ac))


def find_item_base(parent: Element) -> ItemBase | None:
    for child in parent:
        kind = _ITEM_TAGS.get(child.tag) if isinstance(child.tag, str) else None
        if kind is not None:
            return read_item_base(child, kind)
        if child.tag == qname(OADR, "oadrGBDataDescription"):
            raise InvalidData("Green Button item descriptions are not supported")
    return None


def read_item_base(element: Element, kind: ItemKind) -> ItemBase:
    namespace = POWER if kind in _POWER_NS_KINDS else OADR
    attributes_element = find(element, POWER, "powerAttributes")
    attributes = None
    if attributes_element is not None:
        attributes = PowerAttributes(
            hertz=xv.parse_float(text_of(attributes_element, POWER, "hertz")),
            voltage=xv.parse_float(text_of(attributes_element, POWER, "voltage")),
            ac=xv.parse_bool(text_of(attributes_element, POWER, "ac")),
        )
    pulse_factor = optional_text(element, OADR, "pulseFactor")
    return ItemBase(
        kind=kind,
        description=text_of(element, namespace, "itemDescription"),
        units=text_of(element, namespace, "itemUnits"),
        scale=optional_text(element, SCALE, "siScaleCode"),
        power_attributes=attributes,
        pulse_factor=None if pulse_factor is None else xv.parse_float(pulse_factor),
    )


# --- event intervals ------------------------------------------------------------------------------


def _add_event_intervals(parent: Element, intervals: Iterable[EventInterval]) -> None:
    container = sub(parent, STRM, "intervals")
    for interval in intervals:
        element = sub(container, EI, "interval")
        if interval.start is not None:
            add_dtstart(element, interval.start)
        add_duration(element, XCAL, "duration", interval.duration)
        sub(sub(element, XCAL, "uid"), XCAL, "text", str(interval.uid))
        payload = sub(sub(element, EI, "signalPayload"), EI, "payloadFloat")
        sub(payload, EI, "value", xv.format_float(interval.value))


def _read_event_intervals(parent: Element) -> tuple[EventInterval, ...]:
    intervals = []
    for position, element in enumerate(require(parent, STRM, "intervals")):
        if not isinstance(element.tag, str):
            continue
        uid_element = find(element, XCAL, "uid")
        uid = position if uid_element is None else xv.parse_int(text_of(uid_element, XCAL, "text"))
        duration = read_duration(element)
        if duration is None:
            raise InvalidData(f"event interval {uid} has no duration")
        payloads = list(children(element, EI, "signalPayload"))
        if len(payloads) != 1:
            raise InvalidData(f"event interval {uid} must carry exactly one signalPayload")
        value = descend(payloads[0], (EI, "payloadFloat"), (EI, "value"))
        if value is None:
            raise InvalidData(f"event interval {uid} must carry a payloadFloat")
        intervals.append(
            EventInterval(
                uid=uid,
                duration=duration,
                value=xv.parse_float(value.text or ""),
                start=read_dtstart(element),
            )
        )
    return tuple(intervals)


# --- events ---------------------------------------------------------------------------------------


def add_event(parent: Element, event: Event) -> None:
    oadr_event = sub(parent, OADR, "oadrEvent")
    ei_event = sub(oadr_event, EI, "eiEvent")
    descriptor = sub(ei_event, EI, "eventDescriptor")
    sub(descriptor, EI, "eventID", event.event_id)
    sub(descriptor, EI, "modificationNumber", str(event.modification_number))
    if event.modified is not None:
        sub(descriptor, EI, "modificationDateTime", xv.format_datetime(event.modified))
    if event.modification_reason is not None:
        sub(descriptor, EI, "modificationReason", event.modification_reason)
    if event.priority is not None:
        sub(descriptor, EI, "priority", str(event.priority))
    sub(sub(descriptor, EI, "eiMarketContext"), EMIX, "marketContext", event.market_context)
    sub(descriptor, EI, "createdDateTime", xv.format_datetime(event.created))
    sub(descriptor, EI, "eventStatus", event.status.value)
    if event.test_event is not None:
        sub(descriptor, EI, "testEvent", xv.format_bool(event.test_event))
    if event.vtn_comment is not None:
        sub(descriptor, EI, "vtnComment", event.vtn_comment)

    period = event.active_period
    properties = sub(sub(ei_event, EI, "eiActivePeriod"), XCAL, "properties")
    add_dtstart(properties, period.start)
    add_duration(properties, XCAL, "duration", period.duration)
    if period.start_after is not None:
        tolerate = sub(sub(properties, XCAL, "tolerance"), XCAL, "tolerate")
        sub(tolerate, XCAL, "startafter", xv.format_duration(period.start_after))
    for value, local in (
        (period.notification, "x-eiNotification"),
        (period.ramp_up, "x-eiRampUp"),
        (period.recovery, "x-eiRecovery"),
    ):
        if value is not None:
            add_duration(properties, EI, local, value)
    sub(properties.getparent(), XCAL, "components")  # type: ignore[arg-type]

    signals = sub(ei_event, EI, "eiEventSignals")
    for signal in event.signals:
        element = sub(signals, EI, "eiEventSignal")
        _add_event_intervals(element, signal.intervals)
        if signal.target is not None:
            add_target(element, signal.target)
        sub(element, EI, "signalName", signal.signal_name.value)
        sub(element, EI, "signalType", signal.signal_type.value)
        sub(element, EI, "signalID", signal.signal_id)
        if signal.item_base is not None:
            add_item_base(element, signal.item_base)
        if signal.current_value is not None:
            current = sub(sub(element, EI, "currentValue"), EI, "payloadFloat")
            sub(current, EI, "value", xv.format_float(signal.current_value))
    if event.baseline is not None:
        baseline = event.baseline
        element = sub(signals, EI, "eiEventBaseline")
        add_dtstart(element, baseline.start)
        add_duration(element, XCAL, "duration", baseline.duration)
        _add_event_intervals(element, baseline.intervals)
        sub(element, EI, "baselineID", baseline.baseline_id)
        for resource_id in baseline.resource_ids:
            sub(element, EI, "resourceID", resource_id)
        sub(element, EI, "baselineName", baseline.baseline_name)
        if baseline.item_base is not None:
            add_item_base(element, baseline.item_base)
    add_target(ei_event, event.target)
    sub(oadr_event, OADR, "oadrResponseRequired", event.response_required.value)


def read_event(oadr_event: Element) -> Event:
    ei_event = require(oadr_event, EI, "eiEvent")
    descriptor = require(ei_event, EI, "eventDescriptor")
    properties = require(require(ei_event, EI, "eiActivePeriod"), XCAL, "properties")
    start = read_dtstart(properties)
    duration = read_duration(properties)
    if start is None or duration is None:
        raise InvalidData("eiActivePeriod needs dtstart and duration")
    start_after = descend(properties, (XCAL, "tolerance"), (XCAL, "tolerate"), (XCAL, "startafter"))
    period = ActivePeriod(
        start=start,
        duration=duration,
        start_after=None if start_after is None else xv.parse_duration(start_after.text or ""),
        notification=read_duration(properties, EI, "x-eiNotification"),
        ramp_up=read_duration(properties, EI, "x-eiRampUp"),
        recovery=read_duration(properties, EI, "x-eiRecovery"),
    )
    signals_element = require(ei_event, EI, "eiEventSignals")
    signals = tuple(
        _read_signal(element) for element in children(signals_element, EI, "eiEventSignal")
    )
    baseline_element = find(signals_element, EI, "eiEventBaseline")
    baseline = None if baseline_element is None else _read_baseline(baseline_element)
    test_event = optional_text(descriptor, EI, "testEvent")
    modified = optional_text(descriptor, EI, "modificationDateTime")
    priority = optional_text(descriptor, EI, "priority")
    market_context = require(descriptor, EI, "eiMarketContext")
    return Event(
        event_id=EventId(text_of(descriptor, EI, "eventID")),
        modification_number=xv.parse_int(text_of(descriptor, EI, "modificationNumber")),
        market_context=text_of(market_context, EMIX, "marketContext"),
        created=xv.parse_datetime(text_of(descriptor, EI, "createdDateTime")),
        status=enum_value(EventStatus, text_of(descriptor, EI, "eventStatus"), "eventStatus"),
        active_period=period,
        signals=signals,
        target=read_target(require(ei_event, EI, "eiTarget")),
        response_required=enum_value(
            ResponseRequired,
            text_of(oadr_event, OADR, "oadrResponseRequired"),
            "oadrResponseRequired",
        ),
        priority=None if priority is None else xv.parse_int(priority),
        # testEvent is a free string in 2.0b: anything but "false" marks a test event.
        test_event=None if test_event is None else test_event.strip().lower() != "false",
        vtn_comment=optional_text(descriptor, EI, "vtnComment"),
        modified=None if modified is None else xv.parse_datetime(modified),
        modification_reason=optional_text(descriptor, EI, "modificationReason"),
        baseline=baseline,
    )


def _read_signal(element: Element) -> EventSignal:
    name_text = text_of(element, EI, "signalName").strip()
    try:
        signal_name = SignalName(name_text)
    except ValueError as exc:
        raise SignalNotSupported(f"signal {name_text[:40]!r} is not a 2.0b signal name") from exc
    target = find(element, EI, "eiTarget")
    current = descend(element, (EI, "currentValue"), (EI, "payloadFloat"))
    return EventSignal(
        signal_name=signal_name,
        signal_type=enum_value(SignalType, text_of(element, EI, "signalType"), "signalType"),
        signal_id=text_of(element, EI, "signalID"),
        intervals=_read_event_intervals(element),
        item_base=find_item_base(element),
        current_value=None if current is None else xv.parse_float(text_of(current, EI, "value")),
        target=None if target is None else read_target(target),
    )


def _read_baseline(element: Element) -> EventBaseline:
    start = read_dtstart(element)
    duration = read_duration(element)
    if start is None or duration is None:
        raise InvalidData("eiEventBaseline needs dtstart and duration")
    return EventBaseline(
        baseline_id=text_of(element, EI, "baselineID"),
        baseline_name=text_of(element, EI, "baselineName"),
        start=start,
        duration=duration,
        intervals=_read_event_intervals(element),
        resource_ids=all_text(element, EI, "resourceID"),
        item_base=find_item_base(element),
    )


# --- reports --------------------------------------------------------------------------------------


def add_report(parent: Element, report: Report) -> None:
    element = sub(parent, OADR, "oadrReport")
    if report.start is not None:
        add_dtstart(element, report.start)
    if report.duration is not None:
        add_duration(element, XCAL, "duration", report.duration)
    if report.intervals:
        container = sub(element, STRM, "intervals")
        for interval in report.intervals:
            _add_report_interval(container, interval)
    if report.report_id is not None:
        sub(element, EI, "eiReportID", report.report_id)
    for description in report.descriptions:
        _add_report_description(element, description)
    sub(element, EI, "reportRequestID", report.report_request_id)
    sub(element, EI, "reportSpecifierID", report.report_specifier_id)
    if report.report_name is not None:
        sub(element, EI, "reportName", report.report_name)
    sub(element, EI, "createdDateTime", xv.format_datetime(report.created))


def read_report(element: Element) -> Report:
    intervals = find(element, STRM, "intervals")
    report_id = optional_text(element, EI, "eiReportID")
    return Report(
        report_specifier_id=ReportSpecifierId(text_of(element, EI, "reportSpecifierID")),
        created=xv.parse_datetime(text_of(element, EI, "createdDateTime")),
        report_request_id=ReportRequestId(text_of(element, EI, "reportRequestID")),
        report_name=optional_text(element, EI, "reportName"),
        report_id=None if report_id is None else ReportId(report_id),
        descriptions=tuple(
            _read_report_description(child)
            for child in element.iterchildren(qname(OADR, "oadrReportDescription"))
        ),
        intervals=()
        if intervals is None
        else tuple(
            _read_report_interval(child) for child in intervals.iterchildren(qname(EI, "interval"))
        ),
        start=read_dtstart(element),
        duration=read_duration(element),
    )


def _add_report_description(parent: Element, description: ReportDescription) -> None:
    element = sub(parent, OADR, "oadrReportDescription")
    sub(element, EI, "rID", description.r_id)
    if description.subject is not None:
        add_target(element, description.subject, EI, "reportSubject")
    if description.data_source is not None:
        add_target(element, description.data_source, EI, "reportDataSource")
    sub(element, EI, "reportType", description.report_type)
    if description.item_base is not None:
        add_item_base(element, description.item_base)
    sub(element, EI, "readingType", description.reading_type)
    if description.market_context is not None:
        sub(element, EMIX, "marketContext", description.market_context)
    if description.sampling_rate is not None:
        rate = sub(element, OADR, "oadrSamplingRate")
        sub(rate, OADR, "oadrMinPeriod", xv.format_duration(description.sampling_rate.min_period))
        sub(rate, OADR, "oadrMaxPeriod", xv.format_duration(description.sampling_rate.max_period))
        sub(rate, OADR, "oadrOnChange", xv.format_bool(description.sampling_rate.on_change))


def _read_report_description(element: Element) -> ReportDescription:
    subject = find(element, EI, "reportSubject")
    data_source = find(element, EI, "reportDataSource")
    rate = find(element, OADR, "oadrSamplingRate")
    return ReportDescription(
        r_id=RId(text_of(element, EI, "rID")),
        report_type=text_of(element, EI, "reportType").strip(),
        reading_type=text_of(element, EI, "readingType").strip(),
        subject=None if subject is None else read_target(subject),
        data_source=None if data_source is None else read_target(data_source),
        item_base=find_item_base(element),
        market_context=optional_text(element, EMIX, "marketContext"),
        sampling_rate=None
        if rate is None
        else SamplingRate(
            min_period=xv.parse_duration(text_of(rate, OADR, "oadrMinPeriod")),
            max_period=xv.parse_duration(text_of(rate, OADR, "oadrMaxPeriod")),
            on_change=xv.parse_bool(text_of(rate, OADR, "oadrOnChange")),
        ),
    )


def _add_report_interval(parent: Element, interval: ReportInterval) -> None:
    element = sub(parent, EI, "interval")
    if interval.start is not None:
        add_dtstart(element, interval.start)
    if interval.duration is not None:
        add_duration(element, XCAL, "duration", interval.duration)
    if interval.uid is not None:
        sub(sub(element, XCAL, "uid"), XCAL, "text", interval.uid)
    for payload in interval.payloads:
        report_payload = sub(element, OADR, "oadrReportPayload")
        sub(report_payload, EI, "rID", payload.r_id)
        if payload.confidence is not None:
            sub(report_payload, EI, "confidence", str(payload.confidence))
        if payload.accuracy is not None:
            sub(report_payload, EI, "accuracy", xv.format_float(payload.accuracy))
        if isinstance(payload.value, ResourceStatus):
            _add_resource_status(report_payload, payload.value)
        else:
            sub(
                sub(report_payload, EI, "payloadFloat"), EI, "value", xv.format_float(payload.value)
            )
        if payload.data_quality is not None:
            sub(report_payload, OADR, "oadrDataQuality", payload.data_quality)


# A report carries one interval per reading, so its readers walk each element's children once
# (in C) instead of looking up every child by name: the schema already fixed order and counts.
_DTSTART = qname(XCAL, "dtstart")
_DURATION = qname(XCAL, "duration")
_UID = qname(XCAL, "uid")
_REPORT_PAYLOAD = qname(OADR, "oadrReportPayload")
_RID = qname(EI, "rID")
_CONFIDENCE = qname(EI, "confidence")
_ACCURACY = qname(EI, "accuracy")
_PAYLOAD_FLOAT = qname(EI, "payloadFloat")
_RESOURCE_STATUS = qname(OADR, "oadrPayloadResourceStatus")
_DATA_QUALITY = qname(OADR, "oadrDataQuality")


def _read_report_interval(element: Element) -> ReportInterval:
    start: datetime | None = None
    duration: timedelta | None = None
    uid: str | None = None
    payloads = []
    for child in element:
        tag = child.tag
        if tag == _REPORT_PAYLOAD:
            payloads.append(_read_report_payload(child))
        elif tag == _DTSTART and start is None:
            start = xv.parse_datetime(text_of(child, XCAL, "date-time"))
        elif tag == _DURATION and duration is None:
            duration = xv.parse_duration(text_of(child, XCAL, "duration"))
        elif tag == _UID and uid is None:
            uid = text_of(child, XCAL, "text")
    if not payloads:
        raise InvalidData("a report interval must carry oadrReportPayload")
    return ReportInterval(start=start, payloads=tuple(payloads), duration=duration, uid=uid)


def _read_report_payload(payload: Element) -> ReportPayload:
    r_id: str | None = None
    number: Element | None = None
    status: Element | None = None
    confidence: str | None = None
    accuracy: str | None = None
    quality: str | None = None
    for child in payload:
        tag = child.tag
        if tag == _RID and r_id is None:
            r_id = child.text or ""
        elif tag == _PAYLOAD_FLOAT and number is None:
            number = find(child, EI, "value")
        elif tag == _RESOURCE_STATUS and status is None:
            status = child
        elif tag == _CONFIDENCE and confidence is None:
            confidence = child.text or None
        elif tag == _ACCURACY and accuracy is None:
            accuracy = child.text or None
        elif tag == _DATA_QUALITY and quality is None:
            quality = child.text or None
    if r_id is None:
        raise InvalidData("oadrReportPayload lacks rID")
    value: float | ResourceStatus
    if status is not None:
        value = _read_resource_status(status)
    elif number is not None:
        value = xv.parse_float(number.text or "")
    else:
        raise InvalidData("a report payload needs payloadFloat or oadrPayloadResourceStatus")
    return ReportPayload(
        r_id=RId(r_id),
        value=value,
        confidence=None if confidence is None else xv.parse_int(confidence),
        accuracy=None if accuracy is None else xv.parse_float(accuracy),
        data_quality=quality,
    )


_LOAD_CONTROL_PARTS = (
    ("capacity", "oadrCapacity"),
    ("level_offset", "oadrLevelOffset"),
    ("percent_offset", "oadrPercentOffset"),
    ("setpoint", "oadrSetPoint"),
)


def _add_resource_status(parent: Element, status: ResourceStatus) -> None:
    element = sub(parent, OADR, "oadrPayloadResourceStatus")
    sub(element, OADR, "oadrOnline", xv.format_bool(status.online))
    sub(element, OADR, "oadrManualOverride", xv.format_bool(status.manual_override))
    if status.load_control is None:
        return
    state = sub(element, OADR, "oadrLoadControlState")
    for attribute, local in _LOAD_CONTROL_PARTS:
        value: LoadControlValue | None = getattr(status.load_control, attribute)
        if value is None:
            continue
        part = sub(state, OADR, local)
        for number, name in (
            (value.minimum, "oadrMin"),
            (value.maximum, "oadrMax"),
            (value.current, "oadrCurrent"),
            (value.normal, "oadrNormal"),
        ):
            if number is not None:
                sub(part, OADR, name, xv.format_float(number))


def _read_resource_status(element: Element) -> ResourceStatus:
    state = find(element, OADR, "oadrLoadControlState")
    load_control = None
    if state is not None:
        parts: dict[str, LoadControlValue] = {}
        for attribute, local in _LOAD_CONTROL_PARTS:
            part = find(state, OADR, local)
            if part is None:
                continue
            minimum = optional_text(part, OADR, "oadrMin")
            maximum = optional_text(part, OADR, "oadrMax")
            normal = optional_text(part, OADR, "oadrNormal")
            parts[attribute] = LoadControlValue(
                current=xv.parse_float(text_of(part, OADR, "oadrCurrent")),
                minimum=None if minimum is None else xv.parse_float(minimum),
                maximum=None if maximum is None else xv.parse_float(maximum),
                normal=None if normal is None else xv.parse_float(normal),
            )
        load_control = LoadControlState(**parts)
    return ResourceStatus(
        online=xv.parse_bool(text_of(element, OADR, "oadrOnline")),
        manual_override=xv.parse_bool(text_of(element, OADR, "oadrManualOverride")),
        load_control=load_control,
    )


# --- report requests ------------------------------------------------------------------------------


def add_report_request(parent: Element, request: ReportRequest) -> None:
    element = sub(parent, OADR, "oadrReportRequest")
    sub(element, EI, "reportRequestID", request.report_request_id)
    specifier = sub(element, EI, "reportSpecifier")
    sub(specifier, EI, "reportSpecifierID", request.report_specifier_id)
    add_duration(specifier, XCAL, "granularity", request.granularity)
    add_duration(specifier, EI, "reportBackDuration", request.report_back_duration)
    if request.interval is not None:
        add_window(sub(specifier, EI, "reportInterval"), request.interval)
    for payload in request.specifier_payloads:
        specifier_payload = sub(specifier, EI, "specifierPayload")
        sub(specifier_payload, EI, "rID", payload.r_id)
        if payload.item_base is not None:
            add_item_base(specifier_payload, payload.item_base)
        sub(specifier_payload, EI, "readingType", payload.reading_type)


def read_report_request(element: Element) -> ReportRequest:
    specifier = require(element, EI, "reportSpecifier")
    granularity = read_duration(specifier, XCAL, "granularity")
    back = read_duration(specifier, EI, "reportBackDuration")
    if granularity is None or back is None:
        raise InvalidData("reportSpecifier needs granularity and reportBackDuration")
    interval = find(specifier, EI, "reportInterval")
    return ReportRequest(
        report_request_id=ReportRequestId(text_of(element, EI, "reportRequestID")),
        report_specifier_id=ReportSpecifierId(text_of(specifier, EI, "reportSpecifierID")),
        granularity=granularity,
        report_back_duration=back,
        specifier_payloads=tuple(
            SpecifierPayload(
                r_id=RId(text_of(payload, EI, "rID")),
                reading_type=text_of(payload, EI, "readingType").strip(),
                item_base=find_item_base(payload),
            )
            for payload in specifier.iterchildren(qname(EI, "specifierPayload"))
        ),
        interval=None if interval is None else read_window(require(interval, XCAL, "properties")),
    )
