"""VTN cases, reports group (test plan R1_3070-R1_3120 VTN side, R1_3170, R1_3190).

The harness VEN registers one TELEMETRY_USAGE report (`harness-telemetry`, rID
`harness.power`); the VTN, through the hook, requests it one-shot and periodically and cancels
the request. Each oadrCreateReport is checked against the metadata the harness registered
(`oadr.reports.validate_report_request`: reportRequestID unique and not "0", rIDs registered,
granularity within the samplingRate), then answered and fed data.
"""

from __future__ import annotations

from datetime import timedelta

from conformance.model import Case, Group, Wire, check, fail
from conformance.vtn_peer import (
    HARNESS_RID,
    HARNESS_SPECIFIER,
    OK,
    VenLink,
    VtnUnderTest,
    harness_metadata,
    new_id,
    refused,
    utc_now,
)
from oadr import reports
from oadr.enums import ReportName
from oadr.errors import OadrError
from oadr.exchanges import Service
from oadr.model import (
    CanceledReport,
    CancelReport,
    CreateReport,
    EiResponse,
    Payload,
    RegisterReport,
    Report,
    ReportInterval,
    ReportPayload,
    ReportRequest,
    ReportRequestId,
    RequestId,
    UpdatedReport,
    UpdateReport,
)


def _request_action(ven_id: str, granularity: str, report_back: str) -> dict[str, object]:
    return {
        "action": "request_report",
        "ven_id": ven_id,
        "report_specifier_id": HARNESS_SPECIFIER,
        "r_ids": [HARNESS_RID],
        "granularity": granularity,
        "report_back_duration": report_back,
    }


async def _requested(
    vtn: VtnUnderTest, wire: Wire, ven: VenLink, granularity: str, report_back: str
) -> ReportRequest:
    """Have the VTN request the harness report; poll the CreateReport, check and answer it."""
    ven_id = await ven.ensure_registered(wire)
    await ven.drain(wire)
    taken = set(ven.report_requests)  # ReportRequestIds
    made = await vtn.act(wire, _request_action(ven_id, granularity, report_back))
    wanted_id = made.get("report_request_id")

    def is_new(message: Payload) -> bool:
        return isinstance(message, CreateReport) and any(
            r.report_request_id == wanted_id
            or (wanted_id is None and r.report_specifier_id == HARNESS_SPECIFIER)
            for r in message.report_requests
        )

    message = await ven.poll_until(wire, is_new, "oadrCreateReport")
    assert isinstance(message, CreateReport)
    metadata = (harness_metadata(utc_now()),)
    for request in message.report_requests:
        try:
            reports.validate_report_request(request, metadata, taken)
        except OadrError as err:
            fail(f"invalid oadrReportRequest {request.report_request_id!r}: {err}")
    request = next(r for r in message.report_requests if wanted_id in (None, r.report_request_id))
    await ven.answer(wire, message)  # oadrCreatedReport with it pending
    return request


def _data(ven: VenLink, request: ReportRequest, values: tuple[float, ...]) -> UpdateReport:
    now = utc_now().replace(microsecond=0)
    step = request.granularity or timedelta(seconds=1)
    start = now - step * len(values)
    return UpdateReport(
        request_id=RequestId(new_id("update")),
        ven_id=ven.ven_id,
        reports=(
            Report(
                report_specifier_id=HARNESS_SPECIFIER,
                report_request_id=request.report_request_id,
                report_id=new_id("report"),  # type: ignore[arg-type]
                report_name=ReportName.TELEMETRY_USAGE,
                created=now,
                start=start,
                duration=step * len(values),
                intervals=tuple(
                    ReportInterval(
                        start=start + i * step,
                        duration=step,
                        payloads=(ReportPayload(r_id=HARNESS_RID, value=v),),
                    )
                    for i, v in enumerate(values)
                ),
            ),
        ),
    )


async def _update(
    ven: VenLink, wire: Wire, request: ReportRequest, values: tuple[float, ...]
) -> None:
    updated = await ven.expect(wire, _data(ven, request, values), UpdatedReport)
    if updated.cancel_report is not None:  # piggy-backed cancellation (R1_3110)
        await ven.answer(wire, updated.cancel_report)


async def one_shot(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    request = await _requested(vtn, wire, ven, "PT0S", "PT0S")
    check(request.report_back_duration == timedelta(0), "a one-shot request came periodic")
    await _update(ven, wire, request, (1.5,))


async def periodic(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    request = await _requested(vtn, wire, ven, "PT1S", "PT2S")
    check(request.granularity == timedelta(seconds=1), f"granularity {request.granularity}")
    check(
        request.report_back_duration == timedelta(seconds=2),
        f"reportBackDuration {request.report_back_duration}",
    )
    await _update(ven, wire, request, (1.0, 1.2))
    await _update(ven, wire, request, (1.1, 0.9))


async def cancel_report(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    request = await _requested(vtn, wire, ven, "PT1S", "PT2S")
    await vtn.act(
        wire,
        {"action": "cancel_report", "ven_id": ven.ven_id,
         "report_request_id": request.report_request_id},
    )  # fmt: skip

    def cancelling(message: Payload) -> bool:
        return isinstance(message, CancelReport) and (
            request.report_request_id in message.report_request_ids
        )

    message = await ven.poll_until(wire, cancelling, "oadrCancelReport")
    assert isinstance(message, CancelReport)
    ven.report_requests.pop(request.report_request_id, None)
    pending = tuple(ven.report_requests)
    answer = CanceledReport(
        response=EiResponse(code=OK, request_id=message.request_id),
        pending_reports=pending,
        ven_id=ven.ven_id,
    )
    await ven.send(wire, answer)


async def update_unknown_request(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    await ven.ensure_registered(wire)
    bogus = ReportRequest(
        report_request_id=ReportRequestId(new_id("never-requested")),
        report_specifier_id=HARNESS_SPECIFIER,
        granularity=timedelta(seconds=1),
        report_back_duration=timedelta(0),
        specifier_payloads=(),
    )
    await refused(ven, wire, Service.EI_REPORT, ven.encode(_data(ven, bogus, (1.0,))))


async def metadata_with_data(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    ven_id = await ven.ensure_registered(wire)
    metadata = harness_metadata(utc_now())
    broken = RegisterReport(
        request_id=RequestId(new_id("rr")),
        ven_id=ven_id,
        reports=(
            Report(
                report_specifier_id=metadata.report_specifier_id,
                created=metadata.created,
                report_name=metadata.report_name,
                descriptions=metadata.descriptions,
                report_request_id=ReportRequestId("7"),  # METADATA must say "0"
            ),
        ),
    )
    await refused(ven, wire, Service.EI_REPORT, ven.encode(broken))


def _c(
    case_id: str, plan: tuple[str, ...], title: str, clause: str, run: object
) -> Case[VtnUnderTest]:
    return Case(case_id, plan, title, clause, Group.REPORTS, run)  # type: ignore[arg-type]


CASES: list[Case[VtnUnderTest]] = [
    _c(
        "VTN-REP-01",
        ("R1_3070",),
        "One-shot report request",
        (
            "oadrCreateReport names a registered rID, a fresh non-zero reportRequestID; the "
            "data is acknowledged with oadrUpdatedReport 200"
        ),
        one_shot,
    ),
    _c(
        "VTN-REP-02",
        ("R1_3080",),
        "Periodic report request",
        "granularity and reportBackDuration as asked; each oadrUpdateReport acknowledged",
        periodic,
    ),
    _c(
        "VTN-REP-03",
        ("R1_3100",),
        "Cancel report",
        "oadrCancelReport by poll names the request",
        cancel_report,
    ),
    _c(
        "VTN-REP-04",
        ("R1_3190",),
        "Report negative: unknown request",
        "oadrUpdateReport for a reportRequestID never made is refused",
        update_unknown_request,
    ),
    _c(
        "VTN-REP-05",
        ("R1_3190",),
        "Report negative: METADATA reportRequestID",
        "oadrRegisterReport whose METADATA has reportRequestID other than 0 is refused",
        metadata_with_data,
    ),
]
