"""Simulated household devices: physics as pure step functions, commands obeyed within limits.

A device is a frozen state. `step(device, dt, environment)` advances its physics over `dt` with
the commands in force at `environment.at`; `apply(device, command)` hands it a `DeviceCommand`;
`telemetry(device, at)` reports it as a `DeviceState`. There is no clock, randomness or I/O here:
time, weather and noise come in as arguments, so a test can run a day of device time in
milliseconds. Power is in kW, positive when drawn from the grid, negative when fed in, and is the
average over the last step (what a meter would show).

Commands: a device keeps at most one command of each kind (`charge` and `discharge` replace each
other); `release` drops them all and hands the device back to its autonomous behaviour; a command
stops applying at its `until` by itself. While the occupant holds a manual override, commands are
kept but not obeyed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import ClassVar, TypeVar, overload

from ven.model import CommandKind, DeviceCommand, DeviceKind, DeviceState

_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    """What the world around the devices is during one step, sampled at its start `at`."""

    at: datetime
    outdoor_temperature_c: float = 10.0
    irradiance_w_per_m2: float = 0.0  # on the array plane (clear-sky value × cloudiness)
    base_load_kw: float = 0.0  # the household's load profile value now
    base_load_noise_kw: float = 0.0  # a random draw made by the caller, never here
    site_net_kw: float = 0.0  # net power of every other device (what self-consumption sees)


class CommandRejected(ValueError):
    """The device cannot take this command: another device, a kind it lacks, a bad value."""


# --- parameters (realistic defaults for a detached house) ---------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HeatPumpParams:
    max_power_kw: float = 3.0  # electrical; × COP 3 = 9 kW thermal
    cop: float = 3.0
    heat_loss_kw_per_k: float = 0.2  # UA: 4 kW lost at 20 K between room and outside
    thermal_capacity_kwh_per_k: float = 8.0  # time constant C/UA = 40 h
    hysteresis_k: float = 0.5  # thermostat switches on below setpoint-h, off above setpoint+h
    min_setpoint_c: float = 5.0  # frost protection: no command may go lower
    max_setpoint_c: float = 28.0


@dataclass(frozen=True, slots=True, kw_only=True)
class EvChargerParams:
    max_power_kw: float = 11.0  # three-phase 16 A wallbox
    battery_kwh: float = 60.0
    efficiency: float = 0.92  # AC drawn -> energy stored


@dataclass(frozen=True, slots=True, kw_only=True)
class BatteryParams:
    capacity_kwh: float = 10.0  # usable
    max_charge_kw: float = 5.0
    max_discharge_kw: float = 5.0
    round_trip_efficiency: float = 0.9  # split evenly: sqrt on the way in, sqrt on the way out
    min_soc: float = 0.0
    max_soc: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PvParams:
    peak_kw: float = 6.0  # kWp of the array
    efficiency: float = 0.85  # performance ratio: temperature, wiring, inverter losses
    inverter_max_kw: float = 5.0  # AC rating; a 1.2 DC/AC ratio is usual


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseLoadParams:
    scale: float = 1.0  # multiplies the profile value (a profile normalised to this household)
    min_kw: float = 0.05  # standby never goes away


# --- device states ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HeatPump:
    """Air-source heat pump heating a house (first-order thermal model, on/off thermostat)."""

    kind: ClassVar[DeviceKind] = DeviceKind.HEAT_PUMP
    accepts: ClassVar[frozenset[CommandKind]] = frozenset({"setpoint", "power_limit", "on_off"})

    device_id: str
    params: HeatPumpParams = field(default_factory=HeatPumpParams)
    room_temperature_c: float = 20.0
    setpoint_c: float = 21.0  # the occupant's own; a setpoint command overrides it for a while
    heating: bool = False  # the thermostat's memory (hysteresis)
    power_kw: float = 0.0
    commands: tuple[DeviceCommand, ...] = ()
    manual_override: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class EvCharger:
    """A wallbox and the car plugged into it between `arrival` and `departure`."""

    kind: ClassVar[DeviceKind] = DeviceKind.EV_CHARGER
    accepts: ClassVar[frozenset[CommandKind]] = frozenset({"power_limit", "on_off", "charge"})

    device_id: str
    params: EvChargerParams = field(default_factory=EvChargerParams)
    soc: float = 0.5
    target_soc: float = 0.8  # the driver's wish: charge at once until here
    arrival: datetime | None = None  # None: no car
    departure: datetime | None = None  # None: stays plugged in
    power_kw: float = 0.0
    commands: tuple[DeviceCommand, ...] = ()
    manual_override: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Battery:
    """Home battery; self-consumption (soak up PV surplus, cover load) unless commanded."""

    kind: ClassVar[DeviceKind] = DeviceKind.BATTERY
    accepts: ClassVar[frozenset[CommandKind]] = frozenset(
        {"charge", "discharge", "power_limit", "on_off"}
    )

    device_id: str
    params: BatteryParams = field(default_factory=BatteryParams)
    soc: float = 0.5
    power_kw: float = 0.0
    commands: tuple[DeviceCommand, ...] = ()
    manual_override: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PvInverter:
    """Rooftop PV behind an inverter that can be curtailed."""

    kind: ClassVar[DeviceKind] = DeviceKind.PV
    accepts: ClassVar[frozenset[CommandKind]] = frozenset({"power_limit", "on_off"})

    device_id: str
    params: PvParams = field(default_factory=PvParams)
    available_kw: float = 0.0  # what the sun offered during the last step, curtailed or not
    power_kw: float = 0.0
    commands: tuple[DeviceCommand, ...] = ()
    manual_override: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseLoad:
    """Everything else in the house: lights, cooking, appliances. Not controllable."""

    kind: ClassVar[DeviceKind] = DeviceKind.BASE_LOAD
    accepts: ClassVar[frozenset[CommandKind]] = frozenset()

    device_id: str
    params: BaseLoadParams = field(default_factory=BaseLoadParams)
    power_kw: float = 0.0
    commands: tuple[DeviceCommand, ...] = ()
    manual_override: bool = False


Device = HeatPump | EvCharger | Battery | PvInverter | BaseLoad
D = TypeVar("D", bound=Device)


# --- commands -----------------------------------------------------------------------------------

_NEEDS_VALUE: frozenset[CommandKind] = frozenset(
    {"setpoint", "power_limit", "charge", "discharge", "on_off"}
)
_EXCLUSIVE: dict[CommandKind, frozenset[CommandKind]] = {
    "charge": frozenset({"charge", "discharge"}),
    "discharge": frozenset({"charge", "discharge"}),
}


def apply(device: D, command: DeviceCommand) -> D:
    """Take `command`; raises CommandRejected when this device cannot obey it."""
    if command.device_id != device.device_id:
        raise CommandRejected(f"command for {command.device_id!r} sent to {device.device_id!r}")
    if command.kind == "release":
        return replace(device, commands=())
    if command.kind not in device.accepts:
        raise CommandRejected(f"a {device.kind} does not take {command.kind!r} commands")
    value = command.value
    if command.kind in _NEEDS_VALUE and (value is None or not math.isfinite(value)):
        raise CommandRejected(f"{command.kind!r} needs a finite value, got {value!r}")
    if command.kind in {"power_limit", "charge", "discharge"} and value is not None and value < 0:
        raise CommandRejected(f"{command.kind!r} takes a non-negative kW value, got {value}")
    if command.kind == "on_off" and value not in (0.0, 1.0):
        raise CommandRejected(f"'on_off' takes 1 or 0, got {value!r}")
    superseded = _EXCLUSIVE.get(command.kind, frozenset({command.kind}))
    kept = tuple(c for c in device.commands if c.kind not in superseded)
    return replace(device, commands=(*kept, command))


def set_manual_override(device: D, on: bool) -> D:
    """The occupant takes the device over (or hands it back); commands wait meanwhile."""
    return replace(device, manual_override=on)


def in_force(device: Device, at: datetime) -> tuple[DeviceCommand, ...]:
    """The commands the device obeys at `at`: none under manual override, none past `until`."""
    if device.manual_override:
        return ()
    return tuple(c for c in device.commands if c.until is None or c.until > at)


def _value(commands: tuple[DeviceCommand, ...], kind: CommandKind) -> float | None:
    return next((c.value for c in commands if c.kind == kind), None)


def _cap_kw(commands: tuple[DeviceCommand, ...]) -> float:
    """The most a device may draw or feed in: its power limit, zero when switched off."""
    if _value(commands, "on_off") == 0.0:
        return 0.0
    limit = _value(commands, "power_limit")
    return math.inf if limit is None else limit


def _still_pending(device: Device, at: datetime) -> tuple[DeviceCommand, ...]:
    # Drop expired commands from the state; unlike in_force() this keeps them under override.
    return tuple(c for c in device.commands if c.until is None or c.until > at)


# --- physics ------------------------------------------------------------------------------------


def effective_setpoint_c(pump: HeatPump, at: datetime) -> float:
    commanded = _value(in_force(pump, at), "setpoint")
    wanted = pump.setpoint_c if commanded is None else commanded
    return min(max(wanted, pump.params.min_setpoint_c), pump.params.max_setpoint_c)


def _step_heat_pump(pump: HeatPump, dt: timedelta, env: Environment) -> HeatPump:
    p = pump.params
    setpoint = effective_setpoint_c(pump, env.at)
    room = pump.room_temperature_c
    heating = room < setpoint - p.hysteresis_k or (
        pump.heating and room < setpoint + p.hysteresis_k
    )
    power_kw = min(p.max_power_kw if heating else 0.0, _cap_kw(in_force(pump, env.at)))
    # C·dT/dt = COP·P − UA·(T − T_out) has an exact solution for constant P: relax towards the
    # equilibrium temperature with time constant C/UA. Exact, so any dt is stable.
    equilibrium_c = env.outdoor_temperature_c + p.cop * power_kw / p.heat_loss_kw_per_k
    decay = math.exp(-(dt / _HOUR) * p.heat_loss_kw_per_k / p.thermal_capacity_kwh_per_k)
    return replace(
        pump,
        room_temperature_c=equilibrium_c + (room - equilibrium_c) * decay,
        heating=heating,
        power_kw=power_kw,
        commands=_still_pending(pump, env.at),
    )


def plugged_in(ev: EvCharger, at: datetime) -> bool:
    arrived = ev.arrival is not None and ev.arrival <= at
    return arrived and (ev.departure is None or at < ev.departure)


def _step_ev(ev: EvCharger, dt: timedelta, env: Environment) -> EvCharger:
    p = ev.params
    commands = in_force(ev, env.at)
    energy_kwh = 0.0
    if plugged_in(ev, env.at) and dt > timedelta(0):
        commanded = _value(commands, "charge")
        ceiling = 1.0 if commanded is not None else ev.target_soc
        wanted_kw = p.max_power_kw if commanded is None else min(commanded, p.max_power_kw)
        wanted_kw = min(wanted_kw, _cap_kw(commands))
        charging = dt if ev.departure is None else min(dt, ev.departure - env.at)
        room_kwh = max(0.0, ceiling - ev.soc) * p.battery_kwh / p.efficiency
        energy_kwh = min(wanted_kw * (charging / _HOUR), room_kwh)  # drawn from the grid
    return replace(
        ev,
        soc=min(1.0, ev.soc + energy_kwh * p.efficiency / p.battery_kwh),
        power_kw=energy_kwh / (dt / _HOUR) if dt > timedelta(0) else 0.0,
        commands=_still_pending(ev, env.at),
    )


def _step_battery(battery: Battery, dt: timedelta, env: Environment) -> Battery:
    p = battery.params
    commands = in_force(battery, env.at)
    charge, discharge = _value(commands, "charge"), _value(commands, "discharge")
    if charge is not None:
        wanted_kw = charge
    elif discharge is not None:
        wanted_kw = -discharge
    else:
        wanted_kw = -env.site_net_kw  # self-consumption: push the grid connection towards zero
    cap = _cap_kw(commands)
    power_kw = min(max(wanted_kw, -p.max_discharge_kw, -cap), p.max_charge_kw, cap)
    one_way = math.sqrt(p.round_trip_efficiency)
    hours = dt / _HOUR
    if hours > 0:  # the state of charge stays within its limits: less power rather than overshoot
        stored_room_kwh = max(0.0, p.max_soc - battery.soc) * p.capacity_kwh
        stored_left_kwh = max(0.0, battery.soc - p.min_soc) * p.capacity_kwh
        power_kw = min(power_kw, stored_room_kwh / one_way / hours)
        power_kw = max(power_kw, -stored_left_kwh * one_way / hours)
    stored_kwh = power_kw * hours * one_way if power_kw > 0 else power_kw * hours / one_way
    soc = battery.soc + stored_kwh / p.capacity_kwh
    return replace(
        battery,
        soc=min(max(soc, p.min_soc), p.max_soc),
        power_kw=power_kw + 0.0,  # no -0.0 in telemetry
        commands=_still_pending(battery, env.at),
    )


def _step_pv(pv: PvInverter, dt: timedelta, env: Environment) -> PvInverter:
    p = pv.params
    available_kw = max(0.0, env.irradiance_w_per_m2 / 1000.0 * p.peak_kw * p.efficiency)
    available_kw = min(available_kw, p.inverter_max_kw)
    fed_kw = min(available_kw, _cap_kw(in_force(pv, env.at)))
    return replace(
        pv,
        available_kw=available_kw,
        power_kw=-fed_kw if fed_kw > 0 else 0.0,
        commands=_still_pending(pv, env.at),
    )


def _step_base_load(load: BaseLoad, dt: timedelta, env: Environment) -> BaseLoad:
    p = load.params
    power_kw = max(p.min_kw, p.scale * env.base_load_kw + env.base_load_noise_kw)
    return replace(load, power_kw=power_kw, commands=_still_pending(load, env.at))


@overload
def step(device: HeatPump, dt: timedelta, environment: Environment) -> HeatPump: ...
@overload
def step(device: EvCharger, dt: timedelta, environment: Environment) -> EvCharger: ...
@overload
def step(device: Battery, dt: timedelta, environment: Environment) -> Battery: ...
@overload
def step(device: PvInverter, dt: timedelta, environment: Environment) -> PvInverter: ...
@overload
def step(device: BaseLoad, dt: timedelta, environment: Environment) -> BaseLoad: ...
@overload
def step(device: Device, dt: timedelta, environment: Environment) -> Device: ...
def step(device: Device, dt: timedelta, environment: Environment) -> Device:
    """The device after `dt` from `environment.at`, obeying the commands in force then."""
    if dt < timedelta(0):
        raise ValueError(f"cannot step back in time ({dt})")
    if isinstance(device, HeatPump):
        return _step_heat_pump(device, dt, environment)
    if isinstance(device, EvCharger):
        return _step_ev(device, dt, environment)
    if isinstance(device, Battery):
        return _step_battery(device, dt, environment)
    if isinstance(device, PvInverter):
        return _step_pv(device, dt, environment)
    return _step_base_load(device, dt, environment)


def telemetry(device: Device, at: datetime) -> DeviceState:
    """What the device reports at `at`: its last step's power and what it is obeying now."""
    commands = in_force(device, at)
    limit = _value(commands, "power_limit")
    if _value(commands, "on_off") == 0.0:
        limit = 0.0
    state = DeviceState(
        device_id=device.device_id,
        kind=device.kind,
        power_kw=device.power_kw,
        at=at,
        manual_override=device.manual_override,
        power_limit_kw=limit,
    )
    # Ratings go out with every reading, so the VEN's planner knows what each device can give.
    if isinstance(device, HeatPump):
        return replace(
            state,
            temperature_c=device.room_temperature_c,
            setpoint_c=effective_setpoint_c(device, at),
            own_setpoint_c=device.setpoint_c,
            max_power_kw=device.params.max_power_kw,
            min_setpoint_c=device.params.min_setpoint_c,
            max_setpoint_c=device.params.max_setpoint_c,
        )
    if isinstance(device, EvCharger):
        return replace(
            state,
            soc=device.soc,
            max_power_kw=device.params.max_power_kw,
            capacity_kwh=device.params.battery_kwh,
        )
    if isinstance(device, Battery):
        return replace(
            state,
            soc=device.soc,
            max_power_kw=device.params.max_charge_kw,
            max_feed_in_kw=device.params.max_discharge_kw,
            capacity_kwh=device.params.capacity_kwh,
        )
    if isinstance(device, PvInverter):
        return replace(state, max_feed_in_kw=device.params.inverter_max_kw)
    return state


def changes_at(device: Device) -> tuple[datetime, ...]:
    """Instants where the device's behaviour switches: command expiries, EV arrival/departure.

    A caller stepping in large strides splits its steps here so these take effect on time.
    """
    instants = [c.until for c in device.commands if c.until is not None]
    if isinstance(device, EvCharger):
        instants += [t for t in (device.arrival, device.departure) if t is not None]
    return tuple(instants)
