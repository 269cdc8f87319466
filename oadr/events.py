"""Event rules of OpenADR 2.0b (EiEvent): status over time, signal values, modification, order.

Pure: every function takes the moment it reasons about (`now`) and any random draw as arguments.

Readings of unclear spec text (see README.md, "our readings"):
- `near` is the x-eiRampUp window before dtstart. Without x-eiRampUp there is no near phase:
  x-eiNotification is the notice the VTN gives when it first distributes the event, so using it
  would make nearly every event `near` from the moment it is announced (OpenLEADR reads it the
  same way).
- A lower modificationNumber than already seen is 450 OutOfSequence: the message is stale, not
  malformed.
- Interval problems (uids, durations, values) and a signal type the name does not allow are 454
  InvalidData; a signal name outside the profile's list is 460 SignalNotSupported.
- DistributeEvent order: active events first by priority (1 highest; 0 or absent = lowest)
  then start; all other events by start, then priority; eventID breaks ties so the order is
  total (OpenLEADR: active first, earlier first).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from oadr.enums import EventStatus, ItemKind, ResponseRequired, SignalName, SignalType
from oadr.errors import (
    InvalidData,
    InvalidId,
    NotAllowed,
    OutOfSequence,
    SignalNotSupported,
)
from oadr.model import (
    DistributeEvent,
    Event,
    EventId,
    EventInterval,
    EventSignal,
    Target,
    VenId,
)

_ZERO = timedelta(0)


# --- status and values over time ------------------------------------------------------------------


def end(event: Event) -> datetime | None:
    """When the active period ends; None for an open-ended event (duration 0)."""
    period = event.active_period
    return None if period.duration == _ZERO else period.start + period.duration


def status(event: Event, now: datetime) -> EventStatus:
    """far / near / active / completed from dtstart, x-eiRampUp and duration; cancelled stays.

    Active is [dtstart, dtstart + duration): at the end instant the event is completed. An
    open-ended event (duration 0) never completes. Near is [dtstart - rampUp, dtstart).
    """
    if event.status == EventStatus.CANCELLED:
        return EventStatus.CANCELLED
    period = event.active_period
    stop = end(event)
    if stop is not None and now >= stop:
        return EventStatus.COMPLETED
    if now >= period.start:
        return EventStatus.ACTIVE
    if period.ramp_up is not None and now >= period.start - period.ramp_up:
        return EventStatus.NEAR
    return EventStatus.FAR


def current_interval(signal: EventSignal, event: Event, now: datetime) -> EventInterval | None:
    """The interval of `signal` in force at `now`; None when the event is not active.

    Intervals run back to back from dtstart in the order given, each for its duration; a
    duration of 0 (only valid last, in an open-ended event) lasts until the event ends. An
    open-ended event that outlives its intervals has no current interval.
    """
    if status(event, now) != EventStatus.ACTIVE:
        return None
    start = event.active_period.start
    for interval in signal.intervals:
        if interval.duration == _ZERO or now < start + interval.duration:
            return interval
        start += interval.duration
    return None


def current_value(signal: EventSignal, event: Event, now: datetime) -> float:
    """currentValue: 0 when the event is not active, else the current interval's value."""
    interval = current_interval(signal, event, now)
    return 0.0 if interval is None else interval.value


def refresh(event: Event, now: datetime) -> Event:
    """The event as a DistributeEvent at `now` shows it: status and every currentValue updated.

    Status changes with time alone, so this never touches the modificationNumber.
    """
    signals = tuple(
        dataclasses.replace(s, current_value=current_value(s, event, now)) for s in event.signals
    )
    return dataclasses.replace(event, status=status(event, now), signals=signals)


# --- randomization (tolerance/tolerate/startafter) ------------------------------------------------


def _offset(window: timedelta | None, draw: float) -> timedelta:
    if not 0.0 <= draw < 1.0:
        raise ValueError(f"draw must be in [0, 1), got {draw!r}")
    if window is None or window <= _ZERO:
        return _ZERO
    total_us = window // timedelta(microseconds=1)
    # floor, and never the window's far end: the draw is half-open, so is the window
    return timedelta(microseconds=min(math.floor(total_us * draw), total_us - 1))


def effective_start(event: Event, draw: float) -> datetime:
    """When this VEN starts: dtstart plus `draw` (uniform in [0, 1)) of the startafter window.

    The result lies in [dtstart, dtstart + startafter); without startafter it is dtstart.
    """
    return event.active_period.start + _offset(event.active_period.start_after, draw)


def randomized(event: Event, draw: float) -> Event:
    """The event as this VEN runs it: dtstart moved to `effective_start`, duration kept.

    Feed the result to `status` / `current_value`. Use the same draw for every modification of
    one event, so a modified event does not jump around (the randomization applies to modified
    events too).
    """
    period = dataclasses.replace(
        event.active_period, start=effective_start(event, draw), start_after=None
    )
    return dataclasses.replace(event, active_period=period)


def effective_stop(event: Event, cancelled_at: datetime, draw: float) -> datetime:
    """When this VEN stops an event cancelled at `cancelled_at` (explicitly or implicitly).

    Our reading (unverified): a cancellation is randomized over the same startafter window,
    counted from the moment the VEN learns of it, so loads do not all return at once.
    """
    return cancelled_at + _offset(event.active_period.start_after, draw)


# --- validation -----------------------------------------------------------------------------------


def _any_value(value: float) -> bool:
    return True


def _between(low: float, high: float, *, integer: bool = False) -> Callable[[float], bool]:
    def check(value: float) -> bool:
        return low <= value <= high and (not integer or float(value).is_integer())

    return check


def _non_zero_integer(value: float) -> bool:
    return value != 0 and float(value).is_integer()


@dataclasses.dataclass(frozen=True, slots=True)
class _Rule:
    values: Callable[[float], bool]
    values_text: str
    units: frozenset[ItemKind] | None = None  # None: no itemBase constraint


_PRICE_UNITS = frozenset(
    {
        ItemKind.CURRENCY,
        ItemKind.CURRENCY_PER_KWH,
        ItemKind.CURRENCY_PER_KW,
        ItemKind.CURRENCY_PER_THM,
    }
)
_POWER = frozenset({ItemKind.POWER_REAL, ItemKind.POWER_APPARENT, ItemKind.POWER_REACTIVE})
_ENERGY = frozenset({ItemKind.ENERGY_REAL, ItemKind.ENERGY_APPARENT, ItemKind.ENERGY_REACTIVE})
_ANY = _Rule(_any_value, "any number")
_PRICE = _Rule(_any_value, "any number", _PRICE_UNITS)
_PRICE_SIGNALS = {
    SignalType.PRICE: _PRICE,
    SignalType.PRICE_RELATIVE: _PRICE,
    SignalType.PRICE_MULTIPLIER: _ANY,
}
_SIMPLE = {SignalType.LEVEL: _Rule(_between(0, 3, integer=True), "an integer 0..3")}

# Profile spec §8.3.3 as tabulated in OPENADR-2.0b-NOTES.md: the signal types each name allows.
SIGNAL_RULES: dict[SignalName, dict[SignalType, _Rule]] = {
    SignalName.SIMPLE: _SIMPLE,
    SignalName.SIMPLE_LOWER: _SIMPLE,
    SignalName.ELECTRICITY_PRICE: _PRICE_SIGNALS,
    SignalName.ENERGY_PRICE: _PRICE_SIGNALS,
    SignalName.DEMAND_CHARGE: _PRICE_SIGNALS,
    SignalName.BID_PRICE: {SignalType.PRICE: _PRICE},
    SignalName.BID_LOAD: {SignalType.SETPOINT: _Rule(_any_value, "any number", _POWER)},
    SignalName.BID_ENERGY: {SignalType.SETPOINT: _Rule(_any_value, "any number", _ENERGY)},
    SignalName.CHARGE_STATE: {
        SignalType.SETPOINT: _Rule(_any_value, "any number", _ENERGY),
        SignalType.DELTA: _Rule(_any_value, "any number", _ENERGY),
        SignalType.MULTIPLIER: _Rule(_between(0.0, 1.0), "0.0..1.0"),
    },
    SignalName.LOAD_DISPATCH: {
        SignalType.SETPOINT: _Rule(_any_value, "any number", _POWER),
        SignalType.DELTA: _Rule(_any_value, "any number", _POWER),
        SignalType.MULTIPLIER: _ANY,
        SignalType.LEVEL: _Rule(_between(-10, 10, integer=True), "an integer -10..10"),
    },
    SignalName.LOAD_CONTROL: {
        SignalType.LOAD_CONTROL_CAPACITY: _Rule(_between(0.0, 1.0), "0.0..1.0"),
        SignalType.LOAD_CONTROL_LEVEL_OFFSET: _Rule(_non_zero_integer, "a non-zero integer"),
        SignalType.LOAD_CONTROL_SETPOINT: _ANY,
        SignalType.LOAD_CONTROL_PERCENT_OFFSET: _Rule(_between(-1.0, 1.0), "-1.0..1.0"),
    },
}


def _validate_intervals(
    intervals: tuple[EventInterval, ...], duration: timedelta, what: str
) -> None:
    if not intervals:
        raise InvalidData(f"{what} has no intervals")
    for position, interval in enumerate(intervals):
        if interval.uid != position:
            raise InvalidData(f"{what}: interval uids must run 0..{len(intervals) - 1} in order")
        if interval.duration < _ZERO:
            raise InvalidData(f"{what}: interval {position} has a negative duration")
        if interval.duration == _ZERO and (duration != _ZERO or position != len(intervals) - 1):
            raise InvalidData(f"{what}: only the last interval of an open-ended event may be 0")
    total = sum((i.duration for i in intervals), _ZERO)
    if duration != _ZERO and total != duration:
        raise InvalidData(f"{what}: interval durations add up to {total}, not {duration}")


def _validate_signal(signal: EventSignal, duration: timedelta) -> None:
    what = f"signal {signal.signal_id!r}"
    allowed = SIGNAL_RULES.get(signal.signal_name)
    if allowed is None:
        raise SignalNotSupported(f"signalName {signal.signal_name!r} is not supported")
    rule = allowed.get(signal.signal_type)
    if rule is None:
        raise InvalidData(
            f"{what}: signalType {signal.signal_type!r} is not allowed for {signal.signal_name}"
        )
    item = signal.item_base
    if rule.units is not None and item is not None and item.kind not in rule.units:
        raise InvalidData(f"{what}: {item.kind} is not a unit for {signal.signal_type}")
    _validate_intervals(signal.intervals, duration, what)
    for interval in signal.intervals:
        if not rule.values(interval.value):
            raise InvalidData(
                f"{what}: interval {interval.uid} value {interval.value} is not {rule.values_text}"
            )


def validate(event: Event) -> None:
    """Raise the OadrError the certification validator's event rules call for; else None."""
    if not event.event_id:
        raise InvalidId("eventID is empty")
    if event.modification_number < 0:
        raise InvalidData("modificationNumber is negative")
    if not event.market_context:
        raise InvalidData("marketContext is missing")
    if event.priority is not None and event.priority < 0:
        raise InvalidData("priority is negative")
    period = event.active_period
    for name, value in (
        ("duration", period.duration),
        ("startafter", period.start_after),
        ("x-eiNotification", period.notification),
        ("x-eiRampUp", period.ramp_up),
        ("x-eiRecovery", period.recovery),
    ):
        if value is not None and value < _ZERO:
            raise InvalidData(f"activePeriod {name} is negative")
    if not event.signals:
        raise InvalidData("event has no eiEventSignal")
    for signal in event.signals:
        _validate_signal(signal, period.duration)
    if event.baseline is not None:
        baseline = event.baseline
        _validate_intervals(baseline.intervals, baseline.duration, "eiEventBaseline")


def validate_distribution(distribute: DistributeEvent) -> None:
    """Every event valid and each eventID listed once (452 for a repeated eventID)."""
    seen: set[EventId] = set()
    for event in distribute.events:
        if event.event_id in seen:
            raise InvalidId(f"eventID {event.event_id!r} is listed twice")
        seen.add(event.event_id)
        validate(event)


# --- modification and cancellation ----------------------------------------------------------------


class Change(StrEnum):
    """What an incoming event means to the receiver, given what it saw before."""

    NEW = "new"
    MODIFIED = "modified"
    UNCHANGED = "unchanged"
    CANCELLED = "cancelled"


def check_modification(previous: Event | None, incoming: Event) -> Change:
    """Compare an incoming event with the last version seen; refuse going backwards.

    - never seen: NEW (whatever its modificationNumber), or CANCELLED when it arrives cancelled
      (nothing to undo, and never an error: a VEN must not answer an error for a cancelled
      event it never saw);
    - lower modificationNumber: 450 OutOfSequence;
    - same number: UNCHANGED (status moves with time alone), unless it now says cancelled;
    - higher number: CANCELLED if it says cancelled, else MODIFIED; a cancelled event stays
      cancelled, so un-cancelling is 451 NotAllowed.
    """
    cancelled = incoming.status == EventStatus.CANCELLED
    if previous is None:
        return Change.CANCELLED if cancelled else Change.NEW
    if previous.event_id != incoming.event_id:
        raise InvalidId(f"eventID {incoming.event_id!r} is not {previous.event_id!r}")
    if incoming.modification_number < previous.modification_number:
        raise OutOfSequence(
            f"event {incoming.event_id!r}: modificationNumber {incoming.modification_number}"
            f" is lower than {previous.modification_number} already seen"
        )
    was_cancelled = previous.status == EventStatus.CANCELLED
    if was_cancelled and not cancelled:
        raise NotAllowed(f"event {incoming.event_id!r} was cancelled and stays cancelled")
    if incoming.modification_number == previous.modification_number:
        return Change.CANCELLED if cancelled and not was_cancelled else Change.UNCHANGED
    return Change.CANCELLED if cancelled else Change.MODIFIED


def implicitly_cancelled(
    known_ids: Iterable[EventId], distribute_event: DistributeEvent
) -> set[EventId]:
    """Known events missing from a DistributeEvent: it lists all pending and active events."""
    listed = {event.event_id for event in distribute_event.events}
    return set(known_ids) - listed


def needs_response(event: Event, previous: Event | None) -> bool:
    """Whether a CreatedEvent is owed: responseRequired=always, once per modification.

    `previous` is the version last answered (or seen). A lower modificationNumber is not
    answered here; `check_modification` turns it into an error.
    """
    if event.response_required != ResponseRequired.ALWAYS:
        return False
    return previous is None or event.modification_number > previous.modification_number


def _priority_rank(event: Event) -> float:
    # EI: lower number = higher priority; 0 means "no priority", the lowest
    return math.inf if not event.priority else float(event.priority)


def order(events: Iterable[Event], now: datetime) -> tuple[Event, ...]:
    """The order a DistributeEvent lists events in (see module docstring for the reading)."""

    def key(event: Event) -> tuple[int, float, datetime, float, str]:
        if status(event, now) == EventStatus.ACTIVE:
            return (0, _priority_rank(event), event.active_period.start, 0.0, event.event_id)
        return (1, 0.0, event.active_period.start, _priority_rank(event), event.event_id)

    return tuple(sorted(events, key=key))


def matches_target(
    event_target: Target,
    ven_id: VenId,
    resource_ids: Iterable[str] = (),
    group_ids: Iterable[str] = (),
    party_ids: Iterable[str] = (),
) -> bool:
    """Whether an event-level eiTarget names this VEN (any one listed id is enough).

    Only venID, resourceID, groupID and partyID count at event level; a target naming none of
    them (empty, or only signal-level endDeviceAssets) is for every VEN that receives it.
    groupName values are matched against `group_ids` too. A False here is 462 TargetMismatch.
    """
    target = event_target
    if not (
        target.ven_ids
        or target.resource_ids
        or target.group_ids
        or target.group_names
        or target.party_ids
    ):
        return True
    groups = set(target.group_ids) | set(target.group_names)
    return (
        ven_id in target.ven_ids
        or not set(resource_ids).isdisjoint(target.resource_ids)
        or not groups.isdisjoint(group_ids)
        or not set(party_ids).isdisjoint(target.party_ids)
    )


def cancel(event: Event, now: datetime) -> Event:
    """The event cancelled at `now`: status cancelled, modificationNumber + 1, modified = now.

    Cancelling an already cancelled event changes nothing (no second modification).
    """
    if event.status == EventStatus.CANCELLED:
        return event
    return dataclasses.replace(
        event,
        status=EventStatus.CANCELLED,
        modification_number=event.modification_number + 1,
        modified=now,
    )


_FIXED_FIELDS = frozenset({"event_id", "modification_number", "modified", "status", "created"})


def modify(event: Event, now: datetime, **changes: Any) -> Event:
    """The event with `changes` applied, modificationNumber + 1 and modified = now.

    Identity and bookkeeping fields are not changeable here (use `cancel` to cancel); a
    cancelled event cannot be modified (451).
    """
    fixed = _FIXED_FIELDS.intersection(changes)
    if fixed:
        raise ValueError(f"modify() does not change {sorted(fixed)}")
    if event.status == EventStatus.CANCELLED:
        raise NotAllowed(f"event {event.event_id!r} is cancelled and cannot be modified")
    return dataclasses.replace(
        event,
        **changes,
        modification_number=event.modification_number + 1,
        modified=now,
    )
