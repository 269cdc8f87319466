"""oadr.events: event status over time, values, randomization, validation, modification."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from oadr import events
from oadr.enums import EventStatus, ItemKind, ResponseCode, ResponseRequired, SignalName, SignalType
from oadr.errors import (
    InvalidData,
    InvalidId,
    NotAllowed,
    OadrError,
    OutOfSequence,
    SignalNotSupported,
)
from oadr.events import Change
from oadr.model import Event, EventBaseline, EventId, Target, VenId
from tests.factories import (
    HOUR,
    MINUTE,
    make_active_period,
    make_distribute_event,
    make_event,
    make_intervals,
    make_item_base,
    make_signal,
)

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
ZERO = timedelta(0)


def _event_at(start: datetime = NOW, duration: timedelta = HOUR, **period: Any) -> Event:
    event = make_event(start=start, duration=duration)
    return replace(event, active_period=replace(event.active_period, **period))


# --- status ---------------------------------------------------------------------------------------

STATUS_CASES = [
    ("far-before-ramp-up", _event_at(ramp_up=10 * MINUTE), NOW - 10 * MINUTE - US, "far"),
    ("near-at-ramp-up-start", _event_at(ramp_up=10 * MINUTE), NOW - 10 * MINUTE, "near"),
    ("near-just-before-start", _event_at(ramp_up=10 * MINUTE), NOW - US, "near"),
    ("active-at-dtstart", _event_at(ramp_up=10 * MINUTE), NOW, "active"),
    ("active-just-before-end", _event_at(), NOW + HOUR - US, "active"),
    ("completed-at-end", _event_at(), NOW + HOUR, "completed"),
    ("completed-after-end", _event_at(), NOW + 2 * HOUR, "completed"),
    ("no-ramp-up-no-near", _event_at(), NOW - US, "far"),
    ("notification-is-not-near", _event_at(notification=HOUR), NOW - MINUTE, "far"),
    ("open-ended-never-completes", _event_at(duration=ZERO), NOW + 1000 * 24 * HOUR, "active"),
    ("open-ended-far-before", _event_at(duration=ZERO), NOW - US, "far"),
]


@pytest.mark.parametrize(
    ("event", "now", "expected"),
    [pytest.param(e, n, x, id=i) for i, e, n, x in STATUS_CASES],
)
def test_status_follows_dtstart_ramp_up_and_duration(
    event: Event, now: datetime, expected: str
) -> None:
    assert events.status(event, now) == EventStatus(expected)


@pytest.mark.parametrize(
    "now",
    [NOW - HOUR, NOW, NOW + 30 * MINUTE, NOW + 2 * HOUR],
    ids=["far", "start", "mid", "after"],
)
def test_cancelled_event_stays_cancelled_at_any_time(now: datetime) -> None:
    event = replace(_event_at(), status=EventStatus.CANCELLED)
    assert events.status(event, now) == EventStatus.CANCELLED


def test_status_ignores_the_status_field_except_cancelled() -> None:
    stale = replace(_event_at(), status=EventStatus.FAR)
    assert events.status(stale, NOW + MINUTE) == EventStatus.ACTIVE


# --- current interval and value -------------------------------------------------------------------


def _three_step_event(duration: timedelta = HOUR, last: timedelta = 15 * MINUTE) -> Event:
    signal = make_signal(values=(1.0, 2.0, 3.0), durations=(15 * MINUTE, 30 * MINUTE, last))
    return make_event(start=NOW, duration=duration, signals=(signal,))


VALUE_CASES = [
    ("before-start", _three_step_event(), NOW - US, 0.0, None),
    ("at-start-first-interval", _three_step_event(), NOW, 1.0, 0),
    ("end-of-first", _three_step_event(), NOW + 15 * MINUTE - US, 1.0, 0),
    ("start-of-second", _three_step_event(), NOW + 15 * MINUTE, 2.0, 1),
    ("start-of-third", _three_step_event(), NOW + 45 * MINUTE, 3.0, 2),
    ("last-instant", _three_step_event(), NOW + HOUR - US, 3.0, 2),
    ("completed", _three_step_event(), NOW + HOUR, 0.0, None),
    ("open-ended-last-interval", _three_step_event(ZERO, ZERO), NOW + 900 * HOUR, 3.0, 2),
    (
        "open-ended-past-its-intervals",
        _three_step_event(ZERO, 15 * MINUTE),
        NOW + HOUR,
        0.0,
        None,
    ),
    (
        "cancelled-while-active",
        replace(_three_step_event(), status=EventStatus.CANCELLED),
        NOW + MINUTE,
        0.0,
        None,
    ),
]


@pytest.mark.parametrize(
    ("event", "now", "value", "uid"),
    [pytest.param(e, n, v, u, id=i) for i, e, n, v, u in VALUE_CASES],
)
def test_current_value_is_the_current_intervals_value_while_active(
    event: Event, now: datetime, value: float, uid: int | None
) -> None:
    signal = event.signals[0]
    interval = events.current_interval(signal, event, now)
    assert (interval.uid if interval else None) == uid
    assert events.current_value(signal, event, now) == value


def test_refresh_sets_status_and_current_values_without_a_modification() -> None:
    event = _three_step_event()
    shown = events.refresh(event, NOW + 20 * MINUTE)
    assert shown.status == EventStatus.ACTIVE
    assert [s.current_value for s in shown.signals] == [2.0]
    assert shown.modification_number == event.modification_number
    later = events.refresh(event, NOW + 2 * HOUR)
    assert (later.status, later.signals[0].current_value) == (EventStatus.COMPLETED, 0.0)


# --- randomization ------------------------------------------------------------------------------

WINDOW = 10 * MINUTE
JUST_BELOW_ONE = math.nextafter(1.0, 0.0)


@pytest.mark.parametrize(
    ("draw", "expected"),
    [
        pytest.param(0.0, NOW, id="draw-0-is-dtstart"),
        pytest.param(0.5, NOW + 5 * MINUTE, id="draw-half-is-mid-window"),
        pytest.param(JUST_BELOW_ONE, NOW + WINDOW - US, id="draw-just-below-1-stays-inside"),
    ],
)
def test_effective_start_spreads_over_the_startafter_window(
    draw: float, expected: datetime
) -> None:
    event = _event_at(start_after=WINDOW)
    start = events.effective_start(event, draw)
    assert start == expected
    assert NOW <= start < NOW + WINDOW


@pytest.mark.parametrize("draw", [0.0, 0.7, JUST_BELOW_ONE], ids=["0", "0.7", "almost-1"])
def test_effective_start_without_startafter_is_dtstart(draw: float) -> None:
    assert events.effective_start(_event_at(), draw) == NOW


@pytest.mark.parametrize("draw", [-0.1, 1.0, 1.5, math.nan], ids=["neg", "one", "big", "nan"])
def test_draw_outside_unit_interval_is_a_programming_error(draw: float) -> None:
    with pytest.raises(ValueError, match="draw"):
        events.effective_start(_event_at(start_after=WINDOW), draw)


def test_randomized_event_runs_its_full_duration_from_the_effective_start() -> None:
    event = _event_at(start_after=WINDOW)
    mine = events.randomized(event, 0.5)
    assert events.status(mine, NOW + 5 * MINUTE - US) == EventStatus.FAR
    assert events.status(mine, NOW + 5 * MINUTE) == EventStatus.ACTIVE
    assert events.status(mine, NOW + HOUR + 5 * MINUTE - US) == EventStatus.ACTIVE
    assert events.status(mine, NOW + HOUR + 5 * MINUTE) == EventStatus.COMPLETED
    assert events.current_value(mine.signals[0], mine, NOW + 5 * MINUTE) == 1.0


def test_cancellation_is_randomized_over_the_same_window() -> None:
    event = _event_at(start_after=WINDOW)
    received = NOW + 20 * MINUTE
    assert events.effective_stop(event, received, 0.0) == received
    assert events.effective_stop(event, received, 0.25) == received + WINDOW / 4
    assert events.effective_stop(_event_at(), received, 0.9) == received


# --- validation ---------------------------------------------------------------------------------


def _with_signal(**fields: Any) -> Event:
    return make_event(signals=(make_signal(**fields),))


VALID_EVENTS = [
    ("default-simple", make_event()),
    ("open-ended", make_event(duration=ZERO)),
    ("simple-lowercase-2.0a-name", _with_signal(signal_name=SignalName.SIMPLE_LOWER)),
    ("simple-level-3", _with_signal(values=(3.0,))),
    (
        "two-intervals-sum-to-duration",
        _with_signal(values=(0.0, 2.0), durations=(20 * MINUTE, 40 * MINUTE)),
    ),
    (
        "electricity-price-per-kwh",
        _with_signal(
            signal_name=SignalName.ELECTRICITY_PRICE,
            signal_type=SignalType.PRICE,
            values=(0.31,),
            item_base=make_item_base(ItemKind.CURRENCY_PER_KWH, units="EUR"),
        ),
    ),
    (
        "load-dispatch-setpoint-kw",
        _with_signal(
            signal_name=SignalName.LOAD_DISPATCH,
            signal_type=SignalType.SETPOINT,
            values=(-12.5,),
            item_base=make_item_base(ItemKind.POWER_REAL),
        ),
    ),
    (
        "load-dispatch-level-minus-10",
        _with_signal(
            signal_name=SignalName.LOAD_DISPATCH, signal_type=SignalType.LEVEL, values=(-10.0,)
        ),
    ),
    (
        "load-control-level-offset",
        _with_signal(
            signal_name=SignalName.LOAD_CONTROL,
            signal_type=SignalType.LOAD_CONTROL_LEVEL_OFFSET,
            values=(-2.0,),
        ),
    ),
    (
        "priority-and-modification",
        make_event(priority=1, modification_number=4),
    ),
]


@pytest.mark.parametrize("event", [pytest.param(e, id=i) for i, e in VALID_EVENTS])
def test_valid_events_pass(event: Event) -> None:
    events.validate(event)


def _baseline(total: timedelta) -> EventBaseline:
    return EventBaseline(
        baseline_id="b1",
        baseline_name="baseline",
        start=NOW,
        duration=HOUR,
        intervals=make_intervals((5.0,), (total,)),
    )


INVALID_EVENTS: list[tuple[str, Event, type[OadrError]]] = [
    ("empty-event-id", make_event(event_id=EventId("")), InvalidId),
    ("negative-modification-number", make_event(modification_number=-1), InvalidData),
    ("no-market-context", make_event(market_context=""), InvalidData),
    ("negative-priority", make_event(priority=-1), InvalidData),
    ("negative-duration", _event_at(duration=-HOUR), InvalidData),
    ("negative-startafter", _event_at(start_after=-MINUTE), InvalidData),
    ("no-signals", make_event(signals=()), InvalidData),
    ("signal-without-intervals", _with_signal(values=(), durations=()), InvalidData),
    (
        "uids-out-of-order",
        _with_signal(
            intervals=tuple(
                replace(i, uid=1 - i.uid)
                for i in make_intervals((1.0, 2.0), (30 * MINUTE, 30 * MINUTE))
            )
        ),
        InvalidData,
    ),
    (
        "uids-from-1",
        _with_signal(intervals=tuple(replace(i, uid=1) for i in make_intervals((1.0,)))),
        InvalidData,
    ),
    (
        "durations-do-not-add-up",
        _with_signal(values=(1.0, 2.0), durations=(30 * MINUTE, 20 * MINUTE)),
        InvalidData,
    ),
    (
        "zero-interval-in-finite-event",
        _with_signal(values=(1.0, 2.0), durations=(HOUR, ZERO)),
        InvalidData,
    ),
    ("simple-level-4", _with_signal(values=(4.0,)), InvalidData),
    ("simple-level-negative", _with_signal(values=(-1.0,)), InvalidData),
    ("simple-level-fraction", _with_signal(values=(1.5,)), InvalidData),
    ("simple-with-price-type", _with_signal(signal_type=SignalType.PRICE), InvalidData),
    (
        "custom-signal-name",
        _with_signal(signal_name=cast(SignalName, "x-CUSTOM_SIGNAL")),
        SignalNotSupported,
    ),
    (
        "case-sensitive-signal-name",
        _with_signal(signal_name=cast(SignalName, "Simple")),
        SignalNotSupported,
    ),
    (
        "bid-load-in-energy-units",
        _with_signal(
            signal_name=SignalName.BID_LOAD,
            signal_type=SignalType.SETPOINT,
            item_base=make_item_base(ItemKind.ENERGY_REAL),
        ),
        InvalidData,
    ),
    (
        "load-dispatch-level-11",
        _with_signal(
            signal_name=SignalName.LOAD_DISPATCH, signal_type=SignalType.LEVEL, values=(11.0,)
        ),
        InvalidData,
    ),
    (
        "charge-state-multiplier-above-1",
        _with_signal(
            signal_name=SignalName.CHARGE_STATE, signal_type=SignalType.MULTIPLIER, values=(1.1,)
        ),
        InvalidData,
    ),
    (
        "load-control-capacity-above-1",
        _with_signal(
            signal_name=SignalName.LOAD_CONTROL,
            signal_type=SignalType.LOAD_CONTROL_CAPACITY,
            values=(1.5,),
        ),
        InvalidData,
    ),
    (
        "load-control-level-offset-zero",
        _with_signal(
            signal_name=SignalName.LOAD_CONTROL,
            signal_type=SignalType.LOAD_CONTROL_LEVEL_OFFSET,
            values=(0.0,),
        ),
        InvalidData,
    ),
    (
        "load-control-percent-offset-below-minus-1",
        _with_signal(
            signal_name=SignalName.LOAD_CONTROL,
            signal_type=SignalType.LOAD_CONTROL_PERCENT_OFFSET,
            values=(-1.5,),
        ),
        InvalidData,
    ),
    (
        "load-control-with-level-type",
        _with_signal(signal_name=SignalName.LOAD_CONTROL, signal_type=SignalType.LEVEL),
        InvalidData,
    ),
    ("baseline-durations-do-not-add-up", make_event(baseline=_baseline(HOUR / 2)), InvalidData),
]


@pytest.mark.parametrize(
    ("event", "error"), [pytest.param(e, x, id=i) for i, e, x in INVALID_EVENTS]
)
def test_rule_violations_raise_the_matching_response_code(
    event: Event, error: type[OadrError]
) -> None:
    with pytest.raises(OadrError) as caught:
        events.validate(event)
    assert type(caught.value) is error
    assert caught.value.code == error.code


def test_custom_signal_name_answers_460() -> None:
    with pytest.raises(SignalNotSupported) as caught:
        events.validate(_with_signal(signal_name=cast(SignalName, "x-CUSTOM")))
    assert caught.value.code == ResponseCode.SIGNAL_NOT_SUPPORTED


def test_distribution_refuses_a_repeated_event_id() -> None:
    with pytest.raises(InvalidId):
        events.validate_distribution(make_distribute_event([make_event(), make_event()]))
    events.validate_distribution(
        make_distribute_event([make_event(), make_event(event_id=EventId("event-2"))])
    )


# --- modification -------------------------------------------------------------------------------


def _version(number: int, status: EventStatus = EventStatus.FAR) -> Event:
    return make_event(modification_number=number, status=status)


CANCELLED = EventStatus.CANCELLED
CHANGE_CASES = [
    ("unseen-is-new", None, _version(0), Change.NEW),
    ("unseen-with-number-above-0-is-new", None, _version(3), Change.NEW),
    ("unseen-cancelled-is-no-error", None, _version(5, CANCELLED), Change.CANCELLED),
    ("same-number", _version(2), _version(2), Change.UNCHANGED),
    ("same-number-status-moved", _version(2), _version(2, EventStatus.ACTIVE), Change.UNCHANGED),
    ("higher-number", _version(2), _version(3), Change.MODIFIED),
    ("higher-number-by-more-than-one", _version(2), _version(7), Change.MODIFIED),
    ("cancelled-with-higher-number", _version(2), _version(3, CANCELLED), Change.CANCELLED),
    ("cancelled-same-number", _version(2), _version(2, CANCELLED), Change.CANCELLED),
    ("cancel-repeated", _version(3, CANCELLED), _version(3, CANCELLED), Change.UNCHANGED),
    ("cancel-re-sent-higher", _version(3, CANCELLED), _version(4, CANCELLED), Change.CANCELLED),
]


@pytest.mark.parametrize(
    ("previous", "incoming", "expected"),
    [pytest.param(p, n, x, id=i) for i, p, n, x in CHANGE_CASES],
)
def test_check_modification_classifies_the_incoming_version(
    previous: Event | None, incoming: Event, expected: Change
) -> None:
    assert events.check_modification(previous, incoming) == expected


def test_lower_modification_number_is_out_of_sequence_450() -> None:
    with pytest.raises(OutOfSequence) as caught:
        events.check_modification(_version(3), _version(2))
    assert caught.value.code == ResponseCode.OUT_OF_SEQUENCE


def test_a_cancelled_event_cannot_come_back() -> None:
    with pytest.raises(NotAllowed):
        events.check_modification(_version(3, CANCELLED), _version(4))


def test_check_modification_refuses_a_different_event() -> None:
    with pytest.raises(InvalidId):
        events.check_modification(_version(0), make_event(event_id=EventId("other")))


@pytest.mark.parametrize(
    ("known", "listed", "expected"),
    [
        pytest.param({"a", "b", "c"}, ["b"], {"a", "c"}, id="missing-ones-are-cancelled"),
        pytest.param({"a", "b"}, [], {"a", "b"}, id="empty-list-cancels-all"),
        pytest.param({"a"}, ["a", "new"], set(), id="new-ones-are-not-cancelled"),
        pytest.param(set(), ["a"], set(), id="nothing-known"),
    ],
)
def test_event_missing_from_the_full_list_is_implicitly_cancelled(
    known: set[str], listed: list[str], expected: set[str]
) -> None:
    distribute = make_distribute_event([make_event(event_id=EventId(i)) for i in listed])
    known_ids = {EventId(i) for i in known}
    assert events.implicitly_cancelled(known_ids, distribute) == expected


NEVER = ResponseRequired.NEVER
RESPONSE_CASES = [
    ("new-event-always", None, _version(0), True),
    ("new-cancelled-event-always", None, _version(1, CANCELLED), True),
    ("same-modification-once-only", _version(1), _version(1), False),
    ("each-modification", _version(1), _version(2), True),
    ("lower-modification-not-here", _version(2), _version(1), False),
    ("never", None, replace(_version(0), response_required=NEVER), False),
    ("never-modified", _version(0), replace(_version(1), response_required=NEVER), False),
]


@pytest.mark.parametrize(
    ("previous", "event", "expected"),
    [pytest.param(p, e, x, id=i) for i, p, e, x in RESPONSE_CASES],
)
def test_needs_response_once_per_modification_when_always(
    previous: Event | None, event: Event, expected: bool
) -> None:
    assert events.needs_response(event, previous) is expected


# --- order ----------------------------------------------------------------------------------------


def _ordered_case() -> tuple[list[Event], list[str]]:
    def ev(name: str, start: timedelta, priority: int | None = None, **kw: Any) -> Event:
        return make_event(
            event_id=EventId(name), start=NOW + start, duration=HOUR, priority=priority, **kw
        )

    given = [
        ev("far-late", 2 * HOUR),
        ev("far-early-prio-2", HOUR, 2),
        ev("far-early-prio-1", HOUR, 1),
        ev("far-early-no-prio", HOUR),
        ev("cancelled-soon", 30 * MINUTE, status=CANCELLED),
        ev("completed", -3 * HOUR),
        ev("active-no-prio-earliest", -50 * MINUTE, 0),
        ev("active-prio-1-later", -10 * MINUTE, 1),
        ev("active-prio-1-earlier", -20 * MINUTE, 1),
    ]
    expected = [
        "active-prio-1-earlier",
        "active-prio-1-later",
        "active-no-prio-earliest",
        "completed",
        "cancelled-soon",
        "far-early-prio-1",
        "far-early-prio-2",
        "far-early-no-prio",
        "far-late",
    ]
    return given, expected


@pytest.mark.parametrize("reverse", [False, True], ids=["given-order", "reversed"])
def test_order_lists_active_by_priority_then_the_rest_by_start(reverse: bool) -> None:
    given, expected = _ordered_case()
    if reverse:
        given.reverse()
    assert [e.event_id for e in events.order(given, NOW)] == expected


# --- targets --------------------------------------------------------------------------------------

ME = VenId("ven-1")
TARGET_CASES = [
    ("empty-target-is-everyone", Target(), True),
    ("only-end-device-assets-is-everyone", Target(end_device_assets=("Exterior_Lighting",)), True),
    ("my-ven-id", Target(ven_ids=(ME, VenId("ven-2"))), True),
    ("other-ven-id", Target(ven_ids=(VenId("ven-2"),)), False),
    ("my-resource", Target(resource_ids=("pump",)), True),
    ("other-resource", Target(resource_ids=("boiler",)), False),
    ("my-group", Target(group_ids=("north",)), True),
    ("my-group-by-name", Target(group_names=("north",)), True),
    ("my-party", Target(party_ids=("party-9",)), True),
    ("other-party-and-ven", Target(party_ids=("p2",), ven_ids=(VenId("v3"),)), False),
]


@pytest.mark.parametrize(
    ("target", "expected"), [pytest.param(t, x, id=i) for i, t, x in TARGET_CASES]
)
def test_matches_target_when_any_listed_id_is_ours(target: Target, expected: bool) -> None:
    matched = events.matches_target(
        target, ME, resource_ids=["pump", "heater"], group_ids=["north"], party_ids=["party-9"]
    )
    assert matched is expected


# --- cancel and modify ----------------------------------------------------------------------------


def test_cancel_bumps_modification_by_one_and_stamps_now() -> None:
    event = make_event(modification_number=4)
    cancelled = events.cancel(event, NOW)
    assert cancelled.status == EventStatus.CANCELLED
    assert cancelled.modification_number == 5
    assert cancelled.modified == NOW
    assert events.check_modification(event, cancelled) == Change.CANCELLED


def test_cancelling_twice_is_one_modification() -> None:
    once = events.cancel(make_event(), NOW)
    assert events.cancel(once, NOW + HOUR) == once


def test_modify_bumps_modification_by_exactly_one() -> None:
    event = make_event(modification_number=2)
    later = NOW + 5 * MINUTE
    modified = events.modify(event, later, priority=1, active_period=make_active_period(NOW))
    assert modified.modification_number == 3
    assert modified.modified == later
    assert (modified.priority, modified.active_period.start) == (1, NOW)
    assert events.check_modification(event, modified) == Change.MODIFIED


@pytest.mark.parametrize("field", ["event_id", "modification_number", "status", "modified"])
def test_modify_refuses_bookkeeping_fields(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        events.modify(make_event(), NOW, **{field: None})


def test_a_cancelled_event_cannot_be_modified() -> None:
    with pytest.raises(NotAllowed):
        events.modify(events.cancel(make_event(), NOW), NOW, priority=1)
