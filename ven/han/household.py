"""A simulated household: its devices, the world around them, and its grid connection.

Pure, like `devices`: the environment (outdoor temperature, irradiance, base-load profile, noise)
comes from functions of time the caller passes in — simple deterministic ones in tests,
pvlib/demandlib in the demo — and `step(household, now)` advances everything to `now`.
Net power at the grid connection is the sum of the devices' power (positive = import).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from ven.han import devices
from ven.han.devices import (
    BaseLoad,
    Battery,
    CommandRejected,
    Device,
    Environment,
    EvCharger,
    HeatPump,
    PvInverter,
)
from ven.model import DeviceCommand, DeviceState

TimeFunction = Callable[[datetime], float]


def no_noise(at: datetime) -> float:
    return 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvironmentSource:
    """The world as functions of time; each must be pure (same instant, same value)."""

    outdoor_temperature_c: TimeFunction
    irradiance_w_per_m2: TimeFunction
    base_load_kw: TimeFunction
    base_load_noise_kw: TimeFunction = no_noise  # the caller's seeded draw for each instant

    def at(self, at: datetime) -> Environment:
        return Environment(
            at=at,
            outdoor_temperature_c=self.outdoor_temperature_c(at),
            irradiance_w_per_m2=self.irradiance_w_per_m2(at),
            base_load_kw=self.base_load_kw(at),
            base_load_noise_kw=self.base_load_noise_kw(at),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Household:
    devices: tuple[Device, ...]
    source: EnvironmentSource
    now: datetime  # the instant the devices' state describes
    # Thermostats and self-consumption react once per step: keep steps short enough for them.
    max_step: timedelta = field(default=timedelta(minutes=1))

    def __post_init__(self) -> None:
        ids = [d.device_id for d in self.devices]
        if len(set(ids)) != len(ids):
            raise ValueError(f"device ids must be unique: {ids}")
        if self.now.tzinfo is None:
            raise ValueError("Household.now must be an aware datetime")
        if self.max_step <= timedelta(0):
            raise ValueError("max_step must be positive")


def device(household: Household, device_id: str) -> Device:
    for candidate in household.devices:
        if candidate.device_id == device_id:
            return candidate
    raise CommandRejected(f"no device {device_id!r} in this household")


def send(household: Household, command: DeviceCommand) -> Household:
    """Hand `command` to its device; raises CommandRejected if there is none or it refuses."""
    target = device(household, command.device_id)
    updated = devices.apply(target, command)
    return replace(
        household,
        devices=tuple(updated if d is target else d for d in household.devices),
    )


def step(household: Household, now: datetime) -> Household:
    """The household at `now`, stepped in strides of at most `max_step`.

    Strides also end where a device's behaviour switches (a command's `until`, an EV leaving),
    so those take effect on time whatever the stride.
    """
    if now < household.now:
        raise ValueError(f"cannot step back from {household.now} to {now}")
    t, state = household.now, household.devices
    while t < now:
        switches = (s for d in state for s in devices.changes_at(d) if t < s < now)
        end = min(t + household.max_step, now, *switches)
        state = _stride(state, household.source.at(t), end - t)
        t = end
    return replace(household, devices=state, now=now)


def _stride(state: tuple[Device, ...], env: Environment, dt: timedelta) -> tuple[Device, ...]:
    # Batteries go last: in self-consumption they answer what everything else draws or feeds in.
    stepped: list[Device | None] = [
        None if isinstance(d, Battery) else devices.step(d, dt, env) for d in state
    ]
    site_net_kw = math.fsum(d.power_kw for d in stepped if d is not None)
    for index, d in enumerate(state):
        if isinstance(d, Battery):
            battery = devices.step(d, dt, replace(env, site_net_kw=site_net_kw))
            site_net_kw += battery.power_kw
            stepped[index] = battery
    return tuple(d for d in stepped if d is not None)


def net_power_kw(household: Household) -> float:
    """Power at the grid connection over the last step: positive imports, negative exports."""
    return math.fsum(d.power_kw for d in household.devices)


def telemetry(household: Household) -> tuple[DeviceState, ...]:
    return tuple(devices.telemetry(d, household.now) for d in household.devices)


def typical(now: datetime, source: EnvironmentSource) -> Household:
    """One of each device with default parameters; the EV plugged in from `now` for 12 hours."""
    return Household(
        devices=(
            HeatPump(device_id="heat-pump"),
            EvCharger(
                device_id="ev-charger",
                soc=0.3,
                arrival=now,
                departure=now + timedelta(hours=12),
            ),
            Battery(device_id="battery"),
            PvInverter(device_id="pv"),
            BaseLoad(device_id="base-load"),
        ),
        source=source,
        now=now,
    )


def synthetic_source(
    *,
    mean_temperature_c: float = 5.0,
    peak_irradiance_w_per_m2: float = 800.0,
    base_load_kw: float = 0.5,
) -> EnvironmentSource:
    """A deterministic stand-in for weather and load profiles (UTC, no seasons, no clouds).

    Temperature swings ±4 K around the mean, warmest at 15:00; the sun is up 06:00–18:00 with a
    sine-shaped irradiance; the load has morning and evening peaks of about 1.5 kW on top.
    """

    def hour(at: datetime) -> float:
        return at.hour + at.minute / 60 + at.second / 3600

    def temperature(at: datetime) -> float:
        return mean_temperature_c + 4.0 * math.cos((hour(at) - 15.0) / 24.0 * 2 * math.pi)

    def irradiance(at: datetime) -> float:
        return peak_irradiance_w_per_m2 * max(0.0, math.sin((hour(at) - 6.0) / 12.0 * math.pi))

    def load(at: datetime) -> float:
        peaks = (7.5, 19.0)
        bumps = sum(math.exp(-(((hour(at) - p) / 1.2) ** 2)) for p in peaks)
        return base_load_kw + 1.5 * bumps

    return EnvironmentSource(
        outdoor_temperature_c=temperature, irradiance_w_per_m2=irradiance, base_load_kw=load
    )
