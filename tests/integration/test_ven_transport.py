"""The VEN's pull transport against our VTN over real mutual TLS: replies, signatures, the
VTN's clock, and clear failures when the VTN is away or is not who it should be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from certs import fingerprint
from certs.dev import DevPki
from oadr.model import (
    CreatedPartyRegistration,
    CreatePartyRegistration,
    Poll,
    QueryRegistration,
    RegisterReport,
    RequestId,
)
from oadr.signing import SigningKey
from tests.integration.vtn_harness import running_vtn
from tests.ports import free_port
from ven.transport import TransportError, VtnClient, base_url
from vtn.config import VtnSettings


def test_base_url_accepts_openleadr_style_urls() -> None:
    assert base_url("https://vtn:8080/OpenADR2/Simple/2.0b/") == "https://vtn:8080"
    assert base_url("https://vtn:8080") == "https://vtn:8080"


async def test_query_and_registration_over_mutual_tls(pki: DevPki, database_url: str) -> None:
    async with running_vtn(pki, database_url) as vtn:
        client = VtnClient(
            vtn.url + "/OpenADR2/Simple/2.0b",
            pki.client_context(),
            vtn_fingerprint=fingerprint.of_certificate(pki.vtn.load_certificate()),
        )
        try:
            now = datetime.now(UTC)
            query = await client.send(QueryRegistration(request_id=RequestId("q")), now)
            created = await client.send(
                CreatePartyRegistration(request_id=RequestId("r"), ven_name="house-1"), now
            )
        finally:
            await client.close()
    assert isinstance(query.payload, CreatedPartyRegistration)
    assert query.vtn_time is not None and abs(query.vtn_time - now) < timedelta(seconds=5)
    assert isinstance(created.payload, CreatedPartyRegistration) and created.payload.ven_id


async def test_signed_requests_get_verified_signed_replies(pki: DevPki, database_url: str) -> None:
    identity = pki.vens[0]
    key = SigningKey.from_pem(identity.key.read_bytes(), identity.cert.read_bytes())
    settings = VtnSettings(signing_key=_vtn_key(pki))
    async with running_vtn(pki, database_url, settings) as vtn:
        client = VtnClient(vtn.url, pki.client_context(identity), signing_key=key)
        try:
            now = datetime.now(UTC)
            created = await client.send(
                CreatePartyRegistration(
                    request_id=RequestId("r"), ven_name="house-1", xml_signature=True
                ),
                now,
            )
            assert isinstance(created.payload, CreatedPartyRegistration)
            polled = await client.send(Poll(ven_id=created.payload.ven_id), now)  # type: ignore[arg-type]
        finally:
            await client.close()
    assert isinstance(polled.payload, RegisterReport)


async def test_an_absent_vtn_is_a_transport_error() -> None:
    port = free_port()  # nothing listens there
    client = VtnClient(f"http://127.0.0.1:{port}", None, timeout=timedelta(seconds=2))
    try:
        with pytest.raises(TransportError, match="EiRegisterParty"):
            await client.send(QueryRegistration(request_id=RequestId("q")), datetime.now(UTC))
    finally:
        await client.close()


async def test_a_vtn_with_another_fingerprint_is_refused(pki: DevPki, database_url: str) -> None:
    async with running_vtn(pki, database_url) as vtn:
        client = VtnClient(vtn.url, pki.client_context(), vtn_fingerprint="00:" * 9 + "00")
        try:
            with pytest.raises(TransportError, match="fingerprint"):
                await client.send(QueryRegistration(request_id=RequestId("q")), datetime.now(UTC))
        finally:
            await client.close()


def _vtn_key(pki: DevPki) -> SigningKey:
    return SigningKey.from_pem(pki.vtn.key.read_bytes(), pki.vtn.cert.read_bytes())
