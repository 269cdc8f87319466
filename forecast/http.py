"""The forecast's admin API and its place in the VTN: `ForecastExtension` for `VtnConfig`.

Routes under /admin/v1/forecast (same tokens, errors and OpenAPI document as the VTN's own):

- GET  /forecast/points                     the latest forecast of every point, its worst light
- GET  /forecast/points/{point_id}          the latest forecast: P10/P50/P90, capacity and light
                                            per ISP, with model, model version and data version
- POST /forecast/points/{point_id}/run      forecast now and act per the policy (operator)
- GET  /forecast/actions                    the flex requests and events forecasts triggered

With `interval` set, the extension also runs every point on that period in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiohttp import web
from pydantic import BaseModel

from forecast import service
from forecast.congestion import Action, Decision, Light
from forecast.models import Predictor
from forecast.service import PointRun, Settings
from forecast.store import ActionRecord, Forecasts, StoredForecast
from forecast.trigger import FlexMarket, Grid, VtnTrigger
from vtn.admin.middleware import ADMIN, PREFIX, TOKEN
from vtn.admin.openapi import Param, Route
from vtn.services.context import Context
from vtn.services.operator import NotFound

log = logging.getLogger("flex4grid.forecast")
_P = PREFIX + "/forecast"


class IntervalOut(BaseModel):
    start: datetime
    p10_kw: float
    p50_kw: float
    p90_kw: float
    capacity_kw: float
    light: Light


class ForecastOut(BaseModel):
    forecast_id: int
    point_id: str
    model: str
    model_version: str
    data_version: str
    issued_at: datetime
    created_at: datetime
    worst: Light
    intervals: list[IntervalOut]


class ForecastSummary(BaseModel):
    forecast_id: int
    point_id: str
    model: str
    created_at: datetime
    worst: Light
    first_red: datetime | None


class DecisionOut(BaseModel):
    verdict: str
    start: datetime
    end: datetime
    needed_kw: list[float]
    reason: str


class RunOut(BaseModel):
    point_id: str
    forecast: ForecastOut | None
    decisions: list[DecisionOut]
    references: list[str]
    note: str


class ActionOut(BaseModel):
    point_id: str
    window_start: datetime
    window_end: datetime
    action: str
    reference: str
    forecast_id: int
    needed_kw: list[float]
    created_at: datetime


_ORDER = (Light.GREEN, Light.ORANGE, Light.RED)


def forecast_out(stored: StoredForecast) -> ForecastOut:
    made = stored.forecast
    return ForecastOut(
        forecast_id=stored.forecast_id,
        point_id=stored.point_id,
        model=made.model,
        model_version=made.model_version,
        data_version=stored.data_version,
        issued_at=made.issued_at,
        created_at=stored.created_at,
        worst=max(stored.lights, key=_ORDER.index, default=Light.GREEN),
        intervals=[
            IntervalOut(
                start=made.time_of(i),
                p10_kw=made.p10_kw[i],
                p50_kw=made.p50_kw[i],
                p90_kw=made.p90_kw[i],
                capacity_kw=stored.capacity_kw[i],
                light=stored.lights[i],
            )
            for i in range(len(made))
        ],
    )


def _summary(stored: StoredForecast) -> ForecastSummary:
    red = [i for i, light in enumerate(stored.lights) if light is Light.RED]
    return ForecastSummary(
        forecast_id=stored.forecast_id,
        point_id=stored.point_id,
        model=stored.forecast.model,
        created_at=stored.created_at,
        worst=max(stored.lights, key=_ORDER.index, default=Light.GREEN),
        first_red=stored.forecast.time_of(red[0]) if red else None,
    )


def _decision(decision: Decision) -> DecisionOut:
    window = decision.window
    return DecisionOut(
        verdict=decision.verdict.value,
        start=window.start,
        end=window.end,
        needed_kw=list(window.needed_kw),
        reason=decision.reason,
    )


def run_out(run: PointRun) -> RunOut:
    return RunOut(
        point_id=run.point_id,
        forecast=None if run.stored is None else forecast_out(run.stored),
        decisions=[_decision(d) for d in run.decisions],
        references=list(run.references),
        note=run.note,
    )


def _action(record: ActionRecord) -> ActionOut:
    return ActionOut(
        point_id=record.point_id,
        window_start=record.window_start,
        window_end=record.window_end,
        action=record.action,
        reference=record.reference,
        forecast_id=record.forecast_id,
        needed_kw=list(record.needed_kw),
        created_at=record.created_at,
    )


@dataclass(frozen=True)
class Runtime:
    context: Context
    grid: Grid
    predictor: Predictor
    trigger: VtnTrigger
    settings: Settings


RUNTIME = web.AppKey("flex4grid.forecast", Runtime)


def _context(request: web.Request) -> Context:
    return request.app[ADMIN].context


async def list_forecasts(request: web.Request) -> web.Response:
    async with _context(request).store.transaction() as tx:
        found = await Forecasts(tx.connection).latest_per_point()
    return web.json_response([_summary(s).model_dump(mode="json") for s in found])


async def get_forecast(request: web.Request) -> web.Response:
    point_id = request.match_info["point_id"]
    async with _context(request).store.transaction() as tx:
        stored = await Forecasts(tx.connection).latest(point_id)
    if stored is None:
        raise NotFound(f"no forecast for congestion point {point_id!r}")
    return web.json_response(forecast_out(stored).model_dump(mode="json"))


async def run_forecast(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    point_id = request.match_info["point_id"]
    point = next((p for p in await runtime.grid.points() if p.point_id == point_id), None)
    if point is None:
        raise NotFound(f"no congestion point {point_id!r}")
    run = await service.run_point(
        runtime.context,
        runtime.grid,
        runtime.predictor,
        runtime.trigger,
        point,
        runtime.settings,
        now=runtime.context.clock(),
        actor=request[TOKEN].name,
    )
    return web.json_response(run_out(run).model_dump(mode="json"), status=201)


async def list_actions(request: web.Request) -> web.Response:
    async with _context(request).store.transaction() as tx:
        found = await Forecasts(tx.connection).actions(request.query.get("point_id"))
    return web.json_response([_action(a).model_dump(mode="json") for a in found])


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        _P + "/points",
        list_forecasts,
        "latest forecast per congestion point",
        list[ForecastSummary],
    ),
    Route(
        "GET",
        _P + "/points/{point_id}",
        get_forecast,
        "latest forecast of a congestion point: quantiles, capacity, light per ISP",
        ForecastOut,
    ),
    Route(
        "POST",
        _P + "/points/{point_id}/run",
        run_forecast,
        "forecast now and act on red windows per the DSO's policy",
        RunOut,
        201,
    ),
    Route(
        "GET",
        _P + "/actions",
        list_actions,
        "flex requests and events forecasts triggered",
        list[ActionOut],
        query=(Param("point_id", "only this congestion point"),),
    ),
)


@dataclass(frozen=True)
class ForecastExtension:
    """Plug into `VtnConfig(extensions=(ForecastExtension(...),))`."""

    grid: Grid
    predictor: Predictor
    settings: Settings = field(default_factory=Settings)
    market: FlexMarket | None = None
    interval: timedelta | None = None  # run every point on this period (None: on request)

    def __post_init__(self) -> None:
        if self.settings.policy.action is Action.FLEX_REQUEST and self.market is None:
            # Found out at start-up, not at the first red window.
            raise ValueError("the policy asks for flex requests: pass the market (FlexMarket)")

    @property
    def routes(self) -> Sequence[Route]:
        return ROUTES

    def setup(self, app: web.Application, context: Context) -> None:
        trigger = VtnTrigger(context, self.grid, self.market)
        runtime = Runtime(context, self.grid, self.predictor, trigger, self.settings)
        app[RUNTIME] = runtime
        if self.interval is not None:
            period = self.interval

            async def _periodic(app: web.Application) -> AsyncIterator[None]:
                task = asyncio.create_task(_every(runtime, period))
                yield
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

            app.cleanup_ctx.append(_periodic)


async def _every(runtime: Runtime, period: timedelta) -> None:
    while True:
        try:
            await service.run_all(
                runtime.context,
                runtime.grid,
                runtime.predictor,
                runtime.trigger,
                runtime.settings,
                now=runtime.context.clock(),
            )
        except Exception:  # one bad run must not stop the next one
            log.exception("forecast run failed")
        await asyncio.sleep(period.total_seconds())
