"""The household's opt decisions and preferences (ven.policy)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from oadr.enums import ItemKind, OptType, SignalName, SignalType
from oadr.model import Event, EventSignal, Target
from tests.factories import (
    EVENT_ID,
    HOUR,
    NOW,
    base_load,
    battery,
    ev,
    heat_pump,
    make_event,
    make_item_base,
    make_signal,
    pv,
)
from ven import policy
from ven.model import DeviceState
from ven.policy import Preferences, QuietWindow, decide

# net import now 13.5 kW; left alone (heat pump at its 3 kW rating) 14.5 kW; the devices can give
# battery 5 + EV 11 + heat pump 3 = 19 kW
HOUSEHOLD = (heat_pump(), ev(), battery(), base_load())


def signal(name: SignalName, kind: SignalType, *values: float, **changes: Any) -> EventSignal:
    return make_signal(values, signal_name=name, signal_type=kind, **changes)


def dispatch(*values_kw: float, kind: SignalType = SignalType.SETPOINT) -> EventSignal:
    return signal(SignalName.LOAD_DISPATCH, kind, *values_kw, item_base=make_item_base())


def price(*values: float, kind: SignalType = SignalType.PRICE) -> EventSignal:
    unit = make_item_base(ItemKind.CURRENCY_PER_KWH, description="currencyPerKWh", units="EUR")
    return signal(SignalName.ELECTRICITY_PRICE, kind, *values, item_base=unit)


def capacity(value: float) -> EventSignal:
    return signal(SignalName.LOAD_CONTROL, SignalType.LOAD_CONTROL_CAPACITY, value)


def event(*signals: EventSignal, duration: timedelta = HOUR, **changes: Any) -> Event:
    """An event at NOW + 1 h; every signal's intervals split its duration evenly."""
    fitted = tuple(
        replace(s, intervals=tuple(
            replace(i, duration=duration / len(s.intervals)) for i in s.intervals
        ))
        for s in signals or (make_signal(),)
    )  # fmt: skip
    return make_event(duration=duration, signals=fitted, **changes)


# (id, event, preference changes, household, opt, reason fragment naming the rule)
CASES: list[tuple[str, Event, dict[str, Any], tuple[DeviceState, ...], OptType, str]] = [
    ("manual-override", event(), {"opted_out_events": frozenset({EVENT_ID})}, HOUSEHOLD,
     OptType.OPT_OUT, "optOut (override): you opted out of event event-1 yourself"),
    ("override-beats-an-otherwise-welcome-event", event(capacity(0.5)),
     {"opted_out_events": frozenset({EVENT_ID})}, HOUSEHOLD, OptType.OPT_OUT, "(override)"),
    ("test-event-not-taken-part-in", event(test_event=True), {}, HOUSEHOLD,
     OptType.OPT_OUT, "optOut (test)"),
    ("test-event-taken-part-in", event(test_event=True),
     {"participate_in_test_events": True}, HOUSEHOLD, OptType.OPT_IN, "optIn (default)"),
    ("test-event-taken-part-in-still-checked", event(test_event=True, duration=4 * HOUR),
     {"participate_in_test_events": True}, HOUSEHOLD, OptType.OPT_OUT, "(duration)"),
    ("no-signal-acted-on", event(signal(SignalName.BID_PRICE, SignalType.PRICE, 0.4)), {},
     HOUSEHOLD, OptType.OPT_OUT, "optOut (signals): no signal this household acts on"),
    ("quiet-hours-overlap", event(),
     {"do_not_disturb": (QuietWindow(start=time(13, 30), end=time(14, 30)),)}, HOUSEHOLD,
     OptType.OPT_OUT, "optOut (do-not-disturb): event overlaps your quiet hours 13:30-14:30"),
    ("quiet-hours-right-after-the-event", event(),
     {"do_not_disturb": (QuietWindow(start=time(14, 0), end=time(15, 0)),)}, HOUSEHOLD,
     OptType.OPT_IN, "(default)"),
    ("quiet-hours-in-local-time", event(),  # 13:00-14:00 UTC is 14:00-15:00 in Ljubljana
     {"do_not_disturb": (QuietWindow(start=time(14, 30), end=time(15, 0)),),
      "timezone": ZoneInfo("Europe/Ljubljana")}, HOUSEHOLD, OptType.OPT_OUT, "(do-not-disturb)"),
    ("quiet-hours-past-midnight", event(start=datetime(2026, 1, 16, 3, 0, tzinfo=UTC)),
     {"do_not_disturb": (QuietWindow(start=time(22, 0), end=time(6, 0)),)}, HOUSEHOLD,
     OptType.OPT_OUT, "(do-not-disturb)"),
    ("quiet-hours-past-midnight-miss", event(),
     {"do_not_disturb": (QuietWindow(start=time(22, 0), end=time(6, 0)),)}, HOUSEHOLD,
     OptType.OPT_IN, "(default)"),
    ("too-long", event(duration=4 * HOUR), {}, HOUSEHOLD,
     OptType.OPT_OUT, "optOut (duration): event lasts 4h, longer than the 2h you accept"),
    ("exactly-as-long-as-accepted", event(duration=2 * HOUR), {}, HOUSEHOLD,
     OptType.OPT_IN, "(default)"),
    ("a-minute-too-long", event(duration=HOUR + timedelta(minutes=1)),
     {"max_shift": HOUR}, HOUSEHOLD, OptType.OPT_OUT, "event lasts 1h1m, longer than the 1h"),
    ("open-ended", event(duration=timedelta(0)), {}, HOUSEHOLD,
     OptType.OPT_OUT, "optOut (duration): event is open-ended"),
    ("nothing-may-be-touched", event(),
     {"untouchable": frozenset({"hp", "ev", "bat"})}, HOUSEHOLD,
     OptType.OPT_OUT, "optOut (controllable): nothing here may respond (heat pump hp off limits"),
    ("everything-offline-or-overridden", event(), {},
     (heat_pump(online=False), ev(manual_override=True), battery(online=False), base_load()),
     OptType.OPT_OUT, "EV ev under manual override"),
    ("only-pv-and-base-load", event(), {}, (pv(), base_load()),
     OptType.OPT_OUT, "(controllable)"),
    ("targeted-at-an-untouchable-device",
     event(make_signal(target=Target(end_device_assets=("hp",)))),
     {"untouchable": frozenset({"hp"})}, HOUSEHOLD, OptType.OPT_OUT, "heat pump hp off limits"),
    ("price-below-threshold", event(price(0.2)), {}, HOUSEHOLD,
     OptType.OPT_OUT, "optOut (price): price at most 0.2/kWh, not above your 0.3/kWh"),
    ("price-at-threshold", event(price(0.3)), {}, HOUSEHOLD, OptType.OPT_OUT, "(price)"),
    ("price-above-threshold", event(price(0.2, 0.45), duration=2 * HOUR), {}, HOUSEHOLD,
     OptType.OPT_IN, "optIn (price): price up to 0.45/kWh, above your 0.3/kWh"),
    ("price-relative-to-tariff", event(price(0.1, kind=SignalType.PRICE_RELATIVE)), {},
     HOUSEHOLD, OptType.OPT_IN, "price up to 0.35/kWh"),
    ("price-multiplier-of-tariff", event(price(1.1, kind=SignalType.PRICE_MULTIPLIER)), {},
     HOUSEHOLD, OptType.OPT_OUT, "price at most 0.275/kWh"),
    ("cheap-enough-to-charge", event(price(0.05)), {"low_price_per_kwh": Decimal("0.10")},
     HOUSEHOLD, OptType.OPT_IN, "below your 0.1/kWh: charging EV ev, battery bat"),
    ("cheap-but-nothing-to-charge", event(price(0.05)), {"low_price_per_kwh": Decimal("0.10")},
     (heat_pump(), ev(soc=1.0), base_load()), OptType.OPT_OUT, "(price)"),
    ("day-ahead-prices-high-for-an-hour",  # a price event's length is not a curtailment's
     event(price(*([0.2] * 11 + [0.5] + [0.2] * 12)), duration=24 * HOUR), {}, HOUSEHOLD,
     OptType.OPT_IN, "(price)"),
    ("prices-high-for-too-long", event(price(0.2, 0.5, 0.5, 0.5), duration=4 * HOUR), {},
     HOUSEHOLD, OptType.OPT_OUT,
     "optOut (duration): price above your threshold for 3h, longer than the 2h"),
    ("prices-high-in-quiet-hours",
     event(price(0.5, 0.2), duration=2 * HOUR),  # high 13:00-14:00, low 14:00-15:00
     {"do_not_disturb": (QuietWindow(start=time(13, 30), end=time(13, 45)),)}, HOUSEHOLD,
     OptType.OPT_OUT, "(do-not-disturb)"),
    ("prices-low-in-quiet-hours", event(price(0.5, 0.2), duration=2 * HOUR),
     {"do_not_disturb": (QuietWindow(start=time(14, 30), end=time(14, 45)),)}, HOUSEHOLD,
     OptType.OPT_IN, "(price)"),
    ("dispatch-reachable", event(dispatch(3.0)), {}, HOUSEHOLD, OptType.OPT_IN,
     "optIn (default): LOAD_DISPATCH setpoint 3 kW is reachable by shifting EV and battery"),
    ("dispatch-needs-the-heat-pump-too", event(dispatch(-3.0)), {}, HOUSEHOLD, OptType.OPT_IN,
     "by shifting heat pump, EV and battery within your comfort band"),
    ("dispatch-met-already", event(dispatch(20.0)), {}, HOUSEHOLD, OptType.OPT_IN,
     "LOAD_DISPATCH setpoint 20 kW is met already"),
    ("dispatch-in-watts", event(signal(
        SignalName.LOAD_DISPATCH, SignalType.SETPOINT, -5000.0,
        item_base=make_item_base(scale="none"))), {}, HOUSEHOLD, OptType.OPT_OUT,
     "LOAD_DISPATCH setpoint -5 kW needs"),
    ("dispatch-unreachable", event(dispatch(-5.0)), {}, HOUSEHOLD, OptType.OPT_OUT,
     "optOut (reach): LOAD_DISPATCH setpoint -5 kW needs 19.5 kW less;"
     " your devices can give 19.0 kW (battery bat, EV ev, heat pump hp)"),
    ("dispatch-worst-interval-decides", event(dispatch(10.0, -5.0), duration=2 * HOUR), {},
     HOUSEHOLD, OptType.OPT_OUT, "(reach)"),
    ("dispatch-delta-reachable", event(dispatch(-6.0, kind=SignalType.DELTA)), {}, HOUSEHOLD,
     OptType.OPT_IN, "LOAD_DISPATCH delta -6 kW is reachable by shifting EV and battery"),
    ("dispatch-delta-unreachable", event(dispatch(-6.0, kind=SignalType.DELTA)), {},
     (battery(), base_load()), OptType.OPT_OUT, "needs 6.0 kW less; your devices can give 5.0"),
    ("dispatch-with-an-empty-battery", event(dispatch(-1.0)), {}, (battery(soc=0.2), ev(),
     heat_pump(), base_load()), OptType.OPT_OUT, "(reach)"),
    ("dispatch-battery-runs-out-over-the-event",  # 6 kWh above reserve over 2h: 3 kW, not 5
     event(dispatch(-4.0), duration=2 * HOUR), {}, (battery(), base_load(power_kw=0.5)),
     OptType.OPT_OUT, "needs 4.5 kW less; your devices can give 3.0 kW"),
    ("dispatch-untouchable-device-counts-but-cannot-give", event(dispatch(3.0)),
     {"untouchable": frozenset({"ev"})}, HOUSEHOLD, OptType.OPT_OUT, "(reach)"),
    ("capacity-nothing-can-give", event(capacity(0.5)), {},
     (heat_pump(temperature_c=19.0), ev(soc=0.3), battery(), base_load()),
     OptType.OPT_OUT, "optOut (reach): LOAD_CONTROL x-loadControlCapacity 0.5: none of"),
    ("comfort-heat-pump-alone",  # (19.5 - 19) / 0.5 K/h = 1h of a 2h event
     event(capacity(0.0), duration=2 * HOUR), {}, (heat_pump(temperature_c=19.5), base_load()),
     OptType.OPT_OUT, "optOut (comfort): LOAD_CONTROL x-loadControlCapacity 0 rests on the"
     " heat pump hp; the room would reach 19 °C after 1h of the 2h event"),
    ("comfort-partly", event(capacity(0.0), duration=2 * HOUR), {},
     (heat_pump(temperature_c=19.5), ev(), base_load()), OptType.OPT_IN,
     "optIn (comfort): partly: LOAD_CONTROL x-loadControlCapacity 0 - the heat pump hp holds"
     " back for 1h of the 2h event"),
    ("comfort-half-cut-lasts-twice-as-long", event(capacity(0.5), duration=2 * HOUR), {},
     (heat_pump(temperature_c=19.5), base_load()), OptType.OPT_IN, "(default)"),
    ("comfort-warm-room", event(capacity(0.0), duration=2 * HOUR), {},
     (heat_pump(temperature_c=22.0), base_load()), OptType.OPT_IN, "(default)"),
    ("comfort-slow-cooling-house", event(capacity(0.0), duration=2 * HOUR),
     {"room_cooling_k_per_h": 0.2}, (heat_pump(temperature_c=19.5), base_load()),
     OptType.OPT_IN, "(default)"),
    ("comfort-dispatch-rests-on-heat-pump", event(dispatch(0.5), duration=2 * HOUR), {},
     (heat_pump(temperature_c=19.5), base_load()), OptType.OPT_OUT, "(comfort)"),
    ("comfort-dispatch-battery-covers-it", event(dispatch(0.5), duration=2 * HOUR), {},
     (heat_pump(temperature_c=19.5), battery(), base_load()), OptType.OPT_IN,
     "LOAD_DISPATCH setpoint 0.5 kW is reachable by shifting battery"),
    ("simple-welcome", event(), {}, HOUSEHOLD, OptType.OPT_IN,
     "optIn (default): SIMPLE level: heat pump hp, EV ev and battery bat can respond"),
    ("resource-id-naming-the-site", event(target=Target(resource_ids=("house-1",))), {},
     HOUSEHOLD, OptType.OPT_IN, "heat pump hp, EV ev and battery bat can respond"),
    ("resource-id-naming-one-device", event(target=Target(resource_ids=("ev",))), {},
     HOUSEHOLD, OptType.OPT_IN, "SIMPLE level: EV ev can respond"),
    ("asset-class-thermostat", event(make_signal(target=Target(end_device_assets=("Thermostat",)))),
     {}, HOUSEHOLD, OptType.OPT_IN, "SIMPLE level: heat pump hp can respond"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "changes", "household", "opt", "reason"),
    [pytest.param(*row[1:], id=row[0]) for row in CASES],
)
def test_decide_names_the_rule_that_decided(
    case: Event,
    changes: dict[str, Any],
    household: tuple[DeviceState, ...],
    opt: OptType,
    reason: str,
) -> None:
    decision = decide(case, replace(Preferences(), **changes), household, NOW)
    assert (decision.opt, reason in decision.reason) == (opt, True), decision.reason


@pytest.mark.parametrize(
    ("case", "changes", "household"), [pytest.param(*row[1:4], id=row[0]) for row in CASES]
)
def test_decide_does_not_depend_on_the_order_devices_are_listed_in(
    case: Event, changes: dict[str, Any], household: tuple[DeviceState, ...]
) -> None:
    preferences = replace(Preferences(), **changes)
    forwards = decide(case, preferences, household, NOW)
    backwards = decide(case, preferences, household[::-1], NOW)
    assert forwards.opt == backwards.opt


def test_the_briefs_examples_read_as_promised() -> None:
    too_long = decide(event(duration=4 * HOUR), Preferences(), HOUSEHOLD, NOW)
    reachable = decide(event(dispatch(-3.0)), Preferences(), HOUSEHOLD, NOW)
    assert too_long.reason == "optOut (duration): event lasts 4h, longer than the 2h you accept"
    assert reachable.reason == (
        "optIn (default): LOAD_DISPATCH setpoint -3 kW is reachable by shifting heat pump, EV"
        " and battery within your comfort band"
    )


# --- preferences ----------------------------------------------------------------------------------


def test_preferences_load_from_a_toml_style_table() -> None:
    loaded = Preferences.from_dict(
        {
            "comfort_min_c": 20,
            "comfort_max_c": 22.5,
            "untouchable": ["fridge", "ev"],
            "max_shift_minutes": 90,
            "price_threshold_per_kwh": "0.35",
            "low_price_per_kwh": 0.08,
            "tariff_per_kwh": "0.22",
            "ev_min_soc": 0.7,
            "battery_reserve_soc": 0.3,
            "participate_in_test_events": True,
            "opted_out_events": ["event-9"],
            "do_not_disturb": [{"start": "22:00", "end": "06:30"}],
            "timezone": "Europe/Ljubljana",
            "room_cooling_k_per_h": 0.3,
        }
    )
    assert loaded == Preferences(
        comfort_min_c=20.0,
        comfort_max_c=22.5,
        untouchable=frozenset({"fridge", "ev"}),
        max_shift=timedelta(minutes=90),
        price_threshold_per_kwh=Decimal("0.35"),
        low_price_per_kwh=Decimal("0.08"),
        tariff_per_kwh=Decimal("0.22"),
        ev_min_soc=0.7,
        battery_reserve_soc=0.3,
        participate_in_test_events=True,
        opted_out_events=frozenset({"event-9"}),  # type: ignore[arg-type]
        do_not_disturb=(QuietWindow(start=time(22, 0), end=time(6, 30)),),
        timezone=ZoneInfo("Europe/Ljubljana"),
        room_cooling_k_per_h=0.3,
    )


def test_an_empty_table_gives_the_defaults() -> None:
    assert Preferences.from_dict({}) == Preferences()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"comfort_min": 19}, "unknown preference(s): comfort_min", id="typo"),
        pytest.param({"comfort_min_c": "19"}, "'comfort_min_c': expected a number", id="string"),
        pytest.param({"ev_min_soc": True}, "'ev_min_soc': expected a number", id="bool"),
        pytest.param({"untouchable": "ev"}, "expected a list of strings", id="not-a-list"),
        pytest.param({"price_threshold_per_kwh": "cheap"}, "price_threshold_per_kwh", id="money"),
        pytest.param({"participate_in_test_events": 1}, "expected true or false", id="flag"),
        pytest.param({"do_not_disturb": [{"start": "22:00"}]}, "expected {", id="window-half"),
        pytest.param(
            {"do_not_disturb": [{"start": "25:00", "end": "06:00"}]}, "do_not_disturb", id="hour"
        ),
        pytest.param(
            {"do_not_disturb": [{"start": "06:00", "end": "06:00"}]}, "different", id="empty"
        ),
        pytest.param({"timezone": "Mars/Olympus"}, "'timezone'", id="zone"),
        pytest.param({"comfort_min_c": 23}, "comfort_min_c must be below", id="band-upside-down"),
        pytest.param({"battery_reserve_soc": 1.5}, "within 0..1", id="soc-over-1"),
        pytest.param({"max_shift_minutes": -5}, "must not be negative", id="negative-shift"),
        pytest.param({"room_cooling_k_per_h": 0}, "must be positive", id="no-cooling"),
        pytest.param({"low_price_per_kwh": 0.4}, "low_price_per_kwh must be below", id="low"),
    ],
)
def test_bad_preferences_are_refused_with_the_key_named(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        Preferences.from_dict(data)
    assert message in str(caught.value)


def test_a_manual_opt_out_is_added_to_the_preferences() -> None:
    preferences = Preferences().with_opt_out(EVENT_ID)
    assert decide(event(), preferences, HOUSEHOLD, NOW).opt == OptType.OPT_OUT
    assert preferences.with_opt_out(EVENT_ID) == preferences


# --- the flexibility model the decisions and control share ----------------------------------------


@pytest.mark.parametrize(
    ("device", "most_kw", "least_kw"),
    [
        pytest.param(heat_pump(), 3.0, 0.0, id="heat-pump-warm-room"),
        pytest.param(heat_pump(temperature_c=19.0), 3.0, 3.0, id="heat-pump-at-comfort-min"),
        pytest.param(heat_pump(temperature_c=None), 3.0, 3.0, id="heat-pump-room-unknown"),
        pytest.param(heat_pump(max_power_kw=None), 2.0, 2.0, id="heat-pump-no-rating"),
        pytest.param(ev(max_power_kw=None, power_kw=4.0), 4.0, 4.0, id="ev-no-rating"),
        pytest.param(ev(), 11.0, 0.0, id="ev-above-minimum"),
        pytest.param(ev(soc=0.4), 11.0, 11.0, id="ev-below-minimum"),
        pytest.param(ev(soc=None, power_kw=0.0), 0.0, 0.0, id="ev-no-car"),
        pytest.param(battery(), 0.0, -5.0, id="battery-full-rate"),
        pytest.param(battery(soc=0.2), 0.0, 0.0, id="battery-at-reserve"),
        pytest.param(battery(soc=0.3), 0.0, -2.0, id="battery-energy-lasts-half-an-hour"),
        pytest.param(battery(power_kw=2.0), 2.0, -5.0, id="battery-charging"),
        pytest.param(battery(max_feed_in_kw=None), 0.0, 0.0, id="battery-no-rating"),
    ],
)
def test_flexibility_keeps_to_ratings_and_preferences(
    device: DeviceState, most_kw: float, least_kw: float
) -> None:
    flex = policy.flexibility(device, Preferences(), hours=0.5)
    assert flex is not None
    assert (flex.most_kw, flex.least_kw) == pytest.approx((most_kw, least_kw))


def test_pv_and_base_load_have_no_flexibility() -> None:
    assert policy.flexibility(pv(), Preferences(), None) is None
    assert policy.flexibility(base_load(), Preferences(), None) is None


@pytest.mark.parametrize(
    ("reduction_kw", "given"),
    [
        pytest.param(3.0, {"bat": 3.0}, id="battery-first"),
        pytest.param(8.0, {"bat": 5.0, "ev": 3.0}, id="then-ev"),
        pytest.param(17.0, {"bat": 5.0, "ev": 11.0, "hp": 1.0}, id="heat-pump-last"),
        pytest.param(30.0, {"bat": 5.0, "ev": 11.0, "hp": 3.0}, id="short"),
        pytest.param(0.0, {}, id="nothing"),
    ],
)
def test_allocate_follows_the_merit_order(reduction_kw: float, given: dict[str, float]) -> None:
    flexes = policy.flexibilities(HOUSEHOLD, Preferences(), None)
    shares = policy.allocate(reduction_kw, flexes)
    assert {f.device.device_id: g for f, g in shares} == pytest.approx(given)


@pytest.mark.parametrize(
    ("value", "units", "scale", "kilo"),
    [
        pytest.param(3.0, "W", "k", 3.0, id="kW"),
        pytest.param(3000.0, "W", "none", 3.0, id="W"),
        pytest.param(2.0, "W", "M", 2000.0, id="MW"),
        pytest.param(9.0, "Wh", "k", 9.0, id="kWh"),
        pytest.param(4.0, None, None, 4.0, id="no-item-base"),
    ],
)
def test_power_and_energy_values_are_read_in_kilo(
    value: float, units: str | None, scale: str | None, kilo: float
) -> None:
    assert policy.in_kilo(value, units, scale) == pytest.approx(kilo)
