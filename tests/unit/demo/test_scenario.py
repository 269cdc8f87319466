"""The pilot's households: seeded, varied, spread over the feeders, simulated as drawn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flex4grid.demo import scenario
from flex4grid.demo.profiles import LJUBLJANA, DayProfiles
from flex4grid.demo.scenario import HouseholdSpec
from ven.han import household

START = datetime(2026, 11, 26, 23, tzinfo=UTC)  # local midnight in Ljubljana


def make_profiles() -> DayProfiles:
    """Flat stand-ins for the libraries' profiles: 0.1 kW per 1000 kWh/a, a midday sun."""
    sun = tuple(600.0 if 40 <= i < 60 else 0.0 for i in range(192))
    return DayProfiles(site=LJUBLJANA, start=START, h0_kw=(0.1,) * 192, irradiance_w_per_m2=sun)


def make_specs(count: int, feeders: int = 1, seed: int = 1) -> list[HouseholdSpec]:
    return scenario.households(count, feeders, seed, make_profiles())


def test_the_same_seed_draws_the_same_pilot_and_another_seed_another() -> None:
    assert make_specs(20) == make_specs(20)
    assert make_specs(20) != make_specs(20, seed=2)


def test_households_are_spread_evenly_over_the_feeders() -> None:
    feeders = [s.feeder for s in make_specs(10, feeders=3)]
    assert feeders.count("feeder-1") == 4 and feeders.count("feeder-3") == 3


def test_the_pilot_varies_devices_and_preferences() -> None:
    specs = make_specs(100)
    assert 0 < sum(s.ev is not None for s in specs) < 100
    assert 0 < sum(s.heat_pump_kw is not None for s in specs) < 100
    assert (
        0 < sum(s.battery_kwh is not None for s in specs) < sum(s.pv_kwp is not None for s in specs)
    )
    assert len({s.preferences.max_shift for s in specs}) > 1
    assert any(s.preferences.do_not_disturb for s in specs)
    evs = [s.ev for s in specs if s.ev is not None]
    assert all(16.5 <= (e.arrival - START) / timedelta(hours=1) <= 19.5 for e in evs)


def test_a_household_is_simulated_with_the_devices_it_was_drawn_with() -> None:
    profiles = make_profiles()
    for spec in make_specs(30):
        home = scenario.household(spec, profiles, START)
        ids = {d.device_id for d in home.devices}
        assert ("ev-charger" in ids) == (spec.ev is not None)
        assert ("battery" in ids) == (spec.battery_kwh is not None)
        assert ("heat-pump" in ids) == (spec.heat_pump_kw is not None)
        night = household.step(home, START + timedelta(hours=2))
        # At night, without PV or an EV home, the house draws its scaled profile (plus heat).
        base = next(d for d in night.devices if d.device_id == "base-load")
        expected = 0.1 * spec.annual_kwh / 1000 + spec.noise_kw[7]
        assert abs(base.power_kw - max(0.05, expected)) < 1e-9
