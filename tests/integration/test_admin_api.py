"""The admin REST API over real HTTPS on 127.0.0.1, on SQLite and PostgreSQL: bearer tokens,
every endpoint's happy path and main refusal, pagination and filters, the audit trail, and an
event created through the API reaching a VEN over mutual TLS whose optIn the API then shows."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
from aiohttp import web
from sqlalchemy import select

from certs import fingerprint
from certs.dev import DevPki
from oadr.enums import OptType, ReportName
from oadr.model import (
    CancelPartyRegistration,
    CreatedEvent,
    CreatedPartyRegistration,
    CreatedReport,
    CreatePartyRegistration,
    CreateReport,
    DistributeEvent,
    EiResponse,
    EventId,
    EventResponse,
    Poll,
    RegisteredReport,
    RegisterReport,
    Report,
    ReportInterval,
    ReportPayload,
    RequestId,
    RequestReregistration,
    Response,
    UpdateReport,
    VenId,
)
from tests.factories import make_event_opt, make_metadata_report
from tests.integration.vtn_harness import VenClient
from vtn import serve
from vtn.admin import routes, tokens
from vtn.admin.tokens import TokenRole
from vtn.app import CONTEXT, VtnConfig, build_app
from vtn.config import VtnSettings
from vtn.services.context import Context
from vtn.store.tables import admin_tokens
from vtn.vens import Policy


@dataclass
class Admin:
    url: str
    context: Context
    pki: DevPki
    operator_token: str
    viewer_token: str

    def ven(self, index: int = 0) -> VenClient:
        return VenClient(self.url, self.pki.client_context(self.pki.vens[index]))

    async def call(
        self, method: str, path: str, *, token: str | None = "operator", **kwargs: Any
    ) -> tuple[int, Any]:
        headers = {}
        if token is not None:
            value = {"operator": self.operator_token, "viewer": self.viewer_token}.get(token, token)
            headers["Authorization"] = f"Bearer {value}"
        verify = ssl.create_default_context(cafile=str(self.pki.vtn.root))
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method, self.url + path, headers=headers, ssl=verify, **kwargs
            ) as response,
        ):
            body = await response.json(content_type=None)
            if response.status == 401:
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
            return response.status, body

    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        got, body = await self.call(method, path, **kwargs)
        assert got == status, body
        return body


@asynccontextmanager
async def admin_vtn(
    pki: DevPki, database_url: str, settings: VtnSettings | None = None
) -> AsyncIterator[Admin]:
    """The VTN as `vtn serve` runs it (its TLS context), with one operator and one viewer."""
    trust = pki.trust_store()
    app = build_app(VtnConfig(settings or VtnSettings(), database_url, trust))
    context = app[CONTEXT]
    await serve.prepare_database(context.store)
    now = datetime.now(UTC)
    operator = await tokens.create(context.store, "alice", TokenRole.OPERATOR, actor="t", now=now)
    viewer = await tokens.create(context.store, "victor", TokenRole.VIEWER, actor="t", now=now)
    runner = web.AppRunner(app)
    await runner.setup()
    ssl_context = serve.server_ssl_context(pki.vtn.chain, pki.vtn.key, trust)
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context).start()
    host, port = runner.addresses[0][:2]
    try:
        yield Admin(f"https://{host}:{port}", context, pki, operator, viewer)
    finally:
        await runner.cleanup()


async def register(client: VenClient, name: str = "house") -> CreatedPartyRegistration:
    reply = await client.send(
        CreatePartyRegistration(request_id=RequestId("reg"), ven_name=name, http_pull_model=True)
    )
    assert isinstance(reply, CreatedPartyRegistration)
    return reply


async def bootstrap(client: VenClient, name: str = "house") -> VenId:
    created = await register(client, name)
    assert created.response.code == 200 and created.ven_id is not None
    vtn_reports = await client.send(Poll(ven_id=created.ven_id))
    assert isinstance(vtn_reports, RegisterReport)
    await client.send(
        RegisteredReport(
            response=EiResponse(code=200, request_id=vtn_reports.request_id),
            ven_id=created.ven_id,
        )
    )
    return created.ven_id


def event_body(start: datetime, **overrides: Any) -> dict[str, Any]:
    body = {
        "start": start.isoformat(),
        "signals": [
            {"name": "LOAD_DISPATCH", "intervals": [{"duration": "PT30M", "value": -5.5}] * 2}
        ],
    }
    return body | overrides


# --- authentication -------------------------------------------------------------------------------


async def test_tokens_authenticate_and_roles_limit_writes(pki: DevPki, database_url: str) -> None:
    async with admin_vtn(pki, database_url) as vtn:
        token_id, secret = vtn.operator_token.split(".")
        refused = {
            "no token": await vtn.call("GET", "/admin/v1/vens", token=None),
            "unknown id": await vtn.call("GET", "/admin/v1/vens", token=f"nobody.{secret}"),
            "wrong secret": await vtn.call("GET", "/admin/v1/vens", token=f"{token_id}.x{secret}"),
            "malformed": await vtn.call("GET", "/admin/v1/vens", token="no-dot-here"),
        }
        assert {why: status for why, (status, _) in refused.items()} == dict.fromkeys(refused, 401)
        assert all(body["code"] == 401 and body["error"] for _, body in refused.values())

        assert (await vtn.call("GET", "/admin/v1/events", token="viewer"))[0] == 200
        status, body = await vtn.call(
            "POST", "/admin/v1/events", token="viewer", json=event_body(datetime.now(UTC))
        )
        assert status == 403 and "viewer" in body["error"]

        assert await tokens.revoke(vtn.context.store, token_id, actor="t", now=datetime.now(UTC))
        status, body = await vtn.call("GET", "/admin/v1/vens")
        assert status == 401 and "revoked" in body["error"]

        async with vtn.context.store.transaction() as tx:
            stored = list((await tx.connection.execute(select(admin_tokens))).mappings())
    assert len(stored) == 2
    for row in stored:
        assert row["secret_hash"].startswith("scrypt$")
        assert secret not in row["secret_hash"]


async def test_openapi_document_is_public(pki: DevPki, database_url: str) -> None:
    async with admin_vtn(pki, database_url) as vtn:
        status, document = await vtn.call("GET", "/admin/v1/openapi.json", token=None)
        unknown = await vtn.call("GET", "/admin/v1/no-such-thing")
    assert status == 200 and document["openapi"] == "3.1.0"
    assert unknown[0] == 404 and unknown[1]["code"] == 404


# --- events ---------------------------------------------------------------------------------------


async def test_event_from_the_api_reaches_the_ven_and_its_opt_in_shows(
    pki: DevPki, database_url: str
) -> None:
    async with admin_vtn(pki, database_url) as vtn:
        ven = vtn.ven()
        ven_id = await bootstrap(ven)
        start = datetime.now(UTC) + timedelta(hours=1)
        created = await vtn.ok(
            "POST",
            "/admin/v1/events",
            201,
            json=event_body(
                start,
                event_id="peak-1",
                targets={"ven_ids": [ven_id]},
                priority=1,
                start_after="PT5M",
                test_event=True,
            ),
        )
        assert created["event_id"] == "peak-1" and created["status"] == "far"
        assert created["active_period"]["duration"] == "PT1H"
        assert created["active_period"]["start_after"] == "PT5M"
        signal = created["signals"][0]
        assert signal["signal_type"] == "setpoint" and signal["item_base"]["scale"] == "k"

        detail = await vtn.ok("GET", "/admin/v1/events/peak-1")
        assert [(d["ven_id"], d["delivered_modification"]) for d in detail["deliveries"]] == [
            (ven_id, None)
        ]

        delivered = await ven.send(Poll(ven_id=ven_id))
        assert isinstance(delivered, DistributeEvent)
        (event,) = delivered.events
        assert event.event_id == "peak-1" and event.signals[0].intervals[0].value == -5.5
        assert event.active_period.start_after == timedelta(minutes=5)
        answer = await ven.send(
            CreatedEvent(
                response=EiResponse(code=200, request_id=delivered.request_id),
                ven_id=ven_id,
                event_responses=(
                    EventResponse(
                        code=200,
                        request_id=delivered.request_id,
                        event_id=EventId("peak-1"),
                        modification_number=0,
                        opt_type=OptType.OPT_IN,
                    ),
                ),
            )
        )
        assert isinstance(answer, Response) and answer.response.code == 200

        (row,) = (await vtn.ok("GET", "/admin/v1/events/peak-1"))["deliveries"]
        assert row["opt_type"] == "optIn" and row["opt_modification_number"] == 0
        assert row["up_to_date"] and row["targeted"]

        modified = await vtn.ok("PATCH", "/admin/v1/events/peak-1", json={"priority": 2})
        assert modified["modification_number"] == 1 and modified["priority"] == 2
        (row,) = (await vtn.ok("GET", "/admin/v1/events/peak-1"))["deliveries"]
        assert not row["up_to_date"], "modification 1 not yet polled"
        again = await ven.send(Poll(ven_id=ven_id))
        assert isinstance(again, DistributeEvent)
        assert again.events[0].modification_number == 1

        cancelled = await vtn.ok("POST", "/admin/v1/events/peak-1/cancel")
        assert cancelled["status"] == "cancelled" and cancelled["modification_number"] == 2

        audit = await vtn.ok("GET", "/admin/v1/audit")
    actions = [(e["actor"], e["action"], e["subject"]) for e in audit["items"]]
    assert actions[:3] == [
        ("alice", "event.cancel", "peak-1"),
        ("alice", "event.modify", "peak-1"),
        ("alice", "event.create", "peak-1"),
    ]


async def test_event_refusals(pki: DevPki, database_url: str) -> None:
    start = datetime.now(UTC) + timedelta(hours=1)
    async with admin_vtn(pki, database_url) as vtn:
        await vtn.ok("POST", "/admin/v1/events", 201, json=event_body(start, event_id="e1"))
        cases = {
            "duplicate id": await vtn.call(
                "POST", "/admin/v1/events", json=event_body(start, event_id="e1")
            ),
            "no start": await vtn.call("POST", "/admin/v1/events", json={"signals": []}),
            "naive start": await vtn.call(
                "POST", "/admin/v1/events", json=event_body(start.replace(tzinfo=None))
            ),
            "not json": await vtn.call("POST", "/admin/v1/events", data=b"{nope"),
            "SIMPLE level 7": await vtn.call(
                "POST",
                "/admin/v1/events",
                json=event_body(start, signals=[{"intervals": [{"duration": 60, "value": 7}]}]),
            ),
            "durations disagree": await vtn.call(
                "POST", "/admin/v1/events", json=event_body(start, duration="PT2H")
            ),
            "half a second": await vtn.call(
                "POST",
                "/admin/v1/events",
                json=event_body(start, signals=[{"intervals": [{"duration": 90.5, "value": 1}]}]),
            ),
            "unknown event": await vtn.call("GET", "/admin/v1/events/nope"),
            "patch unknown": await vtn.call("PATCH", "/admin/v1/events/nope", json={"priority": 1}),
            "empty patch": await vtn.call("PATCH", "/admin/v1/events/e1", json={}),
            "cancel unknown": await vtn.call("POST", "/admin/v1/events/nope/cancel"),
            "bad filter": await vtn.call("GET", "/admin/v1/events?status=soon"),
        }
        await vtn.ok("POST", "/admin/v1/events/e1/cancel")
        cases["modify cancelled"] = await vtn.call(
            "PATCH", "/admin/v1/events/e1", json={"priority": 3}
        )
    got = {why: (status, body["code"]) for why, (status, body) in cases.items()}
    assert got == {
        "duplicate id": (409, 409),
        "no start": (400, 400),
        "naive start": (400, 400),
        "not json": (400, 400),
        "SIMPLE level 7": (422, 454),
        "durations disagree": (422, 454),
        "half a second": (400, 400),
        "unknown event": (404, 452),
        "patch unknown": (404, 452),
        "empty patch": (400, 400),
        "cancel unknown": (404, 452),
        "bad filter": (400, 400),
        "modify cancelled": (422, 451),
    }
    assert {d["loc"][0] for d in cases["no start"][1]["detail"]} >= {"start"}
    assert "whole seconds" in cases["half a second"][1]["error"]


async def test_event_list_filters_and_pages(pki: DevPki, database_url: str) -> None:
    now = datetime.now(UTC)
    async with admin_vtn(pki, database_url) as vtn:
        for name, start in (
            ("past", now - timedelta(hours=3)),
            ("running", now - timedelta(minutes=30)),
            ("soon", now + timedelta(hours=1)),
            ("later", now + timedelta(hours=2)),
        ):
            await vtn.ok("POST", "/admin/v1/events", 201, json=event_body(start, event_id=name))

        async def ids(query: str) -> list[str]:
            page = await vtn.ok("GET", "/admin/v1/events" + query)
            return [e["event_id"] for e in page["items"]]

        assert await ids("") == ["later", "soon", "running", "past"]
        assert await ids("?status=active") == ["running"]
        assert await ids("?status=pending") == ["later", "soon"]
        first = await vtn.ok("GET", "/admin/v1/events?limit=3")
        second = await vtn.ok("GET", f"/admin/v1/events?limit=3&offset={first['next_offset']}")
        listed = await vtn.ok("GET", "/admin/v1/events?status=active")
        bad = await vtn.call("GET", "/admin/v1/events?limit=0")
    assert first["next_offset"] == 3 and second["next_offset"] is None
    assert [e["event_id"] for e in second["items"]] == ["past"]
    assert listed["items"][0]["status"] == "active", "status is computed from time"
    assert bad[0] == 400


# --- VENs -----------------------------------------------------------------------------------------


async def test_manual_approval_groups_and_deregistration(pki: DevPki, database_url: str) -> None:
    settings = VtnSettings(registration=Policy.MANUAL)
    async with admin_vtn(pki, database_url, settings) as vtn:
        waiting = await register(vtn.ven(0), "first")
        await register(vtn.ven(1), "second")
        assert waiting.response.code == 463 and waiting.ven_id is None
        pending = await vtn.ok("GET", "/admin/v1/vens?status=pending&limit=1")
        assert pending["next_offset"] == 1
        rest = await vtn.ok("GET", "/admin/v1/vens?status=pending&limit=1&offset=1")
        assert rest["next_offset"] is None
        first, second = pending["items"][0], rest["items"][0]
        assert first["ven_name"] == "first"
        assert first["fingerprint"] == fingerprint.of_certificate(pki.vens[0].load_certificate())

        approved = await vtn.ok("POST", f"/admin/v1/vens/{first['ven_id']}/approve")
        assert approved["status"] == "approved"
        twice = await vtn.call("POST", f"/admin/v1/vens/{first['ven_id']}/approve")
        rejected = await vtn.ok("POST", f"/admin/v1/vens/{second['ven_id']}/reject")
        assert rejected["status"] == "rejected"
        assert (await vtn.ok("GET", "/admin/v1/vens?status=approved"))["items"][0]["ven_id"] == (
            first["ven_id"]
        )

        registered = await register(vtn.ven(0), "first")
        assert registered.response.code == 200 and registered.ven_id == first["ven_id"]
        ven_id = first["ven_id"]
        grouped = await vtn.ok(
            "PUT", f"/admin/v1/vens/{ven_id}/groups", json={"groups": ["north", "ev"]}
        )
        assert grouped["groups"] == ["north", "ev"]
        detail = await vtn.ok("GET", f"/admin/v1/vens/{ven_id}")
        assert detail["ven"]["groups"] == ["north", "ev"] and detail["ven"]["last_seen_at"]

        assert (await vtn.ok("POST", f"/admin/v1/vens/{ven_id}/reregister", 202))["ok"]
        assert (await vtn.ok("POST", f"/admin/v1/vens/{ven_id}/deregister", 202))["ok"]
        told = [await vtn.ven(0).send(Poll(ven_id=ven_id)) for _ in range(3)]
        # Approved, then registered: the bootstrap's RegisterReport comes first.
        assert [type(m) for m in told] == [
            RegisterReport,
            RequestReregistration,
            CancelPartyRegistration,
        ]
        gone = await vtn.call("POST", f"/admin/v1/vens/{ven_id}/deregister")

        refusals = {
            "approve twice": twice,
            "deregister twice": gone,
            "unknown VEN": await vtn.call("GET", "/admin/v1/vens/nobody"),
            "approve unknown": await vtn.call("POST", "/admin/v1/vens/nobody/approve"),
            "bad status": await vtn.call("GET", "/admin/v1/vens?status=sleepy"),
            "groups not a list": await vtn.call(
                "PUT", f"/admin/v1/vens/{ven_id}/groups", json={"groups": "north"}
            ),
        }
        audit = await vtn.ok("GET", "/admin/v1/audit?limit=50")
    assert {why: (s, b["code"]) for why, (s, b) in refusals.items()} == {
        "approve twice": (422, 451),
        "deregister twice": (422, 451),
        "unknown VEN": (404, 452),
        "approve unknown": (404, 452),
        "bad status": (400, 400),
        "groups not a list": (400, 400),
    }
    assert {(e["action"], e["actor"]) for e in audit["items"]} >= {
        ("ven.approve", "alice"),
        ("ven.reject", "alice"),
        ("ven.groups", "alice"),
        ("ven.deregister", "alice"),
        ("ven.reregister", "alice"),
    }


async def test_provisioned_fingerprint_registers_under_allow_list(
    pki: DevPki, database_url: str
) -> None:
    settings = VtnSettings(registration=Policy.ALLOW_LIST)
    allowed = fingerprint.of_certificate(pki.vens[1].load_certificate())
    async with admin_vtn(pki, database_url, settings) as vtn:
        refused = await register(vtn.ven(1))
        body = {"fingerprint": allowed, "ven_id": "meter-42", "groups": ["pilot"]}
        await vtn.ok("POST", "/admin/v1/provisioned", 201, json=body)
        again = await vtn.call("POST", "/admin/v1/provisioned", json=body)
        accepted = await register(vtn.ven(1))
        detail = await vtn.ok("GET", "/admin/v1/vens/meter-42")
    assert refused.response.code == 463
    assert again[0] == 409
    assert accepted.response.code == 200 and accepted.ven_id == "meter-42"
    assert detail["ven"]["groups"] == ["pilot"]


# --- reports, readings, opts ----------------------------------------------------------------------


async def test_reports_requests_and_readings(pki: DevPki, database_url: str) -> None:
    async with admin_vtn(pki, database_url) as vtn:
        ven = vtn.ven()
        ven_id = await bootstrap(ven)
        metadata = make_metadata_report(report_name=ReportName.METADATA_TELEMETRY_USAGE)
        registered = await ven.send(
            RegisterReport(request_id=RequestId("rr"), reports=(metadata,), ven_id=ven_id)
        )
        assert isinstance(registered, RegisteredReport)
        (auto,) = registered.report_requests
        await ven.send(
            CreatedReport(
                response=EiResponse(code=200, request_id=RequestId("rr")),
                pending_reports=(auto.report_request_id,),
                ven_id=ven_id,
            )
        )
        reports = await vtn.ok("GET", f"/admin/v1/vens/{ven_id}/reports")
        assert [r["report_specifier_id"] for r in reports] == [metadata.report_specifier_id]

        made = await vtn.ok(
            "POST",
            f"/admin/v1/vens/{ven_id}/report-requests",
            201,
            json={
                "report_specifier_id": metadata.report_specifier_id,
                "granularity": "PT1M",
                "report_back_duration": "PT10M",
            },
        )
        assert [p["r_id"] for p in made["specifier_payloads"]] == ["meter-power"]
        create = await ven.send(Poll(ven_id=ven_id))
        assert isinstance(create, CreateReport)
        assert create.report_requests[0].report_request_id == made["report_request_id"]
        active = await vtn.ok("GET", f"/admin/v1/vens/{ven_id}/report-requests")
        assert {r["report_request_id"] for r in active} == {
            auto.report_request_id,
            made["report_request_id"],
        }
        path = f"/admin/v1/vens/{ven_id}/report-requests/{made['report_request_id']}"
        await vtn.ok("DELETE", path, 202)
        cancelled_twice = await vtn.call("DELETE", path)
        unknown_report = await vtn.call(
            "POST",
            f"/admin/v1/vens/{ven_id}/report-requests",
            json={"report_specifier_id": "not-registered"},
        )

        base = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
        await ven.send(
            UpdateReport(
                request_id=RequestId("up"),
                ven_id=ven_id,
                reports=(
                    Report(
                        report_specifier_id=metadata.report_specifier_id,
                        report_request_id=auto.report_request_id,
                        report_name=ReportName.TELEMETRY_USAGE,
                        created=base,
                        intervals=tuple(
                            ReportInterval(
                                start=base + timedelta(minutes=i),
                                duration=timedelta(minutes=1),
                                payloads=(
                                    ReportPayload(
                                        r_id=auto.specifier_payloads[0].r_id, value=float(i)
                                    ),
                                ),
                            )
                            for i in range(5)
                        ),
                    ),
                ),
            )
        )

        async def values(query: str) -> tuple[list[float], int | None]:
            page = await vtn.ok("GET", "/admin/v1/readings" + query)
            return [r["value"] for r in page["items"]], page["next_offset"]

        window = "&start=2026-01-15T12:01:00Z&end=2026-01-15T12:04:00%2B00:00"
        assert await values(f"?ven_id={ven_id}") == ([0.0, 1.0, 2.0, 3.0, 4.0], None)
        assert await values(f"?ven_id={ven_id}&r_id=meter-power{window}") == ([1.0, 2.0, 3.0],
                                                                               None)  # fmt: skip
        assert await values(f"?ven_id={ven_id}&limit=2&offset=2") == ([2.0, 3.0], 4)
        assert await values("?ven_id=someone-else") == ([], None)
        naive = await vtn.call("GET", "/admin/v1/readings?start=2026-01-15T12:00:00")
        backwards = await vtn.call("GET", f"/admin/v1/readings?start={base.isoformat()}&end=2020")
    assert cancelled_twice[0] == 404
    assert unknown_report[0] == 422 and unknown_report[1]["code"] == 461
    assert naive[0] == 400 and backwards[0] == 400


async def test_opts_per_ven_and_all(pki: DevPki, database_url: str) -> None:
    async with admin_vtn(pki, database_url) as vtn:
        ven = vtn.ven()
        ven_id = await bootstrap(ven)
        start = datetime.now(UTC) + timedelta(hours=1)
        created = await vtn.ok(
            "POST", "/admin/v1/events", 201, json=event_body(start, event_id="e-opt")
        )
        await ven.send(Poll(ven_id=ven_id))
        opt = make_event_opt(
            event_id=EventId(created["event_id"]), ven_id=ven_id, created=datetime.now(UTC)
        )
        await ven.send(opt)
        everyone = await vtn.ok("GET", "/admin/v1/opts")
        mine = await vtn.ok("GET", f"/admin/v1/opts?ven_id={ven_id}")
        detail = await vtn.ok("GET", f"/admin/v1/vens/{ven_id}")
        unknown = await vtn.call("GET", "/admin/v1/opts?ven_id=nobody")
    assert [(o["ven_id"], o["opt"]["opt_id"]) for o in everyone["items"]] == [(ven_id, opt.opt_id)]
    assert mine["items"] == everyone["items"]
    assert mine["items"][0]["opt"]["opt_type"] == "optOut"
    assert [o["event_id"] for o in detail["opts"]] == ["e-opt"]
    assert unknown[0] == 404


# --- OpenAPI --------------------------------------------------------------------------------------


def _resolver_schema(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "components": document["components"]}


EXAMPLE_BODIES: dict[str, dict[str, Any]] = {
    "create_event": {
        "start": "2026-01-15T12:00:00Z",
        "signals": [{"name": "SIMPLE", "intervals": [{"duration": "PT1H", "value": 1}]}],
        "targets": {"group_ids": ["north"]},
        "start_after": "PT5M",
    },
    "modify_event": {"priority": 1, "signals": [{"intervals": [{"duration": 600, "value": 2}]}]},
    "set_groups": {"groups": ["north"]},
    "provision": {"fingerprint": "ab:cd", "ven_id": "v1"},
    "request_report": {"report_specifier_id": "telemetry", "granularity": "PT1M"},
}


def test_openapi_covers_every_admin_route_and_its_schemas_accept_examples(
    tmp_path: Path,
) -> None:
    app = build_app(VtnConfig(VtnSettings(), f"sqlite:///{tmp_path / 'vtn.db'}", None))
    served = {
        (resource.method, route_info)
        for resource in app.router.routes()
        if (route_info := resource.resource.canonical if resource.resource else "").startswith(
            "/admin/v1"
        )
    }
    document = routes.DOCUMENT
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert served == documented
    assert len(served) == len(routes.ROUTES)

    jsonschema.Draft202012Validator.check_schema({"$defs": document["components"]["schemas"]})
    bodies = {
        op["operationId"]: op["requestBody"]["content"]["application/json"]["schema"]
        for item in document["paths"].values()
        for op in item.values()
        if "requestBody" in op
    }
    assert set(bodies) == set(EXAMPLE_BODIES)
    for name, example in EXAMPLE_BODIES.items():
        jsonschema.validate(example, _resolver_schema(document, bodies[name]))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"signals": []}, _resolver_schema(document, bodies["create_event"]))
