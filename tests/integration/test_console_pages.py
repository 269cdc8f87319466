"""The console's pages over real HTTPS on SQLite and PostgreSQL: the operator's VEN and event
actions through the same services as the admin API (audited, nothing changed on a rejected
form), an aggregator's market view holding only its own rows, a prosumer's actions limited to
its own VEN, and the CLI that makes console users."""

from __future__ import annotations

import argparse
import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from certs.dev import DevPki
from console import cli
from console.accounts import Role
from console.store import ConsoleStore
from dataservice import crypto
from dataservice.consent import Access, Level
from dataservice.service import DataService
from market import dispatch, settlement
from market.model import (
    Aggregator,
    AggregatorId,
    Award,
    Bid,
    BidId,
    CongestionPoint,
    CongestionPointId,
    Delivery,
    FlexRequest,
    Membership,
    NodeId,
    ProsumerId,
    RequestId,
    VirtualEndNode,
)
from market.store import Market
from market.store.grid import PointResource
from oadr.model import EventId, RegistrationId, VenId
from tests.browser.harness import PASSWORD, ConsoleSite, browser_session, console_vtn
from tests.factories import make_event
from vtn.services import operator
from vtn.store.db import Store
from vtn.store.tables import readings
from vtn.vens import Status, VenRecord


async def logged_in(site: ConsoleSite, username: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with browser_session(site) as session:
        response = await session.post(
            "/console/login", data={"username": username, "password": PASSWORD}
        )
        assert response.status == 200
        yield session


as_user = asynccontextmanager(logged_in)


async def post(session: aiohttp.ClientSession, path: str, form_page: str, **fields: str) -> str:
    page = await (await session.get(form_page)).text()
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    response = await session.post(path, data={"csrf_token": match.group(1), **fields})
    return f"{response.status} {await response.text()}"


async def add_ven(store: Store, ven_id: str, status: Status, now: datetime) -> None:
    async with store.transaction() as tx:
        await tx.vens.save(
            VenRecord(
                ven_id=VenId(ven_id),
                fingerprint=ven_id.encode().hex().ljust(64, "0")[:64],
                ven_name=ven_id,
                status=status,
                created_at=now,
                registration_id=RegistrationId(f"reg-{ven_id}")
                if status is Status.APPROVED
                else None,
            )
        )


async def test_the_operator_approves_rejects_groups_modifies_and_cancels(
    pki: DevPki, database_url: str
) -> None:
    now = datetime.now(UTC)
    async with console_vtn(pki, database_url) as site:
        store = site.running.context.store
        await site.user("dso", Role.OPERATOR)
        await add_ven(store, "ven-a", Status.PENDING, now)
        await add_ven(store, "ven-b", Status.PENDING, now)
        await add_ven(store, "ven-c", Status.APPROVED, now)
        event = await operator.create_event(
            site.running.context,
            make_event(start=now + timedelta(hours=2), event_id=EventId("ev-1")),
            actor="test",
            now=now,
        )
        vens = "/console/operator/vens"
        async with as_user(site, "dso") as session:
            assert "VEN ven-a approved." in await post(session, f"{vens}/ven-a/approve", vens)
            assert "VEN ven-b rejected." in await post(session, f"{vens}/ven-b/reject", vens)
            saved = await post(session, f"{vens}/ven-c/groups", vens, groups="north, east")
            assert "Groups of VEN ven-c saved." in saved
            again = await post(session, f"{vens}/ven-c/approve", vens)
            assert "Nothing changed" in again and "not waiting for approval" in again

            page = "/console/operator/events/ev-1"
            rejected = await post(
                session,
                page + "/modify",
                page,
                values="5",
                signal="SIMPLE",
                interval_minutes="60",
            )
            assert rejected.startswith("422") and "5 is outside 0" in rejected
            async with store.transaction() as tx:
                assert await tx.events.get("ev-1") == event  # nothing changed

            done = await post(
                session,
                page + "/modify",
                page,
                values="2, 3",
                signal="SIMPLE",
                interval_minutes="30",
                modification_reason="deeper",
            )
            assert done.startswith("200") and "Event modified." in done
            cancelled = await post(session, page + "/cancel", page)
            assert "Event cancelled." in cancelled
            missing = await session.get("/console/operator/events/ev-none")
            assert missing.status == 404 and "no event" in (await missing.text()).lower()

        async with store.transaction() as tx:
            assert (await tx.vens.get("ven-a")).status is Status.APPROVED  # type: ignore[union-attr]
            assert (await tx.vens.get("ven-b")).status is Status.REJECTED  # type: ignore[union-attr]
            assert (await tx.vens.get("ven-c")).groups == ("north", "east")  # type: ignore[union-attr]
            final = await tx.events.get("ev-1")
            assert final is not None and final.modification_number == 2
            assert final.status.value == "cancelled"
            audit = [(e.actor, e.action) for e in await tx.audit.page()]
        for action in ("ven.approve", "ven.reject", "ven.groups", "event.modify", "event.cancel"):
            assert ("console:dso", action) in audit


async def test_an_aggregator_sees_only_its_own_bids_awards_and_statements(
    pki: DevPki, database_url: str
) -> None:
    now = datetime.now(UTC)
    async with console_vtn(pki, database_url) as site:
        async with site.running.context.store.transaction() as tx:
            market = Market.on(tx)
            point = CongestionPointId("feeder-7")
            await market.grid.add_point(
                CongestionPoint(point_id=point, name="Feeder 7", capacity_kw=Decimal(400)), now
            )
            request = FlexRequest(
                request_id=RequestId("fr-1"),
                point_id=point,
                start=now + timedelta(hours=3),
                isp=timedelta(minutes=15),
                needed_kw=(Decimal(50),),
                price_cap_eur_per_kwh=Decimal("0.5"),
                gate_closure=now + timedelta(hours=1),
                created_at=now,
            )
            await market.requests.add(request, "test")
            for owner in ("agg-a", "agg-b"):
                aggregator = AggregatorId(owner)
                node = NodeId(f"node-{owner}")
                await market.aggregators.add(Aggregator(aggregator_id=aggregator, name=owner), now)
                await market.nodes.add(
                    VirtualEndNode(
                        node_id=node, aggregator_id=aggregator, point_id=point, name=node
                    ),
                    now,
                )
                bid_id = BidId(f"bid-{owner}")
                await market.bids.add(
                    Bid(
                        bid_id=bid_id,
                        request_id=request.request_id,
                        node_id=node,
                        aggregator_id=aggregator,
                        offered_kw=(Decimal(30),),
                        price_eur_per_kwh=Decimal("0.2"),
                        divisible=True,
                        valid_until=now + timedelta(hours=4),
                        submitted_at=now,
                    )
                )
                await market.awards.add(
                    Award(
                        request_id=request.request_id,
                        bid_id=bid_id,
                        node_id=node,
                        aggregator_id=aggregator,
                        awarded_kw=(Decimal(25),),
                        price_eur_per_kwh=Decimal("0.2"),
                        activation_factor=Decimal("0.8"),
                    ),
                    now,
                )
                await market.statements.add(
                    "fr-1",
                    owner,
                    {
                        "request_id": "fr-1",
                        "aggregator_id": owner,
                        "totals": {"net_eur": f"9.{len(owner)}1"},
                    },
                    now,
                )
        await site.user("alice", Role.AGGREGATOR, "agg-a")
        await site.user("dso", Role.OPERATOR)
        async with as_user(site, "alice") as session:
            page = await (await session.get("/console/aggregator")).text()
        assert "bid-agg-a" in page and "node-agg-a" in page and "fr-1" in page
        assert "agg-b" not in page
        async with as_user(site, "dso") as session:
            page = await (await session.get("/console/operator/market")).text()
        assert "bid-agg-a" in page and "bid-agg-b" in page


async def test_a_prosumer_acts_only_on_its_own_events_and_grants(
    pki: DevPki, database_url: str
) -> None:
    now = datetime.now(UTC)
    async with console_vtn(pki, database_url) as site:
        store = site.running.context.store
        data = DataService(store, crypto.MasterKey(crypto.new_key()))
        for ven_id in ("ven-mine", "ven-theirs"):
            await add_ven(store, ven_id, Status.APPROVED, now)
        theirs = await operator.create_event(
            site.running.context,
            make_event(start=now + timedelta(hours=2), event_id=EventId("ev-theirs")),
            actor="test",
            now=now,
        )
        async with store.transaction() as tx:
            await tx.deliveries.mark_sent(VenId("ven-theirs"), [theirs], now)
        await data.add_prosumer("p-theirs", ["feeder-7"], "ven-theirs", "test", now)
        await data.add_recipient("lab", "Lab", None, 1.0, "test", now)
        grant = await data.grant(
            "p-theirs",
            "lab",
            "research",
            Level.DAILY,
            Access.INDIVIDUAL,
            now + timedelta(days=3),
            "prosumer:p-theirs",
            now,
        )
        await site.user("pat", Role.PROSUMER, "ven-mine")
        home = "/console/prosumer"
        async with as_user(site, "pat") as session:
            out = await post(session, f"{home}/events/ev-theirs/opt-out", home)
            assert "Nothing changed: no such event." in out
            revoke = await post(session, f"{home}/grants/{grant.grant_id}/revoke", home)
            assert "Nothing changed: no such grant." in revoke
            bad = await post(session, f"{home}/preferences", home, involvement="ask")
            assert bad.startswith("422") and "Nothing was changed." in bad
            assert "choose one of the options" in bad
            good = await post(session, f"{home}/preferences", home, involvement="automatic")
            assert "Preferences saved." in good and "opted out" not in good
        async with store.transaction() as tx:
            assert await tx.opts.active() == []
            assert await ConsoleStore(tx.connection).preferences("ven-mine") == {
                "involvement": "automatic"
            }
        (still,) = await data.grants_of("p-theirs")
        assert still.revoked_at is None


def test_the_cli_makes_a_console_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="flex4grid")
    cli.register(parser.add_subparsers(dest="command", required=True))
    db = f"sqlite:///{tmp_path / 'vtn.db'}"
    base = ["console", "user", "create", "--db", db, "--password-stdin"]

    def run(*argv: str, password: str = PASSWORD) -> int:
        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        args = parser.parse_args([*base, *argv])
        code: int = args.handler(args)
        return code

    assert run("--username", "pat", "--role", "prosumer", "--subject", "ven-1") == 0
    assert run("--username", "pat2", "--role", "prosumer") == 1  # no venID
    assert run("--username", "op", "--role", "operator", password="short") == 1
    assert "at least 10 characters" in capsys.readouterr().err
    args = parser.parse_args(["console", "user", "list", "--db", db])
    assert args.handler(args) == 0
    assert capsys.readouterr().out.splitlines() == ["pat\tprosumer\tven-1"]


# --- a prosumer's reward and its "do not include me" preference ----------------------------------


def power_rows(ven_id: str, start: datetime, kw: float, quarters: int) -> list[dict[str, object]]:
    """Telemetry as the gateway reports it: one meter.power reading per 15 minutes."""
    return [
        {
            "ven_id": ven_id,
            "report_request_id": "rr",
            "report_specifier_id": "rs",
            "report_name": "TELEMETRY_USAGE",
            "r_id": "meter.power",
            "starts_at": start + timedelta(minutes=15 * k),
            "duration_s": 900,
            "value": kw,
            "received_at": start,
        }
        for k in range(quarters)
    ]


def reward_of(page: str, event_id: str) -> str:
    item = re.search(rf'<li data-event="{event_id}">(.*?)</li>', page, re.S)
    assert item is not None, f"{event_id} is not on the page"
    reward = re.search(r'<span class="reward"[^>]*>(.*?)</span>', item.group(1), re.S)
    assert reward is not None, f"no reward for {event_id}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", reward.group(1))).strip()


async def test_a_prosumer_sees_its_share_of_a_settled_market_award_and_a_direct_event_reward(
    pki: DevPki, database_url: str
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(hours=2)  # a one-hour market order, over an hour ago
    async with console_vtn(
        pki, database_url, direct_event_rate_eur_per_kwh=Decimal("0.15")
    ) as site:
        store = site.running.context.store
        point = CongestionPointId("feeder-7")
        request = FlexRequest(
            request_id=RequestId("fr-1"),
            point_id=point,
            start=start,
            isp=timedelta(minutes=15),
            needed_kw=(Decimal(10),) * 4,
            price_cap_eur_per_kwh=Decimal("0.5"),
            gate_closure=start - timedelta(hours=1),
            created_at=start - timedelta(hours=2),
        )
        node = VirtualEndNode(
            node_id=NodeId("node-a"),
            aggregator_id=AggregatorId("agg-a"),
            point_id=point,
            name="node a",
            ven_id=VenId("ven-agg"),
        )
        award = Award(
            request_id=request.request_id,
            bid_id=BidId("bid-a"),
            node_id=node.node_id,
            aggregator_id=node.aggregator_id,
            awarded_kw=(Decimal(10),) * 4,
            price_eur_per_kwh=Decimal("0.2"),
            activation_factor=Decimal(1),
        )
        event = dispatch.event_for(
            request,
            award,
            node,
            VenId("ven-agg"),
            market_context="http://mc",
            now=request.gate_closure,
        )
        direct = make_event(
            start=now - timedelta(hours=5), event_id=EventId("ev-direct")
        )  # one hour, sent to the prosumer's own gateway
        for ven_id in ("ven-1", "ven-2", "ven-agg"):
            await add_ven(store, ven_id, Status.APPROVED, now)
        async with store.transaction() as tx:
            market = Market.on(tx)
            await market.grid.add_point(
                CongestionPoint(point_id=point, name="Feeder 7", capacity_kw=Decimal(400)), now
            )
            await market.aggregators.add(
                Aggregator(aggregator_id=node.aggregator_id, name="A"), now
            )
            await market.nodes.add(node, now)
            for n in (1, 2):
                await market.grid.add_resource(
                    PointResource(
                        prosumer_id=ProsumerId(f"p-{n}"),
                        point_id=point,
                        ven_id=VenId(f"ven-{n}"),
                        added_at=now - timedelta(days=2),
                    )
                )
                await market.nodes.join(
                    Membership(
                        node_id=node.node_id,
                        prosumer_id=ProsumerId(f"p-{n}"),
                        consent_ref=f"consent-{n}",
                        joined_at=now - timedelta(days=1),
                    ),
                    point,
                )
            await market.requests.add(request, "test")
            await market.awards.add(award, now)
            await tx.events.add(event, now)
            await market.awards.set_event(request.request_id, award.bid_id, event.event_id)
            await tx.events.add(direct, now)
            await tx.deliveries.mark_sent(VenId("ven-1"), [direct], now)
            # ven-1: 6 kW before the order, 2 kW during it -> 4 kWh; ven-2: 5 -> 3.5 kW, 1.5 kWh.
            # The direct event: 4 kW before, 1 kW during -> 3 kWh.
            rows = power_rows("ven-1", start - timedelta(hours=1), 6.0, 4)
            rows += power_rows("ven-1", start, 2.0, 4)
            rows += power_rows("ven-2", start - timedelta(hours=1), 5.0, 4)
            rows += power_rows("ven-2", start, 3.5, 4)
            rows += power_rows("ven-1", now - timedelta(hours=6), 4.0, 4)
            rows += power_rows("ven-1", now - timedelta(hours=5), 1.0, 4)
            await tx.connection.execute(readings.insert(), rows)
        await site.user("pat", Role.PROSUMER, "ven-1")
        await site.user("sam", Role.PROSUMER, "ven-2")
        home = "/console/prosumer"
        async with as_user(site, "pat") as session:
            page = await (await session.get(home)).text()
        # Not settled yet: min(4 + 1.5 kWh, 10 kWh ordered) x 0.20 EUR/kWh = 1.10 EUR for the
        # node, of which 4 / 5.5 -> 0.80 EUR.
        assert reward_of(page, event.event_id).startswith("Reward: EUR 0.80 estimated:")
        # Direct: 3 kWh x 0.15 EUR/kWh = 0.45 EUR.
        assert reward_of(page, "ev-direct").startswith("Reward: EUR 0.45 = 3.00 kWh")

        # Settled from the node's measured delivery: 6 kW in each block of 10 kW ordered ->
        # 1.5 kWh x 0.20 EUR = 0.30 EUR per block, 1.20 EUR for the node.
        deliveries = [
            Delivery(
                bid_id=award.bid_id,
                node_id=node.node_id,
                block=block,
                baseline_kw=Decimal(11),
                actual_kw=Decimal(5),
                method="test",
            )
            for block in range(4)
        ]
        (statement,) = settlement.settle(request, [award], deliveries, period="p")
        assert statement.payment_eur == Decimal("1.20")
        async with store.transaction() as tx:
            await Market.on(tx).statements.add(
                request.request_id, award.aggregator_id, statement.to_json(), now
            )
        async with as_user(site, "pat") as session:
            page = await (await session.get(home)).text()
        # 1.20 x 4 / 5.5 = 0.8727... -> 0.87 EUR; the other member gets 1.20 x 1.5 / 5.5 -> 0.33.
        settled = reward_of(page, event.event_id)
        assert settled.startswith("Reward: EUR 0.87:") and "settled payment of EUR 1.20" in settled
        assert "72.73 % for your 4.00 kWh" in settled  # 4 / 5.5
        assert "estimated" not in settled
        async with as_user(site, "sam") as session:
            page = await (await session.get(home)).text()
        assert reward_of(page, event.event_id).startswith("Reward: EUR 0.33:")
        assert "ev-direct" not in page  # pat's own event


async def test_do_not_include_me_makes_the_operators_event_form_refuse_that_ven(
    pki: DevPki, database_url: str
) -> None:
    now = datetime.now(UTC)
    async with console_vtn(pki, database_url) as site:
        store = site.running.context.store
        for ven_id in ("ven-out", "ven-in"):
            await add_ven(store, ven_id, Status.APPROVED, now)
        async with store.transaction() as tx:
            out = await tx.vens.get("ven-out")
            assert out is not None
            await tx.vens.save(replace(out, groups=("north",)))
        upcoming = await operator.create_event(
            site.running.context,
            make_event(start=now + timedelta(hours=2), event_id=EventId("ev-sent")),
            actor="test",
            now=now,
        )
        async with store.transaction() as tx:
            await tx.deliveries.mark_sent(VenId("ven-out"), [upcoming], now)
        await site.user("pat", Role.PROSUMER, "ven-out")
        await site.user("dso", Role.OPERATOR)
        home = "/console/prosumer"
        async with as_user(site, "pat") as session:
            saved = await post(session, f"{home}/preferences", home, involvement="never")
        assert "Preferences saved. You opted out of upcoming event(s) ev-sent." in saved
        assert "You are not included in events." in saved

        events = "/console/operator/events"
        start = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        form = {"start": start, "signal": "SIMPLE", "interval_minutes": "60", "values": "1"}
        async with as_user(site, "dso") as session:
            listed = await (await session.get(events)).text()
            assert '<option value="ven-out" disabled>ven-out (not in events)</option>' in listed
            by_id = await post(session, events, events, ven_ids="ven-out", event_id="e1", **form)
            by_group = await post(session, events, events, group_ids="north", event_id="e2", **form)
            for_all = await post(session, events, events, event_id="e3", **form)
            allowed = await post(session, events, events, ven_ids="ven-in", event_id="e4", **form)
        assert by_id.startswith("422")
        assert "ven-out: the prosumer asked not to be included in events; unselect it" in by_id
        assert by_group.startswith("422") and "a group includes ven-out" in by_group
        assert for_all.startswith("422") and "the event would reach ven-out" in for_all
        assert allowed.startswith("200") and "Event created." in allowed
        async with store.transaction() as tx:
            for refused in ("e1", "e2", "e3"):
                assert await tx.events.get(refused) is None  # nothing made
            assert await tx.events.get("e4") is not None
            (opt,) = [o for _, o in await tx.opts.active("ven-out")]
            assert (opt.event_id, opt.opt_type.value) == ("ev-sent", "optOut")
