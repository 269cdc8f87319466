"""oadr.reports: METADATA registration, report requests, when reports are due, matching."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from oadr import reports
from oadr.enums import ReportName, ReportType
from oadr.errors import InvalidData, InvalidId, OadrError, ReportNotSupported
from oadr.model import (
    RegisterReport,
    Report,
    ReportInterval,
    ReportRequest,
    ReportRequestId,
    ReportSpecifierId,
    RId,
    TimeWindow,
)
from tests.factories import (
    HOUR,
    MINUTE,
    R_ID,
    make_cancel_report,
    make_data_report,
    make_metadata_report,
    make_register_report,
    make_report_description,
    make_report_request,
    make_sampling_rate,
    make_update_report,
)

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
ZERO = timedelta(0)
SECOND = timedelta(seconds=1)
TEMP = RId("temperature")


def _register(*metadata: Report) -> RegisterReport:
    return make_register_report(reports=metadata)


# --- METADATA registration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "register",
    [
        pytest.param(make_register_report(), id="telemetry-usage"),
        pytest.param(_register(), id="empty-vtn-registration"),
        pytest.param(
            _register(
                make_metadata_report(r_ids=(R_ID, TEMP)),
                make_metadata_report(
                    report_specifier_id=ReportSpecifierId("status-1"),
                    report_name=ReportName.METADATA_TELEMETRY_STATUS,
                    descriptions=(make_report_description(report_type=ReportType.RESOURCE_STATUS),),
                ),
            ),
            id="same-rid-in-two-reports",
        ),
        pytest.param(
            _register(
                make_metadata_report(
                    report_name=ReportName.METADATA_HISTORY_USAGE,
                    descriptions=(make_report_description(sampling_rate=None),),
                )
            ),
            id="history-without-sampling-rate",
        ),
        pytest.param(_register(make_metadata_report(report_name="x-CUSTOM")), id="x-name"),
    ],
)
def test_valid_registrations_pass(register: RegisterReport) -> None:
    reports.validate_register_report(register)


INVALID_REGISTRATIONS: list[tuple[str, Report, type[OadrError]]] = [
    (
        "report-request-id-not-0",
        make_metadata_report(report_request_id=ReportRequestId("rr-9")),
        InvalidData,
    ),
    (
        "has-intervals",
        make_metadata_report(intervals=(ReportInterval(start=NOW, payloads=()),)),
        InvalidData,
    ),
    ("has-dtstart", make_metadata_report(start=NOW), InvalidData),
    ("has-report-id", make_metadata_report(report_id="report-1"), InvalidData),
    ("data-report-name", make_metadata_report(report_name=ReportName.TELEMETRY_USAGE), InvalidData),
    ("no-report-name", make_metadata_report(report_name=None), InvalidData),
    ("duplicate-rid", make_metadata_report(r_ids=(R_ID, R_ID)), InvalidId),
    ("empty-specifier-id", make_metadata_report(report_specifier_id=""), InvalidId),
    (
        "telemetry-without-sampling-rate",
        make_metadata_report(descriptions=(make_report_description(sampling_rate=None),)),
        InvalidData,
    ),
    (
        "sampling-min-above-max",
        make_metadata_report(
            descriptions=(make_report_description(sampling_rate=make_sampling_rate(HOUR, MINUTE)),)
        ),
        InvalidData,
    ),
    (
        "status-not-resource-status",
        make_metadata_report(report_name=ReportName.METADATA_TELEMETRY_STATUS),
        InvalidData,
    ),
    ("negative-duration", make_metadata_report(duration=-HOUR), InvalidData),
]


@pytest.mark.parametrize(
    ("metadata", "error"), [pytest.param(m, e, id=i) for i, m, e in INVALID_REGISTRATIONS]
)
def test_invalid_metadata_raises_the_matching_code(
    metadata: Report, error: type[OadrError]
) -> None:
    with pytest.raises(OadrError) as caught:
        reports.validate_register_report(_register(metadata))
    assert type(caught.value) is error


def test_duplicate_specifier_and_rid_across_reports_is_refused() -> None:
    with pytest.raises(InvalidId):
        reports.validate_register_report(_register(make_metadata_report(), make_metadata_report()))


# --- report requests ------------------------------------------------------------------------------

REGISTERED = (
    make_metadata_report(r_ids=(R_ID, TEMP)),
    make_metadata_report(
        report_specifier_id=ReportSpecifierId("history-1"),
        report_name=ReportName.METADATA_HISTORY_USAGE,
    ),
    make_metadata_report(
        report_specifier_id=ReportSpecifierId("greenbutton-1"),
        report_name=ReportName.METADATA_HISTORY_GREENBUTTON,
    ),
)
HISTORY = ReportSpecifierId("history-1")
GREENBUTTON = ReportSpecifierId("greenbutton-1")


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(make_report_request(), id="periodic"),
        pytest.param(make_report_request(r_ids=(R_ID, TEMP)), id="two-rids"),
        pytest.param(make_report_request(granularity=ZERO), id="granularity-0-one-reading"),
        pytest.param(make_report_request(granularity=MINUTE), id="granularity-at-min"),
        pytest.param(make_report_request(granularity=HOUR), id="granularity-at-max"),
        pytest.param(
            make_report_request(report_back_duration=ZERO, granularity=ZERO), id="one-shot"
        ),
        pytest.param(
            make_report_request(
                report_specifier_id=HISTORY,
                report_back_duration=ZERO,
                granularity=15 * MINUTE,
                interval=TimeWindow(start=NOW - 24 * HOUR, duration=24 * HOUR),
            ),
            id="history-usage",
        ),
        pytest.param(
            make_report_request(
                report_specifier_id=GREENBUTTON, report_back_duration=ZERO, granularity=ZERO
            ),
            id="greenbutton",
        ),
        pytest.param(
            make_report_request(
                report_specifier_id=reports.METADATA_SPECIFIER_ID,
                granularity=ZERO,
                report_back_duration=ZERO,
                r_ids=(RId("0"),),
            ),
            id="metadata-request",
        ),
    ],
)
def test_valid_report_requests_pass(request_: ReportRequest) -> None:
    reports.validate_report_request(request_, REGISTERED)


INVALID_REQUESTS: list[tuple[str, ReportRequest, type[OadrError]]] = [
    ("request-id-0", make_report_request(report_request_id="0"), InvalidId),
    ("request-id-empty", make_report_request(report_request_id=""), InvalidId),
    ("request-id-taken", make_report_request(report_request_id="taken"), InvalidId),
    (
        "unknown-specifier",
        make_report_request(report_specifier_id=ReportSpecifierId("nope")),
        ReportNotSupported,
    ),
    ("unknown-rid", make_report_request(r_ids=(RId("nope"),)), InvalidId),
    ("no-rids", make_report_request(r_ids=()), InvalidData),
    ("granularity-below-min", make_report_request(granularity=SECOND), InvalidData),
    ("granularity-above-max", make_report_request(granularity=2 * HOUR), InvalidData),
    ("negative-report-back", make_report_request(report_back_duration=-MINUTE), InvalidData),
    (
        "interval-shorter-than-sampling",
        make_report_request(interval=TimeWindow(start=NOW, duration=SECOND)),
        InvalidData,
    ),
    (
        "history-periodic",
        make_report_request(report_specifier_id=HISTORY, report_back_duration=HOUR),
        InvalidData,
    ),
    (
        "greenbutton-granularity",
        make_report_request(
            report_specifier_id=GREENBUTTON, report_back_duration=ZERO, granularity=MINUTE
        ),
        InvalidData,
    ),
]


@pytest.mark.parametrize(
    ("request_", "error"), [pytest.param(r, e, id=i) for i, r, e in INVALID_REQUESTS]
)
def test_invalid_report_requests_raise_the_matching_code(
    request_: ReportRequest, error: type[OadrError]
) -> None:
    with pytest.raises(OadrError) as caught:
        reports.validate_report_request(request_, REGISTERED, {ReportRequestId("taken")})
    assert type(caught.value) is error


def test_request_ids_must_be_unique_within_one_payload() -> None:
    twice = [make_report_request("rr-1"), make_report_request("rr-1")]
    with pytest.raises(InvalidId):
        reports.validate_report_requests(twice, REGISTERED)
    reports.validate_report_requests(
        [make_report_request("rr-1"), make_report_request("rr-2")], REGISTERED
    )


# --- scheduling -----------------------------------------------------------------------------------

TEN = 10 * MINUTE
ONE_SHOT = make_report_request(report_back_duration=ZERO, granularity=ZERO)
PERIODIC_OPEN = make_report_request(report_back_duration=TEN)
PERIODIC_WINDOW = make_report_request(
    report_back_duration=TEN, interval=TimeWindow(start=NOW, duration=30 * MINUTE)
)
PERIODIC_UNEVEN = make_report_request(
    report_back_duration=TEN, interval=TimeWindow(start=NOW, duration=25 * MINUTE)
)
PERIODIC_ZERO_DURATION = make_report_request(
    report_back_duration=TEN, interval=TimeWindow(start=NOW, duration=ZERO)
)
DELAYED = make_report_request(
    report_back_duration=TEN, interval=TimeWindow(start=NOW + HOUR, duration=20 * MINUTE)
)
ONE_SHOT_WINDOW = make_report_request(
    report_back_duration=ZERO, interval=TimeWindow(start=NOW, duration=HOUR)
)
ONE_SHOT_PAST_WINDOW = make_report_request(
    report_back_duration=ZERO, interval=TimeWindow(start=NOW - 2 * HOUR, duration=HOUR)
)


def _at(*minutes: int) -> list[datetime]:
    return [NOW + m * MINUTE for m in minutes]


SCHEDULE_CASES: list[tuple[str, ReportRequest, datetime | None, datetime, list[datetime]]] = [
    ("one-shot-due-at-once", ONE_SHOT, None, NOW, _at(0)),
    ("one-shot-only-once", ONE_SHOT, NOW, NOW + HOUR, []),
    ("one-shot-waits-for-window-end", ONE_SHOT_WINDOW, None, NOW + 59 * MINUTE, []),
    ("one-shot-at-window-end", ONE_SHOT_WINDOW, None, NOW + HOUR, _at(60)),
    ("one-shot-past-window-at-once", ONE_SHOT_PAST_WINDOW, None, NOW, _at(0)),
    ("periodic-nothing-before-first-period", PERIODIC_OPEN, None, NOW + TEN - SECOND, []),
    ("periodic-first-after-one-period", PERIODIC_OPEN, None, NOW + TEN, _at(10)),
    (
        "periodic-open-ended-keeps-going",
        PERIODIC_OPEN,
        NOW + 990 * MINUTE,
        NOW + 1000 * MINUTE,
        _at(1000),
    ),
    ("periodic-missed-ones-all-due", PERIODIC_OPEN, NOW + TEN, NOW + 35 * MINUTE, _at(20, 30)),
    ("periodic-stops-at-interval-end", PERIODIC_WINDOW, None, NOW + 5 * HOUR, _at(10, 20, 30)),
    ("periodic-after-last-is-done", PERIODIC_WINDOW, NOW + 30 * MINUTE, NOW + 5 * HOUR, []),
    ("periodic-short-last-period", PERIODIC_UNEVEN, None, NOW + HOUR, _at(10, 20, 25)),
    (
        "duration-0-is-open-ended",
        PERIODIC_ZERO_DURATION,
        None,
        NOW + 40 * MINUTE,
        _at(10, 20, 30, 40),
    ),
    ("delayed-waits-for-dtstart", DELAYED, None, NOW + HOUR, []),
    ("delayed-from-dtstart", DELAYED, None, NOW + 2 * HOUR, _at(70, 80)),
]


@pytest.mark.parametrize(
    ("request_", "last_sent", "now", "expected"),
    [pytest.param(r, s, n, x, id=i) for i, r, s, n, x in SCHEDULE_CASES],
)
def test_due_reports(
    request_: ReportRequest, last_sent: datetime | None, now: datetime, expected: list[datetime]
) -> None:
    assert reports.due_reports(request_, NOW, last_sent, now) == expected


def test_periodic_request_accepted_late_skips_periods_before_acceptance() -> None:
    started = NOW + 15 * MINUTE  # interval began at NOW
    assert reports.due_reports(PERIODIC_WINDOW, started, None, NOW + HOUR) == _at(20, 30)


def test_next_due_tells_the_timer_and_none_when_finished() -> None:
    assert reports.next_due(PERIODIC_WINDOW, NOW, None) == NOW + TEN
    assert reports.next_due(PERIODIC_WINDOW, NOW, NOW + 20 * MINUTE) == NOW + 30 * MINUTE
    assert reports.next_due(PERIODIC_WINDOW, NOW, NOW + 30 * MINUTE) is None
    assert reports.next_due(ONE_SHOT, NOW, None) == NOW
    assert reports.next_due(ONE_SHOT, NOW, NOW) is None


def test_last_sent_between_grid_points_does_not_shift_the_grid() -> None:
    assert reports.next_due(PERIODIC_OPEN, NOW, NOW + 12 * MINUTE) == NOW + 20 * MINUTE


@pytest.mark.parametrize(
    ("granularity", "start", "end", "expected"),
    [
        pytest.param(MINUTE, NOW, NOW + 3 * MINUTE, _at(0, 1, 2), id="every-minute"),
        pytest.param(2 * MINUTE, NOW, NOW + 5 * MINUTE, _at(0, 2, 4), id="partial-last"),
        pytest.param(ZERO, NOW, NOW + HOUR, _at(0), id="granularity-0-one-reading"),
        pytest.param(MINUTE, NOW, NOW, _at(0), id="empty-window-one-reading"),
    ],
)
def test_sample_times_step_by_granularity(
    granularity: timedelta, start: datetime, end: datetime, expected: list[datetime]
) -> None:
    request = make_report_request(granularity=granularity)
    assert reports.sample_times(request, start, end) == expected


# --- matching updates to requests -----------------------------------------------------------------

PENDING = {
    ReportRequestId("rr-1"): make_report_request("rr-1"),
    ReportRequestId("rr-2"): make_report_request("rr-2", r_ids=(TEMP,)),
}


def test_answers_pairs_each_report_with_its_request() -> None:
    first, second = make_data_report("rr-1"), make_data_report("rr-2", r_id=TEMP)
    pairs = reports.answers(make_update_report(reports=(first, second)), PENDING)
    expected = (first, PENDING[ReportRequestId("rr-1")]), (second, PENDING[ReportRequestId("rr-2")])
    assert pairs == expected


@pytest.mark.parametrize(
    "report",
    [
        pytest.param(make_data_report("unknown"), id="unknown-request-id"),
        pytest.param(make_data_report("0"), id="metadata-id"),
        pytest.param(make_data_report("rr-1", r_id=TEMP), id="rid-not-requested"),
        pytest.param(
            make_data_report("rr-1", report_specifier_id=ReportSpecifierId("other")),
            id="other-specifier",
        ),
    ],
)
def test_answers_refuses_reports_nobody_asked_for(report: Report) -> None:
    with pytest.raises(InvalidId):
        reports.answers(make_update_report(reports=(report,)), PENDING)


def test_cancel_leaves_the_other_requests_pending() -> None:
    left = reports.cancel(PENDING, make_cancel_report(report_request_ids=("rr-1",)))
    assert list(left) == ["rr-2"]
    with pytest.raises(InvalidId):
        reports.cancel(PENDING, make_cancel_report(report_request_ids=("rr-1", "gone")))


def test_one_shot_and_periodic_are_told_apart_by_report_back_duration() -> None:
    assert reports.is_one_shot(ONE_SHOT)
    assert not reports.is_one_shot(PERIODIC_OPEN)
    assert not reports.is_one_shot(replace(PERIODIC_OPEN, interval=None))
