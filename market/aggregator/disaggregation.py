"""Disaggregation: one upstream event's kW becomes each member's share (issue 9).

Pure. The aggregator is one VEN to the DSO per virtual end node; what the DSO asks of a node
(LOAD_DISPATCH, kW of reduction per interval: `market.dispatch`) is shared across the node's
members, each of whom gets a LOAD_DISPATCH delta event of its own downstream.

Our readings and choices:
- What the DSO asks: LOAD_DISPATCH `delta` is minus the reduction (kW); `setpoint` is a cap on
  the node's import, so the reduction is the node's baseline less the cap. Other signals carry
  no kW amount: the aggregator cannot promise anything for them and opts out.
- What a member can give now (`available_kw`) comes from its device metadata (kind, rating)
  and its recent telemetry: an EV charger or heat pump can shed what it draws (never more than
  its rating), a battery can stop charging and feed in at its rating. A device not heard from
  counts for nothing. A member that opted out of its event, or that was seen under-delivering,
  counts only for what it actually delivers.
- Sharing is proportional to what each member can give (`needed x available / total`), so no
  member is asked for more than it can give and all are asked alike; when the node cannot give
  what is asked, everyone gives all it can and the rest is a shortfall.
- Re-dispatch: a member that opted out counts for nothing, one that under-delivers for what
  it is measured to deliver (its power before the event less its power now; negative when its
  load went up); the others share what is still missing by the same rule, so the node's total
  is made up where they can, not just the failing member's share.
- Availability is measured once, at planning time, and holds for every interval of the event.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from oadr.enums import SignalName, SignalType
from oadr.model import Event
from ven.model import DeviceKind

EPS_KW = 1e-6


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceInfo:
    """A member device as the aggregator knows it: registered metadata, plus its rating."""

    device_id: str
    kind: DeviceKind
    rating_kw: float  # most it draws (EV, heat pump) or feeds in (battery)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberFlex:
    """What one member can give now (kW of reduction), and whether it takes part at all."""

    member: str
    available_kw: float
    opted_out: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """Each member's kW per interval, and what the node falls short of per interval."""

    shares_kw: Mapping[str, tuple[float, ...]]
    shortfall_kw: tuple[float, ...]

    def total_kw(self, index: int) -> float:
        return math.fsum(s[index] for s in self.shares_kw.values())


def device_available_kw(device: DeviceInfo, recent_power_kw: float | None) -> float:
    """What one device can shed now (module docstring); None: not heard from, nothing."""
    if recent_power_kw is None:
        return 0.0
    rating = max(0.0, device.rating_kw)
    if device.kind in (DeviceKind.EV_CHARGER, DeviceKind.HEAT_PUMP):
        return min(rating, max(0.0, recent_power_kw))
    if device.kind == DeviceKind.BATTERY:  # stop charging, then feed in at its rate
        return max(0.0, recent_power_kw) + rating
    return 0.0  # PV and base load are not steered by a reduction


def member_available_kw(
    devices: Sequence[DeviceInfo], recent_power_kw: Mapping[str, float]
) -> float:
    return math.fsum(device_available_kw(d, recent_power_kw.get(d.device_id)) for d in devices)


def requested_kw(event: Event, node_baseline_kw: float) -> tuple[float, ...] | None:
    """The reduction the event asks of the node per interval; None when it names no kW."""
    for signal in event.signals:
        if signal.signal_name != SignalName.LOAD_DISPATCH:
            continue
        if signal.signal_type == SignalType.DELTA:
            return tuple(max(0.0, -i.value) for i in signal.intervals)
        if signal.signal_type == SignalType.SETPOINT:
            return tuple(max(0.0, node_baseline_kw - i.value) for i in signal.intervals)
    return None


def share(needed_kw: float, members: Sequence[MemberFlex]) -> dict[str, float]:
    """One interval: proportional to availability, capped by it (module docstring)."""
    able = [m for m in members if not m.opted_out and m.available_kw > EPS_KW]
    total = math.fsum(m.available_kw for m in able)
    shares = {m.member: 0.0 for m in members}
    if needed_kw <= EPS_KW or total <= EPS_KW:
        return shares
    fraction = min(1.0, needed_kw / total)
    for m in able:
        shares[m.member] = m.available_kw * fraction
    return shares


def plan(needed_kw: Sequence[float], members: Sequence[MemberFlex]) -> Plan:
    """Every interval shared across `members`."""
    per_interval = [share(kw, members) for kw in needed_kw]
    shares = {m.member: tuple(p[m.member] for p in per_interval) for m in members}
    shortfall = tuple(
        max(0.0, kw - math.fsum(p.values())) for kw, p in zip(needed_kw, per_interval, strict=True)
    )
    return Plan(shares_kw=shares, shortfall_kw=shortfall)


def can_deliver(result: Plan, needed_kw: Sequence[float], tolerance: float) -> bool:
    """True when every interval's shortfall is within `tolerance` (a fraction) of its ask."""
    return all(
        short <= tolerance * kw + EPS_KW
        for short, kw in zip(result.shortfall_kw, needed_kw, strict=True)
    )


def under_delivers(
    assigned_kw: float, delivered_kw: float, tolerance: float, floor_kw: float = 0.1
) -> bool:
    """True when a member gives less than its share by more than the tolerance (relative, but
    never less than `floor_kw`, so metering noise on a small share is not a failure)."""
    return assigned_kw - delivered_kw > max(tolerance * assigned_kw, floor_kw)


def judged_from(
    *,
    start: datetime,
    changed_at: datetime | None,
    delivered_at: datetime | None,
    grace: timedelta,
) -> datetime | None:
    """From when a member's readings show whether it follows its share: `grace` after it
    received the share (its event's latest modification, made at `changed_at`; None: not known,
    as after a restart), never before `grace` after the event starts. None while that share has
    not reached it: an event that is merely late in reaching a member must not make it look like
    it is failing."""
    if delivered_at is None or (changed_at is not None and delivered_at < changed_at):
        return None
    return max(delivered_at, start) + grace


def redispatch(
    needed_kw: Sequence[float],
    members: Sequence[MemberFlex],
    delivering_kw: Mapping[str, float],
) -> Plan:
    """Share again without the members in `delivering_kw` (opted out, or under-delivering):
    they count for what they deliver (0 when opted out; negative when their load went up), and
    the others share the rest. The plan has no share for them: their events are left alone
    (lowering an under-deliverer's share would only make it deliver less still)."""
    fixed_kw = math.fsum(delivering_kw.values())
    others = [m for m in members if m.member not in delivering_kw]
    rest = [max(0.0, kw - fixed_kw) for kw in needed_kw]
    return plan(rest, others)


def changed(old: Sequence[float], new: Sequence[float], threshold_kw: float) -> bool:
    """Whether a member's event must be modified: a share moved by more than `threshold_kw`
    (small moves would only churn modifications through the members)."""
    if len(old) != len(new):
        return True
    return any(abs(a - b) > threshold_kw for a, b in zip(old, new, strict=True))
