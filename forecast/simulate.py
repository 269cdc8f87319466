"""Simulated history of a congestion point: BDEW H0 households with noise, minus rooftop PV.

Stands in for stored telemetry where there is none yet (backtests, tests, benchmarks). The load
is the dynamised BDEW standard load profile H0 (`demandlib`) in local time, scaled per household
(annual consumption drawn around `annual_kwh`), times a day-to-day level that wanders (weather,
holidays nobody told us about) and ISP noise that shrinks with the number of households (their
independent spikes average out). PV is `pv_share` of the households with `pv_kwp` each: clear-sky
output (`pvlib`) times a cloudiness that is drawn per day and wanders within it. Everything
random comes from one `numpy` generator seeded with `seed`: same seed, same history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from forecast import features
from forecast.features import DEFAULT_SITE, Site
from forecast.series import ISP, ISPS_PER_DAY, FloatArray, LoadSeries


@dataclass(frozen=True, slots=True)
class Population:
    """What is behind the congestion point."""

    households: int = 100
    annual_kwh: float = 3500.0  # mean household consumption
    pv_share: float = 0.3  # share of households with a PV system
    pv_kwp: float = 6.0
    household_noise: float = 0.8  # one household's ISP noise, relative (they are spiky)
    day_level_sd: float = 0.06  # day-to-day level, relative, AR(1)
    site: Site = DEFAULT_SITE


@lru_cache(maxsize=8)
def _h0_kw_per_kwh(year: int) -> pd.Series:
    """H0 (dynamised) as kW per kWh of annual consumption, indexed by naive local time."""
    from demandlib import bdew  # heavy; only simulations need it

    profile = bdew.ElecSlp(year).get_scaled_power_profiles({"h0_dyn": 1.0})["h0_dyn"]
    return profile.astype(np.float64)


def h0_kw_per_kwh(start: datetime, count: int, site: Site = DEFAULT_SITE) -> FloatArray:
    """The H0 profile at each UTC ISP, looked up at its local wall-clock time.

    On the autumn night the clocks go back the same local quarter-hour is read twice; in spring
    the skipped hour is simply not read: that is what households do too.
    """
    local = features.times(start, count).tz_convert(ZoneInfo(site.tz)).tz_localize(None)
    years = range(int(local.year.min()), int(local.year.max()) + 1)
    profile = pd.concat([_h0_kw_per_kwh(year) for year in years])
    values: FloatArray = np.asarray(profile.reindex(local.floor("15min")), dtype=np.float64)
    return np.nan_to_num(values, nan=float(np.nanmean(values)))


@lru_cache(maxsize=32)
def _clear_sky(start: datetime, count: int, site: Site) -> FloatArray:
    return features.clear_sky_ghi(start, count, site=site)


def _ar1(rng: np.random.Generator, count: int, phi: float, sd: float) -> FloatArray:
    """A stationary AR(1) path with standard deviation `sd`."""
    shocks = rng.normal(0.0, sd * np.sqrt(1 - phi**2), count)
    out = np.empty(count)
    level = rng.normal(0.0, sd)
    for i in range(count):
        level = phi * level + shocks[i]
        out[i] = level
    return out


def simulate(
    start: datetime, days: int, *, population: Population = Population(), seed: int = 0
) -> LoadSeries:
    """`days` of net load at one congestion point from `start` (UTC midnight, say)."""
    rng = np.random.default_rng(seed)
    count = days * ISPS_PER_DAY
    p = population
    annual_kwh = rng.lognormal(np.log(p.annual_kwh) - 0.08, 0.4, p.households).sum()
    consumption = h0_kw_per_kwh(start, count, p.site) * annual_kwh

    day_level = np.repeat(1.0 + _ar1(rng, days, 0.7, p.day_level_sd), ISPS_PER_DAY)
    isp_sd = p.household_noise / np.sqrt(max(p.households, 1))
    isp_noise = 1.0 + _ar1(rng, count, 0.5, isp_sd) + _ar1(rng, count, 0.9, 0.03)
    consumption = consumption * day_level * np.clip(isp_noise, 0.2, None)

    pv_kwp = round(p.pv_share * p.households) * p.pv_kwp
    ghi = _clear_sky(start, count, p.site)
    cloudiness = np.repeat(rng.beta(2.0, 1.6, days), ISPS_PER_DAY)  # clear-sky index per day
    clear_index = np.clip(cloudiness + _ar1(rng, count, 0.8, 0.12), 0.05, 1.0)
    pv_kw = pv_kwp * 0.8 * ghi / 1000.0 * clear_index

    return LoadSeries(start, (consumption - pv_kw).astype(np.float64), ISP)


def simulate_points(
    count: int,
    start: datetime,
    days: int,
    *,
    households: int = 100,
    seed: int = 0,
    site: Site = DEFAULT_SITE,
) -> list[LoadSeries]:
    """`count` congestion points of 50 %..150 % of `households` each, seeds derived from `seed`."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(max(1, households // 2), households * 3 // 2 + 1, count)
    pv_shares = rng.uniform(0.1, 0.5, count)
    return [
        simulate(
            start,
            days,
            population=Population(households=int(size), pv_share=float(share), site=site),
            seed=seed * 100_003 + i + 1,
        )
        for i, (size, share) in enumerate(zip(sizes, pv_shares, strict=True))
    ]
