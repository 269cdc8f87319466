"""The household's policy: its preferences, what its devices can give, and its opt decisions.

Pure (issue 6, "Household policy"): `decide(event, preferences, household, now)` answers optIn or
optOut for one event modification with a reason naming the rule that decided, e.g.
"optOut (duration): event lasts 4h, longer than the 2h you accept". The rules run in the order of
`_RULES`; the first that decides wins, so the answer is deterministic. `ven.control` uses the
same flexibility model (`flexibility`, `allocate`) to turn signals into commands, so what the
policy promises is what control does.

Our readings (README.md, "our readings"):
- A price event asks for nothing; the household acts only while the price is above its threshold
  (or charges while it is below the low one). So for a price-only event the do-not-disturb and
  duration rules look at the stretches above the threshold, not at the whole event.
- Reachability is judged on the telemetry at hand (the event may start later): what the devices
  we may steer draw when left alone against what they can give (see `flexibility`).
- The comfort estimate is the brief's: hours_until_min = (T_room - T_min) / cooling_rate, the
  cooling rate scaled by the share of the heat pump's power a request takes away.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from oadr import events
from oadr.enums import OptType, SignalName, SignalType
from oadr.model import Event, EventId, EventSignal
from ven.model import ActiveSignal, Decision, DeviceKind, DeviceState

_ZERO = timedelta(0)
_HOUR = timedelta(hours=1)
_EPS_KW = 1e-6


# --- preferences ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class QuietWindow:
    """A daily do-not-disturb window in the household's local time; may run past midnight."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("a do-not-disturb window needs different start and end times")


@dataclass(frozen=True, slots=True, kw_only=True)
class Preferences:
    """What the prosumer accepts. Prices in currency per kWh (Decimal), SoC as 0..1."""

    comfort_min_c: float = 19.0  # room temperature band
    comfort_max_c: float = 23.0
    untouchable: frozenset[str] = frozenset()  # device ids never commanded
    max_shift: timedelta = timedelta(hours=2)  # longest acceptable shift/curtailment
    price_threshold_per_kwh: Decimal = Decimal("0.30")  # respond to prices above this
    low_price_per_kwh: Decimal | None = None  # charge battery/EV below this
    tariff_per_kwh: Decimal = Decimal("0.25")  # the usual price: base of priceRelative/Multiplier
    ev_min_soc: float = 0.5  # the EV is never held back below this (minimum at departure)
    battery_reserve_soc: float = 0.2  # the battery is never discharged below this
    participate_in_test_events: bool = False
    opted_out_events: frozenset[EventId] = frozenset()  # manual overrides
    do_not_disturb: tuple[QuietWindow, ...] = ()
    timezone: tzinfo = UTC  # of the do-not-disturb windows
    room_cooling_k_per_h: float = 0.5  # how fast the room cools with the heat pump off

    def __post_init__(self) -> None:
        if not self.comfort_min_c < self.comfort_max_c:
            raise ValueError("comfort_min_c must be below comfort_max_c")
        for name in ("ev_min_soc", "battery_reserve_soc"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1")
        if self.max_shift < _ZERO:
            raise ValueError("max_shift must not be negative")
        if self.room_cooling_k_per_h <= 0:
            raise ValueError("room_cooling_k_per_h must be positive")
        low = self.low_price_per_kwh
        if low is not None and low >= self.price_threshold_per_kwh:
            raise ValueError("low_price_per_kwh must be below price_threshold_per_kwh")

    def with_opt_out(self, event_id: EventId) -> Preferences:
        """These preferences plus a manual opt-out (`flex4grid ven opt-out EVENT_ID`)."""
        return dataclasses.replace(self, opted_out_events=self.opted_out_events | {event_id})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preferences:
        """Read a TOML/JSON table; unknown keys are refused (a typo must not go unnoticed).

        Keys are the field names, except `max_shift_minutes`; prices are numbers or strings,
        windows `{"start": "22:00", "end": "06:00"}`, `timezone` an IANA name.
        """
        unknown = set(data) - _KEYS
        if unknown:
            raise ValueError(f"unknown preference(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for key, raw in data.items():
            name, parse = _PARSERS[key]
            try:
                values[name] = parse(raw)
            except (TypeError, ValueError, InvalidOperation, ZoneInfoNotFoundError) as exc:
                raise ValueError(f"preference {key!r}: {exc or 'bad value'}") from exc
        return cls(**values)


def _number(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise TypeError(f"expected a number, got {raw!r}")
    return float(raw)


def _money(raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise TypeError(f"expected a number or a string, got {raw!r}")
    return Decimal(str(raw))


def _strings(raw: Any) -> frozenset[str]:
    if not isinstance(raw, list | tuple) or not all(isinstance(s, str) for s in raw):
        raise TypeError(f"expected a list of strings, got {raw!r}")
    return frozenset(raw)


def _flag(raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise TypeError(f"expected true or false, got {raw!r}")
    return raw


def _windows(raw: Any) -> tuple[QuietWindow, ...]:
    if not isinstance(raw, list | tuple):
        raise TypeError(f"expected a list of windows, got {raw!r}")
    windows = []
    for item in raw:
        if not isinstance(item, Mapping) or set(item) != {"start", "end"}:
            raise TypeError(f"expected {{'start': 'HH:MM', 'end': 'HH:MM'}}, got {item!r}")
        windows.append(
            QuietWindow(
                start=time.fromisoformat(item["start"]), end=time.fromisoformat(item["end"])
            )
        )
    return tuple(windows)


def _zone(raw: Any) -> tzinfo:
    if not isinstance(raw, str):
        raise TypeError(f"expected a time zone name, got {raw!r}")
    return UTC if raw == "UTC" else ZoneInfo(raw)


_PARSERS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "comfort_min_c": ("comfort_min_c", _number),
    "comfort_max_c": ("comfort_max_c", _number),
    "untouchable": ("untouchable", _strings),
    "max_shift_minutes": ("max_shift", lambda raw: timedelta(minutes=_number(raw))),
    "price_threshold_per_kwh": ("price_threshold_per_kwh", _money),
    "low_price_per_kwh": ("low_price_per_kwh", _money),
    "tariff_per_kwh": ("tariff_per_kwh", _money),
    "ev_min_soc": ("ev_min_soc", _number),
    "battery_reserve_soc": ("battery_reserve_soc", _number),
    "participate_in_test_events": ("participate_in_test_events", _flag),
    "opted_out_events": ("opted_out_events", _strings),
    "do_not_disturb": ("do_not_disturb", _windows),
    "timezone": ("timezone", _zone),
    "room_cooling_k_per_h": ("room_cooling_k_per_h", _number),
}
_KEYS = frozenset(_PARSERS)


# --- what the devices can give --------------------------------------------------------------------

STEERABLE = frozenset({DeviceKind.HEAT_PUMP, DeviceKind.EV_CHARGER, DeviceKind.BATTERY})
LABEL = {
    DeviceKind.HEAT_PUMP: "heat pump",
    DeviceKind.EV_CHARGER: "EV",
    DeviceKind.BATTERY: "battery",
    DeviceKind.PV: "PV",
    DeviceKind.BASE_LOAD: "base load",
}
# Merit order for a reduction: the battery costs no comfort, the EV only time, the heat pump warmth.
MERIT = {DeviceKind.BATTERY: 0, DeviceKind.EV_CHARGER: 1, DeviceKind.HEAT_PUMP: 2}
# endDeviceAsset mrids naming a device class (our reading, unverified: the 2.0b profile's list).
_ASSET_CLASSES = {
    DeviceKind.HEAT_PUMP: frozenset(
        {"heat_pump", "thermostat", "strip_heater", "baseboard_heater"}
    ),
    DeviceKind.EV_CHARGER: frozenset({"ev_charger", "electric_vehicle"}),
    DeviceKind.BATTERY: frozenset({"battery"}),
    DeviceKind.PV: frozenset({"pv"}),
    DeviceKind.BASE_LOAD: frozenset({"base_load"}),
}
_WHOLE_SITE = "energy_management_system"  # the gateway itself: every device


def name(device: DeviceState) -> str:
    return f"{LABEL[device.kind]} {device.device_id}"


def why_not_controllable(device: DeviceState, preferences: Preferences) -> str | None:
    """Why a device may not be commanded now; None when it may."""
    if device.device_id in preferences.untouchable:
        return "off limits"
    if not device.online:
        return "offline"
    if device.manual_override:
        return "under manual override"
    if device.kind not in STEERABLE and device.kind != DeviceKind.PV:
        return "not steerable"
    return None


def controllable(device: DeviceState, preferences: Preferences) -> bool:
    return why_not_controllable(device, preferences) is None


def targeted(
    household: Sequence[DeviceState], end_device_assets: Iterable[str], resource_ids: Iterable[str]
) -> tuple[DeviceState, ...]:
    """The devices a signal's targets name.

    endDeviceAsset mrids name a device id or a device class; resourceIDs name device ids. The
    schedule already matched the event-level resourceIDs against this VEN, so resourceIDs that
    name none of its devices name the whole site.
    """
    chosen = list(household)
    ids = set(resource_ids)
    if ids and any(d.device_id in ids for d in household):
        chosen = [d for d in chosen if d.device_id in ids]
    assets = set(end_device_assets)
    if assets:
        lowered = {a.lower() for a in assets}
        if _WHOLE_SITE not in lowered:
            chosen = [
                d
                for d in chosen
                if d.device_id in assets or not lowered.isdisjoint(_ASSET_CLASSES[d.kind])
            ]
    return tuple(chosen)


def signal_devices(
    signal: ActiveSignal, household: Sequence[DeviceState], preferences: Preferences
) -> tuple[DeviceState, ...]:
    """The devices one active signal may command."""
    chosen = targeted(household, signal.end_device_assets, signal.resource_ids)
    return tuple(d for d in chosen if controllable(d, preferences))


@dataclass(frozen=True, slots=True, kw_only=True)
class Flex:
    """How far one steerable device can move its draw within its limits and the preferences.

    `most_kw` is what it draws when left alone: its rating (a thermostat or a wallbox may switch
    on at any moment, so a cap must hold then too), or for a battery what it draws now (left
    alone it only soaks up surplus). `least_kw` is the least it can be brought to: 0 for a heat
    pump whose room is above the comfort minimum and an EV at or above its minimum SoC, minus
    the discharge rate for a battery above its reserve; else `most_kw` (it cannot give).
    Without a reported rating a heat pump or EV gives nothing: what it is seen drawing may be
    a limit of ours, and a plan built on it would shrink the limit each time (or oscillate). A
    battery without one is counted on for no more than it is seen feeding in.
    """

    device: DeviceState
    most_kw: float
    least_kw: float

    @property
    def give_kw(self) -> float:
        return max(0.0, self.most_kw - self.least_kw)


def rating_kw(device: DeviceState) -> float | None:
    """The most the device draws, as it reports it; None when it does not."""
    return None if device.max_power_kw is None else max(0.0, device.max_power_kw)


def heat_pump_may_shed(device: DeviceState, preferences: Preferences) -> bool:
    return device.temperature_c is not None and device.temperature_c > preferences.comfort_min_c


def ev_may_shed(device: DeviceState, preferences: Preferences) -> bool:
    return device.soc is not None and device.soc >= preferences.ev_min_soc


def discharge_cap_kw(device: DeviceState, preferences: Preferences, hours: float | None) -> float:
    """The most a battery may feed in: its rate, only above the reserve, and no faster than the
    energy above the reserve lasts for `hours` (when both are known)."""
    reserve = preferences.battery_reserve_soc
    if device.kind != DeviceKind.BATTERY or device.soc is None or device.soc <= reserve:
        return 0.0
    rate = device.max_feed_in_kw if device.max_feed_in_kw is not None else -device.power_kw
    rate = max(0.0, rate)
    if device.capacity_kwh is not None and hours is not None and hours > 0:
        rate = min(rate, (device.soc - reserve) * device.capacity_kwh / hours)
    return rate


def charge_cap_kw(device: DeviceState) -> float:
    """The most a battery or an EV may be told to charge at: its rating (else no faster than
    it is seen charging), never when full."""
    if device.soc is None or device.soc >= 1.0:
        return 0.0
    rating = rating_kw(device)
    return max(0.0, device.power_kw) if rating is None else rating


def flexibility(device: DeviceState, preferences: Preferences, hours: float | None) -> Flex | None:
    """What a steerable device can give over the next `hours`; None for PV and base load."""
    if device.kind == DeviceKind.BATTERY:
        most = max(0.0, device.power_kw)
        return Flex(
            device=device, most_kw=most, least_kw=-discharge_cap_kw(device, preferences, hours)
        )
    if device.kind == DeviceKind.HEAT_PUMP:
        may_shed = heat_pump_may_shed(device, preferences)
    elif device.kind == DeviceKind.EV_CHARGER:
        may_shed = ev_may_shed(device, preferences)  # no car (soc None): nothing to give
    else:
        return None
    rating = rating_kw(device)
    no_car = device.kind == DeviceKind.EV_CHARGER and device.soc is None
    if rating is None or no_car:  # may be our own limit (count on nothing: no drift), no car
        seen = max(0.0, device.power_kw)
        return Flex(device=device, most_kw=seen, least_kw=seen)
    return Flex(device=device, most_kw=rating, least_kw=0.0 if may_shed else rating)


def flexibilities(
    devices: Iterable[DeviceState], preferences: Preferences, hours: float | None
) -> tuple[Flex, ...]:
    found = (flexibility(d, preferences, hours) for d in devices)
    return tuple(f for f in found if f is not None)


def baseline_kw(household: Sequence[DeviceState], flexes: Sequence[Flex]) -> float:
    """Net import with the steered devices left alone: the others at what they draw now.

    Counting steered devices at `most_kw` rather than at their metered power keeps a stateless
    plan from chasing its own effect (a limited heat pump does not look like a small load).
    """
    steered = {f.device.device_id for f in flexes}
    others = sum(d.power_kw for d in household if d.device_id not in steered)
    return others + sum(f.most_kw for f in flexes)


def allocate(reduction_kw: float, flexes: Sequence[Flex]) -> tuple[tuple[Flex, float], ...]:
    """Split a reduction across devices in merit order (battery, EV, heat pump; then by id).

    Returns (device, kW it gives) for every device that gives something; the total falls short
    of `reduction_kw` when the devices cannot give that much.
    """
    shares = []
    remaining = reduction_kw
    for flex in sorted(flexes, key=lambda f: (MERIT[f.device.kind], f.device.device_id)):
        if remaining <= _EPS_KW:
            break
        give = min(remaining, flex.give_kw)
        if give > _EPS_KW:
            shares.append((flex, give))
            remaining -= give
    return tuple(shares)


def dispatch_reduction_kw(
    signal_type: SignalType, value: float, household: Sequence[DeviceState], flexes: Sequence[Flex]
) -> float | None:
    """How much less a LOAD_DISPATCH value asks for than the baseline (kW; negative: more).

    setpoint: a cap on net import at the grid connection; delta: the change (negative =
    reduce); multiplier: a fraction of the baseline. Level has no kW meaning: None.
    """
    baseline = baseline_kw(household, flexes)
    if signal_type == SignalType.SETPOINT:
        return baseline - value
    if signal_type == SignalType.DELTA:
        return -value
    if signal_type == SignalType.MULTIPLIER:
        return baseline * (1.0 - value)
    return None


_SI_SCALE = {
    "p": 1e-12, "n": 1e-9, "micro": 1e-6, "m": 1e-3, "c": 1e-2, "d": 1e-1,
    "none": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
}  # fmt: skip


def in_kilo(value: float, item_units: str | None, scale: str | None) -> float:
    """A power or energy value in kW / kWh; without an itemBase we read kW / kWh."""
    if item_units is None:
        return value
    factor = _SI_SCALE.get(scale or "none", 1.0)
    if item_units.lower().startswith("k"):  # "kW", "kWh": already kilo
        return value * factor
    return value * factor / 1000.0


PRICE_SIGNALS = frozenset({SignalName.ELECTRICITY_PRICE, SignalName.ENERGY_PRICE})
PRICE_TYPES = frozenset({SignalType.PRICE, SignalType.PRICE_RELATIVE, SignalType.PRICE_MULTIPLIER})


def price_per_kwh(
    signal_type: SignalType, value: float, preferences: Preferences
) -> Decimal | None:
    """The absolute price a price signal value stands for (priceRelative: tariff + value)."""
    amount = Decimal(str(value))
    if signal_type == SignalType.PRICE:
        return amount
    if signal_type == SignalType.PRICE_RELATIVE:
        return preferences.tariff_per_kwh + amount
    if signal_type == SignalType.PRICE_MULTIPLIER:
        return preferences.tariff_per_kwh * amount
    return None


# The signals `ven.control` acts on; an event with none of them has nothing for the household.
ACTED_ON: dict[SignalName, frozenset[SignalType]] = {
    SignalName.SIMPLE: frozenset({SignalType.LEVEL}),
    SignalName.SIMPLE_LOWER: frozenset({SignalType.LEVEL}),
    SignalName.ELECTRICITY_PRICE: PRICE_TYPES,
    SignalName.ENERGY_PRICE: PRICE_TYPES,
    SignalName.LOAD_DISPATCH: frozenset(
        {SignalType.SETPOINT, SignalType.DELTA, SignalType.MULTIPLIER}
    ),
    SignalName.LOAD_CONTROL: frozenset(
        {
            SignalType.LOAD_CONTROL_CAPACITY,
            SignalType.LOAD_CONTROL_LEVEL_OFFSET,
            SignalType.LOAD_CONTROL_PERCENT_OFFSET,
        }
    ),
    SignalName.CHARGE_STATE: frozenset({SignalType.SETPOINT, SignalType.MULTIPLIER}),
}


def acted_on(signal_name: SignalName, signal_type: SignalType) -> bool:
    return signal_type in ACTED_ON.get(signal_name, frozenset())


# --- the decision ---------------------------------------------------------------------------------


def span(duration: timedelta) -> str:
    """'4h', '1h30m', '45m'."""
    minutes = round(duration / timedelta(minutes=1))
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours}h{minutes}m"
    return f"{hours}h" if hours else f"{minutes}m"


def _price_text(price: Decimal) -> str:
    return f"{price.normalize():f}/kWh"


@dataclass(frozen=True, slots=True)
class _Stretch:
    """A stretch of time the household would act in: [start, end); end None = open-ended."""

    start: datetime
    end: datetime | None

    def length(self) -> timedelta | None:
        return None if self.end is None else self.end - self.start


class _Case:
    """One event seen by the household; derived facts computed once, on demand."""

    def __init__(
        self,
        event: Event,
        preferences: Preferences,
        household: Sequence[DeviceState],
        now: datetime,
    ) -> None:
        self.event = event
        self.preferences = preferences
        self.household = household
        self.now = now
        self.duration = event.active_period.duration
        self.hours = None if self.duration == _ZERO else self.duration / _HOUR

    @cached_property
    def signals(self) -> tuple[EventSignal, ...]:
        return tuple(s for s in self.event.signals if acted_on(s.signal_name, s.signal_type))

    @cached_property
    def price_only(self) -> bool:
        return bool(self.signals) and all(s.signal_name in PRICE_SIGNALS for s in self.signals)

    def devices_of(self, signal: EventSignal) -> tuple[DeviceState, ...]:
        assets = signal.target.end_device_assets if signal.target is not None else ()
        chosen = targeted(self.household, assets, self.event.target.resource_ids)
        return tuple(d for d in chosen if controllable(d, self.preferences))

    @cached_property
    def targeted(self) -> tuple[DeviceState, ...]:
        """Every device some acted-on signal names, controllable or not."""
        seen: dict[str, DeviceState] = {}
        for signal in self.signals:
            assets = signal.target.end_device_assets if signal.target is not None else ()
            for device in targeted(self.household, assets, self.event.target.resource_ids):
                seen.setdefault(device.device_id, device)
        return tuple(seen.values())

    @cached_property
    def steerable(self) -> tuple[DeviceState, ...]:
        return tuple(
            d for d in self.targeted if controllable(d, self.preferences) and d.kind in STEERABLE
        )

    def prices(self, signal: EventSignal) -> list[tuple[Decimal, timedelta]]:
        found = []
        for interval in signal.intervals:
            price = price_per_kwh(signal.signal_type, interval.value, self.preferences)
            if price is not None:
                found.append((price, interval.duration))
        return found

    @cached_property
    def stretches(self) -> tuple[_Stretch, ...]:
        """When the household would act: the whole event, or for a price-only event the
        stretches priced above the threshold."""
        start = self.event.active_period.start
        if not self.price_only:
            return (_Stretch(start, events.end(self.event)),)
        threshold = self.preferences.price_threshold_per_kwh
        found: list[_Stretch] = []
        for signal in self.signals:
            at = start
            for price, duration in self.prices(signal):
                stop = None if duration == _ZERO else at + duration
                if price > threshold:
                    if found and found[-1].end == at:  # one shift across adjacent intervals
                        found[-1] = _Stretch(found[-1].start, stop)
                    else:
                        found.append(_Stretch(at, stop))
                if stop is None:
                    break
                at = stop
        return tuple(sorted(found, key=lambda s: s.start))

    @cached_property
    def demands(self) -> tuple[_Demand, ...]:
        """The hard requests (LOAD_DISPATCH, LOAD_CONTROL capacity) and who would meet them."""
        found = (_demand(self, s) for s in self.signals)
        return tuple(d for d in found if d is not None)


Rule = Callable[[_Case], Decision | None]


def _out(rule: str, text: str) -> Decision:
    return Decision(opt=OptType.OPT_OUT, reason=f"optOut ({rule}): {text}")


def _in(rule: str, text: str) -> Decision:
    return Decision(opt=OptType.OPT_IN, reason=f"optIn ({rule}): {text}")


def _manual_override(case: _Case) -> Decision | None:
    if case.event.event_id in case.preferences.opted_out_events:
        return _out("override", f"you opted out of event {case.event.event_id} yourself")
    return None


def _test_event(case: _Case) -> Decision | None:
    if case.event.test_event and not case.preferences.participate_in_test_events:
        return _out("test", "a test event, and you do not take part in tests")
    return None


def _signals(case: _Case) -> Decision | None:
    if not case.signals:
        names = ", ".join(f"{s.signal_name} {s.signal_type}" for s in case.event.signals)
        return _out("signals", f"no signal this household acts on ({names})")
    return None


def _quiet_overlaps(window: QuietWindow, stretch: _Stretch, zone: tzinfo) -> bool:
    if stretch.end is None:
        return True  # an open-ended stretch meets every daily window
    day = stretch.start.astimezone(zone).date() - timedelta(days=1)
    last = stretch.end.astimezone(zone).date()
    while day <= last:
        begins = datetime.combine(day, window.start, tzinfo=zone)
        ends_on = day if window.end > window.start else day + timedelta(days=1)
        ends = datetime.combine(ends_on, window.end, tzinfo=zone)
        if begins < stretch.end and stretch.start < ends:
            return True
        day += timedelta(days=1)
    return False


def _do_not_disturb(case: _Case) -> Decision | None:
    zone = case.preferences.timezone
    for window in case.preferences.do_not_disturb:
        for stretch in case.stretches:
            if _quiet_overlaps(window, stretch, zone):
                when = f"{window.start.isoformat('minutes')}-{window.end.isoformat('minutes')}"
                return _out("do-not-disturb", f"event overlaps your quiet hours {when}")
    return None


def _duration(case: _Case) -> Decision | None:
    accepted = case.preferences.max_shift
    what = "price above your threshold" if case.price_only else "event"
    for stretch in case.stretches:
        length = stretch.length()
        if length is None:
            return _out(
                "duration", f"{what} is open-ended, longer than the {span(accepted)} you accept"
            )
        if length > accepted:
            verb = "lasts" if not case.price_only else "for"
            return _out(
                "duration",
                f"{what} {verb} {span(length)}, longer than the {span(accepted)} you accept",
            )
    return None


def _nothing_controllable(case: _Case) -> Decision | None:
    if case.steerable:
        return None
    why = [
        f"{name(d)} {why_not_controllable(d, case.preferences) or 'cannot give'}"
        for d in case.targeted
    ]
    detail = "; ".join(why) if why else "no device is targeted"
    return _out("controllable", f"nothing here may respond ({detail})")


def _price(case: _Case) -> Decision | None:
    if not case.price_only:
        return None
    prefs = case.preferences
    prices = [p for s in case.signals for p, _ in case.prices(s)]
    highest, lowest = max(prices), min(prices)
    threshold = prefs.price_threshold_per_kwh
    if highest > threshold:
        return _in(
            "price",
            f"price up to {_price_text(highest)}, above your {_price_text(threshold)}:"
            " worth shifting",
        )
    chargers = [
        d for d in case.steerable if d.kind != DeviceKind.HEAT_PUMP and charge_cap_kw(d) > 0
    ]
    low = prefs.low_price_per_kwh
    if low is not None and lowest < low and chargers:
        who = ", ".join(name(d) for d in chargers)
        return _in(
            "price",
            f"price down to {_price_text(lowest)}, below your {_price_text(low)}: charging {who}",
        )
    return _out(
        "price",
        f"price at most {_price_text(highest)}, not above your {_price_text(threshold)}:"
        " nothing to gain",
    )


_HARD = {
    (SignalName.LOAD_DISPATCH, SignalType.SETPOINT),
    (SignalName.LOAD_DISPATCH, SignalType.DELTA),
    (SignalName.LOAD_DISPATCH, SignalType.MULTIPLIER),
    (SignalName.LOAD_CONTROL, SignalType.LOAD_CONTROL_CAPACITY),
    (SignalName.LOAD_CONTROL, SignalType.LOAD_CONTROL_PERCENT_OFFSET),
}


def _worst(signal: EventSignal) -> float | None:
    """The most demanding interval value of a hard request (None: not one): the lowest cap,
    delta, multiplier or capacity (a percent offset read as the capacity 1 + offset)."""
    if (signal.signal_name, signal.signal_type) not in _HARD:
        return None
    lowest = min(i.value for i in signal.intervals)
    if signal.signal_type == SignalType.LOAD_CONTROL_PERCENT_OFFSET:
        return 1.0 + lowest
    return lowest


@dataclass(frozen=True, slots=True)
class _Demand:
    """What one hard request takes from each device over the event: kW given and share of power."""

    text: str
    reachable: bool
    shares: tuple[tuple[Flex, float], ...]
    short_by_kw: float = 0.0


def _demand(case: _Case, signal: EventSignal) -> _Demand | None:
    worst = _worst(signal)
    if worst is None:
        return None
    flexes = flexibilities(case.devices_of(signal), case.preferences, case.hours)
    if signal.signal_name == SignalName.LOAD_DISPATCH:
        item = signal.item_base
        value = in_kilo(worst, item.units if item else None, item.scale if item else None)
        unit = "" if signal.signal_type == SignalType.MULTIPLIER else " kW"
        text = f"LOAD_DISPATCH {signal.signal_type} {value:g}{unit}"
        reduction = dispatch_reduction_kw(signal.signal_type, value, case.household, flexes)
        if reduction is None or reduction <= _EPS_KW:
            return _Demand(text, True, ())
        shares = allocate(reduction, flexes)
        short = reduction - sum(g for _, g in shares)
        return _Demand(text, short <= 1e-3, shares, short)
    # LOAD_CONTROL: each load limited to a fraction of its normal draw
    loads = [f for f in flexes if f.device.kind != DeviceKind.BATTERY]
    shares = tuple(
        (f, min(f.give_kw, (1.0 - worst) * f.most_kw))
        for f in loads
        if f.give_kw > _EPS_KW and worst < 1.0
    )
    text = f"LOAD_CONTROL {signal.signal_type} {min(i.value for i in signal.intervals):g}"
    return _Demand(text, worst >= 1.0 or bool(shares), shares)


def _reachable(case: _Case) -> Decision | None:
    for demand in case.demands:
        if demand.reachable:
            continue
        if not demand.shares:
            return _out("reach", f"{demand.text}: none of your devices can give anything")
        given = sum(g for _, g in demand.shares)
        who = ", ".join(name(f.device) for f, _ in demand.shares)
        return _out(
            "reach",
            f"{demand.text} needs {given + demand.short_by_kw:.1f} kW less;"
            f" your devices can give {given:.1f} kW ({who})",
        )
    return None


def _comfort(case: _Case) -> Decision | None:
    prefs = case.preferences
    if case.hours is None:
        return None  # open-ended events never get here (duration rule)
    for demand in case.demands:
        for flex, give in demand.shares:
            pump = flex.device
            if pump.kind != DeviceKind.HEAT_PUMP or pump.temperature_c is None or flex.most_kw <= 0:
                continue
            cut = give / flex.most_kw
            hours_until_min = (pump.temperature_c - prefs.comfort_min_c) / (
                prefs.room_cooling_k_per_h * cut
            )
            if hours_until_min >= case.hours:
                continue
            lasts = span(timedelta(hours=hours_until_min))
            others = [f for f, _ in demand.shares if f.device.kind != DeviceKind.HEAT_PUMP]
            if not others:
                return _out(
                    "comfort",
                    f"{demand.text} rests on the {name(pump)}; the room would reach"
                    f" {prefs.comfort_min_c:g} °C after {lasts} of the {span(case.duration)} event",
                )
            who = ", ".join(name(f.device) for f in others)
            return _in(
                "comfort",
                f"partly: {demand.text} - the {name(pump)} holds back for {lasts} of the"
                f" {span(case.duration)} event, then heats to keep {prefs.comfort_min_c:g} °C;"
                f" {who} keep their part",
            )
    return None


_RULES: tuple[Rule, ...] = (
    _manual_override,
    _test_event,
    _signals,
    _do_not_disturb,
    _duration,
    _nothing_controllable,
    _price,
    _reachable,
    _comfort,
)


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _default(case: _Case) -> Decision:
    parts = []
    order = list(LABEL)
    for demand in case.demands:
        if demand.shares:
            kinds = sorted({f.device.kind for f, _ in demand.shares}, key=order.index)
            who = _and([LABEL[k] for k in kinds])
            parts.append(f"{demand.text} is reachable by shifting {who} within your comfort band")
        else:
            parts.append(f"{demand.text} is met already")
    if not parts:
        names = ", ".join(sorted({f"{s.signal_name} {s.signal_type}" for s in case.signals}))
        who = _and([name(d) for d in case.steerable])
        parts.append(f"{names}: {who} can respond within your preferences")
    return _in("default", "; ".join(parts))


def decide(
    event: Event,
    preferences: Preferences,
    household: Sequence[DeviceState],
    now: datetime,
) -> Decision:
    """optIn or optOut for this event modification, with the rule that decided.

    Rules, first match wins: override, test, signals (none acted on), do-not-disturb, duration,
    controllable, price (price-only events), reach, comfort; otherwise optIn (default). `now`
    is the moment of deciding; the rules read the event and the telemetry, not the clock. The
    session's `Policy` is this with the preferences and the latest telemetry bound.
    """
    case = _Case(event, preferences, household, now)
    for rule in _RULES:
        decision = rule(case)
        if decision is not None:
            return decision
    return _default(case)
