"""The market end to end on a real VTN over mutual TLS (SQLite and PostgreSQL): the DSO's grid
model, two aggregators whose virtual end nodes stand behind real VEN clients, a flex request,
bids, clearing, LOAD_DISPATCH events polled and opted into by the winning nodes' VENs, telemetry
sent as oadrUpdateReport (node-a's by its two members' gateways, node-b's by the node's own VEN),
a meter-before/meter-after baseline, delivery, and settlement statements whose figures are
checked against the hand computation below.

Hand-computed case (ISP 15 min = 0.25 h; tolerance 10 %; penalty price = award price):

  request: 4 blocks x 10 kW, cap 0.50 EUR/kWh, pay-as-bid
  bid-a (agg-a, node-a): 4 kW/block @ 0.20 divisible -> awarded 4 kW (1 kWh) per block
  bid-b (agg-b, node-b): 8 kW/block @ 0.30 divisible -> awarded 6 kW (1.5 kWh) per block
                                                       (activation factor 0.75)
  node-a = p1 + p2: before the event 7 + 5 = 12 kW; during 8, 8, 9, 7 kW -> delivered 4, 4, 3, 5
  node-b (own VEN): before 20 kW;                   during 14, 14, 16, 11 -> delivered 6, 6, 4, 9

  agg-a @0.20: paid kWh 1, 1, 0.75, 1 (5 kW caps at the 4 awarded) -> 0.20+0.20+0.15+0.20 = 0.75
               block 2 short 0.25 kWh, 0.1 kWh tolerated -> 0.15 kWh x 0.20 = 0.03 penalty
               delivered kWh 1 + 1 + 0.75 + 1.25 = 4; net 0.72 EUR
  agg-b @0.30: paid kWh 1.5, 1.5, 1.0, 1.5 -> 0.45+0.45+0.30+0.45 = 1.65
               block 2 short 0.5 kWh, 0.15 tolerated -> 0.35 x 0.30 = 0.105 -> 0.10 (half-even)
               delivered kWh 1.5 + 1.5 + 1 + 2.25 = 6.25; net 1.55 EUR
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from certs.dev import DevPki, make_dev_pki
from market.http import MarketExtension
from oadr.enums import OptType, ReportName, SignalName, SignalType
from oadr.model import (
    CreatedEvent,
    CreatedReport,
    DistributeEvent,
    EiResponse,
    EventResponse,
    Poll,
    RegisteredReport,
    RegisterReport,
    Report,
    ReportInterval,
    ReportPayload,
    RequestId,
    Response,
    UpdatedReport,
    UpdateReport,
    VenId,
)
from tests.factories import make_metadata_report
from tests.integration.test_admin_api import bootstrap
from tests.integration.test_market_api import Clock, MarketVtn
from tests.integration.vtn_harness import VenClient, running_vtn
from vtn.admin import tokens
from vtn.admin.tokens import TokenRole

ISP = timedelta(minutes=15)


@pytest.fixture(scope="module")
def market_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """Four VEN certificates: the two nodes' upstream VENs and node-a's two members' gateways."""
    return make_dev_pki(tmp_path_factory.mktemp("market-pki"), ven_count=4)


def event_start(now: datetime) -> datetime:
    """The next ISP boundary 2 h ahead, moved to midnight if the hour would cross it."""
    ahead = now + timedelta(hours=2)
    start = ahead - (ahead - datetime.combine(ahead.date(), time(), UTC)) % ISP + ISP
    if (start + timedelta(hours=1)).date() != start.date():
        start = datetime.combine(start.date() + timedelta(days=1), time(), UTC)
    return start


async def report_telemetry(
    client: VenClient, ven_id: VenId, start: datetime, kw: list[float]
) -> None:
    """15-minute readings from one ISP before `start`: kw[0] before the event, then one per
    block."""
    await send_readings(client, ven_id, [(start + (i - 1) * ISP, v) for i, v in enumerate(kw)])


async def send_readings(
    client: VenClient, ven_id: VenId, readings: list[tuple[datetime, float]]
) -> None:
    """Register a usage report, take the VTN's request for it, and send the readings (15-minute
    intervals) in one oadrUpdateReport."""
    metadata = make_metadata_report(report_name=ReportName.METADATA_TELEMETRY_USAGE)
    registered = await client.send(
        RegisterReport(request_id=RequestId("rr"), reports=(metadata,), ven_id=ven_id)
    )
    assert isinstance(registered, RegisteredReport)
    (auto,) = registered.report_requests
    await client.send(
        CreatedReport(
            response=EiResponse(code=200, request_id=RequestId("rr")),
            pending_reports=(auto.report_request_id,),
            ven_id=ven_id,
        )
    )
    r_id = auto.specifier_payloads[0].r_id
    answer = await client.send(
        UpdateReport(
            request_id=RequestId("up"),
            ven_id=ven_id,
            reports=(
                Report(
                    report_specifier_id=metadata.report_specifier_id,
                    report_request_id=auto.report_request_id,
                    report_name=ReportName.TELEMETRY_USAGE,
                    created=readings[0][0],
                    intervals=tuple(
                        ReportInterval(
                            start=at, duration=ISP, payloads=(ReportPayload(r_id=r_id, value=v),)
                        )
                        for at, v in readings
                    ),
                ),
            ),
        )
    )
    assert isinstance(answer, UpdatedReport) and answer.response.code == 200


async def opt_in(client: VenClient, ven_id: VenId) -> list[Any]:
    """Poll like a VEN, check the flex order's event, and opt in to it."""
    delivered = await client.send(Poll(ven_id=ven_id))
    assert isinstance(delivered, DistributeEvent), delivered
    (event,) = delivered.events
    answer = await client.send(
        CreatedEvent(
            response=EiResponse(code=200, request_id=delivered.request_id),
            ven_id=ven_id,
            event_responses=(
                EventResponse(
                    code=200,
                    request_id=delivered.request_id,
                    event_id=event.event_id,
                    modification_number=event.modification_number,
                    opt_type=OptType.OPT_IN,
                ),
            ),
        )
    )
    assert isinstance(answer, Response) and answer.response.code == 200
    (signal,) = event.signals
    assert (signal.signal_name, signal.signal_type) == (
        SignalName.LOAD_DISPATCH,
        SignalType.DELTA,
    )
    assert event.target.ven_ids == (ven_id,)
    return [event.active_period.start, [i.value for i in signal.intervals]]


def totals(statement: dict[str, Any]) -> dict[str, Decimal]:
    return {name: Decimal(value) for name, value in statement["totals"].items()}


async def test_request_to_settlement_with_real_vens(market_pki: DevPki, database_url: str) -> None:
    pki = market_pki
    start = event_start(datetime.now(UTC))
    gate = start - timedelta(hours=1)
    clock = Clock(now=datetime.now(UTC))
    extension = MarketExtension(clock=clock, auto_clear=False)
    async with running_vtn(pki, database_url, extensions=(extension,)) as running:
        operator = await tokens.create(running.context.store, "dso", TokenRole.OPERATOR,
                                       actor="test", now=clock.now)  # fmt: skip
        vtn = MarketVtn(running.url, running.context, pki, clock, {"dso": operator},
                        ssl_context=pki.client_context())  # fmt: skip
        clients = [running.client(identity) for identity in pki.vens]
        node_a_ven, node_b_ven, p1_ven, p2_ven = [
            await bootstrap(client, f"ven-{i}") for i, client in enumerate(clients)
        ]

        # The DSO's grid model and two aggregator accounts.
        await vtn.ok(
            "POST",
            "/market/points",
            201,
            json={"point_id": "cp-1", "name": "feeder 1", "capacity_kw": "100"},
        )
        for prosumer, ven in (("p1", p1_ven), ("p2", p2_ven), ("p3", None)):
            await vtn.ok(
                "POST",
                "/market/points/cp-1/resources",
                201,
                json={"prosumer_id": prosumer, "ven_id": ven},
            )
        for aggregator in ("agg-a", "agg-b"):
            made = await vtn.ok(
                "POST",
                "/market/aggregators",
                201,
                json={"aggregator_id": aggregator, "name": aggregator},
            )
            vtn.tokens[aggregator] = made["token"]
        # Each aggregator registers its node (its upstream VEN's venID) and members.
        await vtn.ok(
            "POST",
            "/market/nodes",
            201,
            who="agg-a",
            json={"node_id": "node-a", "point_id": "cp-1", "name": "A", "ven_id": node_a_ven},
        )
        await vtn.ok(
            "POST",
            "/market/nodes",
            201,
            who="agg-b",
            json={"node_id": "node-b", "point_id": "cp-1", "name": "B", "ven_id": node_b_ven},
        )
        for prosumer in ("p1", "p2"):
            await vtn.ok(
                "POST",
                "/market/nodes/node-a/members",
                201,
                who="agg-a",
                json={"prosumer_id": prosumer, "consent_ref": f"consent/{prosumer}"},
            )
        await vtn.ok(
            "POST",
            "/market/nodes/node-b/members",
            201,
            who="agg-b",
            json={"prosumer_id": "p3", "consent_ref": "consent/p3"},
        )

        # The request and the bids.
        await vtn.ok(
            "POST",
            "/market/requests",
            201,
            json={
                "request_id": "req-e2e",
                "point_id": "cp-1",
                "start": start.isoformat(),
                "needed_kw": ["10"] * 4,
                "price_cap_eur_per_kwh": "0.50",
                "gate_closure": gate.isoformat(),
            },
        )
        valid_until = (start + timedelta(hours=2)).isoformat()
        await vtn.ok(
            "POST",
            "/market/requests/req-e2e/bids",
            201,
            who="agg-a",
            json={
                "bid_id": "bid-a",
                "node_id": "node-a",
                "offered_kw": ["4"] * 4,
                "price_eur_per_kwh": "0.20",
                "valid_until": valid_until,
            },
        )
        await vtn.ok("POST", "/market/requests/req-e2e/bids", 201, who="agg-b", json={
            "bid_id": "bid-b", "node_id": "node-b", "offered_kw": ["8"] * 4,
            "price_eur_per_kwh": "0.30", "valid_until": valid_until,
        })  # fmt: skip

        # Gate closure: clear, dispatch; the nodes' VENs poll and opt in.
        clock.now = gate
        cleared = await vtn.ok("POST", "/market/requests/req-e2e/clear")
        await vtn.ok("POST", "/market/requests/req-e2e/dispatch")
        event_a = await opt_in(clients[0], node_a_ven)
        event_b = await opt_in(clients[1], node_b_ven)
        awards = await vtn.ok("GET", "/market/requests/req-e2e/awards")

        # Telemetry: node-a's members' gateways, and node-b's own VEN.
        await report_telemetry(clients[2], p1_ven, start, [7.0, 5.0, 5.0, 5.0, 4.0])
        await report_telemetry(clients[3], p2_ven, start, [5.0, 3.0, 3.0, 4.0, 3.0])
        await report_telemetry(clients[1], node_b_ven, start, [20.0, 14.0, 14.0, 16.0, 11.0])

        # After the event: measure, settle.
        clock.now = start + timedelta(hours=1, minutes=5)
        deliveries = await vtn.ok("POST", "/market/requests/req-e2e/measure",
                                  json={"method": "meter-before-meter-after"})  # fmt: skip
        issued = await vtn.ok("POST", "/market/requests/req-e2e/settle", json={})
        own = await vtn.ok("GET", "/market/statements", who="agg-a")
        csv_b = await vtn.call("GET", "/market/statements?format=csv", who="agg-b")
        detail = await vtn.ok("GET", "/market/requests/req-e2e")

    assert [
        (a["bid_id"], a["awarded_kw"], Decimal(a["activation_factor"])) for a in cleared["awards"]
    ] == [("bid-a", ["4"] * 4, Decimal(1)), ("bid-b", ["6"] * 4, Decimal("0.75"))]
    assert event_a == [start, [-4.0] * 4] and event_b == [start, [-6.0] * 4]
    assert [(a["award"]["bid_id"], a["opt"]["opt"]) for a in awards] == [
        ("bid-a", "optIn"), ("bid-b", "optIn"),
    ]  # fmt: skip

    delivered = {(d["bid_id"], d["block"]): Decimal(d["delivered_kw"]) for d in deliveries}
    assert delivered == {
        **{("bid-a", b): Decimal(kw) for b, kw in enumerate([4, 4, 3, 5])},
        **{("bid-b", b): Decimal(kw) for b, kw in enumerate([6, 6, 4, 9])},
    }
    assert {d["method"] for d in deliveries} == {
        "meter-before-meter-after(lookback_isps=4, readings=1)"
    }

    by_aggregator = {s["aggregator_id"]: s for s in issued}
    assert totals(by_aggregator["agg-a"]) == {
        "awarded_kwh": Decimal("4"), "delivered_kwh": Decimal("4"),
        "paid_kwh": Decimal("3.75"), "shortfall_kwh": Decimal("0.25"),
        "payment_eur": Decimal("0.75"), "penalty_eur": Decimal("0.03"),
        "net_eur": Decimal("0.72"),
    }  # fmt: skip
    assert totals(by_aggregator["agg-b"]) == {
        "awarded_kwh": Decimal("6"), "delivered_kwh": Decimal("6.25"),
        "paid_kwh": Decimal("5.5"), "shortfall_kwh": Decimal("0.5"),
        "payment_eur": Decimal("1.65"), "penalty_eur": Decimal("0.10"),
        "net_eur": Decimal("1.55"),
    }  # fmt: skip
    assert [s["aggregator_id"] for s in own] == ["agg-a"]
    assert csv_b[0] == 200 and csv_b[1].splitlines()[-1].startswith("TOTAL")
    assert "bid-a" not in csv_b[1] and csv_b[1].count("bid-b") == 4
    assert [h["status"] for h in detail["history"]] == [
        "open", "closed", "cleared", "dispatched", "measured", "settled",
    ]  # fmt: skip


def test_event_start_stays_in_one_day() -> None:
    late = datetime(2030, 1, 1, 21, 50, tzinfo=UTC)
    assert event_start(late) == datetime(2030, 1, 2, 0, 0, tzinfo=UTC)
    assert event_start(datetime(2030, 1, 1, 8, 7, tzinfo=UTC)) == datetime(
        2030, 1, 1, 10, 15, tzinfo=UTC
    )


async def test_ten_of_ten_baseline_from_two_weeks_of_telemetry(
    market_pki: DevPki, database_url: str
) -> None:
    """10-of-10 with its same-day adjustment, from a VEN's history sent as oadrUpdateReport.

    The event (Monday 2030-03-04 10:00, ISPs 40..43) and the 10 weekdays before it: 10 kW in
    the event ISPs and 8 kW in the adjustment window (05:00-09:00, ISPs 20..35). On the event
    day the window reads 8.8 kW: ratio 1.1 (within the 20 % cap), baseline 11 kW. Actual 6, 6,
    7, 10 kW -> delivered 5, 5, 4, 1 kW. bid-a (4 kW = 1 kWh per block @ 0.20): paid 1 + 1 + 1 +
    0.25 kWh = 0.65 EUR; block 3 is 0.75 kWh short, 0.1 kWh (10 %) tolerated, so 0.65 kWh x 0.20
    = 0.13 EUR penalty; net 0.52. node-b has no telemetry at all: it is not measured
    (the audit log says why) and bid-b's 6 kW are settled as nothing delivered: 4 x (1.5 - 0.15)
    kWh x 0.30 = 1.62 penalty.
    """
    pki = market_pki
    start = datetime(2030, 3, 4, 10, 0, tzinfo=UTC)
    clock = Clock(now=start - timedelta(hours=3))
    async with running_vtn(pki, database_url, extensions=(MarketExtension(clock=clock,
                                                                          auto_clear=False),)
                           ) as running:  # fmt: skip
        operator = await tokens.create(running.context.store, "dso", TokenRole.OPERATOR,
                                       actor="test", now=clock.now)  # fmt: skip
        vtn = MarketVtn(running.url, running.context, pki, clock, {"dso": operator},
                        ssl_context=pki.client_context())  # fmt: skip
        client = running.client(pki.vens[0])
        ven_id = await bootstrap(client, "node-a")
        days = [start.date() - timedelta(days=n) for n in range(1, 15)]
        weekdays = [d for d in days if d.weekday() < 5][:10]
        midnight = [datetime.combine(d, time(), UTC) for d in weekdays]
        history = [(m + i * ISP, 8.0) for m in midnight for i in range(20, 36)]
        history += [(m + i * ISP, 10.0) for m in midnight for i in range(40, 44)]
        today = datetime.combine(start.date(), time(), UTC)
        event_day = [(today + i * ISP, 8.8) for i in range(20, 36)]
        event_day += [(start + i * ISP, v) for i, v in enumerate([6.0, 6.0, 7.0, 10.0])]
        await send_readings(client, ven_id, history + event_day)

        await vtn.ok(
            "POST",
            "/market/points",
            201,
            json={"point_id": "cp-1", "name": "feeder", "capacity_kw": "100"},
        )
        for aggregator, node, ven in (("agg-a", "node-a", ven_id), ("agg-b", "node-b", None)):
            made = await vtn.ok(
                "POST",
                "/market/aggregators",
                201,
                json={"aggregator_id": aggregator, "name": aggregator},
            )
            vtn.tokens[aggregator] = made["token"]
            await vtn.ok(
                "POST",
                "/market/nodes",
                201,
                who=aggregator,
                json={"node_id": node, "point_id": "cp-1", "name": node, "ven_id": ven},
            )
        await vtn.ok(
            "POST",
            "/market/requests",
            201,
            json={
                "request_id": "req-10",
                "point_id": "cp-1",
                "start": start.isoformat(),
                "needed_kw": ["10"] * 4,
                "price_cap_eur_per_kwh": "0.5",
                "gate_closure": (start - timedelta(hours=1)).isoformat(),
            },
        )
        for who, node, price in (("agg-a", "node-a", "0.20"), ("agg-b", "node-b", "0.30")):
            await vtn.ok(
                "POST",
                "/market/requests/req-10/bids",
                201,
                who=who,
                json={
                    "bid_id": f"bid-{who[-1]}",
                    "node_id": node,
                    "offered_kw": ["4" if who == "agg-a" else "8"] * 4,
                    "price_eur_per_kwh": price,
                    "valid_until": (start + timedelta(hours=2)).isoformat(),
                },
            )
        clock.now = start - timedelta(hours=1)
        await vtn.ok("POST", "/market/requests/req-10/clear")
        await vtn.ok("POST", "/market/requests/req-10/dispatch")
        clock.now = start + timedelta(hours=1)
        deliveries = await vtn.ok("POST", "/market/requests/req-10/measure", json={})
        issued = await vtn.ok("POST", "/market/requests/req-10/settle", json={})
        audit = await vtn.ok("GET", "/audit?subject=req-10")

    assert [(d["bid_id"], Decimal(d["baseline_kw"]), Decimal(d["delivered_kw"]))
            for d in deliveries] == [
        ("bid-a", Decimal(11), Decimal(5)), ("bid-a", Decimal(11), Decimal(5)),
        ("bid-a", Decimal(11), Decimal(4)), ("bid-a", Decimal(11), Decimal(1)),
    ]  # fmt: skip
    assert deliveries[0]["method"].startswith("10-of-10(adjust=True, adjustment_cap=0.2")
    (measured,) = [e for e in audit["items"] if e["action"] == "market.request.deliveries"]
    assert list(measured["detail"]["unmeasured"]) == ["node-b"]
    by_aggregator = {s["aggregator_id"]: totals(s) for s in issued}
    assert (by_aggregator["agg-a"]["payment_eur"], by_aggregator["agg-a"]["penalty_eur"],
            by_aggregator["agg-a"]["net_eur"]) == (Decimal("0.65"), Decimal("0.13"),
                                                   Decimal("0.52"))  # fmt: skip
    assert (by_aggregator["agg-b"]["payment_eur"], by_aggregator["agg-b"]["net_eur"]) == (
        Decimal(0), Decimal("-1.62"),
    )  # fmt: skip
