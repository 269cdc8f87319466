"""What flexibility did: each feeder's measured load against its no-flexibility baseline. Pure.

The measured load is what the VTN stored: every household's telemetry (each device's power,
15-minute means, as the VTN's report requests asked) summed per feeder and period. The baseline
is the same households simulated without commands (`forecast.household_loads`). Before the event
was announced the two should agree (the tracking error says how well); in the window the
difference is the delivered reduction; after it, any rebound.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flex4grid.demo.forecast import SLOTS_PER_DAY, FeederPlan
from flex4grid.demo.profiles import STEP

REBOUND_SPAN = timedelta(hours=4)  # after the window, where a rebound is looked for
_HOURS_PER_SLOT = STEP / timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class PowerReading:
    """One stored telemetry value: whose, when (interval start and length), kW."""

    household: str
    start: datetime
    duration: timedelta
    power_kw: float


@dataclass(frozen=True, slots=True)
class Answer:
    """One VEN's answer to its feeder's event."""

    household: str
    feeder: str
    opted_in: bool | None  # None: never answered
    latency: timedelta | None  # real time from the event's creation to the answer
    reason: str | None = None  # the household policy's rule, e.g. "duration"


@dataclass(frozen=True, slots=True)
class FeederResult:
    name: str
    capacity_kw: float
    window: tuple[datetime, datetime] | None
    start: datetime
    baseline_kw: tuple[float, ...]
    measured_kw: tuple[float, ...]
    coverage: float  # share of the expected readings the VTN has
    published_at: datetime | None

    def _slots(self, begin: datetime, end: datetime) -> range:
        first = max(0, math.floor((begin - self.start) / STEP))
        last = min(len(self.baseline_kw), math.ceil((end - self.start) / STEP))
        return range(first, max(first, last))

    @property
    def in_window(self) -> range:
        return range(0) if self.window is None else self._slots(*self.window)

    @property
    def after_window(self) -> range:
        if self.window is None:
            return range(0)
        return self._slots(self.window[1], self.window[1] + REBOUND_SPAN)

    @property
    def before_request(self) -> range:
        return self._slots(self.start, self.published_at or self.start + timedelta(days=1))

    def peak_kw(self, series: Sequence[float], slots: Iterable[int] | None = None) -> float:
        chosen = list(range(len(series)) if slots is None else slots)
        return max((series[i] for i in chosen), default=0.0)

    @property
    def shifted_kwh(self) -> float:
        """Energy not drawn in the window, against the baseline."""
        return _HOURS_PER_SLOT * math.fsum(
            self.baseline_kw[i] - self.measured_kw[i] for i in self.in_window
        )

    @property
    def rebound_kwh(self) -> float:
        """Energy drawn above the baseline in the hours after the window (catching up)."""
        return _HOURS_PER_SLOT * math.fsum(
            max(0.0, self.measured_kw[i] - self.baseline_kw[i]) for i in self.after_window
        )

    def overload_kwh(self, series: Sequence[float]) -> float:
        """Energy above capacity over the day."""
        return _HOURS_PER_SLOT * math.fsum(max(0.0, v - self.capacity_kw) for v in series)

    @property
    def tracking_error_kw(self) -> float:
        """Mean absolute difference, measured vs baseline, before flexibility was asked for."""
        slots = list(self.before_request)
        if not slots:
            return 0.0
        return math.fsum(abs(self.measured_kw[i] - self.baseline_kw[i]) for i in slots) / len(slots)


@dataclass(frozen=True, slots=True)
class Outcome:
    feeders: tuple[FeederResult, ...]
    answers: tuple[Answer, ...]
    households: int
    registered: int
    readings: int

    @property
    def answered(self) -> list[Answer]:
        return [a for a in self.answers if a.opted_in is not None]

    @property
    def opt_out_rate(self) -> float:
        answered = self.answered
        return sum(not a.opted_in for a in answered) / len(answered) if answered else 0.0

    @property
    def opt_out_reasons(self) -> Counter[str]:
        return Counter(a.reason or "unknown" for a in self.answered if not a.opted_in)

    def latency_s(self, quantile: float) -> float | None:
        """Nearest-rank percentile of the real-time delivery latency (creation to answer)."""
        values = sorted(a.latency.total_seconds() for a in self.answers if a.latency is not None)
        if not values:
            return None
        rank = max(1, math.ceil(quantile * len(values)))
        return values[rank - 1]


def feeder_series(
    readings: Iterable[PowerReading], members: Sequence[str], start: datetime
) -> tuple[tuple[float, ...], float]:
    """The feeder's load per STEP (sum of its households' device powers), and the share of
    household-periods that had any reading."""
    wanted = set(members)
    totals = [0.0] * SLOTS_PER_DAY
    seen: set[tuple[str, int]] = set()
    for reading in readings:
        if reading.household not in wanted:
            continue
        middle = reading.start + reading.duration / 2
        slot = math.floor((middle - start) / STEP)
        if 0 <= slot < SLOTS_PER_DAY:
            totals[slot] += reading.power_kw
            seen.add((reading.household, slot))
    expected = len(wanted) * SLOTS_PER_DAY
    return tuple(totals), (len(seen) / expected if expected else 0.0)


def measure(
    plans: Sequence[FeederPlan],
    readings: Sequence[PowerReading],
    answers: Sequence[Answer],
    published_at: Mapping[str, datetime],
    registered: int,
) -> Outcome:
    feeders = []
    for plan in plans:
        measured, coverage = feeder_series(readings, plan.households, plan.start)
        feeders.append(
            FeederResult(
                name=plan.name,
                capacity_kw=plan.capacity_kw,
                window=plan.window,
                start=plan.start,
                baseline_kw=plan.forecast_kw,
                measured_kw=measured,
                coverage=coverage,
                published_at=published_at.get(plan.name),
            )
        )
    return Outcome(
        feeders=tuple(feeders),
        answers=tuple(answers),
        households=sum(len(p.households) for p in plans),
        registered=registered,
        readings=len(readings),
    )


def rule_of(reason: str | None) -> str | None:
    """The rule name in a policy reason: "optOut (duration): ..." -> "duration"."""
    if reason is None or "(" not in reason or ")" not in reason:
        return None
    return reason[reason.index("(") + 1 : reason.index(")")]


def summary(outcome: Outcome) -> dict[str, Any]:
    """The figures as JSON-ready data (`summary.json` beside the plots), for scripts and tests."""
    p50, p99 = outcome.latency_s(0.50), outcome.latency_s(0.99)
    return {
        "households": outcome.households,
        "registered": outcome.registered,
        "readings": outcome.readings,
        "targeted": len(outcome.answers),
        "acknowledged": len(outcome.answered),
        "opted_in": sum(bool(a.opted_in) for a in outcome.answered),
        "opt_out_rate": outcome.opt_out_rate,
        "opt_out_reasons": dict(outcome.opt_out_reasons),
        "latency_p50_s": p50,
        "latency_p99_s": p99,
        "feeders": [
            {
                "name": f.name,
                "capacity_kw": f.capacity_kw,
                "window": None if f.window is None else [t.isoformat() for t in f.window],
                "peak_in_window_without_flex_kw": f.peak_kw(f.baseline_kw, f.in_window),
                "peak_in_window_with_flex_kw": f.peak_kw(f.measured_kw, f.in_window),
                "day_peak_without_flex_kw": f.peak_kw(f.baseline_kw),
                "day_peak_with_flex_kw": f.peak_kw(f.measured_kw),
                "shifted_kwh": f.shifted_kwh,
                "rebound_kwh": f.rebound_kwh,
                "overload_without_flex_kwh": f.overload_kwh(f.baseline_kw),
                "overload_with_flex_kwh": f.overload_kwh(f.measured_kw),
                "tracking_error_kw": f.tracking_error_kw,
                "coverage": f.coverage,
                "without_flex_kw": list(f.baseline_kw),
                "with_flex_kw": list(f.measured_kw),
            }
            for f in outcome.feeders
        ],
        "answers": [
            {
                "household": a.household,
                "feeder": a.feeder,
                "opted_in": a.opted_in,
                "latency_s": None if a.latency is None else a.latency.total_seconds(),
                "reason": a.reason,
            }
            for a in outcome.answers
        ],
    }
