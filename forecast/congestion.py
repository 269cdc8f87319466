"""Congestion detection: a load forecast against the point's capacity, and what to do about it.

The DSO compares the upper quantile of the forecast (P90 by default: it plans for a bad but not
absurd case) with the capacity of the feeder or transformer, which may vary over time (seasonal
or dynamic rating, a planned outage). Each ISP gets a traffic light: green below 80 % of the
capacity, orange below 100 %, red at or above (thresholds configurable). A run of contiguous red
ISPs is a window; the DSO's policy turns each window into exactly one action, a market
FlexRequest or a direct OpenADR event, for the kW the forecast exceeds the capacity by.

`plan` is idempotent: a window that overlaps one already acted on for the same point is covered
and produces nothing new, so re-running the forecast (every 15 minutes, after a restart) does not
flood the market. ISPs that start sooner than `lead_time` from now are too late to buy flexibility
for; they are left out of the action and the decision says so (the audit log keeps it).

Pure: no clock, no I/O; `now` is an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from forecast.models import Forecast


class Light(StrEnum):
    GREEN = "green"
    ORANGE = "orange"
    RED = "red"


class Action(StrEnum):
    """What the DSO's policy does with a red window."""

    FLEX_REQUEST = "flex-request"  # ask the local market (market/)
    EVENT = "event"  # an OpenADR event to the VENs under the point, directly


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Load / capacity ratios where the light turns orange and red, and which quantile counts."""

    orange_at: float = 0.8
    red_at: float = 1.0
    quantile: str = "p90"  # p10, p50 or p90

    def __post_init__(self) -> None:
        if not 0 < self.orange_at <= self.red_at:
            raise ValueError("need 0 < orange_at <= red_at")
        if self.quantile not in ("p10", "p50", "p90"):
            raise ValueError("quantile is one of p10, p50, p90")


@dataclass(frozen=True, slots=True)
class CapacityChange:
    """The capacity is `capacity_kw` in [start, end) instead of the point's rated capacity."""

    start: datetime
    end: datetime
    capacity_kw: float


def capacity_profile(
    rated_kw: float,
    changes: Sequence[CapacityChange],
    start: datetime,
    count: int,
    isp: timedelta,
) -> tuple[float, ...]:
    """The capacity per ISP: the rated value, with time-limited changes (the lowest one wins
    where two overlap: a derating is a safety limit)."""
    out: list[float] = []
    for i in range(count):
        at = start + isp * i
        applying = [c.capacity_kw for c in changes if c.start <= at < c.end]
        out.append(min(applying) if applying else rated_kw)
    return tuple(out)


def upper(forecast: Forecast, thresholds: Thresholds) -> tuple[float, ...]:
    return {"p10": forecast.p10_kw, "p50": forecast.p50_kw, "p90": forecast.p90_kw}[
        thresholds.quantile
    ]


def lights(
    forecast: Forecast, capacity_kw: Sequence[float], thresholds: Thresholds = Thresholds()
) -> tuple[Light, ...]:
    """The traffic light of each forecast ISP."""
    if len(capacity_kw) != len(forecast):
        raise ValueError("one capacity per forecast ISP")
    out: list[Light] = []
    for load_kw, cap_kw in zip(upper(forecast, thresholds), capacity_kw, strict=True):
        ratio = load_kw / cap_kw if cap_kw > 0 else float("inf")
        if ratio >= thresholds.red_at:
            out.append(Light.RED)
        elif ratio >= thresholds.orange_at:
            out.append(Light.ORANGE)
        else:
            out.append(Light.GREEN)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Window:
    """Contiguous red ISPs at one point: `needed_kw[i]` is the excess over capacity in ISP i."""

    point_id: str
    start: datetime
    isp: timedelta
    needed_kw: tuple[float, ...]

    @property
    def end(self) -> datetime:
        return self.start + self.isp * len(self.needed_kw)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end


def red_windows(
    point_id: str,
    forecast: Forecast,
    capacity_kw: Sequence[float],
    thresholds: Thresholds = Thresholds(),
) -> list[Window]:
    colours = lights(forecast, capacity_kw, thresholds)
    load = upper(forecast, thresholds)
    windows: list[Window] = []
    first: int | None = None
    for i, light in enumerate((*colours, Light.GREEN)):  # the sentinel closes a last window
        if light is Light.RED and first is None:
            first = i
        elif light is not Light.RED and first is not None:
            needed = tuple(round(max(load[j] - capacity_kw[j], 0.0), 3) for j in range(first, i))
            windows.append(Window(point_id, forecast.time_of(first), forecast.isp, needed))
            first = None
    return windows


@dataclass(frozen=True, slots=True)
class Policy:
    """The DSO's rule for red windows."""

    action: Action = Action.FLEX_REQUEST
    lead_time: timedelta = timedelta(hours=2)  # the least notice flexibility can be bought with
    gate_closure_before: timedelta = timedelta(minutes=30)  # market bids close this early
    act_within: timedelta = timedelta(hours=48)  # later windows wait for a newer forecast

    def __post_init__(self) -> None:
        if self.gate_closure_before > self.lead_time:
            raise ValueError("the gate must close within the lead time")


@dataclass(frozen=True, slots=True)
class Taken:
    """An action already taken for a point and window (from the store)."""

    point_id: str
    start: datetime
    end: datetime
    reference: str  # the flex request's or event's id


class Verdict(StrEnum):
    ACT = "act"
    COVERED = "covered"  # an earlier action covers (part of) this window
    TOO_LATE = "too-late"  # every red ISP starts within the lead time
    LATER = "later"  # beyond act_within: decided on a later forecast


@dataclass(frozen=True, slots=True)
class Decision:
    window: Window  # the part of the red window the action is for (clipped to the lead time)
    verdict: Verdict
    reason: str
    gate_closure: datetime | None = None  # for a flex request


def plan(
    windows: Sequence[Window], taken: Sequence[Taken], policy: Policy, now: datetime
) -> list[Decision]:
    """One decision per red window; ACT at most once per point and window."""
    decisions: list[Decision] = []
    acted = list(taken)
    for window in windows:
        clipped = _clip(window, now + policy.lead_time)
        covering = next(
            (t for t in acted if t.point_id == window.point_id and window.overlaps(t.start, t.end)),
            None,
        )
        if covering is not None:
            decisions.append(Decision(window, Verdict.COVERED, f"covered by {covering.reference}"))
        elif clipped is None:
            decisions.append(
                Decision(
                    window, Verdict.TOO_LATE, f"starts within the lead time {policy.lead_time}"
                )
            )
        elif clipped.start > now + policy.act_within:
            decisions.append(Decision(window, Verdict.LATER, "beyond the action horizon"))
        else:
            late = len(window.needed_kw) - len(clipped.needed_kw)
            reason = "new red window" + (
                f"; {late} ISP(s) within the lead time left out" if late else ""
            )
            gate = clipped.start - policy.gate_closure_before
            decisions.append(Decision(clipped, Verdict.ACT, reason, gate_closure=gate))
            acted.append(Taken(window.point_id, clipped.start, clipped.end, "(this run)"))
    return decisions


def _clip(window: Window, earliest: datetime) -> Window | None:
    """The window without the ISPs that start before `earliest`; None if nothing is left."""
    skip = 0
    while skip < len(window.needed_kw) and window.start + window.isp * skip < earliest:
        skip += 1
    if skip == len(window.needed_kw):
        return None
    return Window(
        window.point_id, window.start + window.isp * skip, window.isp, window.needed_kw[skip:]
    )


def action_id(window: Window) -> str:
    """A deterministic id for the action of a window: a retried run reuses it."""
    return f"fc-{window.point_id}-{window.start:%Y%m%dT%H%MZ}"
