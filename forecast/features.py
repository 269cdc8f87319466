"""Explanatory variables for a load forecast: the calendar and the sun.

Household load follows local wall-clock time (people get up at 7 in summer time too), so the
calendar is taken in the point's time zone: ISP of the day, weekday, weekend-or-holiday. Where no
weather forecast is available, PV output is represented by clear-sky irradiance from `pvlib`
(Ineichen model with the Linke turbidity climatology) for the point's location: it knows when
the sun is up and how high, not whether it is cloudy. Holidays are a set of local dates the
caller provides (no holiday library is a dependency); without them the flag is weekend only.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from forecast.series import ISP, FloatArray


@dataclass(frozen=True, slots=True)
class Site:
    """Where a congestion point is: for the sun and for the local calendar."""

    latitude: float = 52.52
    longitude: float = 13.40
    altitude_m: float = 35.0
    tz: str = "Europe/Berlin"


DEFAULT_SITE = Site()


@dataclass(frozen=True, slots=True, eq=False)
class Calendar:
    """Calendar features of consecutive ISPs, one array entry per ISP."""

    isp_of_day: FloatArray  # 0..95 in local time
    weekday: FloatArray  # 0 = Monday
    day_off: FloatArray  # 1.0 on weekends and holidays
    day_of_year: FloatArray  # 1..366, for the season


def times(start: datetime, count: int, isp: timedelta = ISP) -> pd.DatetimeIndex:
    return pd.date_range(start=start, periods=count, freq=pd.Timedelta(isp), tz="UTC")


def calendar(
    start: datetime,
    count: int,
    *,
    site: Site = DEFAULT_SITE,
    holidays: Collection[date] = (),
    isp: timedelta = ISP,
) -> Calendar:
    local = times(start, count, isp).tz_convert(ZoneInfo(site.tz))
    minutes = local.hour.to_numpy() * 60 + local.minute.to_numpy()
    weekday = local.weekday.to_numpy()
    off = weekday >= 5
    if holidays:
        wanted = np.array(sorted(holidays), dtype="datetime64[D]")
        off |= np.isin(
            local.tz_localize(None).normalize().to_numpy().astype("datetime64[D]"), wanted
        )
    return Calendar(
        isp_of_day=(minutes // int(isp.total_seconds() // 60)).astype(np.float64),
        weekday=weekday.astype(np.float64),
        day_off=off.astype(np.float64),
        day_of_year=local.dayofyear.to_numpy().astype(np.float64),
    )


def clear_sky_ghi(
    start: datetime, count: int, *, site: Site = DEFAULT_SITE, isp: timedelta = ISP
) -> FloatArray:
    """Clear-sky global horizontal irradiance in W/m², the ISP's mean (taken at its middle)."""
    from pvlib.location import Location  # imported late: it is heavy and only needed here

    middle = times(start + isp / 2, count, isp)
    location = Location(site.latitude, site.longitude, altitude=site.altitude_m, tz="UTC")
    ghi: FloatArray = np.asarray(
        location.get_clearsky(middle, model="ineichen")["ghi"].to_numpy(), dtype=np.float64
    )
    return np.nan_to_num(ghi, nan=0.0)


def clear_sky_pv_kw(
    start: datetime,
    count: int,
    *,
    peak_kw: float,
    site: Site = DEFAULT_SITE,
    performance_ratio: float = 0.8,
    isp: timedelta = ISP,
) -> FloatArray:
    """PV output under a clear sky: kWp x GHI / 1000 W/m² x performance ratio.

    A horizontal-plane approximation: good enough to say when PV pushes the net load down,
    which is what a load forecast needs from it.
    """
    ghi = clear_sky_ghi(start, count, site=site, isp=isp)
    return np.asarray(peak_kw * performance_ratio * ghi / 1000.0, dtype=np.float64)
