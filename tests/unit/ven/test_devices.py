"""Physics and command handling of the simulated devices (ven.han.devices)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

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
from ven.model import CommandKind, DeviceCommand, DeviceKind

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def command(
    device_id: str, kind: CommandKind, value: float | None = None, until: datetime | None = None
) -> DeviceCommand:
    return DeviceCommand(device_id=device_id, kind=kind, value=value, until=until, reason="test")


def run(
    device: Any, duration: timedelta, stride: timedelta = MINUTE, **world: float
) -> tuple[Any, float]:
    """Step `device` from NOW for `duration`; returns it and the energy it drew (kWh)."""
    energy_kwh, t = 0.0, NOW
    while t < NOW + duration:
        device = devices.step(device, stride, Environment(at=t, **world))
        energy_kwh += device.power_kw * (stride / timedelta(hours=1))
        t += stride
    return device, energy_kwh


# --- heat pump ----------------------------------------------------------------------------------


def test_a_cold_room_makes_the_heat_pump_run_at_full_power_and_warms_by_the_heat_balance() -> None:
    pump = HeatPump(device_id="hp", room_temperature_c=18.0, setpoint_c=21.0)
    after = devices.step(pump, MINUTE, Environment(at=NOW, outdoor_temperature_c=0.0))
    assert after.power_kw == 3.0
    # C·dT/dt = COP·P − UA·(T − T_out) = 9 kW − 0.2 kW/K · 18 K = 5.4 kW over 8 kWh/K
    assert (after.room_temperature_c - 18.0) * 60 == pytest.approx(5.4 / 8.0, rel=1e-3)


def test_a_lowered_setpoint_draws_less_and_the_room_cools_at_the_model_rate() -> None:
    pump = HeatPump(device_id="hp", room_temperature_c=21.0, setpoint_c=21.0, heating=True)
    lowered = devices.apply(pump, command("hp", "setpoint", 18.0))
    kept, kept_kwh = run(pump, timedelta(hours=3), outdoor_temperature_c=0.0)
    cooled, lowered_kwh = run(lowered, timedelta(hours=3), outdoor_temperature_c=0.0)

    assert lowered_kwh == 0.0 < kept_kwh
    # no heating: T(t) = T_out + (T0 − T_out)·exp(−t·UA/C), time constant 8/0.2 = 40 h
    assert cooled.room_temperature_c == pytest.approx(21.0 * math.exp(-3 / 40), rel=1e-9)
    assert kept.room_temperature_c > cooled.room_temperature_c + 1.0


@pytest.mark.parametrize(
    ("room_c", "was_heating", "heats"),
    [
        (20.4, False, True),
        (20.6, False, False),
        (20.6, True, True),
        (21.4, True, True),
        (21.6, True, False),
    ],
    ids=["below-band", "in-band-off-stays-off", "in-band-on-stays-on", "top-of-band", "above"],
)
def test_the_thermostat_switches_with_hysteresis(
    room_c: float, was_heating: bool, heats: bool
) -> None:
    pump = HeatPump(device_id="hp", room_temperature_c=room_c, setpoint_c=21.0, heating=was_heating)
    after = devices.step(pump, MINUTE, Environment(at=NOW))
    assert after.heating is heats
    assert after.power_kw == (3.0 if heats else 0.0)


def test_a_power_limit_caps_the_heat_pump_and_its_heat_output() -> None:
    pump = devices.apply(
        HeatPump(device_id="hp", room_temperature_c=15.0), command("hp", "power_limit", 1.5)
    )
    after = devices.step(pump, MINUTE, Environment(at=NOW, outdoor_temperature_c=15.0))
    assert after.power_kw == 1.5
    # 4.5 kW of heat and no loss yet (room = outdoor) into 8 kWh/K
    assert (after.room_temperature_c - 15.0) * 60 == pytest.approx(4.5 / 8.0, rel=1e-3)


@pytest.mark.parametrize(
    ("setpoint_c", "effective_c"),
    [(18.0, 18.0), (-10.0, 5.0), (40.0, 28.0)],
    ids=["in-range", "frost-protection", "upper-limit"],
)
def test_setpoint_commands_are_held_within_the_device_range(
    setpoint_c: float, effective_c: float
) -> None:
    pump = devices.apply(HeatPump(device_id="hp"), command("hp", "setpoint", setpoint_c))
    assert devices.telemetry(pump, NOW).setpoint_c == effective_c


def test_a_command_stops_applying_at_its_until() -> None:
    until = NOW + timedelta(minutes=30)
    pump = devices.apply(HeatPump(device_id="hp"), command("hp", "setpoint", 18.0, until))
    assert devices.telemetry(pump, until - timedelta(seconds=1)).setpoint_c == 18.0
    assert devices.telemetry(pump, until).setpoint_c == 21.0
    stepped = devices.step(pump, MINUTE, Environment(at=until))
    assert stepped.commands == ()


def test_under_manual_override_commands_wait_and_resume_afterwards() -> None:
    pump = HeatPump(device_id="hp", room_temperature_c=19.0)
    pump = devices.apply(devices.set_manual_override(pump, True), command("hp", "on_off", 0.0))
    overridden = devices.step(pump, MINUTE, Environment(at=NOW))
    assert overridden.power_kw == 3.0
    assert devices.telemetry(overridden, NOW).manual_override is True
    handed_back = devices.step(
        devices.set_manual_override(overridden, False), MINUTE, Environment(at=NOW)
    )
    assert handed_back.power_kw == 0.0


# --- EV charger ---------------------------------------------------------------------------------

EVENING = NOW.replace(hour=18)
MORNING = EVENING + timedelta(hours=13)


def overnight_ev(**changes: Any) -> EvCharger:
    ev = EvCharger(device_id="ev", soc=0.2, target_soc=0.8, arrival=EVENING, departure=MORNING)
    return replace(ev, **changes)


def run_ev_night(ev: EvCharger) -> tuple[EvCharger, list[float]]:
    powers, t = [], EVENING - timedelta(hours=1)
    while t < MORNING + timedelta(hours=1):
        ev = devices.step(ev, MINUTE, Environment(at=t))
        powers.append(ev.power_kw)
        t += MINUTE
    return ev, powers


def test_an_unconstrained_ev_charges_at_full_power_and_reaches_its_target_by_departure() -> None:
    ev, powers = run_ev_night(overnight_ev())
    assert ev.soc == pytest.approx(0.8)
    assert max(powers) == 11.0
    assert powers[:60] == [0.0] * 60  # not plugged in before arrival
    # 36 kWh into the battery at 92 %: 39.1 kWh from the grid, 3.6 h at 11 kW
    assert sum(powers) / 60 == pytest.approx(0.6 * 60 / 0.92)
    assert sum(1 for p in powers if p > 0) == pytest.approx(3.56 * 60, abs=2)


def test_a_power_limit_leaves_the_ev_short_of_its_target() -> None:
    limited = devices.apply(overnight_ev(), command("ev", "power_limit", 2.0, until=MORNING))
    ev, powers = run_ev_night(limited)
    assert max(powers) == 2.0
    assert ev.soc == pytest.approx(0.2 + 2.0 * 13 * 0.92 / 60)
    assert ev.soc < 0.8


def test_a_charge_command_fills_the_ev_past_its_target_but_not_past_full() -> None:
    ev, powers = run_ev_night(devices.apply(overnight_ev(), command("ev", "charge", 7.4)))
    assert max(powers) == 7.4
    assert ev.soc == pytest.approx(1.0)


def test_an_ev_stops_charging_at_departure_even_inside_a_step() -> None:
    ev = overnight_ev(soc=0.2)
    half_hour_left = MORNING - timedelta(minutes=30)
    after = devices.step(ev, timedelta(hours=1), Environment(at=half_hour_left))
    assert after.soc == pytest.approx(0.2 + 11.0 * 0.5 * 0.92 / 60)
    assert after.power_kw == pytest.approx(5.5)  # average over the hour


def test_an_ev_switched_off_does_not_charge() -> None:
    ev = devices.apply(overnight_ev(), command("ev", "on_off", 0.0))
    after = devices.step(ev, MINUTE, Environment(at=EVENING))
    assert (after.power_kw, after.soc) == (0.0, 0.2)
    assert devices.telemetry(after, EVENING).power_limit_kw == 0.0


# --- battery ------------------------------------------------------------------------------------


def test_battery_soc_integrates_charging_power_with_the_one_way_efficiency() -> None:
    battery = devices.apply(Battery(device_id="b", soc=0.2), command("b", "charge", 4.0))
    charged, drawn_kwh = run(battery, timedelta(hours=1))
    assert drawn_kwh == pytest.approx(4.0)
    assert charged.soc == pytest.approx(0.2 + 4.0 * math.sqrt(0.9) / 10.0)


def test_a_battery_round_trip_returns_its_efficiency() -> None:
    battery = devices.apply(Battery(device_id="b", soc=0.0), command("b", "charge", 5.0))
    full, drawn_kwh = run(battery, timedelta(hours=3))
    assert full.soc == pytest.approx(1.0)
    emptied, fed_kwh = run(devices.apply(full, command("b", "discharge", 5.0)), timedelta(hours=3))
    assert emptied.soc == pytest.approx(0.0)
    assert -fed_kwh / drawn_kwh == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("soc", "kind", "value", "expected_kw"),
    [
        (0.5, "charge", 8.0, 5.0),
        (0.5, "discharge", 8.0, -5.0),
        (1.0, "charge", 5.0, 0.0),
        (0.0, "discharge", 5.0, 0.0),
        (0.995, "charge", 5.0, 0.05 / math.sqrt(0.9) * 60),  # fills the last 0.05 kWh in a minute
    ],
    ids=["charge-rate-limit", "discharge-rate-limit", "full", "empty", "nearly-full"],
)
def test_a_battery_respects_its_power_and_energy_limits(
    soc: float, kind: CommandKind, value: float, expected_kw: float
) -> None:
    battery = devices.apply(Battery(device_id="b", soc=soc), command("b", kind, value))
    after = devices.step(battery, MINUTE, Environment(at=NOW))
    assert after.power_kw == pytest.approx(expected_kw)
    assert 0.0 <= after.soc <= 1.0


@pytest.mark.parametrize(
    ("site_net_kw", "expected_kw"),
    [(-3.0, 3.0), (2.0, -2.0), (8.0, -5.0), (-9.0, 5.0), (0.0, 0.0)],
    ids=["soaks-surplus", "covers-load", "covers-what-it-can", "charges-what-it-can", "idle"],
)
def test_an_uncommanded_battery_runs_self_consumption(
    site_net_kw: float, expected_kw: float
) -> None:
    after = devices.step(
        Battery(device_id="b"), MINUTE, Environment(at=NOW, site_net_kw=site_net_kw)
    )
    assert after.power_kw == expected_kw


def test_release_hands_the_battery_back_to_self_consumption() -> None:
    commanded = devices.apply(Battery(device_id="b"), command("b", "discharge", 4.0))
    released = devices.apply(commanded, command("b", "release"))
    env = Environment(at=NOW, site_net_kw=-1.0)
    assert devices.step(commanded, MINUTE, env).power_kw == -4.0
    assert devices.step(released, MINUTE, env).power_kw == 1.0


def test_charge_and_discharge_replace_each_other_and_other_kinds_stay() -> None:
    battery = Battery(device_id="b")
    for c in (command("b", "power_limit", 3.0), command("b", "charge", 2.0)):
        battery = devices.apply(battery, c)
    battery = devices.apply(battery, command("b", "discharge", 4.0))
    assert [(c.kind, c.value) for c in battery.commands] == [
        ("power_limit", 3.0),
        ("discharge", 4.0),
    ]
    assert devices.step(battery, MINUTE, Environment(at=NOW)).power_kw == -3.0


# --- PV and base load ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("irradiance", "expected_kw"),
    [(0.0, 0.0), (500.0, -2.55), (1000.0, -5.0)],
    ids=["night", "half-sun", "inverter-clips-5.1-to-5.0"],
)
def test_pv_output_is_irradiance_times_kwp_times_efficiency(
    irradiance: float, expected_kw: float
) -> None:
    after = devices.step(
        PvInverter(device_id="pv"), MINUTE, Environment(at=NOW, irradiance_w_per_m2=irradiance)
    )
    assert after.power_kw == pytest.approx(expected_kw)


def test_pv_curtailment_caps_what_is_fed_in_and_keeps_what_was_available() -> None:
    pv = devices.apply(PvInverter(device_id="pv"), command("pv", "power_limit", 1.0))
    after = devices.step(pv, MINUTE, Environment(at=NOW, irradiance_w_per_m2=800.0))
    assert after.power_kw == -1.0
    assert after.available_kw == pytest.approx(4.08)
    assert devices.telemetry(after, NOW).power_limit_kw == 1.0


@pytest.mark.parametrize(
    ("profile_kw", "noise_kw", "expected_kw"),
    [(0.6, 0.0, 0.6), (0.6, 0.3, 0.9), (0.2, -0.5, 0.05)],
    ids=["profile", "plus-noise", "standby-floor"],
)
def test_base_load_follows_its_profile_and_the_noise_it_is_given(
    profile_kw: float, noise_kw: float, expected_kw: float
) -> None:
    env = Environment(at=NOW, base_load_kw=profile_kw, base_load_noise_kw=noise_kw)
    assert devices.step(BaseLoad(device_id="base"), MINUTE, env).power_kw == pytest.approx(
        expected_kw
    )


# --- commands and telemetry ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "bad"),
    [
        (HeatPump(device_id="hp"), command("other", "setpoint", 20.0)),
        (HeatPump(device_id="hp"), command("hp", "charge", 2.0)),
        (BaseLoad(device_id="base"), command("base", "power_limit", 1.0)),
        (PvInverter(device_id="pv"), command("pv", "power_limit", -1.0)),
        (PvInverter(device_id="pv"), command("pv", "power_limit", None)),
        (Battery(device_id="b"), command("b", "charge", math.nan)),
        (EvCharger(device_id="ev"), command("ev", "on_off", 0.5)),
    ],
    ids=[
        "other-device",
        "kind-it-lacks",
        "base-load-not-controllable",
        "negative-kw",
        "missing-value",
        "nan",
        "on-off-not-0-or-1",
    ],
)
def test_commands_a_device_cannot_obey_are_rejected(device: Device, bad: DeviceCommand) -> None:
    with pytest.raises(CommandRejected):
        devices.apply(device, bad)


def test_telemetry_reports_power_and_the_fields_of_its_kind() -> None:
    pump = devices.apply(
        HeatPump(device_id="hp", room_temperature_c=20.5, power_kw=3.0),
        command("hp", "power_limit", 2.0),
    )
    state = devices.telemetry(pump, NOW)
    assert (state.device_id, state.kind, state.power_kw, state.at) == (
        "hp",
        DeviceKind.HEAT_PUMP,
        3.0,
        NOW,
    )
    assert (state.temperature_c, state.setpoint_c, state.power_limit_kw, state.soc) == (
        20.5,
        21.0,
        2.0,
        None,
    )
    assert devices.telemetry(Battery(device_id="b", soc=0.4), NOW).soc == 0.4


def test_telemetry_carries_the_ratings_a_planner_needs() -> None:
    """Without ratings the VEN could not tell how much a device can give in an event."""
    heat_pump = devices.telemetry(devices.HeatPump(device_id="hp", setpoint_c=21.0), NOW)
    assert (heat_pump.max_power_kw, heat_pump.own_setpoint_c) == (3.0, 21.0)
    assert (heat_pump.min_setpoint_c, heat_pump.max_setpoint_c) == (5.0, 28.0)
    ev = devices.telemetry(devices.EvCharger(device_id="ev"), NOW)
    assert (ev.max_power_kw, ev.capacity_kwh) == (11.0, 60.0)
    battery = devices.telemetry(devices.Battery(device_id="bat"), NOW)
    assert (battery.max_power_kw, battery.max_feed_in_kw, battery.capacity_kwh) == (5.0, 5.0, 10.0)
    assert devices.telemetry(devices.PvInverter(device_id="pv"), NOW).max_feed_in_kw == 5.0
