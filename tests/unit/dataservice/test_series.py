"""Quarter-hour day blobs and bucket values per level."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from dataservice import series
from dataservice.consent import Level
from dataservice.series import Reading, SeriesError

DAY = date(2026, 1, 31)
START = datetime(2026, 1, 31, tzinfo=UTC)


def test_a_day_packs_and_unpacks_with_gaps() -> None:
    values = series.empty_day()
    values[:4] = [0.1, 0.2, 0.3, 0.4]
    blob = series.pack(values)
    assert len(blob) == series.BLOB_BYTES
    np.testing.assert_array_equal(series.unpack(blob), values)


def test_a_reading_spread_over_the_quarter_hours_it_covers() -> None:
    days = series.to_days([Reading(START + timedelta(minutes=10), timedelta(minutes=20), 2.0)])
    np.testing.assert_allclose(days[DAY][:3], [0.5, 1.5, np.nan])


def test_minute_readings_add_up_in_their_quarter_hour() -> None:
    readings = [Reading(START + timedelta(minutes=m), timedelta(minutes=1), 0.1) for m in range(15)]
    assert series.to_days(readings)[DAY][0] == pytest.approx(1.5)


def test_a_merge_keeps_what_the_update_lacks() -> None:
    old, new = series.empty_day(), series.empty_day()
    old[0], old[1], new[1], new[2] = 1.0, 2.0, 20.0, 30.0
    np.testing.assert_array_equal(series.merge(old, new)[:4], [1.0, 20.0, 30.0, np.nan])


def full_days(first: date, count: int, value: float = 0.25) -> dict[date, np.ndarray]:
    return {first + timedelta(days=n): np.full(96, value) for n in range(count)}


@pytest.mark.parametrize(
    ("level", "start", "end", "expected"),
    [
        (Level.QUARTER_HOUR, START, START + timedelta(days=1), [0.25] * 96),
        (Level.DAILY, START, START + timedelta(days=2), [24.0, 24.0]),
        (Level.MONTHLY, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC),
         [31 * 24.0, 28 * 24.0]),
    ],
    ids=["quarter-hour", "daily", "monthly"],
)  # fmt: skip
def test_bucket_values_per_level(
    level: Level, start: datetime, end: datetime, expected: list[float]
) -> None:
    days = full_days(date(2026, 1, 1), 59)
    np.testing.assert_allclose(series.values(days, level, start, end), expected)


def test_a_bucket_without_data_is_nan_not_zero() -> None:
    result = series.values(full_days(DAY, 1), Level.DAILY, START, START + timedelta(days=2))
    assert result[0] == 24.0 and np.isnan(result[1])


def test_buckets_of_a_month_follow_the_calendar() -> None:
    edges = series.buckets(
        Level.MONTHLY, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    )
    assert [s.month for s, _ in edges] == [1, 2, 3]


@pytest.mark.parametrize(
    ("level", "start", "end"),
    [
        (Level.DAILY, START + timedelta(hours=1), START + timedelta(days=1)),
        (Level.MONTHLY, START, START + timedelta(days=29)),
        (Level.DAILY, START, START),
        (Level.DAILY, START, START + timedelta(days=400)),
        (Level.NONE, START, START + timedelta(days=1)),
    ],
    ids=["not-midnight", "not-month-start", "empty", "too-long", "level-none"],
)
def test_windows_that_are_refused(level: Level, start: datetime, end: datetime) -> None:
    with pytest.raises(SeriesError):
        series.check_window(level, start, end)
