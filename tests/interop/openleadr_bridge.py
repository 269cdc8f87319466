"""The OpenLEADR bridge: our payloads to and from OpenLEADR's (message_type, dict) representation.

`to_openleadr(p)` gives the arguments of `openleadr.messaging.create_message`; `from_openleadr`
reads what `openleadr.messaging.parse_message` returns (after its `utils.normalize_dict`). The
round trip `from_openleadr(*parse_message(create_message(*to_openleadr(p))))` equals
`restrict_to_openleadr(p)`: the same payload less what OpenLEADR 0.5.36's templates, preflight
checks or parser cannot carry, each listed in `OPENLEADR_CANNOT_EXPRESS`. `to_openleadr` leaves
out only what OpenLEADR would refuse or render as garbage (a ResourceStatus value, an interval
without dtstart, a nameless report to register, an item base its preflight raises on); the other
losses are OpenLEADR's own doing, and the round-trip tests catch any loss that is not listed.
Known places where OpenLEADR writes schema-invalid XML or changes meaning whatever we pass are
in `OPENLEADR_DEFECTS`, shown by strict xfail tests in test_openleadr_bridge.py;
`dodge_openleadr_defects` rewrites generated payloads around them. `openleadr_xml` and
`through_openleadr` run the real OpenLEADR code. Hand-written example payloads live in
tests/payload_examples.py.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final

from openleadr import enums as ol_enums
from openleadr import messaging

from oadr import model as m
from oadr.enums import EventStatus, ItemKind, OptReason, OptType, ResponseRequired, SignalName
from oadr.enums import SignalType as SigType

OlDict = dict[str, Any]

OPENLEADR_CANNOT_EXPRESS: Final[Mapping[str, str]] = {
    # -- no place in the templates ---------------------------------------------------------------
    "Event.baseline": "eiEvent template has no eiEventBaseline",
    "Event.target.end_device_assets": "event-level eiTarget template writes no endDeviceAsset",
    "EventSignal.target": "eiEventSignal template writes no eiTarget",
    "EventInterval.uid": "the template writes loop.index0, so uids become 0..n-1",
    "ActivePeriod zero notification/ramp_up/recovery": (
        "written only when truthy: timedelta(0) is left out and reads back as absent"
    ),
    "CreatedEvent.response.request_id": (
        "oadrCreatedEvent writes an empty eiResponse/requestID whenever eventResponses are present"
    ),
    "CreateOpt.target": "one eiTarget with at most one value per kind, no endDeviceAsset",
    "CreateOpt.device_class": "oadrDeviceClass carries one endDeviceAsset mrid, nothing else",
    "CreatePartyRegistration.http_pull_model=None": (
        "oadrHttpPullModel is always written (booleanformat(None) raises): absent becomes true"
    ),
    "RegisterReport.report_request_id": "payload-level reportRequestID is not in the template",
    "RegisterReport report without report_name": (
        "the template calls report_name.startswith(): a nameless report cannot be registered"
    ),
    "RegisterReport report_name": (
        "preflight renames an enumerated name without METADATA_ to METADATA_<name>"
    ),
    "RegisterReport report_id of METADATA reports": "eiReportID is written only for non-METADATA",
    "RegisterReport Report.start/intervals": "oadrRegisterReport template writes neither",
    "RegisterReport item bases refused by preflight": (
        "validate_report_measurement_dict wants OpenLEADR's one description per kind and its units"
        " (powerReal only W, not J/s)"
    ),
    "currencyPerKW item base": (
        "enums._MEASUREMENT_NAMESPACES spells it 'currencyPerWK': preflight raises 'unknown'"
        " (events, RegisterReport); parse_message leaves it unconverted as 'currency_per_kw'"
    ),
    "UpdateReport Report.duration": "oadrUpdateReport template writes no report-level duration",
    "ReportInterval with several payloads": (
        "one oadrReportPayload per interval: split into one interval per payload, same start"
    ),
    "ReportInterval.uid": "the template writes no interval uid",
    "ReportInterval without start": "dtstart is always written ('None'): such intervals dropped",
    "ReportPayload with ResourceStatus value": (
        "payloadFloat only, no oadrPayloadResourceStatus (TELEMETRY_STATUS data, issue #108)"
    ),
    "ReportDescription.subject": "reportSubject carries one endDeviceAsset mrid, nothing else",
    "ReportDescription.data_source": "one value per kind, no endDeviceAsset",
    "SpecifierPayload.item_base": "specifierPayload template writes rID and readingType only",
    "CancelReport.report_request_ids": "the template writes one reportRequestID",
    "SIMPLE EventSignal.current_value": (
        "preflight compares eventStatus with 'ACTIVE' (upper case): a SIMPLE current value"
        " other than 0 is always rewritten to 0"
    ),
    "Event active period != sum of interval durations": (
        "preflight replaces the active period duration with the intervals' total"
    ),
}

OPENLEADR_DEFECTS: Final[Mapping[str, str]] = {
    "unescaped text": (
        "templates render without autoescape: '&' or '<' in any text gives malformed XML"
    ),
    "numeric-looking text": (
        "normalize_dict turns any text matching -?\\d+ or -?[\\d.]+ into int/float: an id '007'"
        " comes back as 7, '1.50' as 1.5, and '1.2.3' makes parse_message raise ValueError"
    ),
    "boolean-looking text": "normalize_dict turns the text 'true'/'false' into a bool",
    "absent optional elements": (
        "venID, oadrVenName, oadrTransportAddress, responseDescription, optID and eiReportID are"
        " always written; the bridge passes '' so an empty element (read back as None) stands"
        " for absent, else OpenLEADR writes the text 'None'. A peer reading OpenLEADR's"
        " messages should take these empty elements as absent"
    ),
}

# Where OpenLEADR's templates put an item base element (power: namespace or oadr:).
_POWER_KINDS: Final = frozenset(
    {
        ItemKind.POWER_REAL,
        ItemKind.POWER_APPARENT,
        ItemKind.POWER_REACTIVE,
        ItemKind.ENERGY_REAL,
        ItemKind.ENERGY_APPARENT,
        ItemKind.ENERGY_REACTIVE,
        ItemKind.VOLTAGE,
    }
)
_TARGET_KINDS: Final = ("group_id", "group_name", "resource_id", "ven_id", "party_id")
_TARGET_FIELDS: Final = ("group_ids", "group_names", "resource_ids", "ven_ids", "party_ids")


# --- restrict ------------------------------------------------------------------------------------


def restrict_to_openleadr(payload: m.Payload) -> m.Payload:
    """`payload` less what OpenLEADR cannot carry (see OPENLEADR_CANNOT_EXPRESS)."""
    match payload:
        case m.DistributeEvent():
            return dataclasses.replace(payload, events=tuple(map(_restrict_event, payload.events)))
        case m.CreatedEvent() if payload.event_responses:
            response = dataclasses.replace(payload.response, request_id=m.RequestId(""))
            return dataclasses.replace(payload, response=response)
        case m.CreateOpt():
            device_class = payload.device_class
            if device_class is not None:
                device_class = (
                    _first_asset_only(device_class) if device_class.end_device_assets else None
                )
            return dataclasses.replace(
                payload, target=_one_per_kind(payload.target), device_class=device_class
            )
        case m.CreatePartyRegistration() if payload.http_pull_model is None:
            return dataclasses.replace(payload, http_pull_model=True)
        case m.RegisterReport():
            reports = tuple(
                _restrict_registered_report(r) for r in payload.reports if r.report_name is not None
            )
            return dataclasses.replace(payload, reports=reports, report_request_id=None)
        case m.UpdateReport():
            reports = tuple(_restrict_update_report(r) for r in payload.reports)
            return dataclasses.replace(payload, reports=reports)
        case m.RegisteredReport() | m.CreateReport():
            requests = tuple(map(_restrict_report_request, payload.report_requests))
            return dataclasses.replace(payload, report_requests=requests)
        case m.CancelReport():
            return dataclasses.replace(payload, report_request_ids=payload.report_request_ids[:1])
        case _:
            return payload


def _restrict_event(event: m.Event) -> m.Event:
    signals = tuple(map(_restrict_signal, event.signals))
    period = event.active_period
    totals = {sum((i.duration for i in s.intervals), timedelta()) for s in signals}
    if len(totals) == 1 and (total := totals.pop()) != period.duration:
        period = dataclasses.replace(period, duration=total)
    period = dataclasses.replace(
        period,
        notification=period.notification or None,
        ramp_up=period.ramp_up or None,
        recovery=period.recovery or None,
    )
    target = dataclasses.replace(event.target, end_device_assets=())
    return dataclasses.replace(
        event, signals=signals, active_period=period, target=target, baseline=None
    )


def _restrict_signal(signal: m.EventSignal) -> m.EventSignal:
    intervals = tuple(dataclasses.replace(i, uid=n) for n, i in enumerate(signal.intervals))
    item_base = signal.item_base
    if item_base is not None and item_base.kind is ItemKind.CURRENCY_PER_KW:
        item_base = None
    current = signal.current_value
    if signal.signal_name is SignalName.SIMPLE and current is not None and current != 0:
        current = 0.0
    return dataclasses.replace(
        signal, intervals=intervals, item_base=item_base, current_value=current, target=None
    )


def _restrict_registered_report(report: m.Report) -> m.Report:
    name = report.report_name or ""
    if name in ol_enums.REPORT_NAME.values and not name.startswith("METADATA"):
        name = "METADATA_" + name
    report_id = None if name.startswith("METADATA") else report.report_id
    descriptions = tuple(_restrict_description(d, for_preflight=True) for d in report.descriptions)
    return dataclasses.replace(
        report,
        report_name=name,
        report_id=report_id,
        descriptions=descriptions,
        start=None,
        intervals=(),
    )


def _restrict_update_report(report: m.Report) -> m.Report:
    intervals = tuple(
        m.ReportInterval(start=interval.start, duration=interval.duration, payloads=(p,))
        for interval in report.intervals
        if interval.start is not None
        for p in interval.payloads
        if not isinstance(p.value, m.ResourceStatus)
    )
    descriptions = tuple(_restrict_description(d, for_preflight=False) for d in report.descriptions)
    return dataclasses.replace(
        report, intervals=intervals, descriptions=descriptions, duration=None
    )


def _restrict_description(
    description: m.ReportDescription, *, for_preflight: bool
) -> m.ReportDescription:
    subject = description.subject
    if subject is not None:
        subject = _first_asset_only(subject) if subject.end_device_assets else None
    source = description.data_source
    if source is not None:
        source = _one_per_kind(source)
        source = None if source.is_empty() else source
    item_base = description.item_base
    if item_base is not None and (
        item_base.kind is ItemKind.CURRENCY_PER_KW
        or (for_preflight and not _preflight_accepts(item_base))
    ):
        item_base = None
    return dataclasses.replace(
        description, subject=subject, data_source=source, item_base=item_base
    )


def _preflight_accepts(item_base: m.ItemBase) -> bool:
    """What `utils.validate_report_measurement_dict` and the namespace step let through."""
    name = item_base.kind.value
    if name not in ol_enums._MEASUREMENT_NAMESPACES:
        return False
    if name not in ol_enums._MEASUREMENT_DESCRIPTIONS:
        return True  # customUnit: anything goes
    wanted = ol_enums._MEASUREMENT_DESCRIPTIONS[name]
    return bool(
        item_base.description == wanted and item_base.units in ol_enums._ACCEPTABLE_UNITS[name]
    )


def _restrict_report_request(request: m.ReportRequest) -> m.ReportRequest:
    payloads = tuple(dataclasses.replace(p, item_base=None) for p in request.specifier_payloads)
    return dataclasses.replace(request, specifier_payloads=payloads)


def _one_per_kind(target: m.Target) -> m.Target:
    return m.Target(**{f: getattr(target, f)[:1] for f in _TARGET_FIELDS})


def _first_asset_only(target: m.Target) -> m.Target:
    return m.Target(end_device_assets=target.end_device_assets[:1])


# --- to OpenLEADR --------------------------------------------------------------------------------


def to_openleadr(payload: m.Payload) -> tuple[str, OlDict]:
    """(message_type, kwargs) for `openleadr.messaging.create_message`."""
    return m.element_name(type(payload)), _TO[type(payload)](payload)


def _absent_as_empty(value: str | None) -> str:
    """For elements OpenLEADR always writes: an empty element is its nearest to absent."""
    return "" if value is None else value


def _response(response: m.EiResponse) -> OlDict:
    return {
        "response_code": response.code,
        "response_description": _absent_as_empty(response.description),
        "request_id": response.request_id,
    }


def _measurement(item_base: m.ItemBase | None, *, registering: bool = False) -> OlDict | None:
    if item_base is None or item_base.kind is ItemKind.CURRENCY_PER_KW:
        return None  # preflight raises on it (events, RegisterReport); see the table
    if registering and not _preflight_accepts(item_base):
        return None
    attributes = item_base.power_attributes
    return {
        "name": item_base.kind.value,
        "description": item_base.description,
        "unit": item_base.units,
        "scale": item_base.scale,
        "pulse_factor": item_base.pulse_factor,
        "power_attributes": None if attributes is None else dataclasses.asdict(attributes),
        "ns": "power" if item_base.kind in _POWER_KINDS else "oadr",
    }


def _target_list(target: m.Target) -> list[OlDict]:
    return [
        {kind: value}
        for kind, field in zip(_TARGET_KINDS, _TARGET_FIELDS, strict=True)
        for value in getattr(target, field)
    ]


def _single_target(target: m.Target) -> OlDict:
    return {
        kind: next(iter(getattr(target, field)), None)
        for kind, field in zip(_TARGET_KINDS, _TARGET_FIELDS, strict=True)
    }


def _event(event: m.Event) -> OlDict:
    period = event.active_period
    return {
        "event_descriptor": {
            "event_id": event.event_id,
            "modification_number": event.modification_number,
            "modification_date_time": event.modified,
            "modification_reason": event.modification_reason,
            "priority": event.priority,
            "market_context": event.market_context,
            "created_date_time": event.created,
            "event_status": event.status.value,
            "test_event": event.test_event,
            "vtn_comment": event.vtn_comment,
        },
        "active_period": {
            "dtstart": period.start,
            "duration": period.duration,
            "tolerance": None if period.start_after is None else {"startafter": period.start_after},
            "notification_period": period.notification,
            "ramp_up_period": period.ramp_up,
            "recovery_period": period.recovery,
        },
        "event_signals": [_signal(s) for s in event.signals],
        "targets": _target_list(event.target),
        "response_required": event.response_required.value,
    }


def _signal(signal: m.EventSignal) -> OlDict:
    result: OlDict = {
        "intervals": [
            {"dtstart": i.start, "duration": i.duration, "signal_payload": i.value, "uid": i.uid}
            for i in signal.intervals
        ],
        "signal_name": signal.signal_name.value,
        "signal_type": signal.signal_type.value,
        "signal_id": signal.signal_id,
        "measurement": _measurement(signal.item_base),
    }
    # Preflight rewrites a present current_value of a SIMPLE signal, so absent stays absent.
    if signal.current_value is not None:
        result["current_value"] = signal.current_value
    return result


def _description(d: m.ReportDescription, *, registering: bool) -> OlDict:
    subject = d.subject
    source = d.data_source
    return {
        "r_id": d.r_id,
        "report_subject": (
            {"end_device_asset": {"mrid": subject.end_device_assets[0]}}
            if subject is not None and subject.end_device_assets
            else None
        ),
        "report_data_source": None if source is None else _single_target(source),
        "report_type": d.report_type,
        "measurement": _measurement(d.item_base, registering=registering),
        "reading_type": d.reading_type,
        "market_context": d.market_context,
        "sampling_rate": None if d.sampling_rate is None else dataclasses.asdict(d.sampling_rate),
    }


def _report(report: m.Report, *, registering: bool = False) -> OlDict:
    return {
        "report_id": _absent_as_empty(report.report_id),
        "report_name": report.report_name,
        "report_request_id": report.report_request_id,
        "report_specifier_id": report.report_specifier_id,
        "created_date_time": report.created,
        "dtstart": report.start,
        "duration": report.duration,
        "report_descriptions": [
            _description(d, registering=registering) for d in report.descriptions
        ],
        "intervals": [
            {
                "dtstart": interval.start,
                "duration": interval.duration,
                "report_payload": {
                    "r_id": p.r_id,
                    "confidence": p.confidence,
                    "accuracy": p.accuracy,
                    "value": p.value,
                    "data_quality": p.data_quality,
                },
            }
            for interval in report.intervals
            if interval.start is not None
            for p in interval.payloads
            if not isinstance(p.value, m.ResourceStatus)
        ],
    }


def _report_request(request: m.ReportRequest) -> OlDict:
    interval = request.interval
    return {
        "report_request_id": request.report_request_id,
        "report_specifier": {
            "report_specifier_id": request.report_specifier_id,
            "granularity": request.granularity,
            "report_back_duration": request.report_back_duration,
            "report_interval": (
                None
                if interval is None
                else {"dtstart": interval.start, "duration": interval.duration}
            ),
            "specifier_payloads": [
                {"r_id": p.r_id, "reading_type": p.reading_type} for p in request.specifier_payloads
            ],
        },
    }


def _create_opt(p: m.CreateOpt) -> OlDict:
    target = [] if p.target.is_empty() else [_single_target(p.target)]
    device_class = p.device_class
    return {
        "request_id": p.request_id,
        "opt_id": p.opt_id,
        "opt_type": p.opt_type.value,
        "opt_reason": p.opt_reason.value,
        "market_context": p.market_context,
        "ven_id": p.ven_id,
        "created_date_time": p.created,
        "vavailability": (
            None
            if p.availability is None
            else {
                "components": [{"dtstart": w.start, "duration": w.duration} for w in p.availability]
            }
        ),
        "event_id": p.event_id,
        "modification_number": p.modification_number,
        "targets": target,
        "signal_target_mrid": (
            device_class.end_device_assets[0]
            if device_class is not None and device_class.end_device_assets
            else None
        ),
    }


def _pending(ids: tuple[m.ReportRequestId, ...]) -> list[OlDict]:
    return [{"report_request_id": i} for i in ids]


_TO: Final[dict[type[Any], Callable[[Any], OlDict]]] = {
    m.QueryRegistration: lambda p: {"request_id": p.request_id},
    m.CreatePartyRegistration: lambda p: {
        "request_id": p.request_id,
        "registration_id": p.registration_id,
        "ven_id": p.ven_id,
        "profile_name": p.profile_name,
        "transport_name": p.transport_name,
        "transport_address": _absent_as_empty(p.transport_address),
        "report_only": p.report_only,
        "xml_signature": p.xml_signature,
        "ven_name": _absent_as_empty(p.ven_name),
        "http_pull_model": True if p.http_pull_model is None else p.http_pull_model,
    },
    m.CreatedPartyRegistration: lambda p: {
        "response": _response(p.response),
        "registration_id": p.registration_id,
        "ven_id": p.ven_id,
        "vtn_id": p.vtn_id,
        "profiles": [
            {
                "profile_name": profile.profile_name,
                "transports": [{"transport_name": t} for t in profile.transports],
            }
            for profile in p.profiles
        ],
        "requested_oadr_poll_freq": p.requested_poll_freq,
    },
    m.CancelPartyRegistration: lambda p: {
        "request_id": p.request_id,
        "registration_id": p.registration_id,
        "ven_id": _absent_as_empty(p.ven_id),
    },
    m.CanceledPartyRegistration: lambda p: {
        "response": _response(p.response),
        "registration_id": _absent_as_empty(p.registration_id),
        "ven_id": _absent_as_empty(p.ven_id),
    },
    m.RequestReregistration: lambda p: {"ven_id": p.ven_id},
    m.RequestEvent: lambda p: {
        "request_id": p.request_id,
        "ven_id": p.ven_id,
        "reply_limit": p.reply_limit,
    },
    m.DistributeEvent: lambda p: {
        "response": None if p.response is None else _response(p.response),
        "request_id": p.request_id,
        "vtn_id": p.vtn_id,
        "events": [_event(e) for e in p.events],
    },
    m.CreatedEvent: lambda p: {
        "response": _response(p.response),
        "ven_id": p.ven_id,
        "event_responses": [
            {
                "response_code": r.code,
                "response_description": r.description,
                "request_id": r.request_id,
                "event_id": r.event_id,
                "modification_number": r.modification_number,
                "opt_type": r.opt_type.value,
            }
            for r in p.event_responses
        ]
        or None,
    },
    m.Response: lambda p: {
        "response": _response(p.response),
        "ven_id": _absent_as_empty(p.ven_id),
    },
    m.CreateOpt: _create_opt,
    m.CreatedOpt: lambda p: {"response": _response(p.response), "opt_id": p.opt_id},
    m.CancelOpt: lambda p: {"request_id": p.request_id, "opt_id": p.opt_id, "ven_id": p.ven_id},
    m.CanceledOpt: lambda p: {
        "response": _response(p.response),
        "opt_id": _absent_as_empty(p.opt_id),
    },
    m.RegisterReport: lambda p: {
        "request_id": p.request_id,
        "reports": [_report(r, registering=True) for r in p.reports if r.report_name is not None],
        "ven_id": p.ven_id,
    },
    m.RegisteredReport: lambda p: {
        "response": _response(p.response),
        "report_requests": [_report_request(r) for r in p.report_requests],
        "ven_id": p.ven_id,
    },
    m.CreateReport: lambda p: {
        "request_id": p.request_id,
        "report_requests": [_report_request(r) for r in p.report_requests],
        "ven_id": _absent_as_empty(p.ven_id),
    },
    m.CreatedReport: lambda p: {
        "response": _response(p.response),
        "pending_reports": _pending(p.pending_reports),
        "ven_id": p.ven_id,
    },
    m.UpdateReport: lambda p: {
        "request_id": p.request_id,
        "reports": [_report(r) for r in p.reports],
        "ven_id": p.ven_id,
    },
    m.UpdatedReport: lambda p: {
        "response": _response(p.response),
        "cancel_report": (
            None
            if p.cancel_report is None
            else {
                "request_id": p.cancel_report.request_id,
                "report_request_id": list(p.cancel_report.report_request_ids),
                "report_to_follow": p.cancel_report.report_to_follow,
                "ven_id": p.cancel_report.ven_id,
            }
        ),
        "ven_id": p.ven_id,
    },
    m.CancelReport: lambda p: {
        "request_id": p.request_id,
        "report_request_id": p.report_request_ids[0],
        "report_to_follow": p.report_to_follow,
        "ven_id": _absent_as_empty(p.ven_id),
    },
    m.CanceledReport: lambda p: {
        "response": _response(p.response),
        "pending_reports": _pending(p.pending_reports),
        "ven_id": p.ven_id,
    },
    m.Poll: lambda p: {"ven_id": p.ven_id},
}


# --- from OpenLEADR ------------------------------------------------------------------------------
# parse_message has already turned numbers into int/float, 'true'/'false' into bool, durations
# into timedelta and datetimes into aware datetimes; single children may be a dict, not a list.


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _opt_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _datetime(value: Any) -> datetime:
    assert isinstance(value, datetime), value
    return value


def _timedelta(value: Any) -> timedelta:
    assert isinstance(value, timedelta), value
    return value


def _opt_timedelta(value: Any) -> timedelta | None:
    return None if value is None else _timedelta(value)


def _response_from(d: Mapping[str, Any]) -> m.EiResponse:
    return m.EiResponse(
        code=int(d["response_code"]),
        request_id=m.RequestId(_opt_text(d.get("request_id")) or ""),
        description=_opt_text(d.get("response_description")),
    )


def _target_from(items: Any) -> m.Target:
    """From OpenLEADR's `targets` list ([{kind: value}, ...]) or a single eiTarget dict."""
    values: dict[str, list[str]] = {f: [] for f in (*_TARGET_FIELDS, "end_device_assets")}
    pairs: list[tuple[str, Any]] = []
    for item in _list(items):
        pairs.extend(item.items())
    for kind, value in pairs:
        for one in _list(value):
            if kind == "end_device_asset":
                values["end_device_assets"].append(_text(one["mrid"]))
            elif one is not None:
                values[kind + "s"].append(_text(one))
    return m.Target(**{f: tuple(v) for f, v in values.items()})  # type: ignore[arg-type]


def _item_base_from(holder: Mapping[str, Any]) -> m.ItemBase | None:
    """The item base of a signal or description, converted by normalize_dict or not.

    normalize_dict stops converting measurements after the first signal/description without
    one, so later ones keep the raw `<kind>: {item_description, item_units, ...}` shape.
    """
    if (found := holder.get("measurement")) is not None:
        name, description, units = found["name"], found["description"], found["unit"]
        scale = found.get("scale")
    else:
        raw = [k for k in ItemKind if k.value in holder]
        if not raw:
            return None
        name = raw[0].value
        found = holder[name]
        description, units = found["item_description"], found["item_units"]
        scale = found.get("si_scale_code")
    attributes = found.get("power_attributes")
    return m.ItemBase(
        kind=ItemKind(name),
        description=_text(description),
        units=_text(units),
        scale=_opt_text(scale),
        power_attributes=(
            None
            if attributes is None
            else m.PowerAttributes(
                hertz=float(attributes["hertz"]),
                voltage=float(attributes["voltage"]),
                ac=bool(attributes["ac"]),
            )
        ),
        pulse_factor=_opt_float(found.get("pulse_factor")),
    )


def _event_from(d: Mapping[str, Any]) -> m.Event:
    descriptor = d["event_descriptor"]
    period = d["active_period"]
    tolerance = period.get("tolerance")
    test_event = descriptor.get("test_event")
    return m.Event(
        event_id=m.EventId(_text(descriptor["event_id"])),
        modification_number=int(descriptor["modification_number"]),
        market_context=_text(descriptor["market_context"]),
        created=_datetime(descriptor["created_date_time"]),
        status=EventStatus(descriptor["event_status"]),
        active_period=m.ActivePeriod(
            start=_datetime(period["dtstart"]),
            duration=_timedelta(period["duration"]),
            start_after=None
            if tolerance is None
            else _timedelta(tolerance["tolerate"]["startafter"]),
            notification=_opt_timedelta(period.get("notification")),
            ramp_up=_opt_timedelta(period.get("ramp_up")),
            recovery=_opt_timedelta(period.get("recovery")),
        ),
        signals=tuple(_signal_from(s) for s in _list(d["event_signals"])),
        target=_target_from(d.get("targets")),
        response_required=ResponseRequired(d["response_required"]),
        priority=None if descriptor.get("priority") is None else int(descriptor["priority"]),
        test_event=None if test_event is None else bool(test_event),
        vtn_comment=_opt_text(descriptor.get("vtn_comment")),
        modified=descriptor.get("modification_date_time"),
        modification_reason=_opt_text(descriptor.get("modification_reason")),
    )


def _signal_from(d: Mapping[str, Any]) -> m.EventSignal:
    return m.EventSignal(
        signal_name=SignalName(d["signal_name"]),
        signal_type=SigType(d["signal_type"]),
        signal_id=_text(d["signal_id"]),
        intervals=tuple(
            m.EventInterval(
                uid=int(i["uid"]),
                duration=_timedelta(i["duration"]),
                value=float(i["signal_payload"]),
                start=i.get("dtstart"),
            )
            for i in _list(d["intervals"])
        ),
        item_base=_item_base_from(d),
        current_value=_opt_float(d.get("current_value")),
    )


def _description_from(d: Mapping[str, Any]) -> m.ReportDescription:
    subject = d.get("report_subject")
    source = d.get("report_data_source")
    rate = d.get("sampling_rate")
    return m.ReportDescription(
        r_id=m.RId(_text(d["r_id"])),
        report_type=_text(d["report_type"]),
        reading_type=_text(d["reading_type"]),
        subject=None if subject is None else _target_from(subject),
        data_source=None if source is None else _target_from(source),
        item_base=_item_base_from(d),
        market_context=_opt_text(d.get("market_context")),
        sampling_rate=(
            None
            if rate is None
            else m.SamplingRate(
                min_period=_timedelta(rate["min_period"]),
                max_period=_timedelta(rate["max_period"]),
                on_change=bool(rate["on_change"]),
            )
        ),
    )


def _report_from(d: Mapping[str, Any]) -> m.Report:
    report_id = _opt_text(d.get("report_id"))
    return m.Report(
        report_specifier_id=m.ReportSpecifierId(_text(d["report_specifier_id"])),
        created=_datetime(d["created_date_time"]),
        report_request_id=m.ReportRequestId(_text(d["report_request_id"])),
        report_name=_opt_text(d.get("report_name")),
        report_id=None if report_id is None else m.ReportId(report_id),
        descriptions=tuple(_description_from(x) for x in _list(d.get("report_descriptions"))),
        intervals=tuple(
            m.ReportInterval(
                start=i.get("dtstart"),
                duration=_opt_timedelta(i.get("duration")),
                payloads=(_report_payload_from(i["report_payload"]),),
            )
            for i in _list(d.get("intervals"))
        ),
        start=d.get("dtstart"),
        duration=_opt_timedelta(d.get("duration")),
    )


def _report_payload_from(d: Mapping[str, Any]) -> m.ReportPayload:
    confidence = d.get("confidence")
    return m.ReportPayload(
        r_id=m.RId(_text(d["r_id"])),
        value=float(d["value"]),
        confidence=None if confidence is None else int(confidence),
        accuracy=_opt_float(d.get("accuracy")),
        data_quality=_opt_text(d.get("data_quality")),
    )


def _report_request_from(d: Mapping[str, Any]) -> m.ReportRequest:
    spec = d["report_specifier"]
    interval = spec.get("report_interval")
    return m.ReportRequest(
        report_request_id=m.ReportRequestId(_text(d["report_request_id"])),
        report_specifier_id=m.ReportSpecifierId(_text(spec["report_specifier_id"])),
        granularity=_timedelta(spec["granularity"]),
        report_back_duration=_timedelta(spec["report_back_duration"]),
        specifier_payloads=tuple(
            m.SpecifierPayload(r_id=m.RId(_text(p["r_id"])), reading_type=_text(p["reading_type"]))
            for p in _list(spec.get("specifier_payloads"))
        ),
        interval=(
            None
            if interval is None
            else m.TimeWindow(
                start=_datetime(interval["dtstart"]), duration=_timedelta(interval["duration"])
            )
        ),
    )


def _availability_from(vavailability: Any) -> tuple[m.TimeWindow, ...] | None:
    if vavailability is None:
        return None
    windows = []
    for available in _list(vavailability["components"]["available"]):
        props = available.get("properties", available)  # one window is promoted, several not
        windows.append(
            m.TimeWindow(start=_datetime(props["dtstart"]), duration=_timedelta(props["duration"]))
        )
    return tuple(windows)


def _pending_from(value: Any) -> tuple[m.ReportRequestId, ...]:
    return tuple(m.ReportRequestId(_text(p["report_request_id"])) for p in _list(value))


def _create_opt_from(d: Mapping[str, Any]) -> m.CreateOpt:
    device_class = d.get("device_class")
    return m.CreateOpt(
        request_id=m.RequestId(_text(d["request_id"])),
        opt_id=m.OptId(_text(d["opt_id"])),
        opt_type=OptType(d["opt_type"]),
        opt_reason=OptReason(d["opt_reason"]),
        ven_id=m.VenId(_text(d["ven_id"])),
        created=_datetime(d["created_date_time"]),
        target=_target_from(d.get("targets")),
        market_context=_opt_text(d.get("market_context")),
        availability=_availability_from(d.get("vavailability")),
        event_id=None if d.get("event_id") is None else m.EventId(_text(d["event_id"])),
        modification_number=(
            None if d.get("modification_number") is None else int(d["modification_number"])
        ),
        device_class=None if device_class is None else _target_from(device_class),
    )


def _cancel_report_from(d: Mapping[str, Any]) -> m.CancelReport:
    ven_id = _opt_text(d.get("ven_id"))
    return m.CancelReport(
        request_id=m.RequestId(_text(d["request_id"])),
        report_request_ids=tuple(
            m.ReportRequestId(_text(i)) for i in _list(d.get("report_request_id"))
        ),
        report_to_follow=bool(d["report_to_follow"]),
        ven_id=None if ven_id is None else m.VenId(ven_id),
    )


def _ven(d: Mapping[str, Any]) -> m.VenId | None:
    ven_id = _opt_text(d.get("ven_id"))
    return None if ven_id is None else m.VenId(ven_id)


def _reg(d: Mapping[str, Any]) -> m.RegistrationId | None:
    registration_id = _opt_text(d.get("registration_id"))
    return None if registration_id is None else m.RegistrationId(registration_id)


_FROM: Final[dict[str, Callable[[Mapping[str, Any]], m.Payload]]] = {
    "oadrQueryRegistration": lambda d: m.QueryRegistration(
        request_id=m.RequestId(_text(d["request_id"]))
    ),
    "oadrCreatePartyRegistration": lambda d: m.CreatePartyRegistration(
        request_id=m.RequestId(_text(d["request_id"])),
        report_only=bool(d["report_only"]),
        xml_signature=bool(d["xml_signature"]),
        profile_name=_text(d["profile_name"]),
        transport_name=_text(d["transport_name"]),
        transport_address=_opt_text(d.get("transport_address")),
        ven_name=_opt_text(d.get("ven_name")),
        http_pull_model=d.get("http_pull_model"),
        registration_id=_reg(d),
        ven_id=_ven(d),
    ),
    "oadrCreatedPartyRegistration": lambda d: m.CreatedPartyRegistration(
        response=_response_from(d["response"]),
        vtn_id=m.VtnId(_text(d["vtn_id"])),
        profiles=tuple(
            m.Profile(
                profile_name=_text(p["profile_name"]),
                transports=tuple(_text(t["transport_name"]) for t in _list(p["transports"])),
            )
            for p in _list(d.get("profiles"))
        ),
        registration_id=_reg(d),
        ven_id=_ven(d),
        requested_poll_freq=_opt_timedelta(d.get("requested_oadr_poll_freq")),
    ),
    "oadrCancelPartyRegistration": lambda d: m.CancelPartyRegistration(
        request_id=m.RequestId(_text(d["request_id"])),
        registration_id=m.RegistrationId(_text(d["registration_id"])),
        ven_id=_ven(d),
    ),
    "oadrCanceledPartyRegistration": lambda d: m.CanceledPartyRegistration(
        response=_response_from(d["response"]), registration_id=_reg(d), ven_id=_ven(d)
    ),
    "oadrRequestReregistration": lambda d: m.RequestReregistration(
        ven_id=m.VenId(_text(d["ven_id"]))
    ),
    "oadrRequestEvent": lambda d: m.RequestEvent(
        request_id=m.RequestId(_text(d["request_id"])),
        ven_id=m.VenId(_text(d["ven_id"])),
        reply_limit=None if d.get("reply_limit") is None else int(d["reply_limit"]),
    ),
    "oadrDistributeEvent": lambda d: m.DistributeEvent(
        request_id=m.RequestId(_text(d["request_id"])),
        vtn_id=m.VtnId(_text(d["vtn_id"])),
        events=tuple(_event_from(e) for e in _list(d.get("events"))),
        response=None if d.get("response") is None else _response_from(d["response"]),
    ),
    "oadrCreatedEvent": lambda d: m.CreatedEvent(
        response=_response_from(d["response"]),
        ven_id=m.VenId(_text(d["ven_id"])),
        event_responses=tuple(
            m.EventResponse(
                code=int(r["response_code"]),
                request_id=m.RequestId(_opt_text(r.get("request_id")) or ""),
                event_id=m.EventId(_text(r["event_id"])),
                modification_number=int(r["modification_number"]),
                opt_type=OptType(r["opt_type"]),
                description=_opt_text(r.get("response_description")),
            )
            for r in _list(d.get("event_responses"))
        ),
    ),
    "oadrResponse": lambda d: m.Response(response=_response_from(d["response"]), ven_id=_ven(d)),
    "oadrCreateOpt": _create_opt_from,
    "oadrCreatedOpt": lambda d: m.CreatedOpt(
        response=_response_from(d["response"]), opt_id=m.OptId(_text(d["opt_id"]))
    ),
    "oadrCancelOpt": lambda d: m.CancelOpt(
        request_id=m.RequestId(_text(d["request_id"])),
        opt_id=m.OptId(_text(d["opt_id"])),
        ven_id=m.VenId(_text(d["ven_id"])),
    ),
    "oadrCanceledOpt": lambda d: m.CanceledOpt(
        response=_response_from(d["response"]),
        opt_id=None if _opt_text(d.get("opt_id")) is None else m.OptId(_text(d["opt_id"])),
    ),
    "oadrRegisterReport": lambda d: m.RegisterReport(
        request_id=m.RequestId(_text(d["request_id"])),
        reports=tuple(_report_from(r) for r in _list(d.get("reports"))),
        ven_id=_ven(d),
    ),
    "oadrRegisteredReport": lambda d: m.RegisteredReport(
        response=_response_from(d["response"]),
        report_requests=tuple(_report_request_from(r) for r in _list(d.get("report_requests"))),
        ven_id=_ven(d),
    ),
    "oadrCreateReport": lambda d: m.CreateReport(
        request_id=m.RequestId(_text(d["request_id"])),
        report_requests=tuple(_report_request_from(r) for r in _list(d.get("report_requests"))),
        ven_id=_ven(d),
    ),
    "oadrCreatedReport": lambda d: m.CreatedReport(
        response=_response_from(d["response"]),
        pending_reports=_pending_from(d.get("pending_reports")),
        ven_id=_ven(d),
    ),
    "oadrUpdateReport": lambda d: m.UpdateReport(
        request_id=m.RequestId(_text(d["request_id"])),
        reports=tuple(_report_from(r) for r in _list(d.get("reports"))),
        ven_id=_ven(d),
    ),
    "oadrUpdatedReport": lambda d: m.UpdatedReport(
        response=_response_from(d["response"]),
        cancel_report=(
            None if d.get("cancel_report") is None else _cancel_report_from(d["cancel_report"])
        ),
        ven_id=_ven(d),
    ),
    "oadrCancelReport": _cancel_report_from,
    "oadrCanceledReport": lambda d: m.CanceledReport(
        response=_response_from(d["response"]),
        pending_reports=_pending_from(d.get("pending_reports")),
        ven_id=_ven(d),
    ),
    "oadrPoll": lambda d: m.Poll(ven_id=m.VenId(_text(d["ven_id"]))),
}


def from_openleadr(message_type: str, message: Mapping[str, Any]) -> m.Payload:
    """Our payload from what `openleadr.messaging.parse_message` returned."""
    return _FROM[message_type](message)


# --- through OpenLEADR ---------------------------------------------------------------------------


def openleadr_xml(payload: m.Payload) -> str:
    """The oadrPayload document OpenLEADR's `create_message` writes for `payload` (unsigned)."""
    message_type, kwargs = to_openleadr(payload)
    xml: str = messaging.create_message(message_type, **kwargs)
    return xml


def through_openleadr(payload: m.Payload) -> m.Payload:
    """OpenLEADR writes it, the XSD must accept it, OpenLEADR parses it, we read its dict."""
    xml = openleadr_xml(payload)
    messaging.validate_xml_schema(xml)
    return from_openleadr(*messaging.parse_message(xml))


_NUMERIC_LOOKING = re.compile(r"-?[\d.]+")


def dodge_openleadr_defects(value: Any) -> Any:
    """`value` with the texts that trip OPENLEADR_DEFECTS rewritten, for generated payloads:
    markup characters become '+', numeric-looking text gets an 'n' in front."""
    if isinstance(value, Enum):
        return value
    if isinstance(value, str):
        text = "n" + value if _NUMERIC_LOOKING.fullmatch(value) else value
        return text.translate({ord("&"): "+", ord("<"): "+", ord(">"): "+"})
    if isinstance(value, tuple):
        return tuple(dodge_openleadr_defects(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: dodge_openleadr_defects(getattr(value, f.name))
            for f in dataclasses.fields(value)
        }
        return dataclasses.replace(value, **changes)
    return value
