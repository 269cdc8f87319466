"""Measuring delivery: stored readings become feeder load; peaks, shifted energy, rebound, opts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flex4grid.demo import report, results
from flex4grid.demo.forecast import SLOTS_PER_DAY, FeederPlan
from flex4grid.demo.profiles import STEP
from flex4grid.demo.results import Answer, PowerReading

START = datetime(2026, 11, 27, tzinfo=UTC)
WINDOW = (START + 72 * STEP, START + 76 * STEP)  # 18:00-19:00


def at(slot: int) -> datetime:
    return START + slot * STEP


def reading(household: str, slot: int, power_kw: float) -> PowerReading:
    return PowerReading(household, at(slot), STEP, power_kw)


def make_plan(baseline: list[float], capacity_kw: float = 10.0) -> FeederPlan:
    return FeederPlan(
        name="feeder-1",
        households=("a", "b"),
        capacity_kw=capacity_kw,
        forecast_kw=tuple(baseline),
        window=WINDOW,
        start=START,
    )


def test_feeder_load_sums_each_households_devices_per_period_and_counts_coverage() -> None:
    readings = [
        reading("a", 0, 1.0),  # heat pump
        reading("a", 0, -0.5),  # PV
        reading("b", 0, 2.0),
        reading("b", 1, 3.0),
        reading("other-feeder", 1, 50.0),
        PowerReading("a", at(2) - timedelta(minutes=5), STEP, 4.0),  # mostly in period 2
    ]
    series, coverage = results.feeder_series(readings, ["a", "b"], START)
    assert series[:3] == (2.5, 3.0, 4.0)
    assert coverage == pytest.approx(4 / (2 * SLOTS_PER_DAY))


def test_delivery_is_measured_against_the_baseline() -> None:
    baseline = [5.0] * SLOTS_PER_DAY
    baseline[72:76] = [12.0, 14.0, 13.0, 11.0]  # over the 10 kW capacity in the window
    measured = list(baseline)
    measured[72:76] = [9.0, 9.5, 9.0, 8.0]  # held back in the window
    measured[76:78] = [8.0, 7.0]  # and caught up after it
    measured[10] = 6.0  # the forecast missed a little in the morning
    readings = [reading("a", i, v) for i, v in enumerate(measured)]
    outcome = results.measure([make_plan(baseline)], readings, [], {"feeder-1": at(40)}, 2)
    (feeder,) = outcome.feeders
    assert feeder.peak_kw(feeder.baseline_kw, feeder.in_window) == 14.0
    assert feeder.peak_kw(feeder.measured_kw, feeder.in_window) == 9.5
    assert feeder.shifted_kwh == pytest.approx((50.0 - 35.5) / 4)
    assert feeder.rebound_kwh == pytest.approx((3.0 + 2.0) / 4)
    assert feeder.overload_kwh(feeder.baseline_kw) == pytest.approx(10.0 / 4)
    assert feeder.overload_kwh(feeder.measured_kw) == 0.0
    assert feeder.tracking_error_kw == pytest.approx(1.0 / 40)  # before the ask at period 40


def test_opt_out_rate_reasons_and_latency_percentiles() -> None:
    answers = [
        Answer("a", "feeder-1", True, timedelta(milliseconds=100)),
        Answer("b", "feeder-1", False, timedelta(milliseconds=300), reason="duration"),
        Answer("c", "feeder-1", False, timedelta(milliseconds=200), reason="duration"),
        Answer("d", "feeder-1", None, None),  # never answered
    ]
    outcome = results.measure([], [], answers, {}, 4)
    assert outcome.opt_out_rate == pytest.approx(2 / 3)
    assert outcome.opt_out_reasons == {"duration": 2}
    assert outcome.latency_s(0.5) == pytest.approx(0.2)
    assert outcome.latency_s(0.99) == pytest.approx(0.3)
    summary = results.summary(outcome)
    assert (summary["targeted"], summary["acknowledged"], summary["opted_in"]) == (4, 3, 1)


@pytest.mark.parametrize(
    ("reason", "rule"),
    [
        ("optOut (duration): event lasts 4h, longer than the 2h you accept", "duration"),
        ("optIn (default): SIMPLE level: ...", "default"),
        ("no rule here", None),
        (None, None),
    ],
    ids=["out", "in", "no-rule", "none"],
)
def test_the_policy_rule_is_read_from_the_reason(reason: str | None, rule: str | None) -> None:
    assert results.rule_of(reason) == rule


def test_the_status_line_shows_the_day_the_vens_the_answers_and_overloads() -> None:
    line = report.status_line(
        now=START + timedelta(hours=12),
        start=START,
        zone=UTC,
        phase="day",
        online=98,
        households=100,
        acknowledged=40,
        targeted=50,
        loads=[("feeder-1", 120.4, 100.0), ("feeder-2", 80.0, 100.0)],
    )
    assert line.startswith("[" + "#" * 12 + "-" * 12 + "] 12:00")
    assert "VENs online 98/100" in line and "event acks 40/50" in line
    assert "feeder-1   120/100 kW OVER" in line and "feeder-2    80/100 kW " in line + " "
    assert "feeder-2    80/100 kW OVER" not in line
