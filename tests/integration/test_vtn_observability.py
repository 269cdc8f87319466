"""What operators watch: /healthz and Prometheus /metrics over the VTN's own TLS port."""

from __future__ import annotations

import aiohttp

from certs.dev import DevPki
from oadr.model import CreatePartyRegistration, Poll, QueryRegistration, RequestId
from tests.integration.vtn_harness import running_vtn


async def _get(url: str, pki: DevPki) -> tuple[int, str]:
    connector = aiohttp.TCPConnector(ssl=pki.client_context())
    async with aiohttp.ClientSession(connector=connector) as session, session.get(url) as response:
        return response.status, await response.text()


async def test_healthz_answers_when_the_database_does(pki: DevPki, database_url: str) -> None:
    async with running_vtn(pki, database_url) as vtn:
        status, body = await _get(vtn.url + "/healthz", pki)
    assert status == 200 and '"status": "ok"' in body


async def test_metrics_count_requests_by_code_and_vens_by_status(
    pki: DevPki, database_url: str
) -> None:
    async with running_vtn(pki, database_url) as vtn:
        client = vtn.client()
        await client.send(QueryRegistration(request_id=RequestId("q")))
        created = await client.send(
            CreatePartyRegistration(request_id=RequestId("r"), ven_name="house-1")
        )
        assert created.ven_id is not None  # type: ignore[union-attr]
        await client.send(Poll(ven_id=created.ven_id))  # type: ignore[union-attr]
        await client.send(Poll(ven_id="someone-else"))  # refused: 463
        status, text = await _get(vtn.url + "/metrics", pki)
    assert status == 200
    lines = set(text.splitlines())
    assert 'flex4grid_oadr_requests_total{code="200",service="EiRegisterParty"} 2.0' in lines
    assert 'flex4grid_oadr_requests_total{code="200",service="OadrPoll"} 1.0' in lines
    assert 'flex4grid_oadr_requests_total{code="463",service="OadrPoll"} 1.0' in lines
    assert 'flex4grid_vens{status="approved"} 1.0' in lines
    assert "flex4grid_vens_seen_last_5_minutes 1.0" in lines
