"""One forecast run for a congestion point: load, decide with pure code, save, act, audit.

1. The point's VENs (`Grid`) and their power readings of the last `history` (the VTN's report
   store), known at `now`, become one ISP series (`series.build`: gaps stay gaps).
2. The fitted model forecasts from the next ISP on; `congestion` gives the traffic light per ISP
   and the red windows; `congestion.plan` decides, against the actions already taken, what to
   do. The forecast (with model, model version, data version) and an audit entry listing every
   decision are committed together.
3. Each ACT decision goes to the `Trigger` (flex request or event, per the policy); once it is
   made, the action is recorded and audited. If the process dies in between, the next run acts
   again with the same deterministic id, which the event service (and the market) refuse to
   duplicate; recording it then is what makes later runs see it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from forecast import congestion, series
from forecast.congestion import Action, CapacityChange, Decision, Light, Policy, Thresholds, Verdict
from forecast.models import DAY_AHEAD_HORIZON, Predictor
from forecast.store import ActionRecord, Forecasts, StoredForecast
from forecast.trigger import Grid, Trigger
from market.model import CongestionPoint
from vtn.services.context import Context
from vtn.store.audit import AuditEntry


@dataclass(frozen=True)
class Settings:
    thresholds: Thresholds = field(default_factory=Thresholds)
    policy: Policy = field(default_factory=Policy)
    history: timedelta = timedelta(days=28)
    horizon: int = DAY_AHEAD_HORIZON  # ISPs from the next one: to the end of tomorrow
    capacity_changes: Mapping[str, tuple[CapacityChange, ...]] = field(default_factory=dict)
    min_coverage: float = 0.5
    r_id_suffix: str = ".power"
    holidays: frozenset[date] = frozenset()


@dataclass(frozen=True)
class PointRun:
    point_id: str
    stored: StoredForecast | None  # None: no readings to forecast from
    decisions: tuple[Decision, ...]
    references: tuple[str, ...]  # the flex requests / events created by this run
    note: str = ""

    @property
    def worst(self) -> Light | None:
        if self.stored is None:
            return None
        order = (Light.GREEN, Light.ORANGE, Light.RED)
        return max(self.stored.lights, key=order.index, default=Light.GREEN)


async def _audit(
    context: Context, actor: str, action: str, subject: str, now: datetime, **detail: Any
) -> None:
    async with context.store.transaction() as tx:
        await tx.audit.add(
            AuditEntry(at=now, actor=actor, action=action, subject=subject, detail=detail)
        )


def _decision_detail(decision: Decision) -> dict[str, Any]:
    window = decision.window
    return {
        "verdict": decision.verdict.value,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "peak_excess_kw": max(window.needed_kw, default=0.0),
        "reason": decision.reason,
    }


async def run_point(
    context: Context,
    grid: Grid,
    predictor: Predictor,
    trigger: Trigger,
    point: CongestionPoint,
    settings: Settings,
    *,
    now: datetime,
    actor: str = "forecast",
) -> PointRun:
    origin = series.floor_isp(now) + series.ISP  # the ISP under way is not yet known
    start = origin - settings.history
    ven_ids = await grid.members(point.point_id)
    async with context.store.transaction() as tx:
        samples = await Forecasts(tx.connection).samples(
            ven_ids, start, origin, r_id_suffix=settings.r_id_suffix
        )
    members = sorted({s.member for s in samples})
    load = series.build(
        samples, members, start, origin, known_at=now, min_coverage=settings.min_coverage
    )
    if not members or load.missing == len(load):
        await _audit(
            context,
            actor,
            "forecast.skip",
            point.point_id,
            now,
            reason="no readings from the point's VENs",
        )
        return PointRun(point.point_id, None, (), (), note="no readings")

    # In a worker thread: a learned model takes milliseconds per point, and the VTN's event
    # loop serves VENs meanwhile.
    made = await asyncio.to_thread(predictor.predict, load, origin, settings.horizon)
    capacity = congestion.capacity_profile(
        float(point.capacity_kw),
        settings.capacity_changes.get(point.point_id, ()),
        made.start,
        len(made),
        made.isp,
    )
    colours = congestion.lights(made, capacity, settings.thresholds)
    windows = congestion.red_windows(point.point_id, made, capacity, settings.thresholds)
    version = series.data_version(load, now)
    async with context.store.transaction() as tx:
        repo = Forecasts(tx.connection)
        forecast_id = await repo.add(
            point.point_id,
            made,
            data_version=version,
            capacity_kw=capacity,
            lights=colours,
            now=now,
        )
        decisions = congestion.plan(
            windows, await repo.taken(point.point_id, now), settings.policy, now
        )
        await tx.audit.add(
            AuditEntry(
                at=now,
                actor=actor,
                action="forecast.run",
                subject=point.point_id,
                detail={
                    "forecast_id": forecast_id,
                    "model": made.model,
                    "model_version": made.model_version,
                    "data_version": version,
                    "missing_isps": load.missing,
                    "decisions": [_decision_detail(d) for d in decisions],
                },
            )
        )
        stored = await repo.latest(point.point_id)
    assert stored is not None

    references: list[str] = []
    for decision in decisions:
        if decision.verdict is Verdict.ACT:
            references.append(
                await _act(
                    context,
                    trigger,
                    point,
                    settings.policy,
                    decision,
                    forecast_id,
                    capacity,
                    made.start,
                    actor=actor,
                    now=now,
                )
            )
    return PointRun(point.point_id, stored, tuple(decisions), tuple(references))


async def _act(
    context: Context,
    trigger: Trigger,
    point: CongestionPoint,
    policy: Policy,
    decision: Decision,
    forecast_id: int,
    capacity: Sequence[float],
    forecast_start: datetime,
    *,
    actor: str,
    now: datetime,
) -> str:
    window = decision.window
    reference = congestion.action_id(window)
    if policy.action is Action.EVENT:
        first = (window.start - forecast_start) // window.isp
        made = await trigger.create_event(
            point.point_id,
            window.start,
            window.needed_kw,
            isp=window.isp,
            capacity_kw=min(capacity[first : first + len(window.needed_kw)]),
            reference=reference,
            actor=actor,
            now=now,
        )
    else:
        assert decision.gate_closure is not None
        made = await trigger.request_flex(
            point.point_id,
            window.start,
            window.needed_kw,
            isp=window.isp,
            gate_closure=decision.gate_closure,
            reference=reference,
            actor=actor,
            now=now,
        )
    record = ActionRecord(
        point_id=point.point_id,
        window_start=window.start,
        window_end=window.end,
        action=policy.action.value,
        reference=made,
        forecast_id=forecast_id,
        needed_kw=window.needed_kw,
        created_at=now,
    )
    async with context.store.transaction() as tx:
        await Forecasts(tx.connection).add_action(record)
        await tx.audit.add(
            AuditEntry(
                at=now,
                actor=actor,
                action=f"forecast.{policy.action.value}",
                subject=point.point_id,
                detail={
                    "reference": made,
                    "forecast_id": forecast_id,
                    **_decision_detail(decision),
                },
            )
        )
    return made


async def run_all(
    context: Context,
    grid: Grid,
    predictor: Predictor,
    trigger: Trigger,
    settings: Settings,
    *,
    now: datetime,
    actor: str = "forecast",
) -> list[PointRun]:
    return [
        await run_point(context, grid, predictor, trigger, point, settings, now=now, actor=actor)
        for point in await grid.points()
    ]
