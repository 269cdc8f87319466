"""Report ingest: the messages a VEN sends to have its telemetry stored (EiReport, R1_3080).

Setup (untimed): each VEN registers one TELEMETRY_USAGE metadata report with one rID (real
power, 1-minute to 1-hour sampling) with oadrRegisterReport; the VTN answers oadrRegisteredReport
carrying its telemetry request (1-minute readings, reported every 5 minutes by default). Timed:
oadrUpdateReport answering that request, `readings` one-minute intervals each, never the same
interval twice (the VTN stores a reading once, so a repeat would not be ingest).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from oadr.enums import ItemKind, ReadingType, ReportName, ReportType
from oadr.model import (
    ItemBase,
    PowerAttributes,
    RegisterReport,
    Report,
    ReportDescription,
    ReportInterval,
    ReportPayload,
    ReportRequest,
    ReportSpecifierId,
    RequestId,
    RId,
    SamplingRate,
    UpdateReport,
    VenId,
)

SPECIFIER = ReportSpecifierId("bench-telemetry-usage")
R_ID = RId("meter-power")
MINUTE = timedelta(minutes=1)
# Readings start here and move forward one minute each, so none is ever sent twice.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def register_report(ven_id: VenId, now: datetime) -> RegisterReport:
    item = ItemBase(
        kind=ItemKind.POWER_REAL,
        description="RealPower",
        units="W",
        scale="k",
        power_attributes=PowerAttributes(hertz=50.0, voltage=230.0, ac=True),
    )
    description = ReportDescription(
        r_id=R_ID,
        report_type=ReportType.USAGE,
        reading_type=ReadingType.DIRECT_READ,
        item_base=item,
        sampling_rate=SamplingRate(min_period=MINUTE, max_period=60 * MINUTE, on_change=False),
    )
    metadata = Report(
        report_specifier_id=SPECIFIER,
        created=now,
        report_name=ReportName.METADATA_TELEMETRY_USAGE,
        descriptions=(description,),
        duration=60 * MINUTE,
    )
    return RegisterReport(
        request_id=RequestId(uuid.uuid4().hex), reports=(metadata,), ven_id=ven_id
    )


def telemetry_request(requests: tuple[ReportRequest, ...]) -> ReportRequest:
    for request in requests:
        if request.report_specifier_id == SPECIFIER:
            return request
    raise ValueError("the VTN did not request the telemetry report")


def update_report(
    ven_id: VenId, request: ReportRequest, first_minute: int, readings: int, now: datetime
) -> UpdateReport:
    """Readings for minutes `first_minute` .. `first_minute + readings - 1` after EPOCH."""
    start = EPOCH + first_minute * MINUTE
    intervals = tuple(
        ReportInterval(
            start=start + i * MINUTE,
            duration=MINUTE,
            payloads=(ReportPayload(r_id=R_ID, value=1.5 + (first_minute + i) % 7),),
        )
        for i in range(readings)
    )
    report = Report(
        report_specifier_id=SPECIFIER,
        created=now,
        report_request_id=request.report_request_id,
        report_name=ReportName.TELEMETRY_USAGE,
        intervals=intervals,
        start=start,
        duration=readings * MINUTE,
    )
    return UpdateReport(request_id=RequestId(uuid.uuid4().hex), reports=(report,), ven_id=ven_id)
