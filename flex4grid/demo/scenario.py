"""The pilot's households: who has which device, how big, when the car comes home, what they accept.

Pure and seeded: `households(count, feeders, seed, site)` draws every household the same way for
the same seed, so a run can be repeated and its no-flexibility forecast is exact. The shares and
sizes are typical of a suburban Central European feeder in the late 2020s (an assumption, not a
survey): most houses heat with a heat pump, about a third charge an EV at home (3.7 to 11 kW
wallboxes, cars home between 16:30 and 19:30), some have PV and a home battery. Preferences vary
so the household policy (`ven.policy`) gives different answers: some accept only short events,
some keep quiet hours in the evening, EV and comfort limits differ.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from flex4grid.demo.profiles import DayProfiles, Site
from ven.han.devices import (
    BaseLoad,
    BaseLoadParams,
    Battery,
    BatteryParams,
    Device,
    EvCharger,
    EvChargerParams,
    HeatPump,
    HeatPumpParams,
    PvInverter,
    PvParams,
)
from ven.han.household import EnvironmentSource, Household
from ven.policy import Preferences, QuietWindow

SHARE_HEAT_PUMP = 0.7
SHARE_EV = 0.4
SHARE_PV = 0.5
SHARE_BATTERY = 0.3  # of the houses with PV
SHARE_QUIET_EVENINGS = 0.08
MAX_SHIFT_HOURS = ((1, 0.05), (2, 0.1), (3, 0.25), (4, 0.35), (6, 0.25))  # event length, weights
NOISE_SIGMA_KW = 0.08  # per 15 minutes, on top of the H0 profile


@dataclass(frozen=True, slots=True)
class EvSpec:
    arrival: datetime
    departure: datetime
    soc: float
    target_soc: float
    battery_kwh: float
    max_power_kw: float


@dataclass(frozen=True, slots=True)
class HouseholdSpec:
    name: str  # the VEN's name, e.g. house-007
    feeder: str  # the feeder (VTN group) it is connected to, e.g. feeder-1
    annual_kwh: float
    heat_pump_kw: float | None  # electrical rating
    heat_loss_kw_per_k: float
    setpoint_c: float
    room_c: float  # at the start of the day
    pv_kwp: float | None
    battery_kwh: float | None
    battery_soc: float
    ev: EvSpec | None
    preferences: Preferences
    noise_kw: tuple[float, ...]  # per profile slot: what H0 does not say about this house


def feeder_name(index: int) -> str:
    return f"feeder-{index + 1}"


def households(count: int, feeders: int, seed: int, profiles: DayProfiles) -> list[HouseholdSpec]:
    """`count` households spread evenly over `feeders` feeders; the same seed, the same pilot."""
    rng = random.Random(seed)
    return [_draw(rng, i, feeder_name(i % feeders), profiles) for i in range(count)]


def _local(profiles: DayProfiles, hours: float) -> datetime:
    return profiles.start + timedelta(hours=hours)


def _draw(rng: random.Random, index: int, feeder: str, profiles: DayProfiles) -> HouseholdSpec:
    site: Site = profiles.site
    ev = None
    if rng.random() < SHARE_EV:
        arrival = _local(profiles, min(max(rng.gauss(17.75, 0.8), 16.5), 19.5))
        ev = EvSpec(
            arrival=arrival,
            departure=_local(profiles, 24 + rng.uniform(6.5, 8.0)),
            soc=rng.uniform(0.35, 0.65),
            target_soc=rng.choice((0.8, 0.85, 0.9)),
            battery_kwh=rng.choice((40.0, 58.0, 64.0, 77.0)),
            max_power_kw=rng.choice((3.7, 7.4, 7.4, 11.0, 11.0)),
        )
    pv = rng.uniform(4.0, 10.0) if rng.random() < SHARE_PV else None
    battery = (
        rng.choice((5.0, 10.0, 13.5)) if pv is not None and rng.random() < SHARE_BATTERY else None
    )
    heat_pump = rng.choice((2.0, 2.5, 3.0, 3.5)) if rng.random() < SHARE_HEAT_PUMP else None
    setpoint = rng.choice((20.0, 20.5, 21.0, 21.5, 22.0))
    hours = rng.choices([h for h, _ in MAX_SHIFT_HOURS], [w for _, w in MAX_SHIFT_HOURS])[0]
    quiet: tuple[QuietWindow, ...] = ()
    if rng.random() < SHARE_QUIET_EVENINGS:
        quiet = (QuietWindow(start=time(17, 30), end=time(20, 0)),)
    preferences = Preferences(
        comfort_min_c=setpoint - rng.choice((1.5, 2.0, 2.5, 3.0)),
        comfort_max_c=setpoint + 2.0,
        max_shift=timedelta(hours=hours),
        ev_min_soc=rng.choice((0.2, 0.3, 0.4)),
        battery_reserve_soc=rng.choice((0.1, 0.2, 0.3)),
        do_not_disturb=quiet,
        timezone=site.zone,
    )
    return HouseholdSpec(
        name=f"house-{index + 1:03d}",
        feeder=feeder,
        annual_kwh=rng.uniform(2500.0, 5500.0),
        heat_pump_kw=heat_pump,
        heat_loss_kw_per_k=rng.uniform(0.12, 0.25),
        setpoint_c=setpoint,
        room_c=setpoint + rng.uniform(-0.5, 0.5),
        pv_kwp=pv,
        battery_kwh=battery,
        battery_soc=rng.uniform(0.3, 0.7),
        ev=ev,
        preferences=preferences,
        noise_kw=tuple(rng.gauss(0.0, NOISE_SIGMA_KW) for _ in profiles.h0_kw),
    )


def environment(spec: HouseholdSpec, profiles: DayProfiles) -> EnvironmentSource:
    """The world around one household: the site's profiles plus its own noise."""

    def noise(at: datetime) -> float:
        return spec.noise_kw[profiles.slot(at)]

    return EnvironmentSource(
        outdoor_temperature_c=profiles.temperature_at,
        irradiance_w_per_m2=profiles.irradiance_at,
        base_load_kw=profiles.h0_at,
        base_load_noise_kw=noise,
    )


def household(spec: HouseholdSpec, profiles: DayProfiles, now: datetime) -> Household:
    """The simulated household of `spec` as it is at `now`."""
    devices: list[Device] = [
        BaseLoad(device_id="base-load", params=BaseLoadParams(scale=spec.annual_kwh / 1000.0))
    ]
    if spec.heat_pump_kw is not None:
        devices.append(
            HeatPump(
                device_id="heat-pump",
                params=HeatPumpParams(
                    max_power_kw=spec.heat_pump_kw, heat_loss_kw_per_k=spec.heat_loss_kw_per_k
                ),
                room_temperature_c=spec.room_c,
                setpoint_c=spec.setpoint_c,
            )
        )
    if spec.ev is not None:
        ev = spec.ev
        devices.append(
            EvCharger(
                device_id="ev-charger",
                params=EvChargerParams(max_power_kw=ev.max_power_kw, battery_kwh=ev.battery_kwh),
                soc=ev.soc,
                target_soc=ev.target_soc,
                arrival=ev.arrival,
                departure=ev.departure,
            )
        )
    if spec.pv_kwp is not None:
        inverter_kw = round(spec.pv_kwp / 1.2, 1)
        devices.append(
            PvInverter(
                device_id="pv", params=PvParams(peak_kw=spec.pv_kwp, inverter_max_kw=inverter_kw)
            )
        )
    if spec.battery_kwh is not None:
        rate_kw = min(5.0, spec.battery_kwh / 2)
        devices.append(
            Battery(
                device_id="battery",
                params=BatteryParams(
                    capacity_kwh=spec.battery_kwh, max_charge_kw=rate_kw, max_discharge_kw=rate_kw
                ),
                soc=spec.battery_soc,
            )
        )
    return Household(devices=tuple(devices), source=environment(spec, profiles), now=now)


__all__ = ["EvSpec", "HouseholdSpec", "environment", "household", "households"]
