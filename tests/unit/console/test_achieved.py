"""What an event achieved for a prosumer: its mean power during the event against the same
length just before, from its VEN's telemetry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from console.prosumer_pages import achieved
from oadr.model import RId, VenId
from tests.factories import make_event
from vtn.store.reports import Reading

START = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


def reading(minutes: int, kw: float, ven: str = "ven-1") -> Reading:
    return Reading(
        ven_id=VenId(ven),
        report_request_id="rr",
        report_specifier_id="rs",
        report_name=None,
        r_id=RId("meter.power"),
        resource_id=None,
        start=START + timedelta(minutes=minutes),
        duration=timedelta(minutes=15),
        value=kw,
        status=None,
        data_quality=None,
        received_at=START,
    )


def test_the_reduction_is_before_minus_during_in_kw_and_kwh() -> None:
    event = make_event(start=START, duration=timedelta(hours=1))
    readings = [reading(m, 6.0) for m in range(-60, 0, 15)]
    readings += [reading(m, 2.0) for m in range(0, 60, 15)]
    readings.append(reading(90, 50.0))  # after the event: not counted
    result = achieved(readings, event)
    assert result is not None
    assert (result.before_kw, result.during_kw) == (6.0, 2.0)
    assert result.reduction_kw == pytest.approx(4.0)
    assert result.reduction_kwh == pytest.approx(4.0)


def test_no_readings_on_either_side_means_nothing_to_show() -> None:
    event = make_event(start=START, duration=timedelta(hours=1))
    assert achieved([reading(m, 2.0) for m in range(0, 60, 15)], event) is None


def test_an_open_ended_event_has_no_result_yet() -> None:
    event = make_event(start=START, duration=timedelta(0))
    assert achieved([reading(-15, 5.0), reading(15, 1.0)], event) is None
