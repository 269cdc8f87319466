"""The DSO's view before the day: each feeder's load without flexibility, its capacity, its peak.

Pure. The households are simulated ahead of time exactly as they will run, with no commands: a
perfect day-ahead forecast, and the baseline delivery is measured against (the counterfactual a
real DSO estimates; here it is known). Each feeder's capacity is sized so the forecast day
overloads it in the evening (the point of the demo) unless the operator gives one; the window to
ask flexibility for is the run of 15-minute periods around the peak where the forecast is above
capacity, widened: it starts `LEAD` earlier (devices need time to follow) and runs on until the
forecast is down to `SHOULDER` of capacity, so what was held back (EVs, heat pumps recovering
their setpoint) does not rebound onto the peak's shoulder; at most `MAX_WINDOW` long (households
accept events of a few hours).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from flex4grid.demo import scenario
from flex4grid.demo.profiles import STEP, DayProfiles
from flex4grid.demo.scenario import HouseholdSpec
from ven.han import household as homes

SLOTS_PER_DAY = 96
CAPACITY_SHARE = 0.85  # a capacity sized at this share of the forecast peak
LEAD = timedelta(minutes=15)
SHOULDER = 0.75
MAX_WINDOW = timedelta(hours=4)
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class FeederPlan:
    """One feeder: its households, capacity and forecast, and the window flexibility is for."""

    name: str
    households: tuple[str, ...]
    capacity_kw: float
    forecast_kw: tuple[float, ...]  # per STEP from the day's start, SLOTS_PER_DAY of them
    window: tuple[datetime, datetime] | None  # None: the forecast stays within capacity
    start: datetime

    @property
    def peak_kw(self) -> float:
        return max(self.forecast_kw)

    def slot_start(self, index: int) -> datetime:
        return self.start + index * STEP


def household_loads(
    specs: Sequence[HouseholdSpec],
    profiles: DayProfiles,
    warmup: timedelta = timedelta(0),
    slots: int = SLOTS_PER_DAY,
) -> dict[str, tuple[float, ...]]:
    """Each household's net import (kW, mean of each STEP) over the day, with no commands.

    The households start `warmup` before the day, as the pilot's do, so they enter it alike.
    """
    loads: dict[str, tuple[float, ...]] = {}
    per_slot = int(STEP / _MINUTE)
    for spec in specs:
        home = scenario.household(spec, profiles, profiles.start - warmup)
        home = homes.step(home, profiles.start)
        means = []
        for _ in range(slots):
            total = 0.0
            for _minute in range(per_slot):
                home = homes.step(home, home.now + _MINUTE)
                total += homes.net_power_kw(home)
            means.append(total / per_slot)
        loads[spec.name] = tuple(means)
    return loads


def feeder_load(
    loads: Mapping[str, Sequence[float]], names: Sequence[str], slots: int = SLOTS_PER_DAY
) -> tuple[float, ...]:
    return tuple(math.fsum(loads[n][i] for n in names if n in loads) for i in range(slots))


def overload_window(
    forecast_kw: Sequence[float], capacity_kw: float, start: datetime
) -> tuple[datetime, datetime] | None:
    """The periods around the peak where the forecast is above capacity, widened by LEAD and
    until the forecast is under SHOULDER x capacity, within MAX_WINDOW (None: the forecast
    stays within capacity)."""
    peak = max(range(len(forecast_kw)), key=lambda i: forecast_kw[i])
    if forecast_kw[peak] <= capacity_kw:
        return None
    first = last = peak
    while first > 0 and forecast_kw[first - 1] > capacity_kw:
        first -= 1
    while last < len(forecast_kw) - 1 and forecast_kw[last + 1] > capacity_kw:
        last += 1
    tail = last
    while tail < len(forecast_kw) - 1 and forecast_kw[tail + 1] > SHOULDER * capacity_kw:
        tail += 1
    begin = start + first * STEP - LEAD
    end = min(start + (tail + 1) * STEP, begin + MAX_WINDOW)
    return begin, max(end, start + (last + 1) * STEP)


def plan(
    specs: Sequence[HouseholdSpec],
    loads: Mapping[str, Sequence[float]],
    start: datetime,
    capacity_kw: float | None = None,
) -> list[FeederPlan]:
    """Each feeder's plan, feeders in name order."""
    feeders: dict[str, list[str]] = {}
    for spec in specs:
        feeders.setdefault(spec.feeder, []).append(spec.name)
    plans = []
    for name in sorted(feeders):
        forecast = feeder_load(loads, feeders[name])
        capacity = (
            capacity_kw if capacity_kw is not None else math.floor(CAPACITY_SHARE * max(forecast))
        )
        plans.append(
            FeederPlan(
                name=name,
                households=tuple(feeders[name]),
                capacity_kw=float(capacity),
                forecast_kw=forecast,
                window=overload_window(forecast, capacity, start),
                start=start,
            )
        )
    return plans
