"""The demo's market mode, pure parts: the DSO's flex request from its forecast, the no-flex
simulation as an M&V baseline, what the aggregator knows of each household, the table."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from flex4grid.demo import marketplace, report
from flex4grid.demo.forecast import SLOTS_PER_DAY, FeederPlan
from flex4grid.demo.marketplace import GATE_LEAD, PRICE_CAP_EUR_PER_KWH, Settled, SimulatedBaseline
from flex4grid.demo.profiles import STEP
from flex4grid.demo.scenario import EvSpec, HouseholdSpec
from market import baseline, service
from market.model import CongestionPointId
from ven.model import DeviceKind
from ven.policy import Preferences

START = datetime(2026, 11, 27, tzinfo=UTC)


def at(slot: int) -> datetime:
    return START + slot * STEP


def make_plan(forecast_kw: dict[int, float], capacity_kw: float = 10.0) -> FeederPlan:
    series = [1.0] * SLOTS_PER_DAY
    for slot, kw in forecast_kw.items():
        series[slot] = kw
    return FeederPlan(
        name="feeder-1",
        households=("house-001",),
        capacity_kw=capacity_kw,
        forecast_kw=tuple(series),
        window=(at(70), at(74)),
        start=START,
    )


def make_spec(**changes: object) -> HouseholdSpec:
    spec = HouseholdSpec(
        name="house-001",
        feeder="feeder-1",
        annual_kwh=3000.0,
        heat_pump_kw=None,
        heat_loss_kw_per_k=0.2,
        setpoint_c=21.0,
        room_c=21.0,
        pv_kwp=None,
        battery_kwh=None,
        battery_soc=0.5,
        ev=None,
        preferences=Preferences(max_shift=timedelta(hours=3)),
        noise_kw=(),
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


def test_the_request_asks_the_forecast_excess_over_capacity_per_block_of_the_window() -> None:
    plan = make_plan({70: 9.0, 71: 12.5, 72: 15.1234, 73: 11.0}, capacity_kw=10.0)
    now = at(60)
    request = marketplace.flex_request(plan, now)
    assert request.point_id == CongestionPointId("feeder-1")
    assert (request.start, request.end, request.isp) == (at(70), at(74), STEP)
    assert request.needed_kw == (Decimal(0), Decimal("2.5"), Decimal("5.123"), Decimal(1))
    assert request.price_cap_eur_per_kwh == PRICE_CAP_EUR_PER_KWH
    assert request.gate_closure == at(70) - GATE_LEAD
    service.check_request(request, now)  # the market takes it as it is


def test_a_late_request_still_leaves_time_to_bid() -> None:
    plan = make_plan({71: 12.0})
    now = at(69)  # less than GATE_LEAD before the window
    request = marketplace.flex_request(plan, now)
    assert request.gate_closure == now + STEP
    assert request.gate_closure <= request.start
    service.check_request(request, now)


def test_the_simulated_baseline_is_the_forecast_in_each_block() -> None:
    plan = make_plan({70: 9.0, 71: 12.5, 72: 15.1234, 73: 11.0})
    request = marketplace.flex_request(plan, at(60))
    method = SimulatedBaseline(forecast_kw=plan.forecast_kw, start=plan.start)
    blocks = baseline.event_blocks(request)
    assert blocks.day == date(2026, 11, 27)
    assert method.estimate({}, [], blocks) == (
        Decimal("9.000"), Decimal("12.500"), Decimal("15.123"), Decimal("11.000"),
    )  # fmt: skip
    # Recorded with every delivery: its name and what it was computed from.
    assert baseline.describe(method).startswith("no-flex-simulation")


def test_the_simulated_baseline_follows_a_day_that_starts_off_utc_midnight() -> None:
    local_start = START - timedelta(hours=1)  # Ljubljana's midnight in winter
    series = tuple(float(i) for i in range(SLOTS_PER_DAY))
    plan = replace(make_plan({}), forecast_kw=series, start=local_start)
    method = SimulatedBaseline(forecast_kw=series, start=local_start)
    request = marketplace.flex_request(plan, at(60))
    # The window starts at UTC slot 70, which is slot 74 of a day that began an hour earlier.
    assert method.estimate({}, [], baseline.event_blocks(request))[0] == Decimal(74)


@pytest.mark.parametrize(
    ("changes", "kinds"),
    [
        ({}, {DeviceKind.BASE_LOAD: 0.0}),
        ({"heat_pump_kw": 3.0}, {DeviceKind.BASE_LOAD: 0.0, DeviceKind.HEAT_PUMP: 3.0}),
        ({"battery_kwh": 13.5}, {DeviceKind.BASE_LOAD: 0.0, DeviceKind.BATTERY: 5.0}),
        ({"battery_kwh": 5.0}, {DeviceKind.BASE_LOAD: 0.0, DeviceKind.BATTERY: 2.5}),
    ],
    ids=["base-only", "heat-pump", "big-battery", "small-battery"],
)
def test_the_aggregator_knows_each_households_steerable_devices_and_ratings(
    changes: dict[str, object], kinds: dict[DeviceKind, float]
) -> None:
    devices = marketplace.devices_of(make_spec(**changes))
    assert {d.kind: d.rating_kw for d in devices} == kinds


def test_an_ev_is_known_by_its_wallbox_rating() -> None:
    ev = EvSpec(arrival=at(70), departure=at(120), soc=0.4, target_soc=0.8, battery_kwh=58.0,
                max_power_kw=11.0)  # fmt: skip
    (charger,) = [
        d for d in marketplace.devices_of(make_spec(ev=ev)) if d.device_id == "ev-charger"
    ]
    assert (charger.kind, charger.rating_kw) == (DeviceKind.EV_CHARGER, 11.0)


def test_the_market_table_shows_volume_cost_and_settlement() -> None:
    trade = Settled(
        feeder="feeder-1",
        request_id="congestion-feeder-1",
        bids=1,
        cleared_kw=(Decimal(0), Decimal("1.5"), Decimal("7.25")),
        cleared_kwh=Decimal("2.1875"),
        cost_eur=Decimal("0.59"),
        event_id="flex-order-1",
        node_opt="optIn",
        statement={
            "methods": ["no-flex-simulation(source=forecast)"],
            "totals": {
                "delivered_kwh": "2.5",
                "awarded_kwh": "2.1875",
                "payment_eur": "0.59",
                "penalty_eur": "0.00",
                "net_eur": "0.59",
            },
        },
    )
    unsettled = replace(trade, feeder="feeder-2", statement=None, node_opt=None)
    text = report.market_table([trade, unsettled])
    assert "0.0 1.5 7.2 kW per 15-min block = 2.19 kWh" in text
    assert "cost at the award prices     0.59 EUR" in text
    assert "payment 0.59 EUR, penalty 0.00 EUR, net 0.59 EUR" in text
    assert "feeder-2" in text and "none (nothing was dispatched)" in text
