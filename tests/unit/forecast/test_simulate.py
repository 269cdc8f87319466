"""Simulated history: seeded, household-sized, with a PV dip that follows the sun."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from forecast import simulate
from forecast.series import ISPS_PER_DAY
from forecast.simulate import Population

WINTER = datetime(2026, 1, 12, tzinfo=UTC)
SUMMER = datetime(2026, 6, 15, tzinfo=UTC)


def test_the_same_seed_gives_the_same_history() -> None:
    one = simulate.simulate(WINTER, 3, seed=5)
    same = simulate.simulate(WINTER, 3, seed=5)
    other = simulate.simulate(WINTER, 3, seed=6)

    assert np.array_equal(one.power_kw, same.power_kw)
    assert not np.array_equal(one.power_kw, other.power_kw)


def test_load_scales_with_households_at_about_the_annual_consumption() -> None:
    no_pv = Population(households=100, pv_share=0.0)
    load = simulate.simulate(WINTER, 28, population=no_pv, seed=1)

    mean_household_kw = load.power_kw.mean() / 100
    assert 0.3 < mean_household_kw < 0.7  # 3500 kWh/a is 0.4 kW on average, more in winter


def test_pv_pushes_summer_noon_down_and_leaves_nights_alone() -> None:
    without = simulate.simulate(SUMMER, 7, population=Population(pv_share=0.0), seed=2)
    with_pv = simulate.simulate(SUMMER, 7, population=Population(pv_share=0.5), seed=2)

    by_isp = (with_pv.power_kw - without.power_kw).reshape(7, ISPS_PER_DAY).mean(axis=0)
    assert by_isp[11 * 4] < -20  # 11:00 UTC, about noon in Berlin: 50 PV systems of 6 kWp
    assert abs(by_isp[1 * 4]) < 1e-9  # 01:00 UTC: dark


def test_many_points_differ_in_size() -> None:
    points = simulate.simulate_points(5, WINTER, 2, households=100, seed=3)

    means = [p.power_kw.mean() for p in points]
    assert len(set(means)) == 5
