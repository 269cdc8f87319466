"""Baselines for measurement and verification: what a node would have drawn without the order.

Pure and pluggable (issue 8): a `Baseline` has a `name`, `params()` recorded with the settlement,
and `estimate(history, event_day_readings, blocks)` giving kW per block. delivered = baseline -
actual, per block (`delivered`).

Data types: a day's series is `DayReadings`, mean kW per ISP of the UTC day indexed from 0
(96 values for 15-minute ISPs), None for a gap; `History` maps earlier days to their series.
`EventBlocks` names the event day and the ISP index of each request block. Days are UTC days
(a DSO that wants local days passes local dates and series; nothing here assumes a zone).

Methods:

- `TenOfTen` (CAISO 10-in-10): the mean, per ISP, of the last `days` eligible days within a
  `lookback_days` window; eligible = same day type as the event (weekday or weekend), not an
  event or excluded day, and complete (no gap) in the event ISPs and the adjustment window. With
  fewer than `min_days` eligible days it raises `InsufficientData`. Same-day adjustment: ratio
  of the event day's mean load to the baseline days' mean load in the 4 hours before the event
  that end 1 hour before it (the hour just before is left out: pre-cooling and rebound would
  game it), capped to 1 ± `adjustment_cap` (±20 %). The window must lie in the event day and
  have at least one reading, else `InsufficientData`.
- `HighXOfY` (high X of Y): of the last Y eligible days, the X with the highest mean load over
  the event ISPs, averaged per ISP; needs at least X eligible days; optional same adjustment.
- `MeterBeforeMeterAfter`: the mean of the last `readings` non-gap ISPs before the event start
  (looking back at most `lookback_isps`, into the previous day if needed), held flat.

Estimates are quantized to `KW_QUANTUM` (1 W) with ROUND_HALF_EVEN, once, at the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final, Protocol

from market.errors import InsufficientData, MarketError
from market.model import KW_QUANTUM, Award, Delivery, FlexRequest, NodeId

DayReadings = Sequence[Decimal | None]
History = Mapping[date, DayReadings]
ZERO: Final = Decimal(0)
ONE: Final = Decimal(1)


@dataclass(frozen=True, slots=True)
class EventBlocks:
    """The event day and, per request block, its ISP index in that day's series."""

    day: date
    isps: tuple[int, ...]
    isp: timedelta = timedelta(minutes=15)

    @property
    def isps_per_day(self) -> int:
        return int(timedelta(days=1) / self.isp)


def event_blocks(request: FlexRequest) -> EventBlocks:
    """Map a request's blocks onto ISPs of its UTC day; the request must lie in one aligned day."""
    day = request.start.date()
    midnight = datetime.combine(day, time(), tzinfo=request.start.tzinfo)
    offset = request.start - midnight
    if offset % request.isp:
        raise MarketError(f"request start {request.start.isoformat()} is not on an ISP boundary")
    first = int(offset / request.isp)
    isps = tuple(range(first, first + len(request.needed_kw)))
    blocks = EventBlocks(day=day, isps=isps, isp=request.isp)
    if isps and isps[-1] >= blocks.isps_per_day:
        raise MarketError("a request that crosses midnight cannot be baselined by day")
    return blocks


class Baseline(Protocol):
    """A baseline method; `params()` are recorded with the settlement that used it."""

    @property
    def name(self) -> str: ...

    def params(self) -> dict[str, object]: ...

    def estimate(
        self, history: History, event_day_readings: DayReadings, blocks: EventBlocks
    ) -> tuple[Decimal, ...]: ...


def describe(method: Baseline) -> str:
    """`name(k=v, ...)`: how a settlement records the method it used."""
    args = ", ".join(f"{k}={v}" for k, v in sorted(method.params().items()))
    return f"{method.name}({args})"


def _mean(values: Sequence[Decimal]) -> Decimal:
    return sum(values, ZERO) / len(values)


def _quantize(values: Sequence[Decimal]) -> tuple[Decimal, ...]:
    return tuple(v.quantize(KW_QUANTUM, rounding=ROUND_HALF_EVEN) for v in values)


def _complete(series: DayReadings, isps: Sequence[int]) -> bool:
    return all(0 <= i < len(series) and series[i] is not None for i in isps)


def _at(series: DayReadings, isp: int) -> Decimal:
    value = series[isp]
    if value is None:  # callers only read ISPs they checked with _complete
        raise InsufficientData(f"gap at ISP {isp}")
    return value


def _adjustment_isps(blocks: EventBlocks) -> tuple[int, ...]:
    """The 4 hours before the event that end 1 hour before it, as ISP indices of the day."""
    per_hour = int(timedelta(hours=1) / blocks.isp)
    first = blocks.isps[0] - 5 * per_hour
    if first < 0:
        raise InsufficientData(
            "the same-day adjustment window (4 h ending 1 h before the event) starts "
            "before midnight; use a method without adjustment for early events"
        )
    return tuple(range(first, blocks.isps[0] - per_hour))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Eligibility:
    lookback_days: int
    excluded_days: frozenset[date]

    def days(self, history: History, blocks: EventBlocks, isps: Sequence[int]) -> list[date]:
        """Eligible days, most recent first."""
        weekend = blocks.day.weekday() >= 5
        earliest = blocks.day - timedelta(days=self.lookback_days)
        return [
            day
            for day in sorted(history, reverse=True)
            if earliest <= day < blocks.day
            and (day.weekday() >= 5) == weekend
            and day not in self.excluded_days
            and _complete(history[day], isps)
        ]


def _adjusted(
    unadjusted: Sequence[Decimal],
    history: History,
    days: Sequence[date],
    event_day_readings: DayReadings,
    blocks: EventBlocks,
    cap: Decimal,
) -> list[Decimal]:
    window = _adjustment_isps(blocks)
    present = [
        i for i in window if i < len(event_day_readings) and event_day_readings[i] is not None
    ]
    if not present:
        raise InsufficientData("no event-day readings in the same-day adjustment window")
    observed = _mean([_at(event_day_readings, i) for i in present])
    expected = _mean([_at(history[d], i) for d in days for i in present])
    # No load in the window on the baseline days: a ratio means nothing, leave it unadjusted.
    ratio = ONE if expected == 0 else observed / expected
    ratio = min(max(ratio, ONE - cap), ONE + cap)
    return [kw * ratio for kw in unadjusted]


@dataclass(frozen=True, slots=True, kw_only=True)
class TenOfTen:
    """CAISO 10-in-10 with a capped same-day adjustment (see the module docstring)."""

    days: int = 10
    min_days: int = 5
    lookback_days: int = 45
    adjust: bool = True
    adjustment_cap: Decimal = Decimal("0.2")
    excluded_days: frozenset[date] = field(default_factory=frozenset)  # events and holidays

    @property
    def name(self) -> str:
        return "10-of-10"

    def params(self) -> dict[str, object]:
        return {
            "days": self.days,
            "min_days": self.min_days,
            "lookback_days": self.lookback_days,
            "adjust": self.adjust,
            "adjustment_cap": str(self.adjustment_cap),
        }

    def estimate(
        self, history: History, event_day_readings: DayReadings, blocks: EventBlocks
    ) -> tuple[Decimal, ...]:
        needed = blocks.isps + (_adjustment_isps(blocks) if self.adjust else ())
        rule = _Eligibility(lookback_days=self.lookback_days, excluded_days=self.excluded_days)
        days = rule.days(history, blocks, needed)[: self.days]
        if len(days) < self.min_days:
            raise InsufficientData(
                f"{self.name}: {len(days)} eligible days in the last {self.lookback_days}, "
                f"need at least {self.min_days}"
            )
        unadjusted = [_mean([_at(history[d], i) for d in days]) for i in blocks.isps]
        if self.adjust:
            unadjusted = _adjusted(
                unadjusted, history, days, event_day_readings, blocks, self.adjustment_cap
            )
        return _quantize(unadjusted)


@dataclass(frozen=True, slots=True, kw_only=True)
class HighXOfY:
    """The X highest-load of the last Y eligible days, averaged per ISP."""

    x: int = 5
    y: int = 10
    lookback_days: int = 45
    adjust: bool = False
    adjustment_cap: Decimal = Decimal("0.2")
    excluded_days: frozenset[date] = field(default_factory=frozenset)

    @property
    def name(self) -> str:
        return f"high-{self.x}-of-{self.y}"

    def params(self) -> dict[str, object]:
        return {
            "x": self.x,
            "y": self.y,
            "lookback_days": self.lookback_days,
            "adjust": self.adjust,
            "adjustment_cap": str(self.adjustment_cap),
        }

    def estimate(
        self, history: History, event_day_readings: DayReadings, blocks: EventBlocks
    ) -> tuple[Decimal, ...]:
        needed = blocks.isps + (_adjustment_isps(blocks) if self.adjust else ())
        rule = _Eligibility(lookback_days=self.lookback_days, excluded_days=self.excluded_days)
        candidates = rule.days(history, blocks, needed)[: self.y]
        if len(candidates) < self.x:
            raise InsufficientData(
                f"{self.name}: {len(candidates)} eligible days, need at least {self.x}"
            )
        # Highest event-window load first; ties go to the more recent day (stable sort on
        # a most-recent-first list), so the choice is deterministic.
        days = sorted(
            candidates,
            key=lambda d: _mean([_at(history[d], i) for i in blocks.isps]),
            reverse=True,
        )[: self.x]
        unadjusted = [_mean([_at(history[d], i) for d in days]) for i in blocks.isps]
        if self.adjust:
            unadjusted = _adjusted(
                unadjusted, history, days, event_day_readings, blocks, self.adjustment_cap
            )
        return _quantize(unadjusted)


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterBeforeMeterAfter:
    """The load just before the event, held flat over it."""

    readings: int = 1
    lookback_isps: int = 4

    @property
    def name(self) -> str:
        return "meter-before-meter-after"

    def params(self) -> dict[str, object]:
        return {"readings": self.readings, "lookback_isps": self.lookback_isps}

    def estimate(
        self, history: History, event_day_readings: DayReadings, blocks: EventBlocks
    ) -> tuple[Decimal, ...]:
        previous = history.get(blocks.day - timedelta(days=1), [None] * blocks.isps_per_day)
        # The previous day then the event day, so "just before" may cross midnight.
        series = [*previous, *event_day_readings]
        start = len(previous) + blocks.isps[0]
        found: list[Decimal] = []
        for i in range(start - 1, max(start - 1 - self.lookback_isps, -1), -1):
            value = series[i]
            if value is not None:
                found.append(value)
                if len(found) == self.readings:
                    break
        if len(found) < self.readings:
            raise InsufficientData(
                f"{self.name}: {len(found)} readings in the {self.lookback_isps} ISPs before "
                f"the event, need {self.readings}"
            )
        level = _mean(found)
        return _quantize([level] * len(blocks.isps))


def delivered(
    awards: Sequence[Award],
    baselines: Mapping[NodeId, Sequence[Decimal]],
    actuals: Mapping[NodeId, Sequence[Decimal | None]],
    *,
    method: Baseline | str,
) -> list[Delivery]:
    """delivered = baseline - actual, per award and block with a non-zero award.

    `baselines` and `actuals` are per node and request block (kW). A node with several awards
    in one request shares its measured reduction pro rata to the awarded kW in each block (the
    baseline and actual are split by the same share). A block with no actual reading, or a node
    with no baseline, yields no `Delivery`; settlement then counts nothing delivered there.
    """
    label = method if isinstance(method, str) else describe(method)
    total_kw: dict[tuple[NodeId, int], Decimal] = {}
    for award in awards:
        for block, kw in enumerate(award.awarded_kw):
            key = (award.node_id, block)
            total_kw[key] = total_kw.get(key, ZERO) + kw
    result: list[Delivery] = []
    for award in awards:
        baseline = baselines.get(award.node_id)
        actual = actuals.get(award.node_id)
        if baseline is None or actual is None:
            continue
        for block, kw in enumerate(award.awarded_kw):
            if kw <= 0 or block >= len(actual) or block >= len(baseline):
                continue
            measured = actual[block]
            if measured is None:
                continue
            share = kw / total_kw[(award.node_id, block)]
            result.append(
                Delivery(
                    bid_id=award.bid_id,
                    node_id=award.node_id,
                    block=block,
                    baseline_kw=baseline[block] if share == 1 else baseline[block] * share,
                    actual_kw=measured if share == 1 else measured * share,
                    method=label,
                )
            )
    return result
