"""Report rules of OpenADR 2.0b (EiReport): metadata, report requests, when reports are due.

Readings (see README.md):
- Unknown reportSpecifierID in a request: 461 ReportNotSupported (we do not offer that report);
  an unknown rID inside a known report, a reused or "0" reportRequestID, and an UpdateReport
  for a reportRequestID nobody asked for (or no longer pending): 452 InvalidId.
- A granularity outside an rID's samplingRate, and the HISTORY_* rules: 454 InvalidData.
- Scheduling. reportBackDuration 0 = one-shot: one report, at once, or at the end of a
  reportInterval still running. reportBackDuration > 0 = periodic: every reportBackDuration
  from the interval's dtstart (or from when the request was accepted when there is no
  interval) until the interval ends (with a last, shorter period if it does not divide
  evenly); no interval or duration 0 = open-ended. The notes read "no reportInterval" as
  one-shot; OpenLEADR's VTN sends periodic requests without a reportInterval and its VEN
  reports them periodically, so we follow reportBackDuration for interop.
- History reports (METADATA_HISTORY_USAGE / _GREENBUTTON) are sent once: reportBackDuration 0;
  greenbutton granularity 0 too.
- A request for reportSpecifierID "METADATA" asks for the metadata itself (answered with
  RegisterReport); it names no registered rIDs (unverified).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta

from oadr.enums import ReportName, ReportType
from oadr.errors import InvalidData, InvalidId, ReportNotSupported
from oadr.model import (
    METADATA_REPORT_REQUEST_ID,
    CancelReport,
    RegisterReport,
    Report,
    ReportRequest,
    ReportRequestId,
    ReportSpecifierId,
    RId,
    UpdateReport,
)

_ZERO = timedelta(0)
METADATA_SPECIFIER_ID = ReportSpecifierId("METADATA")

METADATA_NAMES = frozenset(
    {
        ReportName.METADATA_TELEMETRY_USAGE,
        ReportName.METADATA_TELEMETRY_STATUS,
        ReportName.METADATA_HISTORY_USAGE,
        ReportName.METADATA_HISTORY_GREENBUTTON,
    }
)
_TELEMETRY = frozenset({ReportName.METADATA_TELEMETRY_USAGE, ReportName.METADATA_TELEMETRY_STATUS})
_HISTORY = frozenset({ReportName.METADATA_HISTORY_USAGE, ReportName.METADATA_HISTORY_GREENBUTTON})


# --- metadata (RegisterReport) --------------------------------------------------------------------


def _validate_metadata(report: Report, seen: set[tuple[ReportSpecifierId, RId]]) -> None:
    what = f"report {report.report_specifier_id!r}"
    if not report.report_specifier_id:
        raise InvalidId("a METADATA report has no reportSpecifierID")
    if report.report_request_id != METADATA_REPORT_REQUEST_ID:
        raise InvalidData(f"{what}: a METADATA report has reportRequestID 0")
    name = report.report_name
    if name is None or not (name in METADATA_NAMES or name.startswith("x-")):
        raise InvalidData(f"{what}: reportName {name!r} is not a METADATA report name")
    if report.intervals or report.start is not None or report.report_id is not None:
        raise InvalidData(f"{what}: METADATA carries no intervals, dtstart or eiReportID")
    if report.duration is not None and report.duration < _ZERO:
        raise InvalidData(f"{what}: negative duration")
    for description in report.descriptions:
        key = (report.report_specifier_id, description.r_id)
        if not description.r_id or key in seen:
            raise InvalidId(f"{what}: rID {description.r_id!r} is empty or not unique")
        seen.add(key)
        rate = description.sampling_rate
        if rate is None:
            if name in _TELEMETRY:
                raise InvalidData(f"{what}: rID {description.r_id!r} needs a samplingRate")
        elif not _ZERO <= rate.min_period <= rate.max_period:
            raise InvalidData(f"{what}: rID {description.r_id!r} has an invalid samplingRate")
        if (
            name == ReportName.METADATA_TELEMETRY_STATUS
            and description.report_type != ReportType.RESOURCE_STATUS
        ):
            raise InvalidData(f"{what}: TELEMETRY_STATUS data is of type x-resourceStatus")


def validate_register_report(register_report: RegisterReport) -> None:
    """METADATA reports: reportRequestID 0, no data, unique reportSpecifierID + rID pairs."""
    seen: set[tuple[ReportSpecifierId, RId]] = set()
    for report in register_report.reports:
        _validate_metadata(report, seen)


# --- report requests (CreateReport, RegisteredReport) ---------------------------------------------


def is_metadata_request(request: ReportRequest) -> bool:
    return request.report_specifier_id == METADATA_SPECIFIER_ID


def validate_report_request(
    request: ReportRequest,
    registered_reports: Sequence[Report],
    taken_ids: Collection[ReportRequestId] = (),
) -> None:
    """A request must name registered data at a rate it is sampled at; see module readings."""
    rrid = request.report_request_id
    if not rrid or rrid == METADATA_REPORT_REQUEST_ID:
        raise InvalidId(f"reportRequestID {rrid!r} is reserved for METADATA")
    if rrid in taken_ids:
        raise InvalidId(f"reportRequestID {rrid!r} is already in use")
    for name, value in (
        ("granularity", request.granularity),
        ("reportBackDuration", request.report_back_duration),
        ("reportInterval duration", request.interval.duration if request.interval else None),
    ):
        if value is not None and value < _ZERO:
            raise InvalidData(f"request {rrid!r}: negative {name}")
    if is_metadata_request(request):
        return
    if not request.specifier_payloads:
        raise InvalidData(f"request {rrid!r} names no rID")
    report = next(
        (r for r in registered_reports if r.report_specifier_id == request.report_specifier_id),
        None,
    )
    if report is None:
        raise ReportNotSupported(
            f"reportSpecifierID {request.report_specifier_id!r} is not registered"
        )
    if report.report_name in _HISTORY:
        if request.report_back_duration != _ZERO:
            raise InvalidData(f"request {rrid!r}: history is sent once, reportBackDuration 0")
        greenbutton = report.report_name == ReportName.METADATA_HISTORY_GREENBUTTON
        if greenbutton and request.granularity != _ZERO:
            raise InvalidData(f"request {rrid!r}: greenbutton granularity must be 0")
    descriptions = {d.r_id: d for d in report.descriptions}
    for payload in request.specifier_payloads:
        description = descriptions.get(payload.r_id)
        if description is None:
            raise InvalidId(f"rID {payload.r_id!r} is not in report {report.report_specifier_id!r}")
        rate = description.sampling_rate
        if rate is None:
            continue
        if request.granularity != _ZERO and not (
            rate.min_period <= request.granularity <= rate.max_period
        ):
            raise InvalidData(
                f"request {rrid!r}: granularity {request.granularity} is outside rID"
                f" {payload.r_id!r}'s sampling rate {rate.min_period}..{rate.max_period}"
            )
        window = request.interval
        if window is not None and _ZERO < window.duration < rate.min_period:
            raise InvalidData(f"request {rrid!r}: reportInterval shorter than the sampling period")


def validate_report_requests(
    requests: Sequence[ReportRequest],
    registered_reports: Sequence[Report],
    taken_ids: Collection[ReportRequestId] = (),
) -> None:
    """All requests of one CreateReport / RegisteredReport; their ids unique among them too."""
    taken = set(taken_ids)
    for request in requests:
        validate_report_request(request, registered_reports, taken)
        taken.add(request.report_request_id)


# --- scheduling -----------------------------------------------------------------------------------


def is_one_shot(request: ReportRequest) -> bool:
    return request.report_back_duration == _ZERO


def _interval_end(request: ReportRequest) -> datetime | None:
    window = request.interval
    if window is None or window.duration == _ZERO:
        return None
    return window.start + window.duration


def next_due(
    request: ReportRequest, started: datetime, last_sent: datetime | None
) -> datetime | None:
    """The first due time after `last_sent` (None: nothing sent yet); None when finished.

    `started` is when the request was accepted; `last_sent` is the due time last reported (a
    value this module returned, not the clock time of sending, so periods do not drift).
    """
    stop = _interval_end(request)
    if is_one_shot(request):
        if last_sent is not None:
            return None
        if request.interval is None:
            return started
        return max(started, stop if stop is not None else request.interval.start)
    period = request.report_back_duration
    base = request.interval.start if request.interval is not None else started
    floor = max(started, last_sent) if last_sent is not None else started
    # first grid point base + k*period (k >= 1) not before `floor`, and after `last_sent`
    k = max(1, -((base - floor) // period))  # ceil((floor - base) / period)
    due = base + k * period
    if last_sent is not None and due <= last_sent:
        due += period
    if stop is not None and due > stop:
        # a last, shorter period closes the interval unless it was already reported
        due = stop
        if (last_sent is not None and last_sent >= stop) or stop <= base:
            return None
    return due


def due_reports(
    request: ReportRequest, started: datetime, last_sent: datetime | None, now: datetime
) -> list[datetime]:
    """The due times in (last_sent, now] not yet reported, oldest first (missed ones too)."""
    due: list[datetime] = []
    while (moment := next_due(request, started, last_sent)) is not None and moment <= now:
        due.append(moment)
        last_sent = moment
    return due


def sample_times(
    request: ReportRequest, window_start: datetime, window_end: datetime
) -> list[datetime]:
    """Start of each granularity-long reading in [window_start, window_end).

    Granularity 0 (or an empty window) is one reading, at window_start.
    """
    step = request.granularity
    if step == _ZERO or window_end <= window_start:
        return [window_start]
    count = -((window_start - window_end) // step)  # ceil(span / step)
    return [window_start + i * step for i in range(count)]


# --- matching reports to requests -----------------------------------------------------------------


def answers(
    update: UpdateReport, pending: Mapping[ReportRequestId, ReportRequest]
) -> tuple[tuple[Report, ReportRequest], ...]:
    """Pair each report of an UpdateReport with the pending request it answers (else 452)."""
    pairs: list[tuple[Report, ReportRequest]] = []
    for report in update.reports:
        request = pending.get(report.report_request_id)
        if request is None:
            raise InvalidId(f"reportRequestID {report.report_request_id!r} is not pending")
        if report.report_specifier_id != request.report_specifier_id:
            raise InvalidId(
                f"report {report.report_request_id!r} is for reportSpecifierID"
                f" {request.report_specifier_id!r}, not {report.report_specifier_id!r}"
            )
        asked = {p.r_id for p in request.specifier_payloads}
        for interval in report.intervals:
            for payload in interval.payloads:
                if payload.r_id not in asked:
                    raise InvalidId(
                        f"rID {payload.r_id!r} was not requested by {report.report_request_id!r}"
                    )
        pairs.append((report, request))
    return tuple(pairs)


def cancel(
    pending: Mapping[ReportRequestId, ReportRequest], cancel_report: CancelReport
) -> dict[ReportRequestId, ReportRequest]:
    """The requests still pending after a CancelReport; 452 for an id that is not pending."""
    unknown = [i for i in cancel_report.report_request_ids if i not in pending]
    if unknown:
        raise InvalidId(f"reportRequestID {unknown[0]!r} is not pending")
    cancelled = set(cancel_report.report_request_ids)
    return {i: r for i, r in pending.items() if i not in cancelled}
