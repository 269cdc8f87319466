"""Baselines: 10-of-10 with a capped same-day adjustment, high X of Y, meter before/after."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market import baseline
from market.baseline import (
    DayReadings,
    EventBlocks,
    HighXOfY,
    MeterBeforeMeterAfter,
    TenOfTen,
)
from market.errors import InsufficientData, MarketError
from market.model import AggregatorId, Award, BidId, NodeId
from tests.factories import HOUR, MINUTE, NOW, make_flex_request

D = Decimal
EVENT_DAY = date(2026, 1, 15)  # a Thursday
BLOCKS = EventBlocks(day=EVENT_DAY, isps=(56, 57, 58, 59))  # 14:00-15:00 UTC
WINDOW = range(36, 52)  # 09:00-13:00: 4 hours ending 1 hour before the event


def day(event_kw: int | str, window_kw: int | str = 10, **gaps: None) -> list[Decimal | None]:
    """A day at 10 kW, `event_kw` in the event ISPs (+1 kW in the second), `window_kw` in WINDOW."""
    series: list[Decimal | None] = [D(10)] * 96
    for i in WINDOW:
        series[i] = D(window_kw)
    for i in BLOCKS.isps:
        series[i] = D(event_kw) + (1 if i == 57 else 0)
    for name in gaps:
        series[int(name.removeprefix("isp"))] = None
    return series


# Weekdays back from the event, most recent first, with their event-ISP load. Jan 13 was an
# event day and Jan 12 has a gap in ISP 57, so the ten used are Jan 14 ... Dec 30 (10 to 19 kW,
# mean 14.5); Dec 29 (1000 kW) is the eleventh and left out; weekends (500 kW) never count.
LOADS = {
    date(2026, 1, 14): 10,
    date(2026, 1, 13): 900,
    date(2026, 1, 9): 11,
    date(2026, 1, 8): 12,
    date(2026, 1, 7): 13,
    date(2026, 1, 6): 14,
    date(2026, 1, 5): 15,
    date(2026, 1, 2): 16,
    date(2026, 1, 1): 17,
    date(2025, 12, 31): 18,
    date(2025, 12, 30): 19,
    date(2025, 12, 29): 1000,
}
HISTORY: dict[date, DayReadings] = {d: day(kw) for d, kw in LOADS.items()}
HISTORY[date(2026, 1, 12)] = day(0, isp57=None)
for weekend in (date(2026, 1, 10), date(2026, 1, 11), date(2026, 1, 3), date(2026, 1, 4)):
    HISTORY[weekend] = day(500)
EVENTS = frozenset({date(2026, 1, 13)})


def test_ten_of_ten_without_adjustment_is_the_mean_of_the_last_ten_eligible_weekdays() -> None:
    method = TenOfTen(adjust=False, excluded_days=EVENTS)
    assert method.estimate(HISTORY, day(0), BLOCKS) == (D("14.5"), D("15.5"), D("14.5"), D("14.5"))


@pytest.mark.parametrize(
    ("window_kw", "expected_block0", "why"),
    [
        (10, "14.500", "same as the baseline days: ratio 1"),
        (11, "15.950", "10 % above: 14.5 x 1.1"),
        (15, "17.400", "50 % above, capped at +20 %: 14.5 x 1.2"),
        (5, "11.600", "50 % below, capped at -20 %: 14.5 x 0.8"),
    ],
    ids=["flat", "up-10pc", "capped-up", "capped-down"],
)
def test_ten_of_ten_same_day_adjustment_is_capped_at_20_percent(
    window_kw: int, expected_block0: str, why: str
) -> None:
    estimate = TenOfTen(excluded_days=EVENTS).estimate(HISTORY, day(0, window_kw), BLOCKS)
    assert estimate[0] == D(expected_block0), why


def test_the_adjustment_uses_the_window_readings_present_on_the_event_day() -> None:
    event_day = day(0, 10)
    for i in range(36, 44):  # 09:00-11:00 missing; 11:00-13:00 at 12 kW: ratio 1.2
        event_day[i] = None
    for i in range(44, 52):
        event_day[i] = D(12)
    assert TenOfTen(excluded_days=EVENTS).estimate(HISTORY, event_day, BLOCKS)[0] == D("17.4")


def test_the_hour_just_before_the_event_does_not_move_the_adjustment() -> None:
    event_day = day(0, 10)
    for i in range(52, 56):  # 13:00-14:00: pre-cooling spike
        event_day[i] = D(100)
    assert TenOfTen(excluded_days=EVENTS).estimate(HISTORY, event_day, BLOCKS)[0] == D("14.5")


def test_an_event_day_not_excluded_counts_like_any_other() -> None:
    # without the exclusion Jan 13 (900/901 kW) replaces Dec 30 (19 kW): (145 - 19 + 900) / 10
    estimate = TenOfTen(adjust=False).estimate(HISTORY, day(0), BLOCKS)
    assert estimate[0] == D("102.6")


def test_ten_of_ten_with_too_few_eligible_days_says_so() -> None:
    few = {d: HISTORY[d] for d in sorted(LOADS)[-4:]}  # Jan 8, 9, 13, 14; 13 is an event
    with pytest.raises(InsufficientData, match=r"3 eligible days .* need at least 5") as caught:
        TenOfTen(excluded_days=EVENTS).estimate(few, day(0), BLOCKS)
    assert caught.value.status == 422


def test_days_outside_the_lookback_do_not_count() -> None:
    old = {d - timedelta(days=60): s for d, s in HISTORY.items()}
    with pytest.raises(InsufficientData):
        TenOfTen().estimate(old, day(0), BLOCKS)


def test_an_event_too_early_for_the_adjustment_window_is_refused_not_guessed() -> None:
    early = EventBlocks(day=EVENT_DAY, isps=(8, 9))  # 02:00: the window would start at 21:00
    with pytest.raises(InsufficientData, match="before midnight"):
        TenOfTen().estimate(HISTORY, day(0), early)
    assert TenOfTen(adjust=False, excluded_days=EVENTS).estimate(HISTORY, day(0), early) == (
        D(10),
        D(10),
    )


def test_a_weekend_event_uses_weekend_days() -> None:
    saturday = EventBlocks(day=date(2026, 1, 17), isps=BLOCKS.isps)
    estimate = TenOfTen(adjust=False, min_days=4).estimate(HISTORY, day(0), saturday)
    assert estimate == (D(500), D(501), D(500), D(500))


def test_high_x_of_y_averages_the_highest_load_days_of_the_last_y() -> None:
    # last 4 eligible: Jan 14 (10), 9 (11), 8 (12), 7 (13) -> highest two: 13 and 12
    method = HighXOfY(x=2, y=4, excluded_days=EVENTS)
    assert method.estimate(HISTORY, day(0), BLOCKS) == (D("12.5"), D("13.5"), D("12.5"), D("12.5"))
    assert method.name == "high-2-of-4"


def test_high_x_of_y_needs_x_days() -> None:
    with pytest.raises(InsufficientData, match="need at least 5"):
        HighXOfY().estimate({EVENT_DAY - timedelta(days=1): day(3)}, day(0), BLOCKS)


@pytest.mark.parametrize(
    ("method", "changes", "expected"),
    [
        (MeterBeforeMeterAfter(), {55: "7", 54: "9"}, "7"),
        (MeterBeforeMeterAfter(readings=2), {55: "7", 54: "9"}, "8"),
        (MeterBeforeMeterAfter(), {55: None, 54: "9"}, "9"),
        (MeterBeforeMeterAfter(readings=3), {55: "1", 54: "2", 53: "2"}, "1.667"),
    ],
    ids=["last-reading", "mean-of-two", "skips-a-gap", "rounded-to-a-watt"],
)
def test_meter_before_holds_the_reading_before_the_event_flat(
    method: MeterBeforeMeterAfter, changes: dict[int, str | None], expected: str
) -> None:
    event_day = day(0)
    for isp, value in changes.items():
        event_day[isp] = None if value is None else D(value)
    assert method.estimate({}, event_day, BLOCKS) == (D(expected),) * 4


def test_meter_before_looks_into_the_previous_day_for_a_midnight_event() -> None:
    previous = day(0)
    previous[95] = D("4.2")
    midnight = EventBlocks(day=EVENT_DAY, isps=(0, 1))
    assert MeterBeforeMeterAfter().estimate(
        {EVENT_DAY - timedelta(days=1): previous}, day(0), midnight
    ) == (D("4.2"), D("4.2"))


def test_meter_before_without_readings_in_reach_says_so() -> None:
    event_day: list[Decimal | None] = [None] * 96
    event_day[50] = D(3)  # 5 ISPs before the start: beyond the 4-ISP lookback
    with pytest.raises(InsufficientData, match="0 readings in the 4 ISPs"):
        MeterBeforeMeterAfter().estimate({}, event_day, BLOCKS)


def test_params_are_recorded_in_the_description() -> None:
    assert baseline.describe(TenOfTen()) == (
        "10-of-10(adjust=True, adjustment_cap=0.2, days=10, lookback_days=45, min_days=5)"
    )
    assert baseline.describe(MeterBeforeMeterAfter()) == (
        "meter-before-meter-after(lookback_isps=4, readings=1)"
    )


def test_a_request_maps_onto_the_isps_of_its_day() -> None:
    request = make_flex_request()  # NOW + 2 h = 14:00 UTC, four 15-minute blocks
    assert baseline.event_blocks(request) == BLOCKS
    with pytest.raises(MarketError, match="ISP boundary"):
        baseline.event_blocks(make_flex_request(start=NOW + HOUR + 5 * MINUTE))
    with pytest.raises(MarketError, match="midnight"):
        baseline.event_blocks(make_flex_request(start=NOW + 11 * HOUR + 30 * MINUTE))


def award(bid: str, node: str, kw: tuple[int, ...]) -> Award:
    return Award(
        request_id=make_flex_request().request_id,
        bid_id=BidId(bid),
        node_id=NodeId(node),
        aggregator_id=AggregatorId("agg-1"),
        awarded_kw=tuple(D(v) for v in kw),
        price_eur_per_kwh=D("0.2"),
        activation_factor=D(1),
    )


def test_delivered_is_baseline_minus_actual_for_awarded_blocks_with_readings() -> None:
    deliveries = baseline.delivered(
        [award("a", "n1", (5, 5, 0, 5))],
        {NodeId("n1"): (D(20), D(20), D(20), D(18))},
        {NodeId("n1"): (D(14), None, D(20), D(19))},
        method=MeterBeforeMeterAfter(),
    )
    assert [(d.block, d.delivered_kw) for d in deliveries] == [(0, D(6)), (3, D(-1))]
    assert deliveries[0].method == "meter-before-meter-after(lookback_isps=4, readings=1)"


def test_two_awards_at_one_node_share_its_reduction_pro_rata() -> None:
    deliveries = baseline.delivered(
        [award("a", "n1", (3,)), award("b", "n1", (1,)), award("c", "n2", (2,))],
        {NodeId("n1"): (D(20),)},  # n2 has no baseline: no delivery
        {NodeId("n1"): (D(12),), NodeId("n2"): (D(1),)},
        method="manual",
    )
    assert {d.bid_id: d.delivered_kw for d in deliveries} == {"a": D(6), "b": D(2)}


def _history(loads: list[list[int]]) -> dict[date, DayReadings]:
    """Weekdays back from the event day, each with its own per-block event-ISP loads."""
    history: dict[date, DayReadings] = {}
    when = EVENT_DAY
    for per_block in loads:
        when -= timedelta(days=1)
        while when.weekday() >= 5:
            when -= timedelta(days=1)
        series: list[Decimal | None] = [D(10)] * 96
        for isp, kw in zip(BLOCKS.isps, per_block, strict=True):
            series[isp] = D(kw)
        history[when] = series
    return history


day_loads = st.lists(st.integers(0, 500), min_size=4, max_size=4)


@settings(max_examples=100, deadline=None)
@given(st.lists(day_loads, min_size=5, max_size=12), st.integers(0, 40))
def test_baseline_properties(loads: list[list[int]], window_kw: int) -> None:
    history = _history(loads)
    used = loads[:10]
    plain = TenOfTen(adjust=False).estimate(history, day(0), BLOCKS)
    for block, kw in enumerate(plain):  # a mean lies between the days it averages
        column = [D(day_kw[block]) for day_kw in used]
        assert min(column) <= kw <= max(column)
    # the adjustment moves the baseline by at most 20 % (plus a watt of rounding)
    adjusted = TenOfTen().estimate(history, day(0, window_kw), BLOCKS)
    for before, after in zip(plain, adjusted, strict=True):
        assert before * D("0.8") - D("0.001") <= after <= before * D("1.2") + D("0.001")
    # high-n-of-n takes every day: the same as an unadjusted n-of-n
    n = len(used)
    assert HighXOfY(x=n, y=n).estimate(history, day(0), BLOCKS) == (
        TenOfTen(days=n, min_days=n, adjust=False).estimate(history, day(0), BLOCKS)
    )
    # high-x-of-y's days are the highest: their event load is at least the y-day mean
    high = HighXOfY(x=2, y=5).estimate(history, day(0), BLOCKS)
    five = TenOfTen(days=5, adjust=False).estimate(history, day(0), BLOCKS)
    assert sum(high) >= sum(five) - D("0.004")
