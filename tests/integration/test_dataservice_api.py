"""The data service's REST API inside a real VTN (127.0.0.1, port 0, mutual TLS, SQLite and
PostgreSQL): operators set it up with admin tokens; a recipient reads with its `service`
certificate; a prosumer manages consent with a data token or its VEN's certificate."""

from __future__ import annotations

import asyncio
import csv
import io
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from cryptography import x509

from certs import fingerprint
from certs.ca import CertificateAuthority
from certs.dev import LOCAL_SANS, DevPki, make_dev_pki
from certs.files import IdentityFiles
from certs.roles import Role
from certs.templates import parse_san
from dataservice import crypto
from dataservice.crypto import MasterKey
from dataservice.http import DataExtension
from dataservice.jobs import Housekeeping
from dataservice.service import Caller, DataService, Kind
from dataservice.store.tables import data_access_log, data_release_members
from oadr.model import VenId
from tests.factories import make_data_report
from vtn.admin import tokens
from vtn.admin.tokens import TokenRole
from vtn.app import CONTEXT, VtnConfig, build_app
from vtn.config import VtnSettings
from vtn.store.db import Store
from vtn.vens import Status, VenRecord

NOW = datetime.now(UTC).replace(microsecond=0)
TODAY = NOW.replace(hour=0, minute=0, second=0)
FIRST = TODAY - timedelta(days=7)
AREA = "cp-3"


@dataclass
class Api:
    url: str
    store: Store
    pki: DevPki
    lab: IdentityFiles  # the recipient's `service` certificate
    operator: str  # admin token

    def context(self, identity: IdentityFiles | None = None) -> ssl.SSLContext:
        return self.pki.client_context(identity)

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        identity: IdentityFiles | None = None,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        connector = aiohttp.TCPConnector(ssl=self.context(identity))
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.request(
                method, self.url + path, json=body, headers=headers, params=params
            ) as response,
        ):
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()


@pytest.fixture
async def api(tmp_path: Path, database_url: str) -> AsyncIterator[Api]:
    # Made at the VTN's clock, not when the test happens to run: in a long (parallel) run that
    # can be more than the certificates' 5 minutes of backdating after this module was imported.
    pki = make_dev_pki(tmp_path / "pki", now=NOW, ven_count=2)
    lab = IdentityFiles(tmp_path / "lab")
    dso = CertificateAuthority.open(pki.dso_ca)
    dso.issue(
        Role.SERVICE,
        "university-lab",
        NOW - timedelta(minutes=1),
        sans=[parse_san(s) for s in LOCAL_SANS],
    ).write(lab)
    master = MasterKey(crypto.new_key())
    config = VtnConfig(
        settings=VtnSettings(),
        database_url=database_url,
        trust=pki.trust_store(),
        extensions=(DataExtension(master),),
        clock=lambda: NOW,
    )
    app = build_app(config)
    store = app[CONTEXT].store
    await store.create_all()
    operator = await tokens.create(store, "ops", TokenRole.OPERATOR, actor="test", now=NOW)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.server_context())
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield Api(f"https://{host}:{port}", store, pki, lab, operator)
    finally:
        await runner.cleanup()


async def setup_area(api: Api, households: int) -> None:
    lab_fp = fingerprint.of_pem(api.lab.cert.read_bytes())
    status, _ = await api.call(
        "POST",
        "/admin/v1/data/recipients",
        token=api.operator,
        body={"recipient_id": "lab", "name": "Uni lab", "fingerprint": lab_fp, "epsilon_budget": 2},
    )
    assert status == 201
    for n in range(households):
        prosumer = f"h{n:02d}"
        status, _ = await api.call(
            "POST",
            "/admin/v1/data/prosumers",
            token=api.operator,
            body={"prosumer_id": prosumer, "areas": [AREA]},
        )
        assert status == 201
        values = [0.2 + 0.01 * ((n * 7 + i) % 10) for i in range(7 * 96)]
        status, _ = await api.call(
            "POST",
            f"/admin/v1/data/prosumers/{prosumer}/meter-data",
            token=api.operator,
            body={"start": FIRST.isoformat(), "energy_kwh": values},
        )
        assert status == 201
        await api.call(
            "POST",
            "/admin/v1/data/grants",
            token=api.operator,
            body={
                "prosumer_id": prosumer,
                "recipient_id": "lab",
                "purpose": "grid-study",
                "level": "DAILY",
                "access": "aggregate",
                "expires_at": (NOW + timedelta(days=30)).isoformat(),
            },
        )


async def prosumer_token(api: Api, prosumer: str) -> str:
    status, body = await api.call(
        "POST",
        "/admin/v1/data/tokens",
        token=api.operator,
        body={"holder_kind": "prosumer", "holder_id": prosumer},
    )
    assert status == 201
    token: str = body["token"]
    return token


def window(level: str = "DAILY") -> dict[str, str]:
    return {
        "purpose": "grid-study",
        "level": level,
        "start": FIRST.isoformat(),
        "end": TODAY.isoformat(),
    }


async def test_a_recipient_reads_as_far_as_consent_allows(api: Api) -> None:
    await setup_area(api, 16)
    h01 = await prosumer_token(api, "h01")
    status, grant = await api.call(
        "POST",
        "/admin/v1/data/me/grants",
        token=h01,
        body={
            "recipient_id": "lab",
            "purpose": "grid-study",
            "level": "DAILY",
            "access": "individual",
            "expires_at": (NOW + timedelta(days=30)).isoformat(),
        },
    )
    assert status == 201 and grant["level"] == "DAILY"

    status, listed = await api.call(
        "GET", "/admin/v1/data/me/pseudonyms", identity=api.lab, params={"purpose": "grid-study"}
    )
    assert status == 200
    (pseudonym,) = listed["pseudonyms"]
    assert "h01" not in pseudonym

    path = f"/admin/v1/data/me/series/{pseudonym}"
    status, daily = await api.call("GET", path, identity=api.lab, params=window("DAILY"))
    assert status == 200 and len(daily["buckets"]) == 7
    status, refused = await api.call("GET", path, identity=api.lab, params=window("QUARTER_HOUR"))
    assert (status, refused["reason"]) == (403, "level-too-fine")

    status, aggregate = await api.call(
        "POST", "/admin/v1/data/me/aggregates", identity=api.lab, body={**window(), "area": AREA}
    )
    assert status == 201 and aggregate["members"] == 16 and len(aggregate["buckets"]) == 7

    # The prosumer revokes; the same read is refused as revoked.
    status, _ = await api.call(
        "POST", f"/admin/v1/data/me/grants/{grant['grant_id']}/revoke", token=h01
    )
    assert status == 200
    status, refused = await api.call("GET", path, identity=api.lab, params=window("DAILY"))
    assert (status, refused["reason"]) == (403, "revoked")

    # Who saw my data: the API's view is the access log's rows for h01, in order.
    status, seen = await api.call("GET", "/admin/v1/data/me/accesses", token=h01)
    assert status == 200
    members = sa.select(data_release_members.c.release_id).where(
        data_release_members.c.prosumer_id == "h01"
    )
    async with api.store.transaction() as tx:
        logged = list(
            await tx.connection.execute(
                sa.select(data_access_log)
                .where(
                    (data_access_log.c.prosumer_id == "h01")
                    | data_access_log.c.release_id.in_(members)
                )
                .order_by(data_access_log.c.id)
            )
        )
    assert [(e["actor"], e["action"], e["outcome"]) for e in seen] == [
        (r.actor, r.action, r.outcome) for r in logged
    ]
    reads = [
        (e["actor"], e["action"], e["level"], e["outcome"], e["reason"])
        for e in seen
        if e["actor"] == "recipient:lab"
    ]
    assert reads == [
        ("recipient:lab", "read", "DAILY", "allowed", "allowed"),
        ("recipient:lab", "read", "QUARTER_HOUR", "refused", "level-too-fine"),
        ("recipient:lab", "aggregate", "DAILY", "allowed", "allowed"),
        ("recipient:lab", "read", "DAILY", "refused", "revoked"),
    ]


async def test_an_aggregate_over_fourteen_households_is_refused(api: Api) -> None:
    await setup_area(api, 14)
    status, body = await api.call(
        "POST", "/admin/v1/data/me/aggregates", identity=api.lab, body={**window(), "area": AREA}
    )
    assert (status, body["reason"]) == (403, "too-few-members")


async def test_who_may_call_what(api: Api) -> None:
    await setup_area(api, 1)
    h00 = await prosumer_token(api, "h00")
    me = "/admin/v1/data/me/accesses"

    # An admin token is no data token; the admin API refuses a data token.
    status, body = await api.call("GET", me, token=api.operator)
    assert status == 401
    status, _ = await api.call("GET", "/admin/v1/data/access-log", token=h00)
    assert status == 401
    # A VEN certificate that belongs to no prosumer; then one that does.
    status, body = await api.call("GET", me, identity=api.pki.vens[0])
    assert (status, body["reason"]) == (401, "unknown-certificate")
    async with api.store.transaction() as tx:
        ven_fp = fingerprint.of_pem(api.pki.vens[1].cert.read_bytes())
        await tx.vens.save(
            VenRecord(
                ven_id=VenId("ven-2"),
                fingerprint=ven_fp,
                ven_name="v2",
                status=Status.APPROVED,
                created_at=NOW,
            )
        )
    status, _ = await api.call(
        "POST",
        "/admin/v1/data/prosumers",
        token=api.operator,
        body={"prosumer_id": "h99", "areas": [], "ven_id": "ven-2"},
    )
    status, body = await api.call("GET", "/admin/v1/data/me/grants", identity=api.pki.vens[1])
    assert (status, body) == (200, [])
    # A prosumer cannot act as a recipient, nor a recipient as a prosumer.
    status, body = await api.call(
        "GET", "/admin/v1/data/me/pseudonyms", token=h00, params={"purpose": "grid-study"}
    )
    assert (status, body["reason"]) == (403, "wrong-holder")
    status, body = await api.call("GET", me, identity=api.lab)
    assert (status, body["reason"]) == (403, "wrong-holder")
    # A revoked certificate is refused on its next request.
    lab_certificate = x509.load_pem_x509_certificate(api.lab.cert.read_bytes())
    CertificateAuthority.open(api.pki.dso_ca).revoke(lab_certificate, NOW)
    status, body = await api.call(
        "GET", "/admin/v1/data/me/pseudonyms", identity=api.lab, params={"purpose": "grid-study"}
    )
    assert (status, body["reason"]) == (401, "certificate-revoked")
    # The operator's log saw it all; the OpenAPI document lists the routes.
    status, log = await api.call("GET", "/admin/v1/data/access-log", token=api.operator)
    assert status == 200 and {"prosumer.add", "grant", "token.create"} <= {e["action"] for e in log}
    status, document = await api.call("GET", "/admin/v1/openapi.json")
    aggregates = document["paths"]["/admin/v1/data/me/aggregates"]["post"]
    assert aggregates["security"] == [{"dataToken": []}, {"clientCertificate": []}]
    assert "403" in aggregates["responses"]
    assert document["paths"]["/admin/v1/data/grants"]["post"].get("security") is None


async def test_a_prosumer_exports_and_is_erased(api: Api) -> None:
    await setup_area(api, 1)
    h00 = await prosumer_token(api, "h00")

    status, text = await api.call(
        "GET", "/admin/v1/data/me/export", token=h00, params={"format": "csv"}
    )
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 7 * 96 and rows[0]["start"] == FIRST.isoformat()
    status, exported = await api.call("GET", "/admin/v1/data/me/export", token=h00)
    assert status == 200 and exported["grants"][0]["recipient_id"] == "lab"

    status, erased = await api.call("DELETE", "/admin/v1/data/prosumers/h00", token=api.operator)
    assert (status, erased["days"]) == (200, 7)
    status, _ = await api.call("GET", "/admin/v1/data/me/export", token=h00)
    assert status == 401  # its tokens went with it


async def test_housekeeping_ingests_and_enforces_retention(database_url: str) -> None:
    master = MasterKey(crypto.new_key())
    plan = Housekeeping(interval=timedelta(milliseconds=50), retention=timedelta(days=3))
    app = build_app(
        VtnConfig(
            settings=VtnSettings(),
            database_url=database_url,
            trust=None,
            extensions=(DataExtension(master, plan),),
            clock=lambda: NOW,
        )
    )
    store = app[CONTEXT].store
    await store.create_all()
    service = DataService(store, master)
    async with store.transaction() as tx:
        await tx.vens.save(
            VenRecord(
                ven_id=VenId("ven-1"),
                fingerprint="A" * 29,
                ven_name="v",
                status=Status.APPROVED,
                created_at=NOW,
            )
        )
        for start in (TODAY - timedelta(days=10), TODAY - timedelta(days=1)):
            report = make_data_report(f"rr-{start.day}", values=[3000.0] * 15, start=start)
            await tx.readings.add("ven-1", report, {}, NOW - timedelta(minutes=5))
    await service.add_prosumer("home", [AREA], "ven-1", "operator:test", NOW)

    runner = web.AppRunner(app)
    await runner.setup()  # starts the job
    try:
        for _ in range(200):
            async with store.transaction() as tx:
                left = await tx.readings.query(limit=10)
            exported = await service.export("home", Caller(Kind.PROSUMER, "home"), NOW)
            if not left and len(exported.quarter_hours) == 1:
                break
            await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()  # stops it before the store closes

    assert left == []  # ingested, and the VTN's plaintext copies are gone
    # 15 minutes at 3 kW is 0.75 kWh; the reading from ten days ago is past retention.
    assert exported.quarter_hours == [(TODAY - timedelta(days=1), pytest.approx(0.75))]
