"""The market's admin API over real HTTPS on 127.0.0.1, on SQLite and PostgreSQL: bad input gets
the right 4xx with its reason and changes nothing; an aggregator sees and touches only its own
nodes, bids, awards and statements while the DSO sees everything; the grid model's rules on
memberships; the request's steps in order; and the gate-closure task clearing a request that
fell due while the VTN was down."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import jsonschema
import pytest
from aiohttp import web

from certs.dev import DevPki
from market.accounts import MarketGrid
from market.http import MARKET, ROUTES, MarketExtension
from vtn import serve
from vtn.admin import tokens
from vtn.admin.tokens import TokenRole
from vtn.app import CONTEXT, VtnConfig, build_app
from vtn.config import VtnSettings
from vtn.services.context import Context

M = "/admin/v1/market"
START = datetime(2030, 3, 4, 10, 0, tzinfo=UTC)  # a Monday; every market time is from here
GATE = START - timedelta(hours=1)
T0 = START - timedelta(hours=3)  # the clock when the tests begin


@dataclass
class Clock:
    """The market's injectable clock: tests move it; every market decision reads it."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class MarketVtn:
    url: str
    context: Context
    pki: DevPki
    clock: Clock
    tokens: dict[str, str] = field(default_factory=dict)  # who -> bearer token
    ssl_context: ssl.SSLContext | None = None  # a client certificate, where the VTN wants one
    app: web.Application | None = None

    async def call(
        self, method: str, path: str, *, who: str = "dso", **kwargs: Any
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens.get(who, who)}"}
        verify = self.ssl_context or ssl.create_default_context(cafile=str(self.pki.vtn.root))
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method, self.url + "/admin/v1" + path, headers=headers, ssl=verify, **kwargs
            ) as response,
        ):
            if response.content_type == "text/csv":
                return response.status, await response.text()
            return response.status, await response.json(content_type=None)

    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        got, body = await self.call(method, path, **kwargs)
        assert got == status, (method, path, body)
        return body


@asynccontextmanager
async def market_vtn(
    pki: DevPki,
    database_url: str,
    clock: Clock,
    *,
    auto_clear: bool = False,
    fresh: bool = True,
) -> AsyncIterator[MarketVtn]:
    """The VTN as `vtn serve` runs it (migrated, its TLS), with the market and a DSO operator."""
    extension = MarketExtension(clock=clock, auto_clear=auto_clear)
    app = build_app(VtnConfig(VtnSettings(), database_url, pki.trust_store(),
                              extensions=(extension,)))  # fmt: skip
    context = app[CONTEXT]
    await serve.prepare_database(context.store)
    now = datetime.now(UTC)
    made = {}
    if fresh:
        made["dso"] = await tokens.create(context.store, "dso-operator", TokenRole.OPERATOR,
                                          actor="test", now=now)  # fmt: skip
        made["viewer"] = await tokens.create(context.store, "dso-viewer", TokenRole.VIEWER,
                                             actor="test", now=now)  # fmt: skip
    runner = web.AppRunner(app)
    await runner.setup()
    ssl_context = serve.server_ssl_context(pki.vtn.chain, pki.vtn.key, pki.trust_store())
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context).start()
    host, port = runner.addresses[0][:2]
    try:
        yield MarketVtn(f"https://{host}:{port}", context, pki, clock, made, app=app)
    finally:
        await runner.cleanup()


async def grid(vtn: MarketVtn, *, ven_ids: dict[str, str] | None = None) -> None:
    """cp-1 with prosumers p1..p3, cp-2 with p9; aggregators agg-a (node-a, node-a2 under cp-2)
    and agg-b (node-b); request req-1 at cp-1: 4 blocks of 10 kW, cap 0.5, gate at GATE."""
    ven_ids = ven_ids or {}
    for point, prosumers in (("cp-1", ("p1", "p2", "p3")), ("cp-2", ("p9",))):
        await vtn.ok(
            "POST",
            "/market/points",
            201,
            json={"point_id": point, "name": f"feeder {point}", "capacity_kw": "250"},
        )
        for prosumer in prosumers:
            await vtn.ok("POST", f"/market/points/{point}/resources", 201,
                         json={"prosumer_id": prosumer})  # fmt: skip
    for aggregator in ("agg-a", "agg-b"):
        made = await vtn.ok(
            "POST",
            "/market/aggregators",
            201,
            json={"aggregator_id": aggregator, "name": aggregator.upper()},
        )
        vtn.tokens[aggregator] = made["token"]
    for node, who, point in (
        ("node-a", "agg-a", "cp-1"),
        ("node-a2", "agg-a", "cp-2"),
        ("node-b", "agg-b", "cp-1"),
    ):
        await vtn.ok("POST", "/market/nodes", 201, who=who,
                     json={"node_id": node, "point_id": point, "name": node,
                           "ven_id": ven_ids.get(node)})  # fmt: skip
    await vtn.ok("POST", "/market/requests", 201, json=request_body())


def request_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "request_id": "req-1",
        "point_id": "cp-1",
        "start": START.isoformat(),
        "isp": "PT15M",
        "needed_kw": ["10", "10", "10", "10"],
        "price_cap_eur_per_kwh": "0.5",
        "gate_closure": GATE.isoformat(),
    }
    return body | overrides


def bid_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "bid_id": "bid-a",
        "node_id": "node-a",
        "offered_kw": ["4", "4", "4", "4"],
        "price_eur_per_kwh": "0.2",
        "divisible": True,
        "valid_until": (START + timedelta(hours=2)).isoformat(),
    }
    return body | overrides


async def snapshot(vtn: MarketVtn) -> tuple[Any, ...]:
    """What a refused bid must leave alone: every bid revision, the request, the audit log."""
    return (
        await vtn.ok("GET", "/market/requests/req-1/bids?revisions=true"),
        await vtn.ok("GET", "/market/requests/req-1"),
        len((await vtn.ok("GET", "/audit?limit=1000"))["items"]),
    )


# --- bad input ------------------------------------------------------------------------------------

BAD_BIDS = [
    pytest.param("req-1", bid_body(), "agg-a", 422, "gate closure", True, id="after-gate-closure"),
    pytest.param("req-1", bid_body(node_id="node-b"), "agg-a", 403, "another aggregator", False,
                 id="foreign-node"),
    pytest.param("req-1", bid_body(offered_kw=["4", "-1", "4", "4"]), "agg-a", 422,
                 "negative volume -1 kW in block 1", False, id="negative-volume"),
    pytest.param("req-1", bid_body(price_eur_per_kwh="0.12345"), "agg-a", 422,
                 "more than 4 decimals", False, id="price-with-5-decimals"),
    pytest.param("req-1", bid_body(price_eur_per_kwh="0.6"), "agg-a", 422, "above the cap",
                 False, id="above-cap"),
    pytest.param("req-1", bid_body(bid_id="bid-a2", node_id="node-a2"), "agg-a", 422,
                 "not under congestion point cp-1", False, id="node-outside-the-point"),
    pytest.param("req-1", bid_body(offered_kw=["4", "4"]), "agg-a", 422, "block", False,
                 id="wrong-block-count"),
    pytest.param("req-nope", bid_body(), "agg-a", 404, "no flex request 'req-nope'", False,
                 id="unknown-request"),
    pytest.param("req-1", bid_body(offered_kw=["four"] * 4), "agg-a", 400, "offered_kw.0",
                 False, id="malformed-volume"),
    pytest.param("req-1", bid_body(valid_until="2030-03-04T12:00:00"), "agg-a", 400,
                 "valid_until", False, id="time-without-zone"),
    pytest.param("req-1", bid_body(node_id="node-zz"), "agg-a", 404, "no node 'node-zz'", False,
                 id="unknown-node"),
    pytest.param("req-1", bid_body(), "dso-viewer-token", 401, "not authenticated", False,
                 id="no-valid-token"),
]  # fmt: skip


@pytest.mark.parametrize(("request_id", "body", "who", "status", "reason", "late"), BAD_BIDS)
async def test_a_bad_bid_gets_its_4xx_and_reason_and_changes_nothing(
    pki: DevPki,
    database_url: str,
    request_id: str,
    body: dict[str, Any],
    who: str,
    status: int,
    reason: str,
    late: bool,
) -> None:
    async with market_vtn(pki, database_url, Clock()) as vtn:
        await grid(vtn)
        # A good bid first, so a refused revision of it must not bump its revision either.
        await vtn.ok("POST", "/market/requests/req-1/bids", 201, who="agg-a", json=bid_body())
        if late:
            vtn.clock.now = GATE
        before = await snapshot(vtn)

        got, reply = await vtn.call("POST", f"/market/requests/{request_id}/bids", who=who,
                                    json=body)  # fmt: skip

        after = await snapshot(vtn)
    assert (got, reason in reply["error"]) == (status, True), reply
    assert reply["code"] == status
    assert after == before
    assert [b["revision"] for b in after[0]] == [1]


async def test_a_bid_is_revised_until_gate_closure_and_every_revision_is_kept(
    pki: DevPki, database_url: str
) -> None:
    async with market_vtn(pki, database_url, Clock()) as vtn:
        await grid(vtn)
        first = await vtn.ok("POST", "/market/requests/req-1/bids", 201, who="agg-a",
                             json=bid_body())  # fmt: skip
        vtn.clock.now = T0 + timedelta(minutes=5)
        second = await vtn.ok("POST", "/market/requests/req-1/bids", 201, who="agg-a",
                              json=bid_body(price_eur_per_kwh="0.1234"))  # fmt: skip
        latest = await vtn.ok("GET", "/market/requests/req-1/bids")
        every = await vtn.ok("GET", "/market/requests/req-1/bids?revisions=true")
        moved = await vtn.call("POST", "/market/requests/req-1/bids", who="agg-a",
                               json=bid_body(node_id="node-a2"))  # fmt: skip
    assert (first["revision"], second["revision"]) == (1, 2)
    assert [(b["revision"], b["price_eur_per_kwh"]) for b in latest] == [(2, "0.1234")]
    assert [b["price_eur_per_kwh"] for b in every] == ["0.2", "0.1234"]
    assert moved[0] == 409 and "cannot move" in moved[1]["error"]


BAD_REQUESTS = [
    pytest.param({"needed_kw": ["10", "-2"]}, 400, "block 1", id="negative-need"),
    pytest.param({"price_cap_eur_per_kwh": "0.12345"}, 400, "at most 4 decimals", id="cap-5dp"),
    pytest.param({"gate_closure": (START + timedelta(minutes=5)).isoformat()}, 400,
                 "before the first block", id="gate-after-start"),
    pytest.param({"gate_closure": (T0 - timedelta(minutes=1)).isoformat()}, 400,
                 "not in the future", id="gate-in-the-past"),
    pytest.param({"point_id": "cp-x"}, 404, "no congestion point 'cp-x'", id="unknown-point"),
    pytest.param({}, 409, "already exists", id="duplicate-id"),
    pytest.param({"needed_kw": "ten"}, 400, "needed_kw", id="malformed"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "status", "reason"), BAD_REQUESTS)
async def test_a_bad_flex_request_is_refused_with_its_reason(
    pki: DevPki, database_url: str, overrides: dict[str, Any], status: int, reason: str
) -> None:
    async with market_vtn(pki, database_url, Clock()) as vtn:
        await grid(vtn)
        before = await vtn.ok("GET", "/market/requests")
        got, reply = await vtn.call("POST", "/market/requests", json=request_body(**overrides))
        after = await vtn.ok("GET", "/market/requests")
    assert got == status and reason in reply["error"], reply
    assert after == before


# --- accounts and isolation -----------------------------------------------------------------------


async def test_an_aggregator_sees_and_touches_only_its_own_things(
    pki: DevPki, database_url: str
) -> None:
    async with market_vtn(pki, database_url, Clock()) as vtn:
        await grid(vtn)
        await vtn.ok("POST", "/market/requests/req-1/bids", 201, who="agg-a", json=bid_body())
        await vtn.ok(
            "POST",
            "/market/requests/req-1/bids",
            201,
            who="agg-b",
            json=bid_body(bid_id="bid-b", node_id="node-b", price_eur_per_kwh="0.3"),
        )
        stolen_revision = await vtn.call(
            "POST", "/market/requests/req-1/bids", who="agg-b", json=bid_body(node_id="node-b")
        )  # bid-a is agg-a's
        seen = {
            who: {
                "nodes": [n["node_id"] for n in await vtn.ok("GET", "/market/nodes", who=who)],
                "bids": [b["bid_id"]
                         for b in await vtn.ok("GET", "/market/requests/req-1/bids", who=who)],
                "aggregators": [a["aggregator_id"]
                                for a in await vtn.ok("GET", "/market/aggregators", who=who)],
            }
            for who in ("agg-a", "agg-b", "dso", "viewer")
        }  # fmt: skip
        vtn.clock.now = GATE
        await vtn.ok("POST", "/market/requests/req-1/clear")
        awards = {who: [a["award"]["bid_id"]
                        for a in await vtn.ok("GET", "/market/requests/req-1/awards", who=who)]
                  for who in ("agg-a", "agg-b", "dso")}  # fmt: skip
        refusals = {
            "other's node": await vtn.call("GET", "/market/nodes/node-b", who="agg-a"),
            "other's member": await vtn.call("POST", "/market/nodes/node-b/members", who="agg-a",
                                             json={"prosumer_id": "p2", "consent_ref": "c"}),
            "node for another": await vtn.call("POST", "/market/nodes", who="agg-a",
                                               json={"node_id": "n-x", "point_id": "cp-1",
                                                     "name": "x", "aggregator_id": "agg-b"}),
            "VTN routes": await vtn.call("GET", "/vens", who="agg-a"),
            "DSO step": await vtn.call("POST", "/market/requests/req-1/dispatch", who="agg-a"),
            "publish": await vtn.call("POST", "/market/requests", who="agg-a",
                                      json=request_body(request_id="req-2")),
            "viewer writes": await vtn.call("POST", "/market/requests/req-1/bids", who="viewer",
                                            json=bid_body()),
        }  # fmt: skip
    assert stolen_revision[0] == 403 and "another aggregator" in stolen_revision[1]["error"]
    assert seen["agg-a"] == {"nodes": ["node-a", "node-a2"], "bids": ["bid-a"],
                             "aggregators": ["agg-a"]}  # fmt: skip
    assert seen["agg-b"] == {"nodes": ["node-b"], "bids": ["bid-b"], "aggregators": ["agg-b"]}
    for dso in ("dso", "viewer"):
        assert seen[dso] == {
            "nodes": ["node-a", "node-a2", "node-b"],
            "bids": ["bid-a", "bid-b"],
            "aggregators": ["agg-a", "agg-b"],
        }
    assert awards == {"agg-a": ["bid-a"], "agg-b": ["bid-b"], "dso": ["bid-a", "bid-b"]}
    assert {what: status for what, (status, _) in refusals.items()} == {
        "other's node": 403, "other's member": 403, "node for another": 403, "VTN routes": 403,
        "DSO step": 403, "publish": 403, "viewer writes": 403,
    }  # fmt: skip


async def test_a_prosumer_joins_with_consent_once_per_congestion_point(
    pki: DevPki, database_url: str
) -> None:
    async with market_vtn(pki, database_url, Clock()) as vtn:
        await grid(vtn)
        joined = await vtn.ok(
            "POST",
            "/market/nodes/node-a/members",
            201,
            who="agg-a",
            json={"prosumer_id": "p1", "consent_ref": "consent/p1.pdf"},
        )
        tries = {
            "no consent": await vtn.call("POST", "/market/nodes/node-b/members", who="agg-b",
                                         json={"prosumer_id": "p2", "consent_ref": " "}),
            "double counted": await vtn.call("POST", "/market/nodes/node-b/members", who="agg-b",
                                             json={"prosumer_id": "p1", "consent_ref": "c"}),
            "other point": await vtn.call("POST", "/market/nodes/node-a2/members", who="agg-a",
                                          json={"prosumer_id": "p2", "consent_ref": "c"}),
            "not in grid": await vtn.call("POST", "/market/nodes/node-a/members", who="agg-a",
                                          json={"prosumer_id": "p404", "consent_ref": "c"}),
        }  # fmt: skip
        await vtn.ok("DELETE", "/market/nodes/node-a/members/p1", who="agg-a")
        moved = await vtn.ok(
            "POST",
            "/market/nodes/node-b/members",
            201,
            who="agg-b",
            json={"prosumer_id": "p1", "consent_ref": "consent/p1-b.pdf"},
        )
        history = await vtn.ok("GET", "/market/nodes/node-a", who="agg-a")
    assert joined["consent_ref"] == "consent/p1.pdf"
    assert {what: status for what, (status, _) in tries.items()} == {
        "no consent": 400, "double counted": 409, "other point": 409, "not in grid": 404,
    }  # fmt: skip
    assert "already in another node" in tries["double counted"][1]["error"]
    assert moved["node_id"] == "node-b"
    assert [(m["prosumer_id"], m["left_at"] is not None) for m in history["members"]] == [
        ("p1", True)
    ]


# --- the request's steps --------------------------------------------------------------------------


async def test_steps_go_in_order_and_each_is_in_the_history(pki: DevPki, database_url: str) -> None:
    async with market_vtn(pki, database_url, Clock()) as vtn:
        await grid(vtn)
        await vtn.ok("POST", "/market/requests/req-1/bids", 201, who="agg-a", json=bid_body())
        await vtn.ok(
            "POST",
            "/market/requests/req-1/bids",
            201,
            who="agg-b",
            json=bid_body(
                bid_id="bid-b",
                node_id="node-b",
                price_eur_per_kwh="0.3",
                offered_kw=["8", "8", "8", "8"],
                divisible=False,
            ),
        )
        early = await vtn.call("POST", "/market/requests/req-1/clear")
        skipped = await vtn.call("POST", "/market/requests/req-1/settle", json={})
        vtn.clock.now = GATE
        cleared = await vtn.ok("POST", "/market/requests/req-1/clear")
        again = await vtn.call("POST", "/market/requests/req-1/clear")
        detail = await vtn.ok("GET", "/market/requests/req-1")
    assert early[0] == 409 and "cannot be cleared before" in early[1]["error"]
    assert skipped[0] == 409 and "cannot become settled" in skipped[1]["error"]
    assert again[0] == 409
    # 4 kW of bid-a fits; bid-b's 8 kW all-or-nothing does not fit the remaining 6 kW.
    assert [(a["bid_id"], a["awarded_kw"]) for a in cleared["awards"]] == [
        ("bid-a", ["4", "4", "4", "4"])
    ]
    assert [r["bid_id"] for r in cleared["rejected"]] == ["bid-b"]
    assert cleared["clearing_price_eur_per_kwh"] == ["0.2"] * 4
    assert [h["status"] for h in detail["history"]] == ["open", "closed", "cleared"]
    assert detail["request"]["status"] == "cleared"


async def test_the_gate_task_clears_what_fell_due_while_the_vtn_was_down(
    pki: DevPki, database_url: str
) -> None:
    clock = Clock()
    async with market_vtn(pki, database_url, clock) as vtn:
        await grid(vtn)
        await vtn.ok("POST", "/market/requests/req-1/bids", 201, who="agg-a", json=bid_body())
        operator = vtn.tokens["dso"]
    clock.now = GATE + timedelta(minutes=1)  # the gate closed while nothing ran
    async with market_vtn(pki, database_url, clock, auto_clear=True, fresh=False) as vtn:
        vtn.tokens["dso"] = operator
        for _ in range(100):
            detail = await vtn.ok("GET", "/market/requests/req-1")
            if detail["request"]["status"] == "dispatched":
                break
            await asyncio.sleep(0.05)
        awards = await vtn.ok("GET", "/market/requests/req-1/awards")
        audit = await vtn.ok("GET", "/audit?subject=req-1")
    assert [h["status"] for h in detail["history"]] == ["open", "closed", "cleared", "dispatched"]
    assert {h["actor"] for h in detail["history"][1:]} == {"market:gate-closure"}
    # node-a has no venID: nothing could be sent, and the audit log says so.
    assert [(a["award"]["bid_id"], a["event_id"]) for a in awards] == [("bid-a", None)]
    assert "market.dispatch.undeliverable" in [e["action"] for e in audit["items"]]


def reply_schema(document: dict[str, Any], path: str, method: str, status: int) -> Any:
    operation = document["paths"]["/admin/v1" + path][method]
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    return {**schema, "components": document["components"]}


async def test_the_openapi_document_has_every_market_route_and_describes_its_replies(
    pki: DevPki, database_url: str
) -> None:
    async with market_vtn(pki, database_url, Clock()) as vtn:
        await grid(vtn)
        document = await vtn.ok("GET", "/openapi.json", who="nobody")
        bid = await vtn.ok("POST", "/market/requests/req-1/bids", 201, who="agg-a",
                           json=bid_body())  # fmt: skip
        detail = await vtn.ok("GET", "/market/requests/req-1")
        vtn.clock.now = GATE
        cleared = await vtn.ok("POST", "/market/requests/req-1/clear")
        awards = await vtn.ok("GET", "/market/requests/req-1/awards")
        served = {
            (route.method, info.canonical)
            for route in (vtn.app.router.routes() if vtn.app else ())  # None: nothing served
            if (info := route.resource) is not None and info.canonical.startswith(M)
        }
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        if path.startswith(M)
        for method in item
    }
    assert served == documented and len(documented) == len(ROUTES)
    assert "/admin/v1/vens" in document["paths"]  # the VTN's own routes are still there
    replies = [
        (bid, "/market/requests/{request_id}/bids", "post", 201),
        (detail, "/market/requests/{request_id}", "get", 200),
        (cleared, "/market/requests/{request_id}/clear", "post", 200),
        (awards, "/market/requests/{request_id}/awards", "get", 200),
    ]
    for reply, path, method, status in replies:
        jsonschema.validate(reply, reply_schema(document, path, method, status))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"bid_id": 1}, reply_schema(document, replies[0][1], "post", 201))


async def test_the_forecast_reads_the_grid_model_through_market_grid(
    pki: DevPki, database_url: str
) -> None:
    async with market_vtn(pki, database_url, Clock()) as vtn:
        await grid(vtn)
        await vtn.ok("POST", "/market/points/cp-1/resources", 201,
                     json={"prosumer_id": "p4", "ven_id": "ven-p4"})  # fmt: skip
        taken = await vtn.call("POST", "/market/points/cp-2/resources",
                               json={"prosumer_id": "p4"})  # fmt: skip
        model = MarketGrid(vtn.context.store)
        points = await model.points()
        members = {point.point_id: await model.members(point.point_id) for point in points}
    assert [(p.point_id, p.capacity_kw) for p in points] == [
        ("cp-1", Decimal(250)), ("cp-2", Decimal(250)),
    ]  # fmt: skip
    assert members == {"cp-1": ["ven-p4"], "cp-2": []}  # p1..p3, p9 have no gateway venID
    assert taken[0] == 409 and "already sits under 'cp-1'" in taken[1]["error"]


async def test_a_cancelled_request_takes_no_bids_and_is_never_cleared(
    pki: DevPki, database_url: str
) -> None:
    async with market_vtn(pki, database_url, Clock()) as vtn:
        await grid(vtn)
        await vtn.ok("POST", "/market/requests/req-1/bids", 201, who="agg-a", json=bid_body())
        by_aggregator = await vtn.call("POST", "/market/requests/req-1/cancel", who="agg-a")
        cancelled = await vtn.ok("POST", "/market/requests/req-1/cancel")
        late_bid = await vtn.call("POST", "/market/requests/req-1/bids", who="agg-a",
                                  json=bid_body(bid_id="bid-a3"))  # fmt: skip
        vtn.clock.now = GATE
        handled = await vtn.app[MARKET].gate.run_once() if vtn.app else None
        cleared = await vtn.call("POST", "/market/requests/req-1/clear")
    assert by_aggregator[0] == 403
    assert cancelled["status"] == "cancelled"
    assert late_bid[0] == 422 and "cancelled, not open" in late_bid[1]["error"]
    assert handled == []
    assert cleared[0] == 409 and "cancelled cannot become cleared" in cleared[1]["error"]


async def test_pay_as_clear_pays_every_award_the_marginal_price(
    pki: DevPki, database_url: str
) -> None:
    async with market_vtn(pki, database_url, Clock()) as vtn:
        await grid(vtn)
        await vtn.ok(
            "POST",
            "/market/requests",
            201,
            json=request_body(request_id="req-pac", pricing="pay-as-clear"),
        )
        await vtn.ok("POST", "/market/requests/req-pac/bids", 201, who="agg-a", json=bid_body())
        await vtn.ok("POST", "/market/requests/req-pac/bids", 201, who="agg-b",
                     json=bid_body(bid_id="bid-b", node_id="node-b", price_eur_per_kwh="0.35",
                                   offered_kw=["8", "8", "8", "8"]))  # fmt: skip
        vtn.clock.now = GATE
        cleared = await vtn.ok("POST", "/market/requests/req-pac/clear")
    assert [(a["bid_id"], a["awarded_kw"], Decimal(a["price_eur_per_kwh"]))
            for a in cleared["awards"]] == [
        ("bid-a", ["4"] * 4, Decimal("0.35")), ("bid-b", ["6"] * 4, Decimal("0.35")),
    ]  # fmt: skip
