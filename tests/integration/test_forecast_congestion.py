"""Forecast congestion at a point from the VTN's stored telemetry and act on it, exactly once.

Real parts: the VTN's database (SQLite and PostgreSQL), the readings table the VENs' reports
fill, the operator's event service, and the admin API on 127.0.0.1 with TLS. The market is not
wired to the forecast yet (the lead does that), so its side is `Requests`, which records what
the forecast asks of the `FlexMarket` protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from sqlalchemy import delete, insert

from certs.dev import DevPki
from flex4grid import cli
from forecast import service, simulate
from forecast.congestion import Action, CapacityChange, Policy, Verdict
from forecast.http import ForecastExtension
from forecast.models import Predictor, QuantileGbm
from forecast.series import ISP, LoadSeries, floor_isp
from forecast.service import Settings
from forecast.store import Forecasts
from forecast.tables import forecast_actions
from forecast.trigger import MarketRequests, StaticGrid, VtnTrigger
from market import accounts
from market import service as market_service
from market.accounts import Actor
from market.model import CongestionPoint, CongestionPointId, FlexRequest
from oadr.model import RegistrationId, VenId
from tests.integration.vtn_harness import running_vtn
from vtn.admin import tokens
from vtn.admin.tokens import TokenRole
from vtn.config import VtnSettings
from vtn.services.context import Context
from vtn.store.db import Store
from vtn.store.tables import readings
from vtn.vens import Status, VenRecord

NOW = datetime(2026, 4, 13, 6, 5, tzinfo=UTC)  # a Monday morning
HISTORY_DAYS = 21
BUSY = CongestionPoint(
    point_id=CongestionPointId("cp-1"), name="feeder 1", capacity_kw=Decimal("10000")
)
QUIET = CongestionPoint(
    point_id=CongestionPointId("cp-2"), name="feeder 2", capacity_kw=Decimal("10000")
)
MEMBERS = {"cp-1": (VenId("ven-a"), VenId("ven-b")), "cp-2": (VenId("ven-c"),)}
SHARES = {"ven-a": 0.6, "ven-b": 0.4, "ven-c": 1.0}
GRID = StaticGrid((BUSY, QUIET), MEMBERS)


def evening_after(now: datetime) -> tuple[datetime, datetime]:
    """17:00-19:00 UTC the next day: the evening peak, never sooner than the lead time."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return day + timedelta(hours=17), day + timedelta(hours=19)


def derated(now: datetime) -> dict[str, tuple[CapacityChange, ...]]:
    """cp-1's transformer is derated to 1 kW in tomorrow's evening peak: a sure overload."""
    start, end = evening_after(now)
    return {"cp-1": (CapacityChange(start, end, 1.0),)}


@dataclass
class Requests:
    """The market's side of `FlexMarket`: what the forecast asked for."""

    made: list[dict[str, Any]] = field(default_factory=list)

    async def create_flex_request(self, **request: Any) -> str:
        self.made.append(request)
        return f"req-{len(self.made)}"


def history(now: datetime, seed: int) -> LoadSeries:
    end = floor_isp(now)
    start = end.replace(hour=0, minute=0) - timedelta(days=HISTORY_DAYS)
    full = simulate.simulate(start, HISTORY_DAYS + 1, seed=seed)
    return full.until(end)


async def seed_readings(store: Store, now: datetime, *, gap_for: str | None = None) -> None:
    """Each VEN's share of its point's simulated load, as stored 15-minute power readings."""
    loads = {"cp-1": history(now, 1), "cp-2": history(now, 2)}
    async with store.transaction() as tx:
        for point_id, ven_ids in MEMBERS.items():
            load = loads[point_id]
            for ven_id in ven_ids:
                await tx.vens.save(
                    VenRecord(
                        ven_id=ven_id,
                        fingerprint=f"fp-{ven_id}",
                        ven_name=ven_id,
                        status=Status.APPROVED,
                        created_at=load.start,
                        registration_id=RegistrationId(f"reg-{ven_id}"),
                    )
                )
                rows = []
                for i, value in enumerate(load.power_kw):
                    at = load.time_of(i)
                    if ven_id == gap_for and at >= load.end - timedelta(days=1):
                        continue  # a day of this VEN's readings never arrived
                    rows.append(
                        {
                            "ven_id": ven_id,
                            "report_request_id": "rr-1",
                            "report_specifier_id": "rs-1",
                            "report_name": "TELEMETRY_USAGE",
                            "r_id": "meter.power",
                            "starts_at": at,
                            "duration_s": 900,
                            "value": float(value) * SHARES[ven_id],
                            "received_at": at + ISP,
                        }
                    )
                await tx.connection.execute(insert(readings), rows)


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return QuantileGbm(rounds=30).fit([history(NOW, 11)])


@pytest.fixture
async def context(database_url: str) -> AsyncIterator[Context]:
    store = Store(database_url)
    await store.create_all()
    await seed_readings(store, NOW)
    try:
        yield Context(store=store, settings=VtnSettings())
    finally:
        await store.close()


async def event_ids(context: Context) -> list[str]:
    async with context.store.transaction() as tx:
        found = await tx.events.listing(now=NOW, state="all", offset=0, limit=100)
    return [e.event_id for e in found]


async def run(
    context: Context,
    predictor: Predictor,
    settings: Settings,
    market: Requests | None = None,
    now: datetime = NOW,
) -> list[service.PointRun]:
    trigger = VtnTrigger(context, GRID, market)
    return await service.run_all(context, GRID, predictor, trigger, settings, now=now)


async def test_an_overload_makes_exactly_one_event_for_its_point_and_window(
    context: Context, predictor: Predictor
) -> None:
    settings = Settings(policy=Policy(action=Action.EVENT), capacity_changes=derated(NOW))

    busy, quiet = await run(context, predictor, settings)

    start, end = evening_after(NOW)
    assert [d.verdict for d in busy.decisions] == [Verdict.ACT]
    assert (busy.decisions[0].window.start, busy.decisions[0].window.end) == (start, end)
    assert quiet.decisions == () and quiet.references == ()
    assert busy.references == ("fc-cp-1-20260414T1700Z",)
    async with context.store.transaction() as tx:
        event = await tx.events.get("fc-cp-1-20260414T1700Z")
        actions = await Forecasts(tx.connection).actions()
        audit = await tx.audit.page(subject="cp-1")
    assert event is not None
    assert event.active_period.start == start
    assert event.active_period.duration == end - start
    assert set(event.target.ven_ids) == set(MEMBERS["cp-1"])
    assert [(a.point_id, a.window_start, a.reference) for a in actions] == [
        ("cp-1", start, "fc-cp-1-20260414T1700Z")
    ]
    assert [e.action for e in audit] == ["forecast.event", "forecast.run"]  # newest first
    assert audit[1].detail["decisions"][0]["verdict"] == "act"
    assert await event_ids(context) == ["fc-cp-1-20260414T1700Z"]


async def test_a_second_run_on_the_same_overload_creates_nothing(
    context: Context, predictor: Predictor
) -> None:
    settings = Settings(policy=Policy(action=Action.EVENT), capacity_changes=derated(NOW))
    await run(context, predictor, settings)

    busy, _ = await run(context, predictor, settings, now=NOW + ISP)

    assert [d.verdict for d in busy.decisions] == [Verdict.COVERED]
    assert busy.references == ()
    assert await event_ids(context) == ["fc-cp-1-20260414T1700Z"]
    async with context.store.transaction() as tx:
        assert len(await Forecasts(tx.connection).actions()) == 1
        assert busy.stored is not None
        assert (await Forecasts(tx.connection).latest("cp-1")) == busy.stored  # the newer one


async def test_an_overload_makes_one_flex_request_with_the_excess_per_isp(
    context: Context, predictor: Predictor
) -> None:
    market = Requests()
    settings = Settings(capacity_changes=derated(NOW))  # the default policy: flex requests

    busy, _ = await run(context, predictor, settings, market)
    await run(context, predictor, settings, market, now=NOW + 2 * ISP)

    start, _ = evening_after(NOW)
    (request,) = market.made
    assert request["point_id"] == "cp-1"
    assert request["start"] == start
    assert request["isp"] == ISP
    assert request["gate_closure"] == start - timedelta(minutes=30)
    assert request["reference"] == "fc-cp-1-20260414T1700Z"
    assert busy.stored is not None
    first = busy.stored.forecast.start
    p90 = busy.stored.forecast.p90_kw[(start - first) // ISP :][:8]
    assert request["needed_kw"] == tuple(Decimal(str(round(v - 1.0, 3))) for v in p90)
    assert busy.references == ("req-1",)
    assert await event_ids(context) == []


async def test_no_action_while_the_forecast_stays_under_capacity(
    context: Context, predictor: Predictor
) -> None:
    market = Requests()

    runs = await run(context, predictor, Settings(), market)

    assert market.made == []
    assert await event_ids(context) == []
    for point_run in runs:
        assert point_run.decisions == ()
        assert point_run.stored is not None
        assert set(point_run.stored.lights) == {"green"}


async def test_gaps_in_a_members_readings_leave_a_forecast_all_the_same(
    database_url: str, predictor: Predictor
) -> None:
    store = Store(database_url)
    await store.create_all()
    try:
        await seed_readings(store, NOW, gap_for="ven-b")
        context = Context(store=store, settings=VtnSettings())

        busy, _ = await run(context, predictor, Settings())

        assert busy.stored is not None
        assert np.isfinite(busy.stored.forecast.p90_kw).all()
        async with store.transaction() as tx:
            (entry,) = [e for e in await tx.audit.page(subject="cp-1")]
        assert entry.detail["missing_isps"] >= 96
    finally:
        await store.close()


async def test_a_point_without_readings_is_skipped_and_audited(
    database_url: str, predictor: Predictor
) -> None:
    store = Store(database_url)
    await store.create_all()
    try:
        context = Context(store=store, settings=VtnSettings())

        busy, _ = await run(context, predictor, Settings())

        assert busy.stored is None and busy.note == "no readings"
        async with store.transaction() as tx:
            assert [e.action for e in await tx.audit.page(subject="cp-1")] == ["forecast.skip"]
    finally:
        await store.close()


# --- the admin API ------------------------------------------------------------------------------


async def call(base: str, pki: DevPki, token: str, method: str, path: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            base + "/admin/v1" + path,
            headers={"Authorization": f"Bearer {token}"},
            ssl=pki.client_context(None),
        ) as response,
    ):
        return response.status, await response.json()


async def test_the_admin_api_runs_serves_and_lists_forecasts(
    pki: DevPki, database_url: str, predictor: Predictor
) -> None:
    now = datetime.now(UTC)
    settings = Settings(policy=Policy(action=Action.EVENT), capacity_changes=derated(now))
    extension = ForecastExtension(GRID, predictor, settings)
    async with running_vtn(pki, database_url, extensions=(extension,)) as vtn:
        await seed_readings(vtn.context.store, now)
        operator = await tokens.create(
            vtn.context.store, "dso", TokenRole.OPERATOR, actor="test", now=now
        )
        viewer = await tokens.create(
            vtn.context.store, "view", TokenRole.VIEWER, actor="test", now=now
        )

        status, ran = await call(vtn.url, pki, operator, "POST", "/forecast/points/cp-1/run")
        refused, _ = await call(vtn.url, pki, viewer, "POST", "/forecast/points/cp-1/run")
        _, shown = await call(vtn.url, pki, viewer, "GET", "/forecast/points/cp-1")
        _, listed = await call(vtn.url, pki, viewer, "GET", "/forecast/points")
        _, acted = await call(vtn.url, pki, viewer, "GET", "/forecast/actions")
        missing, _ = await call(vtn.url, pki, viewer, "GET", "/forecast/points/cp-9")
        unknown, _ = await call(vtn.url, pki, operator, "POST", "/forecast/points/cp-9/run")
        _, document = await call(vtn.url, pki, viewer, "GET", "/openapi.json")

    start, _ = evening_after(now)
    assert status == 201 and refused == 403 and missing == 404 and unknown == 404
    assert [d["verdict"] for d in ran["decisions"]] == ["act"]
    assert shown["forecast_id"] == ran["forecast"]["forecast_id"]
    assert shown["model"] == "lightgbm-quantile" and shown["model_version"].startswith("1+")
    assert len(shown["data_version"]) == 16
    assert len(shown["intervals"]) == settings.horizon
    reds = [i for i in shown["intervals"] if i["light"] == "red"]
    assert len(reds) == 8 and datetime.fromisoformat(reds[0]["start"]) == start
    assert all(i["p10_kw"] <= i["p50_kw"] <= i["p90_kw"] for i in shown["intervals"])
    assert shown["worst"] == "red"
    assert [(p["point_id"], p["worst"]) for p in listed] == [("cp-1", "red")]
    assert [(a["point_id"], a["action"]) for a in acted] == [("cp-1", "event")]
    assert "/admin/v1/forecast/points/{point_id}" in document["paths"]


async def test_through_the_market_service_an_overload_opens_one_flex_request(
    context: Context, predictor: Predictor
) -> None:
    dso = Actor(name="dso")
    await accounts.create_point(context.store, BUSY, actor=dso, now=NOW)

    async def publish(request: FlexRequest, now: datetime) -> FlexRequest:
        return await market_service.create_request(context.store, request, actor=dso, now=now)

    market = MarketRequests(publish, price_cap_eur_per_kwh=Decimal("0.30"))
    trigger = VtnTrigger(context, GRID, market)
    settings = Settings(capacity_changes=derated(NOW))

    busy = await service.run_point(context, GRID, predictor, trigger, BUSY, settings, now=NOW)
    async with context.store.transaction() as tx:  # a run that died before recording its action
        await tx.connection.execute(delete(forecast_actions))
    again = await service.run_point(context, GRID, predictor, trigger, BUSY, settings, now=NOW)
    third = await service.run_point(context, GRID, predictor, trigger, BUSY, settings, now=NOW)

    start, end = evening_after(NOW)
    (request,) = await market_service.requests(context.store)
    assert request.request_id == "fc-cp-1-20260414T1700Z" == busy.references[0]
    assert (request.point_id, request.start, request.end) == ("cp-1", start, end)
    assert request.gate_closure == start - timedelta(minutes=30)
    assert all(kw > 0 for kw in request.needed_kw)
    assert again.references == (request.request_id,)  # the market's duplicate check held
    assert [d.verdict for d in third.decisions] == [Verdict.COVERED]


async def test_with_an_interval_the_vtn_forecasts_every_point_by_itself(
    pki: DevPki, database_url: str, predictor: Predictor
) -> None:
    settings = Settings(policy=Policy(action=Action.EVENT))
    extension = ForecastExtension(GRID, predictor, settings, interval=timedelta(hours=1))
    store = Store(database_url)
    await store.create_all()
    await seed_readings(store, datetime.now(UTC))
    await store.close()
    async with running_vtn(pki, database_url, extensions=(extension,)) as vtn:
        for _ in range(200):  # the first run starts with the app
            async with vtn.context.store.transaction() as tx:
                found = await Forecasts(tx.connection).latest_per_point()
            if len(found) == 2:
                break
            await asyncio.sleep(0.05)

    assert [s.point_id for s in found] == ["cp-1", "cp-2"]


def test_a_flex_request_policy_without_a_market_is_refused_at_start_up(
    predictor: Predictor,
) -> None:
    with pytest.raises(ValueError, match="pass the market"):
        ForecastExtension(GRID, predictor, Settings(policy=Policy(action=Action.FLEX_REQUEST)))


def test_the_backtest_runs_on_stored_readings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'vtn.db'}"

    async def prepare() -> None:
        store = Store(url)
        await store.create_all()
        await seed_readings(store, datetime.now(UTC))
        await store.close()

    asyncio.run(prepare())

    code = cli.main(
        [
            "forecast",
            "backtest",
            "--db",
            url,
            "--ven",
            "ven-a",
            "--ven",
            "ven-b",
            "--days",
            "18",
            "--train-days",
            "16",
            "--plot",
            str(tmp_path / "p.png"),
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert "stored readings of 2 VEN(s)" in out
    assert "lightgbm-quantile" in out and "default model" in out
