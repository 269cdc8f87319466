"""The VEN's reports: what it registers, which requests are pending, and the data it sends.

Pure (EiReport; OPENADR-2.0b-NOTES.md "Reports and opt"). The rules (validating a request, when
a report is due, how a window is sampled) live in `oadr.reports`; this module applies them to
the resources this VEN offers and to the readings its devices produced.

Each configured resource offers two data points: `<resource>.power`, its power in kW (usage,
powerReal, positive when drawn from the grid) in one METADATA_TELEMETRY_USAGE report, and
`<resource>.status`, its x-resourceStatus in one METADATA_TELEMETRY_STATUS report.

Our readings:
- A report covers (previous due time, this due time]; the first one starts where the request's
  interval starts, or one reportBackDuration before it is due, never before the request came.
  Each granularity-long slice carries the mean of its power readings and the last status
  reading; a slice without readings is left out. Granularity 0 is one reading: the latest.
- A periodic report without readings is still sent (no intervals): the VTN sees the VEN is
  alive and the schedule stays regular.
- A CreateReport is accepted whole or refused whole (the first error's code).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import fmean

from oadr import reports
from oadr.enums import ItemKind, ReadingType, ReportName, ReportType
from oadr.model import (
    CancelReport,
    ItemBase,
    PowerAttributes,
    Report,
    ReportDescription,
    ReportId,
    ReportInterval,
    ReportPayload,
    ReportRequest,
    ReportRequestId,
    ReportSpecifierId,
    ResourceStatus,
    RId,
    SamplingRate,
    Target,
)
from ven.model import DeviceKind

USAGE_SPECIFIER_ID = ReportSpecifierId("flex4grid-telemetry-usage")
STATUS_SPECIFIER_ID = ReportSpecifierId("flex4grid-telemetry-status")

# The data report's name for each metadata report this VEN registers.
_DATA_NAMES = {
    USAGE_SPECIFIER_ID: ReportName.TELEMETRY_USAGE,
    STATUS_SPECIFIER_ID: ReportName.TELEMETRY_STATUS,
}

KILOWATT = ItemBase(
    kind=ItemKind.POWER_REAL,
    description="RealPower",
    units="W",
    scale="k",
    power_attributes=PowerAttributes(hertz=50.0, voltage=230.0, ac=True),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceSpec:
    """A resource this VEN reports on: one device, its power and (optionally) its status."""

    resource_id: str
    kind: DeviceKind
    min_period: timedelta = timedelta(seconds=10)  # fastest sampling offered
    max_period: timedelta = timedelta(hours=1)  # slowest sampling offered
    status: bool = True  # also offers `<resource>.status` (TELEMETRY_STATUS)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """One value a device reported: kW for `.power`, a ResourceStatus for `.status`."""

    r_id: RId
    value: float | ResourceStatus
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingReport:
    """A report request this VEN accepted and still serves."""

    request: ReportRequest
    accepted_at: datetime
    last_due: datetime | None = None  # the due time last reported (None: none yet)

    @property
    def request_id(self) -> ReportRequestId:
        return self.request.report_request_id


def power_rid(resource_id: str) -> RId:
    return RId(f"{resource_id}.power")


def status_rid(resource_id: str) -> RId:
    return RId(f"{resource_id}.status")


# --- metadata -------------------------------------------------------------------------------------


def _description(spec: ResourceSpec, r_id: RId, status: bool) -> ReportDescription:
    return ReportDescription(
        r_id=r_id,
        report_type=ReportType.RESOURCE_STATUS if status else ReportType.USAGE,
        reading_type=ReadingType.NOT_APPLICABLE if status else ReadingType.DIRECT_READ,
        data_source=Target(resource_ids=(spec.resource_id,)),
        item_base=None if status else KILOWATT,
        sampling_rate=SamplingRate(
            min_period=spec.min_period, max_period=spec.max_period, on_change=False
        ),
    )


def metadata(resources: Sequence[ResourceSpec], now: datetime) -> tuple[Report, ...]:
    """The METADATA reports a RegisterReport carries (reportRequestID 0, no data)."""
    usage = tuple(_description(s, power_rid(s.resource_id), False) for s in resources)
    status = tuple(_description(s, status_rid(s.resource_id), True) for s in resources if s.status)
    found = []
    for specifier, name, descriptions in (
        (USAGE_SPECIFIER_ID, ReportName.METADATA_TELEMETRY_USAGE, usage),
        (STATUS_SPECIFIER_ID, ReportName.METADATA_TELEMETRY_STATUS, status),
    ):
        if descriptions:
            found.append(
                Report(
                    report_specifier_id=specifier,
                    created=now,
                    report_name=name,
                    descriptions=descriptions,
                )
            )
    return tuple(found)


def offered_rids(resources: Sequence[ResourceSpec]) -> frozenset[RId]:
    return frozenset(d.r_id for r in metadata(resources, datetime.min) for d in r.descriptions)


# --- requests -------------------------------------------------------------------------------------


def accept(
    requests: Sequence[ReportRequest],
    pending: Sequence[PendingReport],
    resources: Sequence[ResourceSpec],
    now: datetime,
) -> tuple[PendingReport, ...]:
    """The pending reports after a CreateReport / RegisteredReport; raises OadrError (none taken).

    A request already pending unchanged (the VTN resending after a lost answer) is not an error.
    METADATA requests are not data requests: the caller answers them with the metadata.
    """
    held = {p.request_id: p for p in pending}
    fresh = [
        r
        for r in requests
        if not reports.is_metadata_request(r) and held.get(r.report_request_id) is None
    ]
    repeats = [r for r in requests if r.report_request_id in held]
    for request in repeats:
        if held[request.report_request_id].request != request:
            reports.validate_report_request(request, (), held)  # raises 452: id in use
    reports.validate_report_requests(fresh, metadata(resources, now), held)
    return (*pending, *(PendingReport(request=r, accepted_at=now) for r in fresh))


def cancel(
    pending: Sequence[PendingReport], cancel_report: CancelReport
) -> tuple[tuple[PendingReport, ...], tuple[PendingReport, ...]]:
    """(still pending, cancelled); 452 when an id is not pending."""
    remaining = reports.cancel({p.request_id: p.request for p in pending}, cancel_report)
    kept = tuple(p for p in pending if p.request_id in remaining)
    gone = tuple(p for p in pending if p.request_id not in remaining)
    return kept, gone


# --- data -----------------------------------------------------------------------------------------


def _window_start(pending: PendingReport, due: datetime) -> datetime:
    if pending.last_due is not None:
        return pending.last_due
    request = pending.request
    if request.interval is not None:
        return min(request.interval.start, due)
    if reports.is_one_shot(request):
        return due
    return max(pending.accepted_at, due - request.report_back_duration)


def _value(readings: Sequence[Reading]) -> float | ResourceStatus:
    numbers = [r.value for r in readings if not isinstance(r.value, ResourceStatus)]
    if len(numbers) == len(readings):
        return fmean(numbers)  # power: the mean over the slice
    return readings[-1].value  # status: the last word


def _interval(
    request: ReportRequest, readings: Sequence[Reading], start: datetime, end: datetime
) -> ReportInterval | None:
    step = request.granularity
    payloads = []
    for wanted in request.specifier_payloads:
        mine = [r for r in readings if r.r_id == wanted.r_id]
        if step == timedelta(0) or end <= start:
            mine = [r for r in mine if r.at <= end][-1:]  # one reading: the latest
        else:
            mine = [r for r in mine if start <= r.at < end]
        if mine:
            payloads.append(ReportPayload(r_id=wanted.r_id, value=_value(mine)))
    if not payloads:
        return None
    duration = step if step > timedelta(0) else None
    return ReportInterval(start=start, duration=duration, payloads=tuple(payloads))


def build(
    pending: PendingReport, readings: Sequence[Reading], due: datetime, now: datetime, number: int
) -> Report:
    """The data report of `pending` for the window ending at `due` (readings sorted by time)."""
    request = pending.request
    start = _window_start(pending, due)
    intervals = []
    for at in reports.sample_times(request, start, due):
        end = min(at + request.granularity, due) if request.granularity else due
        interval = _interval(request, readings, at, end)
        if interval is not None:
            intervals.append(interval)
    return Report(
        report_specifier_id=request.report_specifier_id,
        created=now,
        report_request_id=request.report_request_id,
        report_name=_DATA_NAMES.get(request.report_specifier_id, ReportName.TELEMETRY_USAGE),
        report_id=ReportId(f"report-{number}"),
        intervals=tuple(intervals),
        start=start,
        duration=due - start if due > start else None,
    )


def due(pending: PendingReport, now: datetime) -> list[datetime]:
    """Due times of `pending` up to `now` not yet reported, oldest first."""
    return reports.due_reports(pending.request, pending.accepted_at, pending.last_due, now)


def next_due(pending: Iterable[PendingReport]) -> datetime | None:
    moments = [reports.next_due(p.request, p.accepted_at, p.last_due) for p in pending]
    return min((m for m in moments if m is not None), default=None)


def finished(pending: PendingReport) -> bool:
    return reports.next_due(pending.request, pending.accepted_at, pending.last_due) is None


def keep_readings(
    readings: Sequence[Reading], pending: Sequence[PendingReport]
) -> tuple[Reading, ...]:
    """The readings a future report may still need: from each request's window on, per rID,
    plus the latest of every rID (a later one-shot request reports it)."""
    horizon: dict[RId, datetime] = {}
    for p in pending:
        start = p.last_due or (p.request.interval.start if p.request.interval else p.accepted_at)
        for payload in p.request.specifier_payloads:
            horizon[payload.r_id] = min(start, horizon.get(payload.r_id, start))
    latest = {r.r_id: i for i, r in enumerate(readings)}
    return tuple(
        r
        for i, r in enumerate(readings)
        if latest[r.r_id] == i or (r.r_id in horizon and r.at >= horizon[r.r_id])
    )


def advance(pending: PendingReport, due_at: datetime) -> PendingReport:
    return dataclasses.replace(pending, last_due=due_at)
