"""The VEN's shared vocabulary: decisions, active signals, device commands and device telemetry.

Every part of the gateway (session, policy, control, HAN bridge, runner) speaks in these values.
Units are in the names (kW, °C), power is positive when drawn from the grid, datetimes are aware
UTC, durations `timedelta`. Extend additively; never rename.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from oadr.enums import OptType, SignalName, SignalType
from oadr.model import EventId, ItemBase


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What the household answers for one event modification."""

    opt: OptType
    reason: str  # human-readable, logged and shown by `flex4grid ven status`


@dataclass(frozen=True, slots=True, kw_only=True)
class ActiveSignal:
    """One event signal in force now at this VEN."""

    event_id: EventId
    modification_number: int
    signal_name: SignalName
    signal_type: SignalType
    value: float
    item_base: ItemBase | None
    priority: int | None  # lower number wins; None/0 lowest
    until: datetime | None  # end of the current interval (None: open-ended)
    end_device_assets: tuple[str, ...] = ()  # signal-level target, if any
    resource_ids: tuple[str, ...] = ()  # event-level resourceID target, if any


class DeviceKind(StrEnum):
    HEAT_PUMP = "heat_pump"
    EV_CHARGER = "ev_charger"
    BATTERY = "battery"
    PV = "pv"
    BASE_LOAD = "base_load"


CommandKind = Literal["setpoint", "power_limit", "charge", "discharge", "on_off", "release"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceCommand:
    """What a device is told to do (HAN/BMS message)."""

    device_id: str
    kind: CommandKind
    value: (
        float | None
    )  # °C for setpoint, kW for power_limit/charge/discharge (positive), 1/0 on_off
    until: datetime | None
    reason: str  # e.g. "event ev-1 LOAD_DISPATCH setpoint 3.0 kW"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceState:
    """What a device reports (telemetry)."""

    device_id: str
    kind: DeviceKind
    power_kw: float  # positive = drawn from the grid, negative = fed in (PV, battery discharge)
    at: datetime
    online: bool = True
    manual_override: bool = False
    soc: float | None = None  # 0..1 for battery / EV
    temperature_c: float | None = None  # room temperature for heat pump
    setpoint_c: float | None = None
    power_limit_kw: float | None = None
    # Ratings and the occupant's own setting, so a plan never asks more than the device can do and
    # stays anchored when the device reports what it was told (None: not reported; ven.control
    # then counts on no more than the power it sees).
    max_power_kw: float | None = None  # most it draws: heat pump / EV rating, battery charge rate
    max_feed_in_kw: float | None = None  # most it feeds in: battery discharge rate, PV inverter
    capacity_kwh: float | None = None  # usable energy of a battery or EV
    min_setpoint_c: float | None = None  # thermostat range
    max_setpoint_c: float | None = None
    own_setpoint_c: float | None = None  # the occupant's setpoint, before any command
