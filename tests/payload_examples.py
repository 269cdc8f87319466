"""Example payloads: realistic, hand-written values of all 23 OpenADR 2.0b payload types.

`REPRESENTATIVE_PAYLOADS` is keyed "<oadrElementName>/<case>"; the golden fixtures are made
from it (tests/fixtures/make_golden.py writes tests/fixtures/xml/<oadrElementName>/
flex4grid-<case>.xml and openleadr-<case>.xml), the interop tests run each through OpenLEADR,
and the codec benchmark times a few of them. A DSO's view of one feeder: a VEN behind a
household gateway, congestion events with kW setpoints, day-ahead prices, telemetry reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from oadr import model as m
from oadr.enums import EventStatus, ItemKind, OptReason, OptType, ResponseRequired, SignalName
from oadr.enums import SignalType as SigType

_T0 = datetime(2024, 6, 3, 14, 0, tzinfo=UTC)
_CREATED = datetime(2024, 6, 3, 9, 30, 12, 345000, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)
_CONTEXT = "http://flex4grid.example.org/programs/dso-congestion"
_VEN = m.VenId("ven-0f3a2c")
_VTN = m.VtnId("vtn.dso-north")
_KW_50HZ = m.PowerAttributes(hertz=50.0, voltage=230.0, ac=True)
_POWER_KW = m.ItemBase(
    kind=ItemKind.POWER_REAL,
    description="RealPower",
    units="W",
    scale="k",
    power_attributes=_KW_50HZ,
)
_ENERGY_WH = m.ItemBase(kind=ItemKind.ENERGY_REAL, description="RealEnergy", units="Wh")
_VOLTAGE = m.ItemBase(kind=ItemKind.VOLTAGE, description="Voltage", units="V")
_EUR_PER_KWH = m.ItemBase(kind=ItemKind.CURRENCY_PER_KWH, description="currencyPerKWh", units="EUR")
_OK = m.EiResponse(code=200, request_id=m.RequestId("req-7c1e"), description="OK")


def _intervals(values: tuple[float, ...], each: timedelta) -> tuple[m.EventInterval, ...]:
    return tuple(m.EventInterval(uid=n, duration=each, value=v) for n, v in enumerate(values))


_LOAD_DISPATCH = m.Event(
    event_id=m.EventId("evt-congestion-feeder-12"),
    modification_number=0,
    market_context=_CONTEXT,
    created=_CREATED,
    status=EventStatus.FAR,
    active_period=m.ActivePeriod(
        start=_T0,
        duration=60 * _MINUTE,
        start_after=5 * _MINUTE,  # randomize the start so the feeder does not see one step
        ramp_up=15 * _MINUTE,
        recovery=10 * _MINUTE,
    ),
    signals=(
        m.EventSignal(
            # Import caps per quarter hour (positive: drawn from the grid), tightening to the peak.
            signal_name=SignalName.LOAD_DISPATCH,
            signal_type=SigType.SETPOINT,
            signal_id="sig-dispatch",
            intervals=_intervals((120.5, 80.0, 80.0, 40.25), 15 * _MINUTE),
            item_base=_POWER_KW,
            current_value=0.0,
        ),
    ),
    target=m.Target(ven_ids=(_VEN,), group_ids=("feeder-12",)),
    priority=1,
    vtn_comment="Congestion on feeder 12: reduce import",
)
_PRICE = m.Event(
    event_id=m.EventId("evt-price-day-ahead"),
    modification_number=3,
    market_context="http://flex4grid.example.org/programs/dynamic-tariff",
    created=_CREATED,
    status=EventStatus.ACTIVE,
    active_period=m.ActivePeriod(start=_T0, duration=180 * _MINUTE),
    signals=(
        m.EventSignal(
            signal_name=SignalName.ELECTRICITY_PRICE,
            signal_type=SigType.PRICE,
            signal_id="sig-price",
            intervals=_intervals((0.2175, 0.3412, 0.1981), 60 * _MINUTE),
            item_base=_EUR_PER_KWH,
            current_value=0.2175,
        ),
    ),
    target=m.Target(group_names=("residential-tariff-b",)),
    response_required=ResponseRequired.NEVER,
    modified=_CREATED + 5 * _MINUTE,
    modification_reason="Day-ahead prices published",
)
_SIMPLE = m.Event(
    event_id=m.EventId("evt-simple-peak"),
    modification_number=2,
    market_context=_CONTEXT,
    created=_CREATED,
    status=EventStatus.NEAR,
    active_period=m.ActivePeriod(
        start=_T0,
        duration=120 * _MINUTE,
        start_after=10 * _MINUTE,
        notification=24 * 60 * _MINUTE,
    ),
    signals=(
        m.EventSignal(
            signal_name=SignalName.SIMPLE,
            signal_type=SigType.LEVEL,
            signal_id="sig-simple",
            intervals=_intervals((1.0, 2.0), 60 * _MINUTE),
            current_value=0.0,
        ),
    ),
    target=m.Target(resource_ids=("heat-pump-1", "ev-charger-2"), party_ids=("party-a",)),
    priority=0,
    test_event=True,
    modified=_CREATED + 20 * _MINUTE,
    modification_reason="Moved start by one hour",
)
_TELEMETRY_METADATA = m.Report(
    report_specifier_id=m.ReportSpecifierId("spec-telemetry-usage"),
    created=_CREATED,
    report_name="METADATA_TELEMETRY_USAGE",
    duration=24 * 60 * _MINUTE,
    descriptions=(
        m.ReportDescription(
            r_id=m.RId("rid-power"),
            report_type="usage",
            reading_type="Direct Read",
            item_base=_POWER_KW,
            data_source=m.Target(resource_ids=("meter-main",)),
            market_context=_CONTEXT,
            sampling_rate=m.SamplingRate(
                min_period=_MINUTE, max_period=15 * _MINUTE, on_change=False
            ),
        ),
        m.ReportDescription(
            r_id=m.RId("rid-energy"),
            report_type="usage",
            reading_type="Net",
            item_base=_ENERGY_WH,
            sampling_rate=m.SamplingRate(
                min_period=_MINUTE, max_period=60 * _MINUTE, on_change=False
            ),
        ),
        m.ReportDescription(
            r_id=m.RId("rid-voltage"),
            report_type="reading",
            reading_type="x-RMS",
            item_base=_VOLTAGE,
            subject=m.Target(end_device_assets=("Smart_Inverter",)),
            sampling_rate=m.SamplingRate(min_period=_MINUTE, max_period=_MINUTE, on_change=True),
        ),
    ),
)
_STATUS_METADATA = m.Report(
    report_specifier_id=m.ReportSpecifierId("spec-telemetry-status"),
    created=_CREATED,
    report_name="METADATA_TELEMETRY_STATUS",
    duration=24 * 60 * _MINUTE,
    descriptions=(
        m.ReportDescription(
            r_id=m.RId("rid-status"),
            report_type="x-resourceStatus",
            reading_type="x-notApplicable",
            sampling_rate=m.SamplingRate(min_period=_MINUTE, max_period=_MINUTE, on_change=True),
        ),
    ),
)
_TELEMETRY_REQUEST = m.ReportRequest(
    report_request_id=m.ReportRequestId("rr-telemetry-usage"),
    report_specifier_id=m.ReportSpecifierId("spec-telemetry-usage"),
    granularity=_MINUTE,
    report_back_duration=5 * _MINUTE,
    interval=m.TimeWindow(start=_T0, duration=timedelta()),  # open-ended
    specifier_payloads=(
        m.SpecifierPayload(r_id=m.RId("rid-power"), reading_type="Direct Read"),
        m.SpecifierPayload(r_id=m.RId("rid-energy"), reading_type="Net"),
        m.SpecifierPayload(r_id=m.RId("rid-voltage"), reading_type="x-RMS"),
    ),
)
_STATUS_REQUEST = m.ReportRequest(
    report_request_id=m.ReportRequestId("rr-telemetry-status"),
    report_specifier_id=m.ReportSpecifierId("spec-telemetry-status"),
    granularity=timedelta(),  # one reading
    report_back_duration=timedelta(),
    specifier_payloads=(
        m.SpecifierPayload(r_id=m.RId("rid-status"), reading_type="x-notApplicable"),
    ),
)


def _usage_interval(start: datetime, power_kw: float, energy_wh: float) -> m.ReportInterval:
    return m.ReportInterval(
        start=start,
        duration=5 * _MINUTE,
        payloads=(
            m.ReportPayload(r_id=m.RId("rid-power"), value=power_kw, confidence=95, accuracy=0.5),
            m.ReportPayload(
                r_id=m.RId("rid-energy"),
                value=energy_wh,
                data_quality="Quality Good - Non Specific",
            ),
            m.ReportPayload(r_id=m.RId("rid-voltage"), value=231.7),
        ),
    )


REPRESENTATIVE_PAYLOADS: Final[Mapping[str, m.Payload]] = {
    "oadrQueryRegistration/basic": m.QueryRegistration(request_id=m.RequestId("req-query-1")),
    "oadrCreatePartyRegistration/pull": m.CreatePartyRegistration(
        request_id=m.RequestId("req-register-1"), ven_name="Household gateway 17"
    ),
    "oadrCreatePartyRegistration/push-reregistration": m.CreatePartyRegistration(
        request_id=m.RequestId("req-register-2"),
        xml_signature=True,
        transport_address="https://ven-17.example.net:8443/OpenADR2/Simple/2.0b",
        ven_name="Household gateway 17",
        http_pull_model=False,
        registration_id=m.RegistrationId("reg-5d21"),
        ven_id=_VEN,
    ),
    "oadrCreatedPartyRegistration/registered": m.CreatedPartyRegistration(
        response=_OK,
        vtn_id=_VTN,
        profiles=(
            m.Profile(profile_name="2.0a", transports=("simpleHttp",)),
            m.Profile(profile_name="2.0b", transports=("simpleHttp", "xmpp")),
        ),
        registration_id=m.RegistrationId("reg-5d21"),
        ven_id=_VEN,
        requested_poll_freq=10 * timedelta(seconds=1),
    ),
    "oadrCreatedPartyRegistration/query-reply": m.CreatedPartyRegistration(
        response=m.EiResponse(code=200, request_id=m.RequestId("req-query-1")), vtn_id=_VTN
    ),
    "oadrCancelPartyRegistration/basic": m.CancelPartyRegistration(
        request_id=m.RequestId("req-cancel-reg"),
        registration_id=m.RegistrationId("reg-5d21"),
        ven_id=_VEN,
    ),
    "oadrCanceledPartyRegistration/basic": m.CanceledPartyRegistration(
        response=m.EiResponse(code=200, request_id=m.RequestId("req-cancel-reg")),
        registration_id=m.RegistrationId("reg-5d21"),
        ven_id=_VEN,
    ),
    "oadrRequestReregistration/basic": m.RequestReregistration(ven_id=_VEN),
    "oadrRequestEvent/basic": m.RequestEvent(
        request_id=m.RequestId("req-events"), ven_id=_VEN, reply_limit=5
    ),
    "oadrDistributeEvent/load-dispatch": m.DistributeEvent(
        request_id=m.RequestId("req-dist-1"), vtn_id=_VTN, events=(_LOAD_DISPATCH,)
    ),
    "oadrDistributeEvent/electricity-price": m.DistributeEvent(
        request_id=m.RequestId("req-dist-2"), vtn_id=_VTN, events=(_PRICE, _LOAD_DISPATCH)
    ),
    "oadrDistributeEvent/simple-randomized": m.DistributeEvent(
        request_id=m.RequestId("req-dist-3"),
        vtn_id=_VTN,
        events=(_SIMPLE,),
        response=m.EiResponse(code=200, request_id=m.RequestId("req-events")),
    ),
    "oadrDistributeEvent/empty": m.DistributeEvent(
        request_id=m.RequestId("req-dist-4"), vtn_id=_VTN
    ),
    "oadrCreatedEvent/opt-in-and-out": m.CreatedEvent(
        response=m.EiResponse(code=200, request_id=m.RequestId("req-dist-2")),
        ven_id=_VEN,
        event_responses=(
            m.EventResponse(
                code=200,
                request_id=m.RequestId("req-dist-2"),
                event_id=_PRICE.event_id,
                modification_number=3,
                opt_type=OptType.OPT_IN,
            ),
            m.EventResponse(
                code=200,
                request_id=m.RequestId("req-dist-2"),
                event_id=_LOAD_DISPATCH.event_id,
                modification_number=0,
                opt_type=OptType.OPT_OUT,
                description="Heat pump must run",
            ),
        ),
    ),
    "oadrCreatedEvent/refused": m.CreatedEvent(
        response=m.EiResponse(
            code=454, request_id=m.RequestId("req-dist-9"), description="Unknown market context"
        ),
        ven_id=_VEN,
    ),
    "oadrResponse/ack": m.Response(
        response=m.EiResponse(code=200, request_id=m.RequestId("req-poll-ack")), ven_id=_VEN
    ),
    "oadrResponse/error-without-ven": m.Response(
        response=m.EiResponse(code=452, description="venID does not match the certificate")
    ),
    "oadrCreateOpt/schedule": m.CreateOpt(
        request_id=m.RequestId("req-opt-1"),
        opt_id=m.OptId("opt-holiday"),
        opt_type=OptType.OPT_OUT,
        opt_reason=OptReason.SCHEDULE,
        ven_id=_VEN,
        created=_CREATED,
        market_context=_CONTEXT,
        target=m.Target(resource_ids=("heat-pump-1",)),
        availability=(
            m.TimeWindow(start=_T0, duration=8 * 60 * _MINUTE),
            m.TimeWindow(start=_T0 + timedelta(days=1), duration=8 * 60 * _MINUTE),
        ),
    ),
    "oadrCreateOpt/event-opt-out": m.CreateOpt(
        request_id=m.RequestId("req-opt-2"),
        opt_id=m.OptId("opt-evt-congestion"),
        opt_type=OptType.OPT_OUT,
        opt_reason=OptReason.OVERRIDE_STATUS,
        ven_id=_VEN,
        created=_CREATED,
        event_id=_LOAD_DISPATCH.event_id,
        modification_number=0,
        device_class=m.Target(end_device_assets=("Thermostat",)),
    ),
    "oadrCreatedOpt/basic": m.CreatedOpt(
        response=m.EiResponse(code=200, request_id=m.RequestId("req-opt-1")),
        opt_id=m.OptId("opt-holiday"),
    ),
    "oadrCancelOpt/basic": m.CancelOpt(
        request_id=m.RequestId("req-opt-3"), opt_id=m.OptId("opt-holiday"), ven_id=_VEN
    ),
    "oadrCanceledOpt/basic": m.CanceledOpt(
        response=m.EiResponse(code=200, request_id=m.RequestId("req-opt-3")),
        opt_id=m.OptId("opt-holiday"),
    ),
    "oadrRegisterReport/ven-metadata": m.RegisterReport(
        request_id=m.RequestId("req-reg-report"),
        reports=(_TELEMETRY_METADATA, _STATUS_METADATA),
        ven_id=_VEN,
    ),
    "oadrRegisterReport/vtn-empty": m.RegisterReport(request_id=m.RequestId("req-vtn-reports")),
    "oadrRegisteredReport/with-requests": m.RegisteredReport(
        response=m.EiResponse(code=200, request_id=m.RequestId("req-reg-report")),
        report_requests=(_TELEMETRY_REQUEST, _STATUS_REQUEST),
        ven_id=_VEN,
    ),
    "oadrRegisteredReport/no-requests": m.RegisteredReport(
        response=m.EiResponse(code=200, request_id=m.RequestId("req-vtn-reports")), ven_id=_VEN
    ),
    "oadrCreateReport/telemetry": m.CreateReport(
        request_id=m.RequestId("req-create-report"),
        report_requests=(_TELEMETRY_REQUEST,),
        ven_id=_VEN,
    ),
    "oadrCreatedReport/pending": m.CreatedReport(
        response=m.EiResponse(code=200, request_id=m.RequestId("req-create-report")),
        pending_reports=(_TELEMETRY_REQUEST.report_request_id, _STATUS_REQUEST.report_request_id),
        ven_id=_VEN,
    ),
    "oadrUpdateReport/telemetry-usage": m.UpdateReport(
        request_id=m.RequestId("req-update-1"),
        ven_id=_VEN,
        reports=(
            m.Report(
                report_specifier_id=_TELEMETRY_REQUEST.report_specifier_id,
                report_request_id=_TELEMETRY_REQUEST.report_request_id,
                report_id=m.ReportId("report-usage-0001"),
                report_name="TELEMETRY_USAGE",
                created=_T0 + 10 * _MINUTE,
                start=_T0,
                intervals=(
                    _usage_interval(_T0, -3.25, 1520.0),
                    _usage_interval(_T0 + 5 * _MINUTE, -2.5, 1727.5),
                ),
            ),
        ),
    ),
    "oadrUpdateReport/telemetry-status": m.UpdateReport(
        request_id=m.RequestId("req-update-2"),
        ven_id=_VEN,
        reports=(
            m.Report(
                report_specifier_id=_STATUS_REQUEST.report_specifier_id,
                report_request_id=_STATUS_REQUEST.report_request_id,
                report_id=m.ReportId("report-status-0001"),
                report_name="TELEMETRY_STATUS",
                created=_T0,
                intervals=(
                    m.ReportInterval(
                        start=_T0,
                        payloads=(
                            m.ReportPayload(
                                r_id=m.RId("rid-status"),
                                value=m.ResourceStatus(
                                    online=True,
                                    manual_override=False,
                                    load_control=m.LoadControlState(
                                        capacity=m.LoadControlValue(
                                            current=0.6, minimum=0.0, maximum=1.0, normal=1.0
                                        )
                                    ),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
        ),
    ),
    "oadrUpdatedReport/plain": m.UpdatedReport(
        response=m.EiResponse(code=200, request_id=m.RequestId("req-update-1")), ven_id=_VEN
    ),
    "oadrUpdatedReport/with-cancel": m.UpdatedReport(
        response=m.EiResponse(code=200, request_id=m.RequestId("req-update-1")),
        cancel_report=m.CancelReport(
            request_id=m.RequestId("req-cancel-report"),
            report_request_ids=(_TELEMETRY_REQUEST.report_request_id,),
            report_to_follow=True,
            ven_id=_VEN,
        ),
        ven_id=_VEN,
    ),
    "oadrCancelReport/basic": m.CancelReport(
        request_id=m.RequestId("req-cancel-report"),
        report_request_ids=(_TELEMETRY_REQUEST.report_request_id,),
        ven_id=_VEN,
    ),
    "oadrCanceledReport/basic": m.CanceledReport(
        response=m.EiResponse(code=200, request_id=m.RequestId("req-cancel-report")),
        pending_reports=(_STATUS_REQUEST.report_request_id,),
        ven_id=_VEN,
    ),
    "oadrPoll/basic": m.Poll(ven_id=_VEN),
}
