"""Signals in force -> device commands (ven.control)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oadr.enums import ItemKind, SignalName, SignalType
from oadr.model import EventId, ItemBase
from tests.factories import base_load, battery, ev, heat_pump, pv
from ven.control import plan
from ven.model import ActiveSignal, DeviceCommand, DeviceKind, DeviceState
from ven.policy import Preferences

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
UNTIL = NOW + HOUR
KW = ItemBase(kind=ItemKind.POWER_REAL, description="RealPower", units="W", scale="k")
KWH = ItemBase(kind=ItemKind.ENERGY_REAL, description="RealEnergy", units="Wh", scale="k")


# net import now 11.5 kW; left alone (heat pump at its 3 kW rating) 12.5 kW
HOUSEHOLD = (heat_pump(), ev(), battery(), pv(), base_load())


def active(
    name: SignalName,
    kind: SignalType,
    value: float,
    item_base: ItemBase | None = None,
    **changes: Any,
) -> ActiveSignal:
    signal = ActiveSignal(
        event_id=EventId("e-1"),
        modification_number=0,
        signal_name=name,
        signal_type=kind,
        value=value,
        item_base=item_base,
        priority=None,
        until=UNTIL,
    )
    return replace(signal, **changes)


def simple(level: int, **changes: Any) -> ActiveSignal:
    return active(SignalName.SIMPLE, SignalType.LEVEL, level, **changes)


def dispatch(value: float, kind: SignalType = SignalType.SETPOINT, **changes: Any) -> ActiveSignal:
    return active(SignalName.LOAD_DISPATCH, kind, value, **{"item_base": KW, **changes})


def load_control(kind: SignalType, value: float) -> ActiveSignal:
    return active(SignalName.LOAD_CONTROL, kind, value)


def price(value: float, kind: SignalType = SignalType.PRICE) -> ActiveSignal:
    return active(SignalName.ELECTRICITY_PRICE, kind, value)


def charge_state(value: float, kind: SignalType = SignalType.SETPOINT) -> ActiveSignal:
    return active(
        SignalName.CHARGE_STATE, kind, value, KWH if kind == SignalType.SETPOINT else None
    )


Wanted = dict[str, dict[str, float]]


def wanted(commands: tuple[DeviceCommand, ...]) -> Wanted:
    """{device: {kind: value}} past the leading release, checking the plan's shape on the way."""
    found: Wanted = {}
    for command in commands:
        if command.kind == "release":
            assert command.device_id not in found, "release comes once, first"
            found[command.device_id] = {}
        else:
            kinds = found[command.device_id]  # KeyError: a command without a release before it
            assert command.kind not in kinds, "at most one command of each kind"
            assert command.value is not None
            kinds[command.kind] = round(command.value, 6)
    return found


RELEASED: Wanted = {"hp": {}, "ev": {}, "bat": {}, "pv": {}}


def released(**devices: dict[str, float]) -> Wanted:
    return {**RELEASED, **devices}


# --- one signal at a time -------------------------------------------------------------------------

CASES: list[tuple[str, list[ActiveSignal], dict[str, Any], tuple[DeviceState, ...], Wanted]] = [
    ("no-signals-release-everything", [], {}, HOUSEHOLD, RELEASED),
    ("simple-0-is-normal", [simple(0)], {}, HOUSEHOLD, RELEASED),
    ("simple-1", [simple(1)], {}, HOUSEHOLD,
     released(hp={"setpoint": 20.0}, ev={"power_limit": 5.5}, bat={"discharge": 5.0})),
    ("simple-1-battery-covers-only-the-load", [simple(1)], {},
     (heat_pump(power_kw=0.0), battery(), pv(power_kw=-0.3), base_load()),
     {"hp": {"setpoint": 20.0}, "bat": {"discharge": 0.2}, "pv": {}}),
    ("simple-1-nothing-to-cover", [simple(1)], {},
     (heat_pump(power_kw=0.0), battery(), pv(), base_load()),
     {"hp": {"setpoint": 20.0}, "bat": {}, "pv": {}}),
    ("simple-2", [simple(2)], {}, HOUSEHOLD,
     released(hp={"setpoint": 19.0}, ev={"power_limit": 0.0}, bat={"discharge": 5.0})),
    ("simple-3-to-the-minimum", [simple(3)], {"comfort_min_c": 18.0}, HOUSEHOLD,
     released(hp={"setpoint": 18.0}, ev={"power_limit": 0.0}, bat={"discharge": 5.0})),
    ("simple-lower-case-2.0a-name", [active(SignalName.SIMPLE_LOWER, SignalType.LEVEL, 2)], {},
     HOUSEHOLD, released(hp={"setpoint": 19.0}, ev={"power_limit": 0.0}, bat={"discharge": 5.0})),
    ("setpoint-stops-at-comfort-min", [simple(2)], {"comfort_min_c": 19.5}, HOUSEHOLD,
     released(hp={"setpoint": 19.5}, ev={"power_limit": 0.0}, bat={"discharge": 5.0})),
    ("setpoint-stops-at-device-min", [simple(3)], {}, (heat_pump(min_setpoint_c=20.0),),
     {"hp": {"setpoint": 20.0}}),
    ("setpoint-never-raised-to-shed", [simple(1)], {}, (heat_pump(own_setpoint_c=18.5),),
     {"hp": {}}),
    ("setpoint-anchored-on-the-occupants-own", [simple(1)], {},
     (heat_pump(setpoint_c=20.0, own_setpoint_c=21.0),), {"hp": {"setpoint": 20.0}}),
    ("setpoint-without-own-uses-the-reported", [simple(1)], {},
     (heat_pump(setpoint_c=22.0, own_setpoint_c=None),), {"hp": {"setpoint": 21.0}}),
    ("ev-below-its-minimum-charges-on", [simple(2)], {}, (ev(soc=0.4),), {"ev": {}}),
    ("ev-without-rating-not-halved", [simple(1)], {},  # 7 kW may be a limit of ours already
     (ev(max_power_kw=None, power_kw=7.0),), {"ev": {}}),
    ("ev-without-rating-still-paused", [simple(2)], {},
     (ev(max_power_kw=None, power_kw=7.0),), {"ev": {"power_limit": 0.0}}),
    ("dispatch-counts-unrated-devices-as-they-draw", [dispatch(3.0)], {},
     (heat_pump(max_power_kw=None), ev(max_power_kw=None), battery(), pv(), base_load()),
     released(bat={"discharge": 5.0})),
    ("battery-at-reserve-keeps-it", [simple(2)], {}, (battery(soc=0.2),), {"bat": {}}),
    ("battery-discharge-lasts-until-the-interval-ends",  # 1 kWh above reserve over 30 min
     [simple(2, until=NOW + HOUR / 2)], {}, (battery(soc=0.3),), {"bat": {"discharge": 2.0}}),
    ("battery-open-ended-signal-full-rate", [simple(2, until=None)], {}, (battery(soc=0.3),),
     {"bat": {"discharge": 5.0}}),
    # LOAD_DISPATCH: reduction from the 12.5 kW baseline, battery first, then EV, then heat pump
    ("dispatch-battery-alone", [dispatch(10.0)], {}, HOUSEHOLD,
     released(bat={"discharge": 2.5})),
    ("dispatch-battery-then-ev", [dispatch(3.0)], {}, HOUSEHOLD,
     released(bat={"discharge": 5.0}, ev={"power_limit": 6.5})),
    ("dispatch-heat-pump-last", [dispatch(-5.0)], {}, HOUSEHOLD,
     released(bat={"discharge": 5.0}, ev={"power_limit": 0.0}, hp={"power_limit": 1.5})),
    ("dispatch-everything-and-still-short", [dispatch(-20.0)], {}, HOUSEHOLD,
     released(bat={"discharge": 5.0}, ev={"power_limit": 0.0}, hp={"power_limit": 0.0})),
    ("dispatch-cap-already-met", [dispatch(15.0)], {}, HOUSEHOLD, RELEASED),
    ("dispatch-in-watts", [dispatch(3000.0, item_base=replace(KW, scale="none"))], {},
     HOUSEHOLD, released(bat={"discharge": 5.0}, ev={"power_limit": 6.5})),
    ("dispatch-delta-reduces", [dispatch(-2.0, SignalType.DELTA)], {}, HOUSEHOLD,
     released(bat={"discharge": 2.0})),
    ("dispatch-delta-increases", [dispatch(3.0, SignalType.DELTA)], {}, HOUSEHOLD,
     released(bat={"charge": 3.0})),
    ("dispatch-multiplier", [dispatch(0.5, SignalType.MULTIPLIER)], {}, HOUSEHOLD,
     released(bat={"discharge": 5.0}, ev={"power_limit": 9.75})),
    ("dispatch-level-not-acted-on", [dispatch(-3, SignalType.LEVEL)], {}, HOUSEHOLD, RELEASED),
    ("dispatch-skips-a-cold-room", [dispatch(-5.0)], {},
     (heat_pump(temperature_c=19.0), ev(), battery(), pv(), base_load()),
     released(bat={"discharge": 5.0}, ev={"power_limit": 0.0})),
    ("dispatch-charging-battery-stops-first", [dispatch(13.0)], {},  # 14.5 kW left alone
     (heat_pump(), ev(), battery(power_kw=2.0), pv(), base_load()),
     released(bat={"discharge": 0.0})),
    ("dispatch-charging-battery-then-feeds-in", [dispatch(12.0)], {},
     (heat_pump(), ev(), battery(power_kw=2.0), pv(), base_load()),
     released(bat={"discharge": 0.5})),
    # LOAD_CONTROL
    ("capacity-half", [load_control(SignalType.LOAD_CONTROL_CAPACITY, 0.5)], {}, HOUSEHOLD,
     released(hp={"power_limit": 1.5}, ev={"power_limit": 5.5})),
    ("capacity-zero-but-cold-room", [load_control(SignalType.LOAD_CONTROL_CAPACITY, 0.0)], {},
     (heat_pump(temperature_c=18.0), ev()), {"hp": {}, "ev": {"power_limit": 0.0}}),
    ("capacity-full-is-normal", [load_control(SignalType.LOAD_CONTROL_CAPACITY, 1.0)], {},
     HOUSEHOLD, RELEASED),
    ("percent-offset-down", [load_control(SignalType.LOAD_CONTROL_PERCENT_OFFSET, -0.25)], {},
     HOUSEHOLD, released(hp={"power_limit": 2.25}, ev={"power_limit": 8.25})),
    ("level-offset-up-sheds", [load_control(SignalType.LOAD_CONTROL_LEVEL_OFFSET, 2)], {},
     HOUSEHOLD, released(hp={"setpoint": 19.0}, ev={"power_limit": 0.0}, bat={"discharge": 5.0})),
    ("level-offset-down-charges", [load_control(SignalType.LOAD_CONTROL_LEVEL_OFFSET, -1)], {},
     HOUSEHOLD, released(bat={"charge": 5.0}, ev={"charge": 11.0})),
    # prices (threshold 0.30, tariff 0.25)
    ("price-high-sheds-like-simple-1", [price(0.45)], {}, HOUSEHOLD,
     released(hp={"setpoint": 20.0}, ev={"power_limit": 5.5}, bat={"discharge": 5.0})),
    ("price-ordinary", [price(0.2)], {"low_price_per_kwh": Decimal("0.1")}, HOUSEHOLD, RELEASED),
    ("price-cheap-charges", [price(0.05)], {"low_price_per_kwh": Decimal("0.1")}, HOUSEHOLD,
     released(bat={"charge": 5.0}, ev={"charge": 11.0})),
    ("price-negative-curtails-pv", [price(-0.02)], {"low_price_per_kwh": Decimal("0.1")},
     HOUSEHOLD, released(bat={"charge": 5.0}, ev={"charge": 11.0}, pv={"power_limit": 0.0})),
    ("price-relative", [price(0.1, SignalType.PRICE_RELATIVE)], {}, HOUSEHOLD,
     released(hp={"setpoint": 20.0}, ev={"power_limit": 5.5}, bat={"discharge": 5.0})),
    ("price-full-battery-not-charged", [price(0.05)], {"low_price_per_kwh": Decimal("0.1")},
     (battery(soc=1.0),), {"bat": {}}),
    # CHARGE_STATE: battery 10 kWh at 80 %, EV 60 kWh at 60 %
    ("charge-state-energy-up", [charge_state(9.0)], {}, (battery(), ev()),
     {"bat": {"charge": 5.0}, "ev": {"power_limit": 0.0}}),
    ("charge-state-fraction-down", [charge_state(0.5, SignalType.MULTIPLIER)], {},
     (battery(), ev()), {"bat": {"discharge": 3.0}, "ev": {"power_limit": 0.0}}),
    ("charge-state-ev-up", [charge_state(0.9, SignalType.MULTIPLIER)], {}, (ev(),),
     {"ev": {"charge": 11.0}}),
    ("charge-state-never-under-reserve", [charge_state(0.0, SignalType.MULTIPLIER)], {},
     (battery(soc=0.2),), {"bat": {"charge": 0.0}}),
    ("charge-state-hold-at-target", [charge_state(8.0)], {}, (battery(),),
     {"bat": {"charge": 0.0}}),
    ("charge-state-delta-not-acted-on", [charge_state(2.0, SignalType.DELTA)], {},
     (battery(),), {"bat": {}}),
    # targeting
    ("asset-names-a-device", [simple(2, end_device_assets=("ev",))], {}, HOUSEHOLD,
     released(ev={"power_limit": 0.0})),
    ("asset-names-a-class", [simple(2, end_device_assets=("Thermostat",))], {}, HOUSEHOLD,
     released(hp={"setpoint": 19.0})),
    ("asset-names-the-whole-site", [simple(2, end_device_assets=("Energy_Management_System",))],
     {}, HOUSEHOLD,
     released(hp={"setpoint": 19.0}, ev={"power_limit": 0.0}, bat={"discharge": 5.0})),
    ("asset-names-nothing-here", [simple(2, end_device_assets=("Pool_Pump",))], {}, HOUSEHOLD,
     RELEASED),
    ("resource-names-a-device", [simple(2, resource_ids=("bat",))], {}, HOUSEHOLD,
     released(bat={"discharge": 5.0})),
    ("resource-names-the-site", [simple(2, resource_ids=("house-1",))], {}, HOUSEHOLD,
     released(hp={"setpoint": 19.0}, ev={"power_limit": 0.0}, bat={"discharge": 5.0})),
    ("dispatch-targeted-at-the-ev-counts-the-rest-as-fixed",  # the rest draws 0.5 kW now
     [dispatch(3.0, end_device_assets=("ev",))], {}, HOUSEHOLD,
     released(ev={"power_limit": 2.5})),
    # devices that may not be commanded get nothing at all
    ("untouchable-devices", [simple(2)], {"untouchable": frozenset({"hp", "bat"})}, HOUSEHOLD,
     {"ev": {"power_limit": 0.0}, "pv": {}}),
    ("offline-and-overridden-devices", [simple(2)], {},
     (heat_pump(online=False), ev(manual_override=True), battery(), base_load()),
     {"bat": {"discharge": 5.0}}),
    ("untouchable-in-the-merit-order", [dispatch(-1.0)], {"untouchable": frozenset({"bat"})},
     HOUSEHOLD, {"hp": {"power_limit": 0.5}, "ev": {"power_limit": 0.0}, "pv": {}}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("signals", "changes", "household", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in CASES],
)
def test_plan_turns_signals_into_commands(
    signals: list[ActiveSignal],
    changes: dict[str, Any],
    household: tuple[DeviceState, ...],
    expected: Wanted,
) -> None:
    commands = plan(signals, household, replace(Preferences(), **changes), NOW)
    assert wanted(commands) == expected


# --- overlapping signals --------------------------------------------------------------------------

OVERLAPS: list[tuple[str, list[ActiveSignal], Wanted]] = [
    ("strictest-limit-wins", [simple(1), dispatch(3.0)],
     released(hp={"setpoint": 20.0}, ev={"power_limit": 5.5}, bat={"discharge": 5.0})),
    ("strictest-limit-wins-other-way", [simple(1), dispatch(-5.0)],
     released(hp={"setpoint": 20.0, "power_limit": 1.5}, ev={"power_limit": 0.0},
              bat={"discharge": 5.0})),
    ("lowest-setpoint-wins", [simple(1), load_control(SignalType.LOAD_CONTROL_LEVEL_OFFSET, 2)],
     released(hp={"setpoint": 19.0}, ev={"power_limit": 0.0}, bat={"discharge": 5.0})),
    ("shedding-beats-charging", [simple(2), load_control(SignalType.LOAD_CONTROL_LEVEL_OFFSET, -1)],
     released(hp={"setpoint": 19.0}, ev={"power_limit": 0.0}, bat={"discharge": 5.0})),
    ("different-devices-different-signals",
     [simple(2, end_device_assets=("hp",)), dispatch(10.0, end_device_assets=("bat",))],
     released(hp={"setpoint": 19.0}, bat={"discharge": 1.5})),
]  # fmt: skip


@pytest.mark.parametrize(
    ("signals", "expected"), [pytest.param(*row[1:], id=row[0]) for row in OVERLAPS]
)
def test_overlapping_signals_combine_strictest_first(
    signals: list[ActiveSignal], expected: Wanted
) -> None:
    assert wanted(plan(signals, HOUSEHOLD, Preferences(), NOW)) == expected
    assert wanted(plan(signals[::-1], HOUSEHOLD, Preferences(), NOW)) == expected


def test_a_command_carries_its_signals_end_and_names_event_and_signal() -> None:
    later = dispatch(10.0, event_id=EventId("e-2"), until=NOW + 3 * HOUR)
    commands = plan([later, simple(1)], HOUSEHOLD, Preferences(), NOW)
    by_kind = {(c.device_id, c.kind): c for c in commands}
    assert by_kind["ev", "power_limit"].until == UNTIL  # SIMPLE 1's 5.5 kW is the stricter
    assert by_kind["ev", "power_limit"].reason == "event e-1 SIMPLE level 1: charge at most 5.5 kW"
    assert by_kind["hp", "release"].until is None


def test_equal_asks_go_to_the_one_ending_first() -> None:
    household = (battery(capacity_kwh=100.0), ev())
    later = simple(2, event_id=EventId("e-2"), until=NOW + 3 * HOUR)
    commands = plan([later, simple(2)], household, Preferences(), NOW)
    chosen = {(c.device_id, c.kind): (c.value, c.until, c.reason[:9]) for c in commands}
    assert chosen["bat", "discharge"] == (5.0, UNTIL, "event e-1")
    assert chosen["ev", "power_limit"] == (0.0, UNTIL, "event e-1")


def test_dispatch_reason_names_the_setpoint_in_kw() -> None:
    commands = plan([dispatch(3000.0, item_base=replace(KW, scale="none"))], HOUSEHOLD,
                    Preferences(), NOW)  # fmt: skip
    reasons = {c.reason for c in commands if c.kind != "release"}
    assert reasons == {
        "event e-1 LOAD_DISPATCH setpoint 3 kW: discharge 5 kW",
        "event e-1 LOAD_DISPATCH setpoint 3 kW: draw at most 6.5 kW",
    }


def test_charge_state_reason_names_the_energy_in_kwh() -> None:
    commands = plan([charge_state(9.0)], (battery(),), Preferences(), NOW)
    assert commands[1].reason == "event e-1 CHARGE_STATE setpoint 9 kWh: charge 5 kW to SoC 90%"


def test_a_plan_is_stable_once_obeyed() -> None:
    """Planning again on the telemetry the plan produced gives the same plan (no drift)."""
    first = plan([simple(1), dispatch(3.0)], HOUSEHOLD, Preferences(), NOW)
    obeyed = (
        heat_pump(setpoint_c=20.0, power_kw=0.0),  # reports the commanded setpoint
        ev(power_kw=5.5, power_limit_kw=5.5),
        battery(power_kw=-5.0),
        pv(),
        base_load(),
    )
    again = plan([simple(1), dispatch(3.0)], obeyed, Preferences(), NOW + timedelta(minutes=1))
    assert wanted(again) == wanted(first)


# --- the promises, for any household, preferences and signals -------------------------------------

KINDS = list(DeviceKind)
MOSTLY = st.sampled_from([True] * 9 + [False])  # most devices are there to be commanded


def often(values: st.SearchStrategy[float]) -> st.SearchStrategy[float | None]:
    """A value three times in four, else None (not reported)."""
    return st.sampled_from([True, True, True, False]).flatmap(
        lambda present: values if present else st.none()
    )


@st.composite
def devices(draw: st.DrawFn, index: int) -> DeviceState:
    low = draw(st.floats(5.0, 20.0))
    return DeviceState(
        device_id=f"d{index}",
        kind=draw(st.sampled_from(KINDS)),
        power_kw=draw(st.floats(-10.0, 15.0)),
        at=NOW,
        online=draw(MOSTLY),
        manual_override=not draw(MOSTLY),
        soc=draw(often(st.floats(0.0, 1.0) | st.sampled_from([0.0, 0.2, 0.5, 1.0]))),
        temperature_c=draw(often(st.floats(10.0, 26.0))),
        setpoint_c=draw(often(st.floats(10.0, 26.0))),
        own_setpoint_c=draw(often(st.floats(10.0, 26.0))),
        max_power_kw=draw(often(st.floats(0.0, 20.0))),
        max_feed_in_kw=draw(often(st.floats(0.0, 20.0))),
        capacity_kwh=draw(often(st.floats(1.0, 100.0))),
        min_setpoint_c=draw(often(st.just(low))),
        max_setpoint_c=draw(often(st.floats(low + 0.5, 30.0))),
    )


@st.composite
def households(draw: st.DrawFn) -> tuple[DeviceState, ...]:
    size = draw(st.integers(0, 7))
    return tuple(draw(devices(i)) for i in range(size))


@st.composite
def preferences(draw: st.DrawFn, ids: list[str]) -> Preferences:
    low = draw(st.floats(15.0, 21.0))
    threshold = draw(st.decimals("0.05", "0.6", places=2))
    return Preferences(
        comfort_min_c=low,
        comfort_max_c=draw(st.floats(low + 0.5, 25.0)),
        untouchable=frozenset(draw(st.lists(st.sampled_from(ids), max_size=2)) if ids else []),
        ev_min_soc=draw(st.floats(0.0, 1.0)),
        battery_reserve_soc=draw(st.floats(0.0, 1.0)),
        price_threshold_per_kwh=threshold,
        low_price_per_kwh=draw(st.none() | st.decimals("-0.1", threshold - Decimal("0.01"),
                                                       places=2)),
    )  # fmt: skip


SIGNAL_KINDS = [
    (SignalName.SIMPLE, SignalType.LEVEL, st.integers(0, 3).map(float)),
    (SignalName.LOAD_DISPATCH, SignalType.SETPOINT, st.floats(-20.0, 20.0)),
    (SignalName.LOAD_DISPATCH, SignalType.DELTA, st.floats(-20.0, 20.0)),
    (SignalName.LOAD_DISPATCH, SignalType.MULTIPLIER, st.floats(0.0, 2.0)),
    (SignalName.LOAD_DISPATCH, SignalType.LEVEL, st.integers(-10, 10).map(float)),
    (SignalName.LOAD_CONTROL, SignalType.LOAD_CONTROL_CAPACITY, st.floats(0.0, 1.0)),
    (SignalName.LOAD_CONTROL, SignalType.LOAD_CONTROL_PERCENT_OFFSET, st.floats(-1.0, 1.0)),
    (SignalName.LOAD_CONTROL, SignalType.LOAD_CONTROL_LEVEL_OFFSET,
     st.sampled_from([-3.0, -1.0, 1.0, 2.0, 5.0])),
    (SignalName.ELECTRICITY_PRICE, SignalType.PRICE, st.floats(-0.5, 1.0)),
    (SignalName.ENERGY_PRICE, SignalType.PRICE_RELATIVE, st.floats(-0.5, 1.0)),
    (SignalName.CHARGE_STATE, SignalType.SETPOINT, st.floats(0.0, 100.0)),
    (SignalName.CHARGE_STATE, SignalType.MULTIPLIER, st.floats(0.0, 1.0)),
]  # fmt: skip


@st.composite
def signals(draw: st.DrawFn, ids: list[str]) -> ActiveSignal:
    name, kind, values = draw(st.sampled_from(SIGNAL_KINDS))
    names = st.sampled_from([*ids, "Thermostat", "Pool_Pump"])
    no_target: st.SearchStrategy[list[str]] = st.just([])
    targets = no_target | st.lists(names, max_size=2) if ids else no_target
    return ActiveSignal(
        event_id=EventId(draw(st.sampled_from(["e-1", "e-2"]))),
        modification_number=0,
        signal_name=name,
        signal_type=kind,
        value=draw(values),
        item_base=None,
        priority=draw(st.none() | st.integers(0, 3)),
        until=draw(st.none() | st.integers(1, 240).map(lambda m: NOW + timedelta(minutes=m))),
        end_device_assets=tuple(draw(targets)),
    )


@st.composite
def situations(draw: st.DrawFn) -> tuple[list[ActiveSignal], tuple[DeviceState, ...], Preferences]:
    household = draw(households())
    ids = [d.device_id for d in household]
    return draw(st.lists(signals(ids), max_size=4)), household, draw(preferences(ids))


def _violations(
    commands: tuple[DeviceCommand, ...], household: tuple[DeviceState, ...], prefs: Preferences
) -> list[str]:
    by_id = {d.device_id: d for d in household}
    found = []
    for c in commands:
        d = by_id[c.device_id]
        label = f"{c.kind} {c.value} for {d}"
        if d.device_id in prefs.untouchable or not d.online or d.manual_override:
            found.append(f"commanded a device that may not be commanded: {label}")
        if c.kind == "release":
            continue
        if c.value is None or not math.isfinite(c.value) or c.value < 0:
            found.append(f"not a finite non-negative value: {label}")
            continue
        if c.kind == "setpoint":
            if d.kind != DeviceKind.HEAT_PUMP:
                found.append(f"setpoint for a non heat pump: {label}")
            lowest = -math.inf if d.min_setpoint_c is None else d.min_setpoint_c
            highest = math.inf if d.max_setpoint_c is None else d.max_setpoint_c
            inside_device = lowest <= c.value <= highest
            inside_band = prefs.comfort_min_c <= c.value <= prefs.comfort_max_c
            if not (inside_device and inside_band):
                found.append(f"setpoint outside the band or the device's range: {label}")
        rating = d.max_power_kw
        if c.kind in ("power_limit", "charge") and rating is not None and c.value > rating + 1e-9:
            found.append(f"above the device's rating: {label}")
        if c.kind == "power_limit":
            if d.kind == DeviceKind.HEAT_PUMP and not (
                d.temperature_c is not None and d.temperature_c > prefs.comfort_min_c
            ):
                found.append(f"heat pump held back in a room at or below comfort: {label}")
            if d.kind == DeviceKind.EV_CHARGER and not (
                d.soc is not None and d.soc >= prefs.ev_min_soc
            ):
                found.append(f"EV held back below its minimum SoC: {label}")
            if d.kind == DeviceKind.BATTERY:
                found.append(f"battery power limit (would cap discharge too): {label}")
        if c.kind == "charge" and c.value > 0 and (d.soc is None or d.soc >= 1.0):
            found.append(f"charging a full (or unknown) store: {label}")
        if c.kind == "discharge":
            if d.kind != DeviceKind.BATTERY:
                found.append(f"discharge for a non battery: {label}")
            if c.value > 0 and (d.soc is None or d.soc <= prefs.battery_reserve_soc):
                found.append(f"discharging at or below the reserve: {label}")
            if d.max_feed_in_kw is not None and c.value > d.max_feed_in_kw + 1e-9:
                found.append(f"discharging above the rating: {label}")
    return found


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(situations())
def test_a_plan_keeps_to_preferences_and_limits(
    situation: tuple[list[ActiveSignal], tuple[DeviceState, ...], Preferences],
) -> None:
    active_signals, household, prefs = situation
    commands = plan(active_signals, household, prefs, NOW)
    assert _violations(commands, household, prefs) == []
    shape = wanted(commands)  # release first, at most one command per kind
    controllable = {
        d.device_id
        for d in household
        if d.online
        and not d.manual_override
        and d.device_id not in prefs.untouchable
        and d.kind != DeviceKind.BASE_LOAD
    }
    assert set(shape) == controllable
    assert plan(active_signals, household, prefs, NOW) == commands  # deterministic


def test_the_property_check_itself_catches_a_violation() -> None:
    """The checker can fail: a discharge below the reserve and an untouchable device are caught."""
    bad = (
        DeviceCommand(device_id="bat", kind="discharge", value=1.0, until=UNTIL, reason="x"),
        DeviceCommand(device_id="hp", kind="setpoint", value=10.0, until=UNTIL, reason="x"),
    )
    prefs = Preferences(untouchable=frozenset({"hp"}))
    found = _violations(bad, (battery(soc=0.1), heat_pump()), prefs)
    assert len(found) == 3
