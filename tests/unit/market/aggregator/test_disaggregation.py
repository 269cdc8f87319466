"""Disaggregation: the DSO's kW shared across members by what each can give; re-dispatch."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.aggregator import disaggregation
from market.aggregator.disaggregation import DeviceInfo, MemberFlex
from market.dispatch import KW
from oadr.enums import SignalName, SignalType
from oadr.model import Event, EventInterval, EventSignal
from tests.factories import HOUR, make_event
from ven.model import DeviceKind

EV = DeviceInfo(device_id="ev", kind=DeviceKind.EV_CHARGER, rating_kw=11.0)
PUMP = DeviceInfo(device_id="hp", kind=DeviceKind.HEAT_PUMP, rating_kw=3.0)
BATTERY = DeviceInfo(device_id="bat", kind=DeviceKind.BATTERY, rating_kw=5.0)
PV = DeviceInfo(device_id="pv", kind=DeviceKind.PV, rating_kw=5.0)


def flex(member: str, kw: float, *, opted_out: bool = False) -> MemberFlex:
    return MemberFlex(member=member, available_kw=kw, opted_out=opted_out)


@pytest.mark.parametrize(
    ("device", "power_kw", "available_kw"),
    [
        (EV, 11.0, 11.0),
        (EV, 4.0, 4.0),  # sheds what it draws
        (EV, 15.0, 11.0),  # never more than its rating
        (EV, None, 0.0),  # not heard from: nothing
        (PUMP, 0.0, 0.0),  # off: nothing to shed now
        (BATTERY, 2.0, 7.0),  # stops charging, then feeds in at its rate
        (BATTERY, -1.0, 5.0),
        (PV, -4.0, 0.0),  # not steered by a reduction
    ],
    ids=["ev-full", "ev-part", "ev-capped", "ev-silent", "pump-off", "battery-charging",
         "battery-feeding", "pv"],
)  # fmt: skip
def test_what_a_device_can_give(
    device: DeviceInfo, power_kw: float | None, available_kw: float
) -> None:
    assert disaggregation.device_available_kw(device, power_kw) == available_kw


def test_a_member_gives_the_sum_of_its_devices() -> None:
    devices = (EV, PUMP, PV)
    assert disaggregation.member_available_kw(devices, {"ev": 7.0, "hp": 3.0, "pv": -2}) == 10.0


def _dispatch_event(signal_type: SignalType, *values: float) -> Event:
    signal = EventSignal(
        signal_name=SignalName.LOAD_DISPATCH,
        signal_type=signal_type,
        signal_id="s",
        intervals=tuple(EventInterval(uid=i, duration=HOUR, value=v) for i, v in enumerate(values)),
        item_base=KW,
    )
    return replace(make_event(), signals=(signal,))


@pytest.mark.parametrize(
    ("signal_type", "values", "baseline_kw", "expected"),
    [
        (SignalType.DELTA, (-10.0, -4.0), 50.0, (10.0, 4.0)),
        (SignalType.DELTA, (2.0,), 50.0, (0.0,)),  # an increase is no reduction to share
        (SignalType.SETPOINT, (40.0, 45.0), 50.0, (10.0, 5.0)),  # a cap below the baseline
    ],
    ids=["delta", "delta-up", "setpoint"],
)
def test_the_reduction_an_event_asks(
    signal_type: SignalType, values: tuple[float, ...], baseline_kw: float,
    expected: tuple[float, ...],
) -> None:  # fmt: skip
    event = _dispatch_event(signal_type, *values)
    assert disaggregation.requested_kw(event, baseline_kw) == expected


def test_a_simple_event_asks_no_kw() -> None:
    assert disaggregation.requested_kw(make_event(), 50.0) is None


def test_shares_are_proportional_to_what_members_can_give() -> None:
    shares = disaggregation.share(6.0, [flex("a", 2.0), flex("b", 4.0), flex("c", 6.0)])
    assert shares == pytest.approx({"a": 1.0, "b": 2.0, "c": 3.0})


def test_an_opted_out_member_gets_nothing() -> None:
    shares = disaggregation.share(6.0, [flex("a", 6.0, opted_out=True), flex("b", 6.0)])
    assert shares == {"a": 0.0, "b": 6.0}


def test_more_than_the_members_can_give_leaves_a_shortfall() -> None:
    result = disaggregation.plan([5.0, 20.0], [flex("a", 4.0), flex("b", 8.0)])
    assert result.shares_kw["a"] == pytest.approx((5 / 3, 4.0))
    assert result.shares_kw["b"] == pytest.approx((10 / 3, 8.0))
    assert result.shortfall_kw == pytest.approx((0.0, 8.0))
    assert not disaggregation.can_deliver(result, [5.0, 20.0], tolerance=0.1)
    assert disaggregation.can_deliver(result, [5.0, 20.0], tolerance=0.4)


@given(
    needed=st.lists(st.floats(0, 500), min_size=1, max_size=6),
    available=st.lists(st.floats(0, 50), min_size=1, max_size=30),
)
def test_no_member_is_asked_more_than_it_can_give_and_the_total_adds_up(
    needed: list[float], available: list[float]
) -> None:
    members = [flex(f"m{i}", kw) for i, kw in enumerate(available)]
    result = disaggregation.plan(needed, members)
    for m in members:
        assert all(kw <= m.available_kw + 1e-9 for kw in result.shares_kw[m.member])
    for i, kw in enumerate(needed):
        assert result.total_kw(i) + result.shortfall_kw[i] == pytest.approx(kw, abs=1e-6)
        assert result.total_kw(i) <= kw + 1e-6


def test_the_rest_is_redispatched_to_the_others() -> None:
    members = [flex("a", 10.0), flex("b", 10.0), flex("c", 10.0), flex("d", 10.0)]
    first = disaggregation.plan([16.0], members)
    assert first.shares_kw["a"] == pytest.approx((4.0,))
    # a opts out (delivers nothing), b delivers 1 kW of its 4: c and d make up the other 15.
    again = disaggregation.redispatch([16.0], members, {"a": 0.0, "b": 1.0})
    assert set(again.shares_kw) == {"c", "d"}  # a's and b's events are left alone
    assert again.shares_kw["c"] == pytest.approx((7.5,))
    assert again.shortfall_kw == pytest.approx((0.0,))


def test_a_member_whose_load_went_up_is_made_up_for_too() -> None:
    members = [flex("a", 10.0), flex("b", 10.0), flex("c", 10.0)]
    again = disaggregation.redispatch([12.0], members, {"a": -2.0})  # a's oven came on
    assert again.total_kw(0) == pytest.approx(14.0)


def test_what_the_others_cannot_make_up_is_a_shortfall() -> None:
    members = [flex("a", 10.0), flex("b", 3.0)]
    again = disaggregation.redispatch([10.0], members, {"a": 0.0})
    assert again.shares_kw == {"b": pytest.approx((3.0,))}
    assert again.shortfall_kw == pytest.approx((7.0,))
    assert not disaggregation.can_deliver(again, [10.0], tolerance=0.1)


@pytest.mark.parametrize(
    ("assigned_kw", "delivered_kw", "failing"),
    [(5.0, 5.0, False), (5.0, 4.6, False), (5.0, 4.4, True), (0.5, 0.45, False),
     (0.5, 0.3, True), (5.0, 7.0, False)],
    ids=["exact", "within-10%", "short", "small-noise", "small-short", "over"],
)  # fmt: skip
def test_under_delivery_is_beyond_the_tolerance(
    assigned_kw: float, delivered_kw: float, failing: bool
) -> None:
    assert disaggregation.under_delivers(assigned_kw, delivered_kw, 0.1) is failing


def test_small_moves_of_a_share_are_not_a_change() -> None:
    assert not disaggregation.changed((1.0, 2.0), (1.01, 2.0), 0.05)
    assert disaggregation.changed((1.0, 2.0), (1.2, 2.0), 0.05)
    assert disaggregation.changed((1.0,), (1.0, 2.0), 0.05)


def test_a_member_is_judged_grace_after_its_share_reached_it() -> None:
    start = datetime(2026, 7, 1, 12, tzinfo=UTC)
    grace = timedelta(seconds=30)
    made = start - timedelta(minutes=5)

    def judged(delivered: datetime | None, changed: datetime | None = made) -> datetime | None:
        return disaggregation.judged_from(
            start=start, changed_at=changed, delivered_at=delivered, grace=grace
        )

    # Received well before the start: judged from grace after the start.
    assert judged(made + timedelta(seconds=2)) == start + grace
    # Received late (it polls slowly, or was offline): judged from grace after it got it, so
    # readings from before it could act do not make it look like it fails.
    late = start + timedelta(minutes=2)
    assert judged(late) == late + grace
    # Not received yet, or only an older modification: not judged at all.
    assert judged(None) is None
    assert judged(made - timedelta(seconds=1)) is None
    # The time its share last changed is not known (the aggregator restarted): the delivery counts.
    assert judged(made - timedelta(seconds=1), changed=None) == start + grace
