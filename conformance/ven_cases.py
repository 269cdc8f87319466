"""VEN cases: the scripted test VTN grades a VEN that connects to it (HTTP pull).

Test plan: N1_0010/N1_0020 registration and bootstrap, E1_1010 empty distribution, E1_1020 and
the ported A_E1 event-state cases (responseRequired always/never, modification, cancellation,
unknown cancelled event, randomization window), R1_3010/R1_3020/R1_3040/R1_3170 reports,
G1_4011/G1_4015 polling, TestCase_1200 HTTP headers, G1_4010 TLS. Timing is part of the
verdict: answers must come within a few poll periods, periodic reports at the requested pace.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

from conformance.model import Case, CaseFailed, Group, Wire, check, fail, skip
from conformance.scripted_vtn import VTN_ID, ScriptedVtn, utc_now
from oadr import opts, reports
from oadr.enums import (
    PROFILE_2_0B,
    EventStatus,
    ReportName,
    ResponseRequired,
    SignalName,
    SignalType,
    TransportName,
)
from oadr.errors import OadrError
from oadr.model import (
    ActivePeriod,
    CanceledReport,
    CancelReport,
    CreatedEvent,
    CreatedReport,
    CreateOpt,
    CreatePartyRegistration,
    CreateReport,
    DistributeEvent,
    Event,
    EventId,
    EventInterval,
    EventSignal,
    Poll,
    RegisteredReport,
    RegisterReport,
    Report,
    ReportRequest,
    ReportRequestId,
    RequestId,
    SpecifierPayload,
    Target,
    UpdateReport,
)

MARKET_CONTEXT = "http://flex4grid.org/market/default"
REGISTER_TIMEOUT_S = 30.0


def _polls(vtn: ScriptedVtn) -> float:
    """A few of the VEN's poll periods: the time it has to fetch and answer a message."""
    return 2 * vtn.poll_freq.total_seconds() + 1.0


def make_event(vtn: ScriptedVtn, event_id: str, **changes: object) -> Event:
    now = utc_now().replace(microsecond=0)
    event = Event(
        event_id=EventId(event_id),
        modification_number=0,
        market_context=MARKET_CONTEXT,
        created=now,
        status=EventStatus.FAR,
        active_period=ActivePeriod(start=now + timedelta(hours=1), duration=timedelta(minutes=30)),
        signals=(
            EventSignal(
                signal_name=SignalName.SIMPLE,
                signal_type=SignalType.LEVEL,
                signal_id="sig-0",
                intervals=(EventInterval(uid=0, duration=timedelta(minutes=30), value=1.0),),
                current_value=0.0,
            ),
        ),
        target=Target(ven_ids=(vtn.ven_id,) if vtn.ven_id else ()),
    )
    return replace(event, **changes)  # type: ignore[arg-type]


def _answers(created: CreatedEvent, event_id: str, modification: int) -> bool:
    return any(
        r.event_id == event_id and r.modification_number == modification
        for r in created.event_responses
    )


async def _registered(vtn: ScriptedVtn) -> None:
    if vtn.ven_id is None:
        await vtn.wait(CreatePartyRegistration, "oadrCreatePartyRegistration", since=0,
                       timeout_s=REGISTER_TIMEOUT_S)  # fmt: skip
    await vtn.wait(RegisterReport, "oadrRegisterReport", since=0, timeout_s=_polls(vtn))


async def _distribute(vtn: ScriptedVtn, event: Event | None = None) -> DistributeEvent:
    if event is not None:
        vtn.events[event.event_id] = event
    message = vtn.distribute()
    vtn.send(message)
    return message


async def _answered(
    vtn: ScriptedVtn, message: DistributeEvent, event: Event, mark: float
) -> CreatedEvent:
    created = await vtn.wait(
        CreatedEvent,
        f"oadrCreatedEvent for {event.event_id} modification {event.modification_number}",
        since=mark,
        timeout_s=_polls(vtn),
        match=lambda c: _answers(c, event.event_id, event.modification_number),
    )
    check(created.ven_id == vtn.ven_id, f"venID {created.ven_id!r}, registered {vtn.ven_id!r}")
    for response in created.event_responses:
        if response.event_id == event.event_id:
            check(response.code == 200, f"eventResponse code {response.code}")
            check(
                response.request_id == message.request_id,
                f"eventResponse requestID {response.request_id!r} is not the "
                f"oadrDistributeEvent's {message.request_id!r}",
            )
    return created


# --- registration and polling ---------------------------------------------------------------------


async def registration(vtn: ScriptedVtn, wire: Wire) -> None:
    mark = 0.0
    request = await vtn.wait(CreatePartyRegistration, "oadrCreatePartyRegistration", since=mark,
                             timeout_s=REGISTER_TIMEOUT_S)  # fmt: skip
    check(request.profile_name == PROFILE_2_0B, f"oadrProfileName {request.profile_name}")
    check(request.transport_name == TransportName.SIMPLE_HTTP, "transport is not simpleHttp")
    check(
        request.http_pull_model is not False or request.transport_address,
        "a push registration needs oadrTransportAddress",
    )
    check(request.ven_name, "no oadrVenName")


async def bootstrap(vtn: ScriptedVtn, wire: Wire) -> None:
    await vtn.wait(CreatePartyRegistration, "oadrCreatePartyRegistration", since=0,
                   timeout_s=REGISTER_TIMEOUT_S)  # fmt: skip
    acknowledged = await vtn.wait(
        RegisteredReport, "oadrRegisteredReport for the VTN's oadrRegisterReport", since=0,
        timeout_s=_polls(vtn),
    )  # fmt: skip
    check(acknowledged.response.code == 200, f"code {acknowledged.response.code}")
    check(acknowledged.response.request_id == "vtn-reports", "requestID not echoed")
    own = await vtn.wait(RegisterReport, "oadrRegisterReport (METADATA)", since=0,
                         timeout_s=_polls(vtn))  # fmt: skip
    check(own.reports, "the VEN registered no reports")
    check(own.ven_id in (None, vtn.ven_id), f"venID {own.ven_id!r}")
    try:
        reports.validate_register_report(own)
    except OadrError as err:
        fail(f"invalid METADATA: {err}")


async def poll_frequency(vtn: ScriptedVtn, wire: Wire) -> None:
    await _registered(vtn)
    mark = time.monotonic()
    window_s = 3 * vtn.poll_freq.total_seconds() + 0.5
    times = [a.at_s for a in await vtn.gather(Poll, 3, since=mark, timeout_s=window_s)]
    check(
        len(times) >= 2, f"{len(times)} polls in {3 * vtn.poll_freq} (asked every {vtn.poll_freq})"
    )
    gaps = [b - a for a, b in itertools.pairwise(times)]
    floor = 0.8 * vtn.poll_freq.total_seconds()
    check(min(gaps) >= floor, f"polled {min(gaps):.2f} s apart, asked for {vtn.poll_freq}")
    polls = [a.payload for a in vtn.arrivals if isinstance(a.payload, Poll)]
    check(all(p.ven_id == vtn.ven_id for p in polls), "a Poll names another venID")


async def dequeue(vtn: ScriptedVtn, wire: Wire) -> None:
    await _registered(vtn)
    mark = time.monotonic()
    event = make_event(vtn, "dequeue-1")
    message = await _distribute(vtn, event)
    request = _report_request(vtn, "rr-dequeue", timedelta(0), timedelta(0))
    vtn.send(CreateReport(request_id=RequestId("cr-dequeue"), report_requests=(request,)))
    await _answered(vtn, message, event, mark)
    await vtn.wait(CreatedReport, "oadrCreatedReport", since=mark, timeout_s=_polls(vtn))


# --- events ---------------------------------------------------------------------------------------


async def empty_distribution(vtn: ScriptedVtn, wire: Wire) -> None:
    await _registered(vtn)
    mark = time.monotonic()
    message = DistributeEvent(request_id=RequestId("dist-empty"), vtn_id=VTN_ID)
    vtn.send(message)
    await vtn.moved_on(message, _polls(vtn))
    answers = vtn.since(mark, CreatedEvent)
    check(not answers, "the VEN answered an empty oadrDistributeEvent with oadrCreatedEvent")


async def new_event(vtn: ScriptedVtn, wire: Wire) -> None:
    await _registered(vtn)
    mark = time.monotonic()
    event = make_event(vtn, "event-1")
    message = await _distribute(vtn, event)
    await _answered(vtn, message, event, mark)


async def response_never(vtn: ScriptedVtn, wire: Wire) -> None:
    await _registered(vtn)
    mark = time.monotonic()
    event = make_event(vtn, "event-never", response_required=ResponseRequired.NEVER)
    message = await _distribute(vtn, event)
    await vtn.moved_on(message, _polls(vtn))
    said = [c for c in vtn.since(mark, CreatedEvent) if _answers(c, event.event_id, 0)]
    check(not said, "the VEN answered an event with oadrResponseRequired=never")


async def modification(vtn: ScriptedVtn, wire: Wire) -> None:
    await _registered(vtn)
    base = vtn.events.get("event-1") or make_event(vtn, "event-1")
    signal = replace(base.signals[0], intervals=(replace(base.signals[0].intervals[0], value=2.0),))
    event = replace(base, modification_number=base.modification_number + 1, signals=(signal,))
    mark = time.monotonic()
    message = await _distribute(vtn, event)
    await _answered(vtn, message, event, mark)


async def cancellation(vtn: ScriptedVtn, wire: Wire) -> None:
    await _registered(vtn)
    base = vtn.events.get("event-1") or make_event(vtn, "event-1")
    event = replace(
        base, modification_number=base.modification_number + 1, status=EventStatus.CANCELLED
    )
    mark = time.monotonic()
    message = await _distribute(vtn, event)
    await _answered(vtn, message, event, mark)


async def unknown_cancelled(vtn: ScriptedVtn, wire: Wire) -> None:
    await _registered(vtn)
    event = make_event(vtn, "never-seen", modification_number=3, status=EventStatus.CANCELLED)
    mark = time.monotonic()
    message = await _distribute(vtn, event)
    await vtn.moved_on(message, _polls(vtn))
    for created in vtn.since(mark, CreatedEvent):
        for response in created.event_responses:
            check(
                response.event_id != event.event_id or response.code == 200,
                f"the VEN answered error {response.code} for a cancelled event it never saw",
            )


async def randomized(vtn: ScriptedVtn, wire: Wire) -> None:
    await _registered(vtn)
    base = make_event(vtn, "event-random")
    period = replace(base.active_period, start_after=timedelta(minutes=10))
    event = replace(base, active_period=period)
    mark = time.monotonic()
    message = await _distribute(vtn, event)
    await _answered(vtn, message, event, mark)


# --- reports --------------------------------------------------------------------------------------


def _telemetry(vtn: ScriptedVtn) -> Report:
    for report in vtn.metadata:
        if report.report_name == ReportName.METADATA_TELEMETRY_USAGE and report.descriptions:
            return report
    skip("the VEN registered no METADATA_TELEMETRY_USAGE report to request")


def _report_request(
    vtn: ScriptedVtn, rrid: str, granularity: timedelta, back: timedelta
) -> ReportRequest:
    report = _telemetry(vtn)
    floor = min(
        (d.sampling_rate.min_period for d in report.descriptions if d.sampling_rate),
        default=timedelta(seconds=1),
    )
    return ReportRequest(
        report_request_id=ReportRequestId(rrid),
        report_specifier_id=report.report_specifier_id,
        granularity=max(granularity, floor) if granularity else granularity,
        report_back_duration=back,
        specifier_payloads=tuple(
            SpecifierPayload(r_id=d.r_id, reading_type=d.reading_type) for d in report.descriptions
        ),
    )


def _for(rrid: str) -> Callable[[UpdateReport], bool]:
    return lambda u: any(r.report_request_id == rrid for r in u.reports)


async def _requested(vtn: ScriptedVtn, request: ReportRequest) -> float:
    mark = time.monotonic()
    vtn.send(CreateReport(request_id=RequestId(f"cr-{request.report_request_id}"),
                          report_requests=(request,)))  # fmt: skip
    created = await vtn.wait(CreatedReport, "oadrCreatedReport", since=mark, timeout_s=_polls(vtn))
    check(created.response.code == 200, f"oadrCreatedReport code {created.response.code}")
    return mark


async def one_shot(vtn: ScriptedVtn, wire: Wire) -> None:
    await _registered(vtn)
    request = _report_request(vtn, "rr-once", timedelta(0), timedelta(0))
    mark = await _requested(vtn, request)
    update = await vtn.wait(UpdateReport, "oadrUpdateReport for the one-shot request",
                            since=mark, timeout_s=_polls(vtn), match=_for("rr-once"))  # fmt: skip
    asked = {p.r_id for p in request.specifier_payloads}
    for report in update.reports:
        for interval in report.intervals:
            for payload in interval.payloads:
                check(payload.r_id in asked, f"rID {payload.r_id} was not requested")


async def periodic(vtn: ScriptedVtn, wire: Wire) -> None:
    await _registered(vtn)
    back = timedelta(seconds=2)
    request = _report_request(vtn, "rr-periodic", timedelta(seconds=1), back)
    mark = await _requested(vtn, request)
    window_s = 3 * back.total_seconds() + vtn.poll_freq.total_seconds() + 1
    found = await vtn.gather(UpdateReport, 2, since=mark, timeout_s=window_s,
                             match=_for("rr-periodic"))  # fmt: skip
    times = [a.at_s for a in found]
    check(len(times) >= 2, f"{len(times)} oadrUpdateReport in {window_s:.0f} s, asked every {back}")
    gaps = [b - a for a, b in itertools.pairwise(times)]
    slack = vtn.poll_freq.total_seconds() + 0.5
    check(
        all(back.total_seconds() - slack <= g <= back.total_seconds() + slack for g in gaps),
        f"reports {', '.join(f'{g:.1f}' for g in gaps)} s apart, asked every {back}",
    )


async def cancel_report(vtn: ScriptedVtn, wire: Wire) -> None:
    await _registered(vtn)
    back = timedelta(seconds=1)
    request = _report_request(vtn, "rr-cancel", timedelta(seconds=1), back)
    mark = await _requested(vtn, request)
    await vtn.wait(UpdateReport, "a first oadrUpdateReport", since=mark, timeout_s=_polls(vtn),
                   match=_for("rr-cancel"))  # fmt: skip
    cancel_mark = time.monotonic()
    vtn.send(CancelReport(request_id=RequestId("cancel-rr"),
                          report_request_ids=(ReportRequestId("rr-cancel"),)))  # fmt: skip
    canceled = await vtn.wait(CanceledReport, "oadrCanceledReport", since=cancel_mark,
                              timeout_s=_polls(vtn))  # fmt: skip
    check(canceled.response.code == 200, f"code {canceled.response.code}")
    check("rr-cancel" not in canceled.pending_reports, "the cancelled request is still pending")
    settled = time.monotonic()
    await vtn.quiet(2 * back.total_seconds() + vtn.poll_freq.total_seconds())
    late = [
        a for a in vtn.arrivals
        if a.at_s > settled + back.total_seconds()
        and isinstance(a.payload, UpdateReport) and _for("rr-cancel")(a.payload)
    ]  # fmt: skip
    check(not late, f"{len(late)} oadrUpdateReport after the cancellation")


async def metadata_request(vtn: ScriptedVtn, wire: Wire) -> None:
    await _registered(vtn)
    some = _telemetry(vtn).descriptions[0]  # the schema wants one specifierPayload
    request = ReportRequest(
        report_request_id=ReportRequestId("rr-metadata"),
        report_specifier_id=reports.METADATA_SPECIFIER_ID,
        granularity=timedelta(0),
        report_back_duration=timedelta(0),
        specifier_payloads=(SpecifierPayload(r_id=some.r_id, reading_type=some.reading_type),),
    )
    mark = time.monotonic()
    vtn.send(CreateReport(request_id=RequestId("cr-metadata"), report_requests=(request,)))
    again = await vtn.wait(RegisterReport, "oadrRegisterReport answering the METADATA request",
                           since=mark, timeout_s=_polls(vtn))  # fmt: skip
    try:
        reports.validate_register_report(again)
    except OadrError as err:
        fail(f"invalid METADATA: {err}")


# --- opt and security -----------------------------------------------------------------------------


async def opt_payloads(vtn: ScriptedVtn, wire: Wire) -> None:
    if not vtn.since(0, CreateOpt):  # give an opt-out made just before this case time to come
        with contextlib.suppress(CaseFailed):
            await vtn.wait(CreateOpt, "oadrCreateOpt", since=0, timeout_s=_polls(vtn))
    sent = vtn.since(0, CreateOpt)
    if not sent:
        skip("the VEN sent no oadrCreateOpt: have it opt out (e.g. `flex4grid ven opt-out`)")
    for opt in sent:
        try:
            opts.validate(opt)
        except OadrError as err:
            fail(f"invalid oadrCreateOpt {opt.opt_id}: {err}")
        check(opt.ven_id == vtn.ven_id, f"oadrCreateOpt names venID {opt.ven_id!r}")
        check(
            opt.event_id is None or opt.event_id in vtn.events,
            f"oadrCreateOpt names event {opt.event_id!r}, which the VTN never sent",
        )
        if opt.event_id is not None:  # tied to an event: no marketContext (validator rule)
            check(opt.market_context is None, "an opt tied to an event carries a marketContext")


async def http_headers(vtn: ScriptedVtn, wire: Wire) -> None:
    check(vtn.arrivals, "the VEN sent nothing")
    for arrival in vtn.arrivals:
        headers = {k.lower(): v for k, v in arrival.headers}
        what = type(arrival.payload).__name__
        check("host" in headers, f"{what} without a Host header")
        check("content-length" in headers, f"{what} without Content-Length")
        check(
            headers.get("content-type", "").split(";")[0].strip() == "application/xml",
            f"{what} with Content-Type {headers.get('content-type')!r}",
        )
    check(not vtn.refused, f"the VEN sent unreadable payloads: {vtn.refused[:3]}")


async def tls(vtn: ScriptedVtn, wire: Wire) -> None:
    check(vtn.arrivals, "the VEN sent nothing")
    sessions = {a.tls for a in vtn.arrivals}
    if sessions == {None}:
        skip("the test VTN ran without TLS")
    for session in sessions:
        check(session is not None, "a request came without TLS")
        assert session is not None
        check(session[1] in ("TLSv1.2", "TLSv1.3"), f"protocol {session[1]}")
    wire.note(f"TLS sessions: {sorted(s for s in sessions if s)}")


def _c(
    case_id: str, plan: tuple[str, ...], title: str, clause: str, group: Group,
    run: Callable[[ScriptedVtn, Wire], Awaitable[None]],
) -> Case[ScriptedVtn]:  # fmt: skip
    async def recorded(vtn: ScriptedVtn, wire: Wire) -> None:
        vtn.wire = wire  # the scripted VTN writes this case's exchanges here
        await run(vtn, wire)

    return Case(case_id, plan, title, clause, group, recorded)


R, E, REP, OPT, P, S = (Group.REGISTRATION, Group.EVENTS, Group.REPORTS, Group.OPT, Group.POLL,
                      Group.SECURITY)  # fmt: skip
CASES: list[Case[ScriptedVtn]] = [
    _c(
        "VEN-REG-01",
        ("N1_0010",),
        "Registration",
        "oadrCreatePartyRegistration: 2.0b, simpleHttp, pull (or a transport address), a venName",
        R,
        registration,
    ),
    _c(
        "VEN-REG-02",
        ("N1_0020", "R1_3170"),
        "Bootstrap sequence",
        "the VEN acknowledges the VTN's oadrRegisterReport and registers valid METADATA",
        R,
        bootstrap,
    ),
    _c(
        "VEN-POLL-01",
        ("G1_4011",),
        "Poll frequency",
        "polls name its venID, no more often than oadrRequestedOadrPollFreq",
        P,
        poll_frequency,
    ),
    _c(
        "VEN-EVT-01",
        ("E1_1010",),
        "Empty oadrDistributeEvent",
        "an empty distribution is not answered",
        E,
        empty_distribution,
    ),
    _c(
        "VEN-EVT-02",
        ("E1_1020", "A_E1_0040"),
        "New event, response required",
        (
            "oadrCreatedEvent for (eventID, 0), code 200, the distribution's requestID, "
            "within a few polls"
        ),
        E,
        new_event,
    ),
    _c(
        "VEN-EVT-03",
        ("A_E1_0082",),
        "responseRequired never",
        "no oadrCreatedEvent for an event that does not want one",
        E,
        response_never,
    ),
    _c(
        "VEN-EVT-04",
        ("A_E1_0220",),
        "Modified event",
        "oadrCreatedEvent for modificationNumber + 1",
        E,
        modification,
    ),
    _c(
        "VEN-EVT-05",
        ("A_E1_0240",),
        "Cancelled event",
        "oadrCreatedEvent for the cancellation's modificationNumber",
        E,
        cancellation,
    ),
    _c(
        "VEN-EVT-06",
        ("A_E1_0345",),
        "Unknown cancelled event",
        "no error for a cancelled event never seen",
        E,
        unknown_cancelled,
    ),
    _c(
        "VEN-EVT-07",
        ("A_E1_0260",),
        "Randomized event",
        "an event with a startafter window is taken and answered",
        E,
        randomized,
    ),
    _c(
        "VEN-POLL-02",
        ("G1_4015",),
        "De-queue by poll",
        "a queued oadrDistributeEvent and oadrCreateReport are both drained and answered",
        P,
        dequeue,
    ),
    _c(
        "VEN-REP-01",
        ("R1_3010", "R1_3150"),
        "One-shot report",
        "oadrCreatedReport 200, then oadrUpdateReport with only the requested rIDs",
        REP,
        one_shot,
    ),
    _c(
        "VEN-REP-02",
        ("R1_3020", "R1_3160"),
        "Periodic report",
        "oadrUpdateReport every reportBackDuration",
        REP,
        periodic,
    ),
    _c(
        "VEN-REP-03",
        ("R1_3040",),
        "Cancel report",
        "oadrCanceledReport 200 without it pending; reports stop",
        REP,
        cancel_report,
    ),
    _c(
        "VEN-REP-04",
        ("R1_3170",),
        "METADATA report request",
        "a request for METADATA is answered with a valid oadrRegisterReport",
        REP,
        metadata_request,
    ),
    _c(
        "VEN-OPT-01",
        ("P1_2010",),
        "Opt payloads",
        "every oadrCreateOpt the VEN sent is valid, names its venID and an event it was sent",
        OPT,
        opt_payloads,
    ),
    _c(
        "VEN-SEC-01",
        ("TestCase_1200",),
        "HTTP headers",
        (
            "Host, Content-Length, Content-Type application/xml on every request; every payload "
            "schema-valid"
        ),
        S,
        http_headers,
    ),
    _c(
        "VEN-SEC-02",
        ("G1_4010",),
        "TLS",
        "every request over TLS 1.2 or later with a client certificate",
        S,
        tls,
    ),
]
