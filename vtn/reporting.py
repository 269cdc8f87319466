"""The telemetry the VTN asks for when a VEN registers its reports (bootstrap, R1_3080). Pure.

For every METADATA_TELEMETRY_USAGE / _STATUS report a VEN registers, the VTN requests all its
rIDs, sampled at the configured granularity (kept within each rID's oadrSamplingRate) and sent
every `report_back`, open-ended (no reportInterval; see README's readings).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta

from oadr.enums import ReportName
from oadr.model import Report, ReportRequest, ReportRequestId, SpecifierPayload
from vtn.config import TelemetryDefaults

TELEMETRY_METADATA = frozenset(
    {ReportName.METADATA_TELEMETRY_USAGE.value, ReportName.METADATA_TELEMETRY_STATUS.value}
)


def telemetry_requests(
    registered: Iterable[Report], defaults: TelemetryDefaults, new_id: Callable[[], str]
) -> tuple[ReportRequest, ...]:
    requests = []
    for report in registered:
        if report.report_name not in TELEMETRY_METADATA or not report.descriptions:
            continue
        granularity = _granularity(report, defaults.granularity)
        requests.append(
            ReportRequest(
                report_request_id=ReportRequestId(new_id()),
                report_specifier_id=report.report_specifier_id,
                granularity=granularity,
                report_back_duration=max(defaults.report_back, granularity),
                specifier_payloads=tuple(
                    SpecifierPayload(
                        r_id=description.r_id,
                        reading_type=description.reading_type,
                        item_base=description.item_base,
                    )
                    for description in report.descriptions
                ),
            )
        )
    return tuple(requests)


def _granularity(report: Report, wanted: timedelta) -> timedelta:
    """`wanted`, raised to the slowest minimum and lowered to the fastest maximum sampling period
    any of the report's rIDs declares, so every rID can honour it."""
    rates = [d.sampling_rate for d in report.descriptions if d.sampling_rate is not None]
    if not rates:
        return wanted
    floor = max(rate.min_period for rate in rates)
    ceiling = min(rate.max_period for rate in rates)
    return min(max(wanted, floor), max(ceiling, floor))


def resource_of(registered: Sequence[Report]) -> dict[str, str]:
    """rID -> the resourceID its reportDataSource names (first one), for storing readings."""
    found: dict[str, str] = {}
    for report in registered:
        for description in report.descriptions:
            source = description.data_source
            if source is not None and source.resource_ids:
                found.setdefault(description.r_id, source.resource_ids[0])
    return found


def resource_ids(registered: Sequence[Report]) -> tuple[str, ...]:
    """Every resourceID a VEN's registered reports name: the resources it controls."""
    return tuple(dict.fromkeys(resource_of(registered).values()))
