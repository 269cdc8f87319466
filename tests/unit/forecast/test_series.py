"""Readings of a point's members become one ISP series: summed, resampled, gaps kept as gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from forecast import series
from forecast.series import ISP, LoadSeries, Sample

START = datetime(2026, 3, 2, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def quarter(member: str, index: int, power_kw: float, **extra: object) -> Sample:
    return Sample(member, START + ISP * index, ISP, power_kw, **extra)  # type: ignore[arg-type]


def test_members_are_summed_per_isp() -> None:
    samples = [quarter("a", i, 1.0 + i) for i in range(4)] + [
        quarter("b", i, 10.0) for i in range(4)
    ]

    built = series.build(samples, ["a", "b"], START, START + 4 * ISP)

    assert built.power_kw.tolist() == [11.0, 12.0, 13.0, 14.0]


def test_short_readings_are_averaged_and_long_ones_spread() -> None:
    minutes = [Sample("a", START + i * MINUTE, MINUTE, float(i)) for i in range(15)]  # mean 7
    hourly = [Sample("b", START, timedelta(hours=1), 4.0)]

    built = series.build(minutes + hourly, ["a", "b"], START, START + ISP)
    spread = series.build(hourly, ["b"], START, START + 4 * ISP)

    assert built.power_kw.tolist() == [pytest.approx(11.0)]
    assert spread.power_kw.tolist() == [4.0, 4.0, 4.0, 4.0]


def test_an_isp_a_member_did_not_cover_is_missing_not_a_dip() -> None:
    samples = [quarter("a", i, 5.0) for i in range(4)] + [quarter("b", i, 5.0) for i in (0, 1, 3)]

    built = series.build(samples, ["a", "b"], START, START + 4 * ISP)

    assert built.power_kw[[0, 1, 3]].tolist() == [10.0, 10.0, 10.0]
    assert np.isnan(built.power_kw[2])
    assert built.missing == 1


def test_half_an_isp_of_readings_is_enough_by_default() -> None:
    half = [Sample("a", START + i * MINUTE, MINUTE, 2.0) for i in range(8)]
    third = [Sample("a", START + ISP + i * MINUTE, MINUTE, 2.0) for i in range(5)]

    built = series.build(half + third, ["a"], START, START + 2 * ISP)

    assert built.power_kw[0] == 2.0
    assert np.isnan(built.power_kw[1])


def test_a_reading_received_after_the_cut_off_is_not_used() -> None:
    on_time = quarter("a", 0, 3.0, received_at=START + ISP)
    late = quarter("a", 1, 3.0, received_at=START + 3 * ISP)

    built = series.build([on_time, late], ["a"], START, START + 2 * ISP, known_at=START + 2 * ISP)
    later = series.build([on_time, late], ["a"], START, START + 2 * ISP, known_at=START + 4 * ISP)

    assert np.isnan(built.power_kw[1])
    assert later.power_kw.tolist() == [3.0, 3.0]


def test_a_late_reading_fills_its_own_isp_whatever_the_order() -> None:
    samples = [quarter("a", 2, 7.0), quarter("a", 0, 5.0), quarter("a", 1, 6.0)]

    built = series.build(samples, ["a"], START, START + 3 * ISP)

    assert built.power_kw.tolist() == [5.0, 6.0, 7.0]


def test_a_reading_sent_again_replaces_the_earlier_one() -> None:
    first = quarter("a", 0, 1.0, received_at=START + ISP)
    corrected = quarter("a", 0, 2.0, received_at=START + 2 * ISP)

    built = series.build([corrected, first], ["a"], START, START + ISP)

    assert built.power_kw.tolist() == [2.0]


@pytest.mark.parametrize(
    "sample",
    [
        Sample("a", START, ISP, float("nan")),
        Sample("a", START, ISP, float("inf")),
        Sample("a", START, timedelta(0), 3.0),
        Sample("stranger", START, ISP, 3.0),
        Sample("a", START - timedelta(days=3), ISP, 3.0),
        Sample("a", START + timedelta(days=3), ISP, 3.0),
    ],
    ids=["nan", "inf", "zero-duration", "not-a-member", "before", "after"],
)
def test_unusable_readings_are_skipped_without_a_crash(sample: Sample) -> None:
    built = series.build([sample], ["a"], START, START + ISP)

    assert built.missing == 1


def test_no_members_or_no_readings_is_an_all_missing_series() -> None:
    assert series.build([], [], START, START + 4 * ISP).missing == 4
    assert series.build([], ["a"], START, START + 4 * ISP).missing == 4


def test_a_series_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="aware"):
        series.build([], ["a"], START.replace(tzinfo=None), START + ISP)


def test_until_and_window_cut_by_time() -> None:
    load = LoadSeries(START, np.arange(8.0))

    assert load.until(START + 3 * ISP).power_kw.tolist() == [0.0, 1.0, 2.0]
    window = load.window(START + 6 * ISP, 4)
    assert window[:2].tolist() == [6.0, 7.0]
    assert np.isnan(window[2:]).all()
    assert load.end == START + 8 * ISP


def test_the_data_version_changes_with_the_data_and_only_with_it() -> None:
    one = LoadSeries(START, np.array([1.0, np.nan, 3.0]))
    same = LoadSeries(START, np.array([1.0, np.nan, 3.0]))
    other = LoadSeries(START, np.array([1.0, 2.0, 3.0]))

    assert series.data_version(one) == series.data_version(same)
    assert series.data_version(one) != series.data_version(other)


def test_floor_isp() -> None:
    assert series.floor_isp(START + timedelta(minutes=44, seconds=3)) == START + 2 * ISP
