"""The DSO's forecast: the overload window around the evening peak, feeder sums, capacity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flex4grid.demo import forecast, scenario
from flex4grid.demo.forecast import LEAD, MAX_WINDOW, SHOULDER
from flex4grid.demo.profiles import LJUBLJANA, STEP, DayProfiles

START = datetime(2026, 11, 27, tzinfo=UTC)


def at(slot: int) -> datetime:
    return START + slot * STEP


def test_no_window_when_the_forecast_stays_within_capacity() -> None:
    assert forecast.overload_window([1.0, 5.0, 3.0], 5.0, START) is None


@pytest.mark.parametrize(
    ("load", "capacity", "first", "last"),
    [
        ([1, 2, 9, 8, 2, 1] + [0] * 10, 5, 2, 3),
        ([7, 1, 1, 6, 9, 6, 1] + [0] * 10, 5, 3, 5),  # the run around the peak, not the first one
        ([1, 6, 9, 4.5, 4, 3, 1] + [0] * 10, 5, 1, 4),  # on until under SHOULDER x capacity
    ],
    ids=["one-run", "run-around-peak", "shoulder"],
)
def test_the_window_covers_the_overload_around_the_peak_and_its_shoulder(
    load: list[float], capacity: float, first: int, last: int
) -> None:
    assert SHOULDER * capacity < 4  # the cases' shoulders end where the load is 3 or less
    window = forecast.overload_window(load, capacity, START)
    assert window == (at(first) - LEAD, at(last + 1))


def test_a_long_overload_is_asked_for_whole_even_beyond_the_longest_window() -> None:
    slots = int(MAX_WINDOW / STEP) + 4
    window = forecast.overload_window([9.0] * slots, 5.0, START)
    assert window is not None
    assert window[0] == START - LEAD
    assert window[1] == at(slots)  # never cut short of the overload itself


def test_feeder_load_sums_its_own_households_per_period() -> None:
    loads = {"a": (1.0, 2.0), "b": (0.5, -1.0), "c": (100.0, 100.0)}
    assert forecast.feeder_load(loads, ["a", "b"], slots=2) == (1.5, 1.0)


def test_a_capacity_is_sized_below_the_peak_unless_given() -> None:
    flat = DayProfiles(
        site=LJUBLJANA, start=START, h0_kw=(0.1,) * 192, irradiance_w_per_m2=(0.0,) * 192
    )
    specs = scenario.households(4, 2, 1, flat)
    loads = {s.name: tuple(float(i % 7) for i in range(forecast.SLOTS_PER_DAY)) for s in specs}
    sized = forecast.plan(specs, loads, START)
    assert [p.name for p in sized] == ["feeder-1", "feeder-2"]
    assert all(p.capacity_kw < p.peak_kw and p.window is not None for p in sized)
    given = forecast.plan(specs, loads, START, capacity_kw=1000.0)
    assert all(p.capacity_kw == 1000.0 and p.window is None for p in given)
    assert sized[0].slot_start(4) == START + timedelta(hours=1)
