"""The simulated day's world: household load (BDEW H0), clear-sky PV, outdoor temperature.

Built once per run from well-kept libraries of the field: `demandlib`'s BDEW standard load
profile H0 (German households; 15-minute means, holidays and the dynamic winter/summer factor
included) gives each household's base load, scaled to its annual consumption; `pvlib` gives the
clear-sky irradiance on a tilted, south-facing array at the site (Ineichen model with the site's
Linke turbidity). Outdoor temperature is a daily cycle around the site's monthly normal (no
weather data is needed offline): coldest at dawn, warmest mid-afternoon.

The profiles are plain tuples sampled at a fixed step; `DayProfiles` turns them into the
functions of time `ven.han.household.EnvironmentSource` takes, so the simulated devices stay pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

STEP = timedelta(minutes=15)  # BDEW profiles are 15-minute means
H0_ANNUAL_KWH = 1000.0  # the profile is scaled to this; a household multiplies by kWh/a / 1000


@dataclass(frozen=True, slots=True)
class Site:
    """Where the pilot is: location, time zone, a typical PV array, and the climate."""

    name: str
    latitude: float
    longitude: float
    altitude_m: float
    timezone: str
    monthly_mean_c: tuple[float, ...]  # January..December, 2 m air temperature normals
    daily_swing_k: float = 4.0  # half the day's max - min
    tilt_deg: float = 35.0
    azimuth_deg: float = 180.0  # south

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


# Ljubljana (ARSO climate normals 1991-2020, rounded).
LJUBLJANA = Site(
    name="Ljubljana",
    latitude=46.0569,
    longitude=14.5058,
    altitude_m=295.0,
    timezone="Europe/Ljubljana",
    monthly_mean_c=(0.3, 2.0, 6.4, 11.0, 15.6, 19.4, 21.4, 20.8, 15.9, 11.1, 5.8, 1.2),
)


@dataclass(frozen=True, slots=True)
class DayProfiles:
    """The site's series from `start` (aware) every `STEP`, covering the day and a margin."""

    site: Site
    start: datetime
    h0_kw: tuple[float, ...]  # BDEW H0 mean power for H0_ANNUAL_KWH a year
    irradiance_w_per_m2: tuple[float, ...]  # clear-sky, on the array plane

    def slot(self, at: datetime) -> int:
        """The index of the STEP-long period holding `at` (clamped to the series)."""
        index = int((at - self.start) / STEP)
        return min(max(index, 0), len(self.h0_kw) - 1)

    def h0_at(self, at: datetime) -> float:
        """H0 power for 1000 kWh/a: a 15-minute mean, so held over its period."""
        return self.h0_kw[self.slot(at)]

    def irradiance_at(self, at: datetime) -> float:
        """Clear-sky plane-of-array irradiance, interpolated between mid-period samples."""
        return _interpolate(self.irradiance_w_per_m2, self.start + STEP / 2, at)

    def temperature_at(self, at: datetime) -> float:
        local = at.astimezone(self.site.zone)
        mean = self.site.monthly_mean_c[local.month - 1]
        hour = local.hour + local.minute / 60 + local.second / 3600
        # Warmest at 15:00, coldest at 03:00: a cosine is close enough for a heat pump's load.
        return mean + self.site.daily_swing_k * math.cos((hour - 15.0) / 24.0 * 2 * math.pi)


def _interpolate(series: tuple[float, ...], start: datetime, at: datetime) -> float:
    position = (at - start) / STEP
    if position <= 0:
        return series[0]
    if position >= len(series) - 1:
        return series[-1]
    low = int(position)
    fraction = position - low
    return series[low] * (1 - fraction) + series[low + 1] * fraction


def day_start(site: Site, day: date) -> datetime:
    """Local midnight of `day` at the site, as an aware datetime."""
    return datetime.combine(day, time(0), tzinfo=site.zone)


def build(site: Site, day: date, days: int = 2) -> DayProfiles:
    """The profiles for `days` days from local midnight of `day` (the demo needs a margin)."""
    import pandas as pd  # heavy: only the demo needs them, and only here
    import pvlib
    from demandlib import bdew

    start = day_start(site, day)
    times = pd.date_range(start, periods=days * 96, freq="15min")
    h0: list[float] = []
    for year in sorted({t.year for t in times}):
        profile = bdew.ElecSlp(year).get_scaled_power_profiles({"h0": H0_ANNUAL_KWH})["h0"]
        naive = times.tz_localize(None)
        wanted = naive[naive.year == year]
        h0 += [float(v) for v in profile.reindex(wanted).to_numpy()]
    location = pvlib.location.Location(
        site.latitude, site.longitude, tz=site.timezone, altitude=site.altitude_m, name=site.name
    )
    # Mid-period positions: the irradiance series stands for each period's middle.
    middle = times + pd.Timedelta(minutes=7.5)
    clear = location.get_clearsky(middle)
    sun = location.get_solarposition(middle)
    plane = pvlib.irradiance.get_total_irradiance(
        site.tilt_deg, site.azimuth_deg, sun["apparent_zenith"], sun["azimuth"],
        clear["dni"], clear["ghi"], clear["dhi"],
    )  # fmt: skip
    irradiance = [max(0.0, float(v)) for v in plane["poa_global"].fillna(0.0).to_numpy()]
    return DayProfiles(
        site=site,
        start=start,
        h0_kw=tuple(h0),
        irradiance_w_per_m2=tuple(irradiance),
    )
