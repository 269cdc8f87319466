"""Telemetry readings to per-ISP day series for the baselines (market.metering)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from market.baseline import event_blocks
from market.metering import MeterReading, day_series, reading, split
from tests.factories import make_flex_request

ISP = timedelta(minutes=15)
DAY = date(2026, 1, 15)
MIDNIGHT = datetime(2026, 1, 15, tzinfo=UTC)


def at(isp: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC) + isp * ISP + timedelta(minutes=minute)


def test_each_isp_is_the_mean_of_a_meter_and_meters_add_up() -> None:
    readings = [
        reading("ven-1/p", at(40), 2.0),
        reading("ven-1/p", at(40, 5), 3.0),
        reading("ven-1/p", at(40, 10), 4.0),
        reading("ven-2/p", at(40, 14), 1.5),
    ]

    series = day_series(readings, ["ven-1/p", "ven-2/p"], ISP)

    assert list(series) == [DAY] and len(series[DAY]) == 96
    assert series[DAY][40] == Decimal("4.5")  # mean(2, 3, 4) + 1.5
    assert series[DAY][39] is None and series[DAY][41] is None


def test_an_isp_where_one_meter_is_silent_is_a_gap_not_a_smaller_load() -> None:
    readings = [reading("ven-1/p", at(10), 2.0), reading("ven-1/p", at(11), 2.0),
                reading("ven-2/p", at(11), 1.0)]  # fmt: skip

    series = day_series(readings, ["ven-1/p", "ven-2/p"], ISP)

    assert (series[DAY][10], series[DAY][11]) == (None, Decimal("3.0"))


def test_a_meter_that_never_reported_leaves_every_isp_a_gap() -> None:
    series = day_series([reading("ven-1/p", at(10), 2.0)], ["ven-1/p", "ven-9/"], ISP)

    assert set(series[DAY]) == {None}


def test_values_are_exact_decimals_of_the_reported_float() -> None:
    (item,) = [reading("m", at(0), 0.1)]

    assert item == MeterReading(meter="m", start=at(0), power_kw=Decimal("0.1"))


def test_readings_go_to_their_utc_day_and_split_into_history_and_event_day() -> None:
    request = make_flex_request(start=MIDNIGHT + timedelta(hours=14))  # ISPs 56..59
    readings = [
        reading("m", at(56, day=date(2026, 1, 14)), 9.0),
        reading("m", at(55), 5.0),
        reading("m", at(56), 3.0),
        reading("m", at(58), 2.0),
    ]

    history, event_day, actual = split(day_series(readings, ["m"], ISP), event_blocks(request))

    assert list(history) == [date(2026, 1, 14)] and history[date(2026, 1, 14)][56] == 9
    assert event_day[55] == 5
    assert actual == (Decimal("3.0"), None, Decimal("2.0"), None)


def test_no_reading_at_all_gives_an_empty_history_and_a_gap_day() -> None:
    request = make_flex_request(start=MIDNIGHT + timedelta(hours=14))

    history, event_day, actual = split({}, event_blocks(request))

    assert history == {} and set(event_day) == {None} and actual == (None,) * 4


def test_metering_is_pure() -> None:
    probe = ("import json, sys, market.metering; print(json.dumps([m for m in "
             "('aiohttp', 'asyncio', 'sqlalchemy') if m in sys.modules]))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, timeout=60)  # fmt: skip
    assert json.loads(result.stdout) == []
