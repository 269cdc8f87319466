"""A household stepped as a whole (ven.han.household), and driven in-process (ven.han.bus)."""

from __future__ import annotations

import asyncio
import logging
import math
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ven.han import devices, household
from ven.han.bus import HomeBus, InProcessBus
from ven.han.devices import (
    BaseLoad,
    Battery,
    CommandRejected,
    Device,
    EvCharger,
    HeatPump,
    PvInverter,
)
from ven.han.household import EnvironmentSource, Household
from ven.model import CommandKind, DeviceCommand

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def constant(value: float) -> household.TimeFunction:
    return lambda at: value


def make_household(
    *parts: Device,
    outdoor_c: float = 0.0,
    irradiance: float = 0.0,
    base_load_kw: float = 0.5,
    **changes: Any,
) -> Household:
    source = EnvironmentSource(
        outdoor_temperature_c=constant(outdoor_c),
        irradiance_w_per_m2=constant(irradiance),
        base_load_kw=constant(base_load_kw),
    )
    return replace(Household(devices=parts, source=source, now=NOW), **changes)


def command(
    device_id: str, kind: CommandKind, value: float | None = None, until: datetime | None = None
) -> DeviceCommand:
    return DeviceCommand(device_id=device_id, kind=kind, value=value, until=until, reason="test")


def powers(home: Household) -> dict[str, float]:
    return {s.device_id: s.power_kw for s in household.telemetry(home)}


def test_net_power_at_the_grid_connection_is_the_sum_of_the_devices() -> None:
    home = make_household(
        HeatPump(device_id="hp", room_temperature_c=15.0),
        PvInverter(device_id="pv"),
        BaseLoad(device_id="base"),
        irradiance=500.0,
        base_load_kw=0.7,
    )
    stepped = household.step(home, NOW + timedelta(minutes=5))
    assert powers(stepped) == pytest.approx({"hp": 3.0, "pv": -2.55, "base": 0.7})
    assert household.net_power_kw(stepped) == pytest.approx(3.0 - 2.55 + 0.7)


@pytest.mark.parametrize(
    ("irradiance", "room_c", "battery_kw", "net_kw"),
    [
        (1000.0, 25.0, 4.5, 0.0),  # 5.0 kW of PV, 0.5 kW of load: the surplus goes in
        (0.0, 15.0, -3.5, 0.0),  # heat pump and load at night: covered from the battery
        (1000.0, 25.0, 0.0, -4.5),  # a full battery lets the surplus go to the grid
    ],
    ids=["soaks-pv-surplus", "covers-the-evening-load", "full-battery-exports"],
)
def test_a_self_consuming_battery_is_stepped_last_and_zeroes_the_grid_connection(
    irradiance: float, room_c: float, battery_kw: float, net_kw: float
) -> None:
    home = make_household(
        Battery(device_id="battery", soc=1.0 if net_kw < 0 else 0.5),  # first, still answers
        HeatPump(device_id="hp", room_temperature_c=room_c),
        PvInverter(device_id="pv"),
        BaseLoad(device_id="base"),
        irradiance=irradiance,
    )
    stepped = household.step(home, NOW + timedelta(minutes=10))
    assert powers(stepped)["battery"] == pytest.approx(battery_kw)
    assert household.net_power_kw(stepped) == pytest.approx(net_kw, abs=1e-9)


def test_what_the_battery_cannot_cover_comes_from_the_grid() -> None:
    home = make_household(
        Battery(device_id="battery"),
        EvCharger(device_id="ev", arrival=NOW, soc=0.1),
        BaseLoad(device_id="base"),
    )
    stepped = household.step(home, NOW + timedelta(minutes=10))
    assert household.net_power_kw(stepped) == pytest.approx(11.0 + 0.5 - 5.0)


def test_a_command_ends_at_its_until_even_inside_a_long_stride() -> None:
    until = NOW + timedelta(minutes=30)
    pump = HeatPump(device_id="hp", room_temperature_c=20.6, heating=True)
    home = make_household(pump, max_step=timedelta(hours=1))
    home = household.send(home, command("hp", "setpoint", 15.0, until=until))

    stepped = household.step(home, NOW + timedelta(hours=1))

    # Off for 30 minutes (setpoint 15), then the room is below 21 - 0.5: heating again.
    first = devices.step(household.device(home, "hp"), until - NOW, home.source.at(NOW))
    expected = devices.step(first, timedelta(minutes=30), home.source.at(until))
    assert first.power_kw == 0.0 and expected.power_kw == 3.0
    assert household.device(stepped, "hp") == expected
    assert expected.commands == ()


def test_send_reaches_only_its_device_and_unknown_devices_are_refused() -> None:
    home = make_household(PvInverter(device_id="pv"), PvInverter(device_id="pv-garage"))
    home = household.send(home, command("pv", "power_limit", 1.0))
    states = {s.device_id: s for s in household.telemetry(home)}
    assert (states["pv"].power_limit_kw, states["pv-garage"].power_limit_kw) == (1.0, None)
    with pytest.raises(CommandRejected):
        household.send(home, command("nowhere", "release"))


@pytest.mark.parametrize(
    "build",
    [
        lambda: household.step(make_household(), NOW - timedelta(seconds=1)),
        lambda: make_household(BaseLoad(device_id="x"), BaseLoad(device_id="x")),
        lambda: make_household(now=NOW.replace(tzinfo=None)),
        lambda: make_household(max_step=timedelta(0)),
    ],
    ids=["step-back-in-time", "duplicate-device-ids", "naive-now", "zero-max-step"],
)
def test_impossible_households_are_refused(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


def test_a_typical_household_over_a_day_keeps_comfort_and_charges_the_ev() -> None:
    home = household.typical(NOW, household.synthetic_source())
    rooms, nets = [], []
    for hour in range(1, 25):
        home = household.step(home, NOW + timedelta(hours=hour))
        state = {s.device_id: s for s in household.telemetry(home)}
        rooms.append(state["heat-pump"].temperature_c)
        nets.append(household.net_power_kw(home))
        assert 0.0 <= (state["battery"].soc or 0.0) <= 1.0
    assert all(r is not None and 20.4 < r < 21.6 for r in rooms[2:])  # ±hysteresis, warmed up
    assert household.device(home, "ev-charger").soc == pytest.approx(0.8)  # type: ignore[union-attr]
    assert all(math.isfinite(n) for n in nets)


# --- the in-process bus -------------------------------------------------------------------------


class SimulatedClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


async def wait_for(condition: Any, timeout_s: float = 2.0) -> None:
    for _ in range(int(timeout_s / 0.005)):  # polled: the bus has no "changed" notification
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"still false after {timeout_s} s")


async def test_the_in_process_bus_applies_commands_and_reports_on_its_clock() -> None:
    clock = SimulatedClock(NOW)
    home = make_household(PvInverter(device_id="pv"), BaseLoad(device_id="base"), irradiance=800)
    bus: HomeBus = InProcessBus(home, clock=clock, interval=timedelta(milliseconds=5))
    async with bus:
        await bus.send(command("pv", "power_limit", 1.0, until=NOW + timedelta(minutes=30)))
        assert bus.states()["pv"].power_limit_kw == 1.0

        clock.now = NOW + timedelta(minutes=10)  # the task catches up by itself
        await wait_for(lambda: bus.states()["pv"].at == clock.now)
        assert bus.states()["pv"].power_kw == -1.0

        clock.now = NOW + timedelta(hours=1)  # the command has expired meanwhile
        await wait_for(lambda: bus.states()["pv"].at == clock.now)
        assert bus.states()["pv"].power_kw == pytest.approx(-4.08)
        assert bus.states()["pv"].power_limit_kw is None


async def test_the_in_process_bus_logs_a_refused_command_and_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = SimulatedClock(NOW)
    bus = InProcessBus(make_household(BaseLoad(device_id="base")), clock=clock)
    async with bus:
        with caplog.at_level(logging.WARNING):
            await bus.send(command("base", "on_off", 0.0))
        clock.now = NOW + timedelta(minutes=1)
        bus.step()
    assert "base rejected on_off" in caplog.text
    assert bus.states()["base"].power_kw == 0.5


@pytest.mark.parametrize("module", ["ven.model", "ven.han.devices", "ven.han.household"])
def test_the_simulation_core_imports_no_io_framework(module: str) -> None:
    code = (
        f"import importlib, sys; importlib.import_module({module!r}); "
        "print(sorted(m for m in ('asyncio', 'aiomqtt', 'paho') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
