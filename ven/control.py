"""Device control: the event signals in force now become commands to the household's devices.

Pure (issue 6, "HAN/BMS bridge": each active event becomes commands to devices). `plan(...)` is
stateless: every call returns the full command set for every device it may command (online, not
under manual override, not off limits; PV and the steerable kinds). Each device's commands start
with `release` (forget what it was told before), followed by at most one command of each kind it
is to obey now; a device with nothing to do gets `release` alone. A runner sends a device's
commands only when they differ from the previous plan's, and plans again when a signal or the
telemetry changes. What each device can give is `ven.policy`'s model (`flexibility`, `allocate`),
so the commands keep to the preferences: never a setpoint outside the comfort band, no EV held
back below its minimum SoC, no battery discharged below its reserve, nothing above a rating.

Signals (OPENADR-2.0b-NOTES.md table) as we read them (README.md, "our readings"):
- SIMPLE level 1: heat pump setpoint -1 °C, EV limited to 50 % of its rating, battery covers the
  load; 2: -2 °C, EV paused, battery at its full rate; 3: heat pump to the comfort minimum, EV
  paused, battery at its full rate; 0: nothing.
- LOAD_DISPATCH setpoint: a cap on net import at the grid connection (kW; negative: export at
  least that); delta: a change from the baseline (negative reduces, positive is soaked up by
  charging battery then EV); multiplier: a fraction of the baseline. A reduction is split in
  merit order: battery, then EV power limit, then heat pump power limit. level: not acted on.
- LOAD_CONTROL x-loadControlCapacity c: heat pump and EV limited to c x their rating;
  x-loadControlPercentOffset p < 0 the same with c = 1 + p; x-loadControlLevelOffset n > 0 sheds
  like SIMPLE min(n, 3), n < 0 charges battery and EV (unverified: positive offset = more shed).
- ELECTRICITY_PRICE / ENERGY_PRICE: above the household's threshold like SIMPLE 1; below its low
  threshold charge battery and EV; below zero also curtail PV.
- CHARGE_STATE setpoint (energy) / multiplier (fraction of capacity): batteries and EVs charge or
  discharge towards that SoC, then hold. delta is not acted on: it needs the SoC at the start,
  which a stateless plan does not keep.
- Overlapping signals: each asks per device and command kind, the strictest ask wins (lowest
  setpoint and power limit, highest discharge), and shedding beats charging on one device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from oadr.enums import SignalName, SignalType
from ven.model import ActiveSignal, CommandKind, DeviceCommand, DeviceKind, DeviceState
from ven.policy import (
    MERIT,
    Preferences,
    allocate,
    charge_cap_kw,
    controllable,
    discharge_cap_kw,
    dispatch_reduction_kw,
    ev_may_shed,
    flexibilities,
    in_kilo,
    price_per_kwh,
    rating_kw,
    signal_devices,
)

_HOUR = timedelta(hours=1)
_EPS_KW = 1e-6
_SOC_TOLERANCE = 0.01  # CHARGE_STATE: close enough to the target to hold
_ORDER: tuple[CommandKind, ...] = ("setpoint", "power_limit", "charge", "discharge")


@dataclass(frozen=True, slots=True)
class _Ask:
    """What one signal asks of one device."""

    device_id: str
    kind: CommandKind
    value: float
    until: datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class _Context:
    signal: ActiveSignal
    devices: tuple[DeviceState, ...]  # targeted and controllable
    household: Sequence[DeviceState]
    preferences: Preferences
    now: datetime

    @property
    def hours(self) -> float | None:
        """Hours left in the signal's interval; None when open-ended."""
        until = self.signal.until
        return None if until is None else max(0.0, (until - self.now) / _HOUR)

    @property
    def kilo(self) -> float:
        item = self.signal.item_base
        units, scale = (item.units, item.scale) if item is not None else (None, None)
        return in_kilo(self.signal.value, units, scale)

    def ask(self, device: DeviceState, kind: CommandKind, value: float, what: str) -> _Ask:
        s = self.signal
        shown = f"{s.value:g}"
        if s.signal_type in (SignalType.SETPOINT, SignalType.DELTA):  # power or energy
            unit = "kWh" if s.signal_name == SignalName.CHARGE_STATE else "kW"
            shown = f"{self.kilo:g} {unit}"
        reason = f"event {s.event_id} {s.signal_name} {s.signal_type} {shown}: {what}"
        return _Ask(device.device_id, kind, value, s.until, reason)


def _of(ctx: _Context, *kinds: DeviceKind) -> list[DeviceState]:
    chosen = [d for d in ctx.devices if d.kind in kinds]
    return sorted(chosen, key=lambda d: (MERIT.get(d.kind, 9), d.device_id))


# --- shedding and soaking up ----------------------------------------------------------------------


def _setpoint_c(pump: DeviceState, preferences: Preferences, level: int) -> float | None:
    """The lowered setpoint for a shed level; None when it would not lower anything."""
    low, high = preferences.comfort_min_c, preferences.comfort_max_c
    if pump.min_setpoint_c is not None:
        low = max(low, pump.min_setpoint_c)
    if pump.max_setpoint_c is not None:
        high = min(high, pump.max_setpoint_c)
    own = pump.own_setpoint_c if pump.own_setpoint_c is not None else pump.setpoint_c
    if low > high or (own is None and level < 3):
        return None  # band and device range disjoint, or nothing to lower from
    target = low if level >= 3 or own is None else own - level
    target = min(max(target, low), high)
    return None if own is not None and target >= own else target


def _shed(ctx: _Context, level: int) -> list[_Ask]:
    """SIMPLE-style shedding at level 1..3."""
    if level <= 0:
        return []
    asks = []
    prefs = ctx.preferences
    for pump in _of(ctx, DeviceKind.HEAT_PUMP):
        setpoint = _setpoint_c(pump, prefs, level)
        if setpoint is not None:
            asks.append(ctx.ask(pump, "setpoint", setpoint, f"setpoint {setpoint:g} °C"))
    for ev in _of(ctx, DeviceKind.EV_CHARGER):
        rating = rating_kw(ev)
        if ev_may_shed(ev, prefs) and (level >= 2 or rating is not None):
            limit = 0.5 * rating if level == 1 and rating is not None else 0.0
            asks.append(ctx.ask(ev, "power_limit", limit, f"charge at most {limit:g} kW"))
    load_kw = sum(d.power_kw for d in ctx.household if d.kind != DeviceKind.BATTERY)
    for battery in _of(ctx, DeviceKind.BATTERY):
        cap = discharge_cap_kw(battery, prefs, ctx.hours)
        value = min(cap, max(0.0, load_kw)) if level == 1 else cap
        if value > _EPS_KW:
            asks.append(ctx.ask(battery, "discharge", value, f"discharge {value:g} kW"))
    return asks


def _absorb(ctx: _Context, amount_kw: float | None) -> list[_Ask]:
    """Charge batteries, then EVs, at their rate (up to `amount_kw` in all when given)."""
    asks = []
    remaining = math.inf if amount_kw is None else amount_kw
    for device in _of(ctx, DeviceKind.BATTERY, DeviceKind.EV_CHARGER):
        value = min(charge_cap_kw(device), remaining)
        if value > _EPS_KW:
            asks.append(ctx.ask(device, "charge", value, f"charge {value:g} kW"))
            remaining -= value
    return asks


def _capacity(ctx: _Context, fraction: float) -> list[_Ask]:
    """Heat pump and EV limited to `fraction` of their rating, within the preferences."""
    if fraction >= 1.0:
        return []
    loads = _of(ctx, DeviceKind.EV_CHARGER, DeviceKind.HEAT_PUMP)
    asks = []
    for flex in flexibilities(loads, ctx.preferences, ctx.hours):
        limit = max(flex.least_kw, max(0.0, fraction) * flex.most_kw)
        if flex.most_kw - limit > _EPS_KW:
            asks.append(ctx.ask(flex.device, "power_limit", limit, f"draw at most {limit:g} kW"))
    return asks


# --- one handler per signal name ------------------------------------------------------------------


def _simple(ctx: _Context) -> list[_Ask]:
    return _shed(ctx, round(ctx.signal.value)) if ctx.signal.signal_type == SignalType.LEVEL else []


def _dispatch(ctx: _Context) -> list[_Ask]:
    signal_type = ctx.signal.signal_type
    value = ctx.signal.value if signal_type == SignalType.MULTIPLIER else ctx.kilo
    if signal_type == SignalType.DELTA and value > 0:
        return _absorb(ctx, value)
    flexes = flexibilities(_of(ctx, *MERIT), ctx.preferences, ctx.hours)
    reduction = dispatch_reduction_kw(signal_type, value, ctx.household, flexes)
    if reduction is None or reduction <= _EPS_KW:
        return []
    asks = []
    for flex, give in allocate(reduction, flexes):
        if flex.device.kind == DeviceKind.BATTERY:  # stop charging first, then feed in
            out = max(0.0, give - flex.most_kw)
            asks.append(ctx.ask(flex.device, "discharge", out, f"discharge {out:g} kW"))
        else:
            limit = flex.most_kw - give
            asks.append(ctx.ask(flex.device, "power_limit", limit, f"draw at most {limit:g} kW"))
    return asks


def _load_control(ctx: _Context) -> list[_Ask]:
    signal_type, value = ctx.signal.signal_type, ctx.signal.value
    if signal_type == SignalType.LOAD_CONTROL_CAPACITY:
        return _capacity(ctx, value)
    if signal_type == SignalType.LOAD_CONTROL_PERCENT_OFFSET and value < 0:
        return _capacity(ctx, 1.0 + value)
    if signal_type == SignalType.LOAD_CONTROL_LEVEL_OFFSET:
        return _shed(ctx, min(round(value), 3)) if value > 0 else _absorb(ctx, None)
    return []


def _price(ctx: _Context) -> list[_Ask]:
    prefs = ctx.preferences
    price = price_per_kwh(ctx.signal.signal_type, ctx.signal.value, prefs)
    if price is None:
        return []
    if price > prefs.price_threshold_per_kwh:
        return _shed(ctx, 1)
    asks = []
    if prefs.low_price_per_kwh is not None and price < prefs.low_price_per_kwh:
        asks += _absorb(ctx, None)
    if price < 0:  # feeding in costs money
        asks += [
            ctx.ask(pv, "power_limit", 0.0, "feed in nothing") for pv in _of(ctx, DeviceKind.PV)
        ]
    return asks


def _target_soc(ctx: _Context, device: DeviceState) -> float | None:
    if ctx.signal.signal_type == SignalType.MULTIPLIER:
        return ctx.signal.value
    if ctx.signal.signal_type == SignalType.SETPOINT and device.capacity_kwh:
        return ctx.kilo / device.capacity_kwh
    return None


def _charge_state(ctx: _Context) -> list[_Ask]:
    prefs = ctx.preferences
    asks = []
    for device in _of(ctx, DeviceKind.BATTERY, DeviceKind.EV_CHARGER):
        target, soc = _target_soc(ctx, device), device.soc
        if target is None or soc is None:
            continue
        if device.kind == DeviceKind.BATTERY:
            target = min(max(target, prefs.battery_reserve_soc), 1.0)
        if soc < target - _SOC_TOLERANCE:
            rate = charge_cap_kw(device)
            if rate > _EPS_KW:
                asks.append(
                    ctx.ask(device, "charge", rate, f"charge {rate:g} kW to SoC {target:.0%}")
                )
        elif device.kind == DeviceKind.EV_CHARGER:
            if ev_may_shed(device, prefs):
                asks.append(ctx.ask(device, "power_limit", 0.0, f"hold at SoC {target:.0%}"))
        elif soc > target + _SOC_TOLERANCE:
            rate = discharge_cap_kw(device, prefs, ctx.hours)
            if device.capacity_kwh and ctx.hours:  # no faster than reaching the target
                rate = min(rate, (soc - target) * device.capacity_kwh / ctx.hours)
            if rate > _EPS_KW:
                asks.append(
                    ctx.ask(device, "discharge", rate, f"discharge {rate:g} kW to SoC {target:.0%}")
                )
        else:
            asks.append(ctx.ask(device, "charge", 0.0, f"hold at SoC {target:.0%}"))
    return asks


_HANDLERS: dict[SignalName, Callable[[_Context], list[_Ask]]] = {
    SignalName.SIMPLE: _simple,
    SignalName.SIMPLE_LOWER: _simple,
    SignalName.LOAD_DISPATCH: _dispatch,
    SignalName.LOAD_CONTROL: _load_control,
    SignalName.ELECTRICITY_PRICE: _price,
    SignalName.ENERGY_PRICE: _price,
    SignalName.CHARGE_STATE: _charge_state,
}


# --- the plan -------------------------------------------------------------------------------------


def _strictness(ask: _Ask) -> tuple[float, float, str]:
    """Sort key: strictest first; ties to the earlier end, then by reason (deterministic)."""
    strict = -ask.value if ask.kind in ("discharge", "charge") else ask.value
    ends = math.inf if ask.until is None else ask.until.timestamp()
    return (strict, ends, ask.reason)


def _merge(asks: Sequence[_Ask]) -> dict[str, dict[CommandKind, _Ask]]:
    chosen: dict[str, dict[CommandKind, _Ask]] = {}
    for ask in sorted(asks, key=_strictness):
        chosen.setdefault(ask.device_id, {}).setdefault(ask.kind, ask)
    for kinds in chosen.values():
        if "discharge" in kinds or "power_limit" in kinds:
            kinds.pop("charge", None)  # shedding beats charging on one device
    return chosen


def plan(
    signals: Sequence[ActiveSignal],
    household: Sequence[DeviceState],
    preferences: Preferences,
    now: datetime,
) -> tuple[DeviceCommand, ...]:
    """Every controllable device's full command set for now: `release`, then what it obeys."""
    asks: list[_Ask] = []
    for signal in signals:
        handler = _HANDLERS.get(signal.signal_name)
        if handler is not None:
            devices = signal_devices(signal, household, preferences)
            asks += handler(_Context(signal, devices, household, preferences, now))
    chosen = _merge(asks)
    commands: list[DeviceCommand] = []
    for device in household:
        if not controllable(device, preferences):
            continue
        kinds = chosen.get(device.device_id, {})
        reason = "replaced by this plan" if kinds else "no event signal asks anything of it"
        commands.append(
            DeviceCommand(
                device_id=device.device_id, kind="release", value=None, until=None, reason=reason
            )
        )
        for kind in _ORDER:
            if (ask := kinds.get(kind)) is not None:
                commands.append(
                    DeviceCommand(
                        device_id=device.device_id,
                        kind=kind,
                        value=ask.value,
                        until=ask.until,
                        reason=ask.reason,
                    )
                )
    return tuple(commands)
