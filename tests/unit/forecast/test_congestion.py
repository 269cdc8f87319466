"""Traffic lights against a time-varying capacity, red windows, and one action per window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from forecast import congestion
from forecast.congestion import (
    CapacityChange,
    Light,
    Policy,
    Taken,
    Thresholds,
    Verdict,
    Window,
)
from forecast.models import Forecast
from forecast.series import ISP

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
G, A, R = Light.GREEN, Light.ORANGE, Light.RED  # A for amber


def make_forecast(p90: Sequence[float], start: datetime = START) -> Forecast:
    p50 = tuple(v * 0.8 for v in p90)
    return Forecast(
        start=start,
        isp=ISP,
        p10_kw=tuple(v * 0.6 for v in p90),
        p50_kw=p50,
        p90_kw=tuple(p90),
        model="test",
        model_version="1",
        issued_at=NOW,
    )


@pytest.mark.parametrize(
    ("p90", "light"),
    [(0.0, G), (79.9, G), (80.0, A), (99.9, A), (100.0, R), (250.0, R), (-40.0, G)],
    ids=["zero", "below-80", "at-80", "below-100", "at-capacity", "far-above", "export"],
)
def test_light_by_share_of_capacity(p90: float, light: Light) -> None:
    assert congestion.lights(make_forecast([p90]), [100.0]) == (light,)


def test_thresholds_and_the_quantile_are_configurable() -> None:
    made = make_forecast([100.0])  # P50 = 80
    strict = Thresholds(orange_at=0.5, red_at=0.75, quantile="p50")

    assert congestion.lights(made, [100.0], strict) == (R,)
    assert congestion.lights(made, [150.0], strict) == (A,)


def test_capacity_varies_over_time_and_a_derating_wins() -> None:
    changes = [
        CapacityChange(START + ISP, START + 3 * ISP, 60.0),
        CapacityChange(START + 2 * ISP, START + 4 * ISP, 50.0),
    ]

    profile = congestion.capacity_profile(100.0, changes, START, 5, ISP)

    assert profile == (100.0, 60.0, 50.0, 50.0, 100.0)
    assert congestion.lights(make_forecast([70.0] * 5), profile) == (G, R, R, R, G)


def test_contiguous_red_isps_make_one_window_each() -> None:
    made = make_forecast([50, 120, 130, 50, 90, 110, 105])

    windows = congestion.red_windows("cp-1", made, [100.0] * 7)

    assert [(w.start, w.end, w.needed_kw) for w in windows] == [
        (START + ISP, START + 3 * ISP, (20.0, 30.0)),
        (START + 5 * ISP, START + 7 * ISP, (10.0, 5.0)),
    ]


def test_no_window_under_capacity() -> None:
    assert congestion.red_windows("cp-1", make_forecast([99.0] * 96), [100.0] * 96) == []


def window(start: datetime = START, isps: int = 4, point: str = "cp-1") -> Window:
    return Window(point, start, ISP, (10.0,) * isps)


def test_a_new_window_is_acted_on_once_with_its_gate_closure() -> None:
    decisions = congestion.plan([window()], [], Policy(), NOW)

    assert [(d.verdict, d.window) for d in decisions] == [(Verdict.ACT, window())]
    assert decisions[0].gate_closure == START - timedelta(minutes=30)


def test_a_window_already_acted_on_is_covered() -> None:
    taken = [Taken("cp-1", START + ISP, START + 3 * ISP, "req-1")]

    decisions = congestion.plan([window()], taken, Policy(), NOW)

    assert [(d.verdict, d.reason) for d in decisions] == [(Verdict.COVERED, "covered by req-1")]


def test_an_action_at_another_point_or_time_covers_nothing() -> None:
    taken = [
        Taken("cp-2", START, START + 4 * ISP, "req-1"),
        Taken("cp-1", START + 4 * ISP, START + 8 * ISP, "req-2"),
    ]

    decisions = congestion.plan([window()], taken, Policy(), NOW)

    assert [d.verdict for d in decisions] == [Verdict.ACT]


def test_isps_within_the_lead_time_are_left_out() -> None:
    policy = Policy(lead_time=timedelta(hours=2))
    soon = window(start=NOW + timedelta(hours=1, minutes=30), isps=4)  # 2 of 4 ISPs too soon

    (decision,) = congestion.plan([soon], [], policy, NOW)

    assert decision.verdict is Verdict.ACT
    assert decision.window.start == NOW + timedelta(hours=2)
    assert len(decision.window.needed_kw) == 2
    assert "2 ISP(s) within the lead time" in decision.reason


def test_a_window_entirely_within_the_lead_time_is_too_late() -> None:
    (decision,) = congestion.plan([window(start=NOW + ISP, isps=2)], [], Policy(), NOW)

    assert decision.verdict is Verdict.TOO_LATE


def test_a_window_beyond_the_action_horizon_waits() -> None:
    far = window(start=NOW + timedelta(days=3))

    (decision,) = congestion.plan([far], [], Policy(act_within=timedelta(hours=48)), NOW)

    assert decision.verdict is Verdict.LATER


def test_planning_the_same_forecast_twice_acts_once() -> None:
    first = congestion.plan([window()], [], Policy(), NOW)
    recorded = [Taken(d.window.point_id, d.window.start, d.window.end, "req-1") for d in first]

    again = congestion.plan([window()], recorded, Policy(), NOW + ISP)

    assert [d.verdict for d in first] == [Verdict.ACT]
    assert [d.verdict for d in again] == [Verdict.COVERED]


def test_the_action_id_is_the_same_for_the_same_window() -> None:
    assert (
        congestion.action_id(window()) == congestion.action_id(window()) == "fc-cp-1-20260302T1200Z"
    )
    assert congestion.action_id(window(point="cp-2")) != congestion.action_id(window())


def test_a_gate_closure_after_the_lead_time_is_refused() -> None:
    with pytest.raises(ValueError, match="gate"):
        Policy(lead_time=timedelta(minutes=10), gate_closure_before=timedelta(minutes=30))
