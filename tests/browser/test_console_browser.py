"""The web console in a real headless Chromium against a real VTN over HTTPS (issue 14):
an operator approves a real VEN gateway, creates an event for it and sees its optIn appear; an
aggregator sees only its own nodes; a prosumer opts out of an event and revokes a data grant;
every page loads without console errors; a rejected form says why and changes nothing.
Screenshots of the main pages go to test-artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from console.accounts import Role
from dataservice import crypto
from dataservice.consent import Access, Level
from dataservice.crypto import MasterKey
from dataservice.service import DataService
from forecast.congestion import Light
from forecast.models import Forecast
from forecast.store import Forecasts
from market.model import (
    Aggregator,
    AggregatorId,
    CongestionPoint,
    CongestionPointId,
    NodeId,
    ProsumerId,
    VirtualEndNode,
)
from market.store import Market
from market.store.grid import PointResource
from oadr.enums import OptType
from oadr.model import EventId, RegistrationId, VenId
from tests.browser.harness import PASSWORD, ConsoleSite, console_vtn
from tests.factories import make_event
from tests.integration.test_ven_gateway import FAST_VTN, gateway_config, running
from vtn.services import operator
from vtn.store.tables import readings
from vtn.vens import Policy, Status, VenRecord

WAIT_MS = 30_000


@dataclass
class Console:
    """One browser context on the console, recording every console error of every page."""

    site: ConsoleSite
    page: Any
    errors: list[str] = field(default_factory=list)

    async def goto(self, path: str) -> Any:
        response = await self.page.goto(self.site.url + path)
        await self.page.wait_for_load_state("networkidle")
        return response

    async def login(self, username: str) -> None:
        await self.goto("/console/login")
        await self.page.fill("input[name=username]", username)
        await self.page.fill("input[name=password]", PASSWORD)
        await self.page.click("button[type=submit]")
        await self.page.wait_for_load_state("networkidle")

    async def shot(self, directory: Path, name: str) -> None:
        await self.page.screenshot(path=str(directory / f"{name}.png"), full_page=True)


@asynccontextmanager
async def console(browser: Any, site: ConsoleSite, **options: Any) -> AsyncIterator[Console]:
    context = await browser.new_context(ignore_https_errors=True, **options)
    page = await context.new_page()
    opened = Console(site, page)
    page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: opened.errors.append(str(e)))
    try:
        yield opened
    finally:
        await context.close()


def sqlite(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'vtn.db'}"


async def wait_until(what: str, check: Any, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := await check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)
    return result


# --- the operator ---------------------------------------------------------------------------------


async def test_an_operator_approves_a_ven_creates_an_event_and_sees_the_opt_in(
    browser: Any, pki: Any, tmp_path: Path, screenshots: Path
) -> None:
    settings = replace(FAST_VTN, registration=Policy.MANUAL)
    async with console_vtn(pki, sqlite(tmp_path), settings=settings) as site:
        await site.user("dso", Role.OPERATOR)
        config = gateway_config(pki, site.url, tmp_path, pki.vens[0])
        async with running(config) as gateway, console(browser, site) as ui:
            await ui.login("dso")
            assert ui.page.url.endswith("/console/operator/vens")

            async def pending() -> list[VenRecord]:
                async with site.running.context.store.transaction() as tx:
                    return await tx.vens.page(status=Status.PENDING)

            (ven,) = await wait_until("the VEN in the approval queue", pending)
            await ui.goto("/console/operator/vens")
            queued = ui.page.locator(
                f"section:has(h2:text('Approval queue')) tr[data-ven='{ven.ven_id}']"
            )
            await queued.wait_for()
            await ui.shot(screenshots, "operator-vens-queue")
            await queued.get_by_role("button", name="Approve").click()
            await ui.page.wait_for_load_state("networkidle")
            assert f"VEN {ven.ven_id} approved." in await ui.page.locator(".notice").inner_text()

            async def registered() -> bool:
                return gateway.session.state.ven_id == ven.ven_id and bool(
                    gateway.session.state.registration_id
                )

            await wait_until("the gateway's registration", registered)
            await ui.goto("/console/operator/vens")
            await ui.shot(screenshots, "operator-vens")

            # An event for this VEN: SIMPLE level 1 for an hour, a few minutes from now.
            await ui.goto("/console/operator/events")
            start = (datetime.now(UTC) + timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M")
            await ui.page.fill("input[name=start]", start)
            await ui.page.select_option("select[name=signal]", "SIMPLE")
            await ui.page.fill("input[name=interval_minutes]", "60")
            await ui.page.fill("input[name=values]", "1")
            await ui.page.select_option("select[name=ven_ids]", [ven.ven_id])
            await ui.shot(screenshots, "operator-event-form")
            await ui.page.get_by_role("button", name="Create event").click()
            await ui.page.wait_for_load_state("networkidle")
            assert "/console/operator/events/" in ui.page.url
            row = ui.page.locator(f"#deliveries tr[data-ven='{ven.ven_id}'] td.opt")
            # The page refreshes itself: the gateway's optIn shows up without a reload.
            await ui.page.wait_for_function(
                "v => document.querySelector(`#deliveries tr[data-ven='${v}'] td.opt`)"
                "?.textContent.startsWith('optIn')",
                arg=ven.ven_id,
                timeout=WAIT_MS,
            )
            assert (await row.inner_text()).startswith(OptType.OPT_IN.value)
            await ui.shot(screenshots, "operator-event")

            for path in (
                "/console/operator/grid",
                "/console/operator/market",
                "/console/operator/audit",
            ):
                response = await ui.goto(path)
                assert response.status == 200, path
                await ui.shot(screenshots, "operator-" + path.rsplit("/", 1)[1])
            audit = await ui.page.locator("#audit").inner_text()
            assert "ven.approve" in audit and "event.create" in audit and "console:dso" in audit
            assert ui.errors == []


async def test_a_rejected_event_form_says_why_and_changes_nothing(
    browser: Any, pki: Any, tmp_path: Path, screenshots: Path
) -> None:
    async with console_vtn(pki, sqlite(tmp_path)) as site:
        await site.user("dso", Role.OPERATOR)
        async with console(browser, site) as ui:
            await ui.login("dso")
            await ui.goto("/console/operator/events")
            await ui.page.fill("input[name=start]", "2020-01-01T10:00")
            await ui.page.fill("input[name=values]", "1, 9")
            await ui.page.get_by_role("button", name="Create event").click()
            await ui.page.wait_for_load_state("networkidle")
            alert = await ui.page.locator("[role=alert]").inner_text()
            assert "Nothing was changed." in alert
            assert "the start is in the past" in alert
            assert "9 is outside 0 … 3" in alert
            # What was typed stays in the form, to be corrected.
            assert await ui.page.input_value("input[name=values]") == "1, 9"
            await ui.shot(screenshots, "operator-event-rejected")
        async with site.running.context.store.transaction() as tx:
            assert await tx.events.listing(now=datetime.now(UTC)) == []
            assert not [e for e in await tx.audit.page() if e.action.startswith("event.")]


# --- the aggregator -------------------------------------------------------------------------------


async def test_an_aggregator_sees_only_its_own_nodes(
    browser: Any, pki: Any, tmp_path: Path, screenshots: Path
) -> None:
    now = datetime.now(UTC)
    async with console_vtn(pki, sqlite(tmp_path)) as site:
        async with site.running.context.store.transaction() as tx:
            market = Market.on(tx)
            point = CongestionPointId("feeder-7")
            await market.grid.add_point(
                CongestionPoint(point_id=point, name="Feeder 7", capacity_kw=Decimal(400)), now
            )
            for owner, node in (("agg-a", "node-a1"), ("agg-a", "node-a2"), ("agg-b", "node-b1")):
                if await market.aggregators.get(owner) is None:
                    await market.aggregators.add(
                        Aggregator(aggregator_id=AggregatorId(owner), name=owner.upper()), now
                    )
                await market.nodes.add(
                    VirtualEndNode(
                        node_id=NodeId(node),
                        aggregator_id=AggregatorId(owner),
                        point_id=point,
                        name=f"Node {node}",
                    ),
                    now,
                )
        await site.user("alice", Role.AGGREGATOR, "agg-a")
        async with console(browser, site) as ui:
            await ui.login("alice")
            assert ui.page.url.endswith("/console/aggregator")
            nodes = await ui.page.locator("#nodes").inner_text()
            assert "node-a1" in nodes and "node-a2" in nodes
            assert "node-b1" not in await ui.page.content()
            await ui.shot(screenshots, "aggregator")
            # Operator pages are not for an aggregator.
            response = await ui.goto("/console/operator/vens")
            assert response.status == 403
            assert "not for your account" in await ui.page.inner_text("main")
            assert [e for e in ui.errors if "403" not in e] == []


# --- the prosumer ---------------------------------------------------------------------------------


async def test_a_prosumer_opts_out_of_an_event_and_revokes_a_data_grant(
    browser: Any, pki: Any, tmp_path: Path, screenshots: Path
) -> None:
    now = datetime.now(UTC)
    async with console_vtn(pki, sqlite(tmp_path)) as site:
        store = site.running.context.store
        data = DataService(store, MasterKey(crypto.new_key()))
        ven_id = VenId("ven-home-1")
        async with store.transaction() as tx:
            for ven, fingerprint in ((ven_id, "ab"), (VenId("ven-other"), "cd")):
                await tx.vens.save(
                    VenRecord(
                        ven_id=ven,
                        fingerprint=fingerprint * 32,
                        ven_name=ven,
                        status=Status.APPROVED,
                        created_at=now,
                        registration_id=RegistrationId(f"reg-{ven}"),
                    )
                )
        upcoming = await operator.create_event(
            site.running.context,
            make_event(start=now + timedelta(hours=2), event_id=EventId("ev-upcoming")),
            actor="test",
            now=now,
        )
        theirs = await operator.create_event(
            site.running.context,
            make_event(start=now + timedelta(hours=3), event_id=EventId("ev-theirs")),
            actor="test",
            now=now,
        )
        async with store.transaction() as tx:
            await tx.deliveries.mark_sent(ven_id, [upcoming], now)
            await tx.deliveries.mark_sent(VenId("ven-other"), [theirs], now)
        await data.add_prosumer("p-1", ["feeder-7"], ven_id, "test", now)
        await data.add_recipient("lab", "University lab", None, 1.0, "test", now)
        grant = await data.grant(
            "p-1",
            "lab",
            "research",
            Level.DAILY,
            Access.INDIVIDUAL,
            now + timedelta(days=30),
            "prosumer:p-1",
            now,
        )
        await site.user("pat", Role.PROSUMER, ven_id)

        # A phone-sized screen: the prosumer pages are made for it.
        async with console(browser, site, viewport={"width": 390, "height": 844}) as ui:
            await ui.login("pat")
            assert ui.page.url.endswith("/console/prosumer")
            assert "ev-theirs" not in await ui.page.content()  # another prosumer's event
            await ui.shot(screenshots, "prosumer")
            item = ui.page.locator("li[data-event='ev-upcoming']")
            await item.get_by_role("button", name="Opt out of this event").click()
            await ui.page.wait_for_load_state("networkidle")
            assert "You opted out of event ev-upcoming." in await ui.page.inner_text(".notice")
            assert await item.locator(".opted-out").count() == 1
            assert await item.get_by_role("button").count() == 0

            row = ui.page.locator(f"#grants tr[data-grant='{grant.grant_id}']")
            await row.get_by_role("button", name="Revoke").click()
            await ui.page.wait_for_load_state("networkidle")
            assert "Grant revoked" in await ui.page.inner_text(".notice")
            assert "revoked" in await row.inner_text()
            # What the gateway keeps itself is text; the one console preference the DSO honours.
            assert "comfort band" in await ui.page.inner_text("#gateway-enforced")
            await ui.page.get_by_label("Do not include me in events").check()
            await ui.page.get_by_role("button", name="Save preferences").click()
            await ui.page.wait_for_load_state("networkidle")
            assert "Preferences saved." in await ui.page.inner_text(".notice")
            assert "You are not included in events." in await ui.page.inner_text("#dso-honours")
            await ui.shot(screenshots, "prosumer-after")
            # Usable on a phone: nothing wider than the screen.
            width = "document.documentElement.scrollWidth <= window.innerWidth"
            assert await ui.page.evaluate(width)
            assert ui.errors == []

        async with store.transaction() as tx:
            (opt,) = [o for _, o in await tx.opts.active(ven_id)]
            assert (opt.opt_type, opt.event_id) == (OptType.OPT_OUT, "ev-upcoming")
            assert opt.opt_id.startswith("console-")
            assert not await tx.opts.active("ven-other")
        (revoked,) = await data.grants_of("p-1")
        assert revoked.revoked_at is not None
        async with store.transaction() as tx:
            audited = {(e.actor, e.action) for e in await tx.audit.page()}
        assert {
            ("console:pat", "console.opt.out"),
            ("console:pat", "console.grant.revoke"),
            ("console:pat", "console.preferences"),
        } <= audited


# --- charts ---------------------------------------------------------------------------------------


async def test_load_against_capacity_and_own_power_draw_as_charts(
    browser: Any, pki: Any, tmp_path: Path, screenshots: Path
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    async with console_vtn(pki, sqlite(tmp_path)) as site:
        store = site.running.context.store
        point = CongestionPointId("feeder-7")
        async with store.transaction() as tx:
            market = Market.on(tx)
            await market.grid.add_point(
                CongestionPoint(point_id=point, name="Feeder 7", capacity_kw=Decimal(9)), now
            )
            rows = []
            for n in (1, 2):
                ven_id = VenId(f"ven-{n}")
                await tx.vens.save(
                    VenRecord(
                        ven_id=ven_id,
                        fingerprint=f"{n:02d}" * 32,
                        ven_name=f"home {n}",
                        status=Status.APPROVED,
                        created_at=now,
                        registration_id=RegistrationId(f"reg-{n}"),
                    )
                )
                await market.grid.add_resource(
                    PointResource(
                        prosumer_id=ProsumerId(f"p-{n}"),
                        point_id=point,
                        ven_id=ven_id,
                        added_at=now,
                    )
                )
                rows += [
                    {
                        "ven_id": ven_id,
                        "report_request_id": "rr",
                        "report_specifier_id": "rs",
                        "report_name": "TELEMETRY_USAGE",
                        "r_id": "meter.power",
                        "starts_at": now - timedelta(minutes=15 * k),
                        "duration_s": 900,
                        "value": 3.0 + n + (k % 4),
                        "received_at": now,
                    }
                    for k in range(24)
                ]
            await tx.connection.execute(readings.insert(), rows)
            forecast = Forecast(
                start=now,
                isp=timedelta(minutes=15),
                p10_kw=(7.0,) * 8,
                p50_kw=(8.5,) * 8,
                p90_kw=(10.0,) * 8,
                model="test",
                model_version="1",
                issued_at=now,
            )
            lights = (Light.GREEN,) * 6 + (Light.ORANGE, Light.RED)
            await Forecasts(tx.connection).add(
                point, forecast, data_version="v", capacity_kw=(9.0,) * 8, lights=lights, now=now
            )
        await site.user("dso", Role.OPERATOR)
        await site.user("pat", Role.PROSUMER, "ven-1")
        async with console(browser, site) as ui:
            await ui.login("dso")
            await ui.goto("/console/operator/grid")
            await ui.page.wait_for_selector("#point-feeder-7 .main-svg")
            text = await ui.page.inner_text("section[data-point='feeder-7']")
            assert "Capacity 9.0 kW" in text and "forecast: red" in text
            legend = await ui.page.inner_text("#point-feeder-7")
            assert "load (kW)" in legend and "capacity (kW)" in legend
            await ui.shot(screenshots, "operator-grid-chart")
            assert ui.errors == []
        async with console(browser, site, viewport={"width": 390, "height": 844}) as ui:
            await ui.login("pat")
            await ui.page.wait_for_selector("#own-power .main-svg")
            assert "kW (drawn from the grid > 0)" in await ui.page.inner_text("#own-power")
            assert await ui.page.locator("#own-power .scatterlayer .trace").count() == 1
            await ui.shot(screenshots, "prosumer-chart")
            assert ui.errors == []
