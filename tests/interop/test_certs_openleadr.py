"""OpenLEADR on both ends, with certificates made by `certs`.

The OpenLEADR VTN serves TLS with our VTN chain and requires client certificates from our root;
the OpenLEADR VEN presents our VEN chain and checks the VTN's signed replies against our VTN
fingerprint. The VTN knows VENs by `certs.fingerprint`, so a registration only works if our
fingerprint is byte-for-byte the one OpenLEADR computes from the TLS connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from openleadr import OpenADRClient, OpenADRServer

from certs import fingerprint
from certs.ca import CertificateAuthority
from certs.dev import DevPki
from certs.files import IdentityFiles
from certs.keys import KeyType
from certs.roles import Role

# OpenLEADR's own code stores plain-string keys on its aiohttp app; aiohttp warns about that.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

VTN_ID = "flex4grid-interop-vtn"
STEP_TIMEOUT_S = 10


@dataclass
class Registry:
    """The VTN's out-of-band knowledge: which fingerprint belongs to which VEN."""

    fingerprints: dict[str, str]  # ven_name -> fingerprint, by certs.fingerprint
    registered: dict[str, dict[str, Any]] = field(default_factory=dict)  # ven_id -> info
    seen_fingerprints: list[str] = field(default_factory=list)

    async def on_create_party_registration(self, info: dict[str, Any]) -> tuple[str, str] | bool:
        # OpenLEADR hands over the fingerprint of the TLS client certificate.
        self.seen_fingerprints.append(info["fingerprint"])
        name = info["ven_name"]
        if self.fingerprints.get(name) != info["fingerprint"]:
            return False
        ven_id, registration_id = f"ven-id-{name}", f"reg-{name}"
        self.registered[ven_id] = {
            "ven_id": ven_id,
            "ven_name": name,
            "fingerprint": self.fingerprints[name],
            "registration_id": registration_id,
        }
        return ven_id, registration_id

    def ven_lookup(self, ven_id: str) -> dict[str, Any]:
        return self.registered.get(ven_id, {})


def _fingerprint(identity: IdentityFiles) -> str:
    return fingerprint.of_certificate(identity.load_certificate())


@pytest.fixture
async def vtn(pki: DevPki) -> AsyncIterator[tuple[str, Registry]]:
    registry = Registry({ven.directory.name: _fingerprint(ven) for ven in pki.vens})
    server = OpenADRServer(
        vtn_id=VTN_ID,
        cert=str(pki.vtn.cert),
        key=str(pki.vtn.key),
        http_cert=str(pki.vtn.chain),
        http_key=str(pki.vtn.key),
        http_ca_file=str(pki.vtn.root),
        http_host="127.0.0.1",
        http_port=0,
        ven_lookup=registry.ven_lookup,
        show_fingerprint=False,
    )
    server.add_handler("on_create_party_registration", registry.on_create_party_registration)
    async with asyncio.timeout(STEP_TIMEOUT_S):
        await server.run()
    port = server.app_runner.addresses[0][1]
    try:
        yield f"https://localhost:{port}/OpenADR2/Simple/2.0b", registry
    finally:
        async with asyncio.timeout(STEP_TIMEOUT_S):
            await server.stop()


@pytest.fixture
async def make_ven(pki: DevPki) -> AsyncIterator[Any]:
    clients: list[OpenADRClient] = []

    def make(url: str, identity: IdentityFiles, ven_name: str) -> OpenADRClient:
        ven = OpenADRClient(
            ven_name=ven_name,
            vtn_url=url,
            cert=str(identity.chain),
            key=str(identity.key),
            ca_file=str(identity.root),
            vtn_fingerprint=_fingerprint(pki.vtn),
            show_fingerprint=False,
        )
        clients.append(ven)
        return ven

    yield make
    for ven in clients:
        if ven.client_session is not None:
            async with asyncio.timeout(STEP_TIMEOUT_S):
                await ven.client_session.close()


@pytest.mark.parametrize("key_type", list(KeyType), ids=str)
async def test_openleadr_ven_registers_with_our_certificates(
    pki: DevPki, vtn: tuple[str, Registry], make_ven: Any, tmp_path: Path, key_type: KeyType
) -> None:
    url, registry = vtn
    # A VEN of the aggregator's, two CAs below our root, with the key type under test.
    identity = IdentityFiles(tmp_path / "ven-2")
    aggregator_ca = CertificateAuthority.open(pki.aggregator_ca)
    aggregator_ca.issue(Role.VEN, "ven-2", datetime.now(UTC), key_type=key_type).write(identity)
    registry.fingerprints["ven-2"] = _fingerprint(identity)
    ven = make_ven(url, identity, "ven-2")

    async with asyncio.timeout(STEP_TIMEOUT_S):
        response_type, payload = await ven.query_registration()
    assert response_type == "oadrCreatedPartyRegistration"
    assert payload["vtn_id"] == VTN_ID

    async with asyncio.timeout(STEP_TIMEOUT_S):
        await ven.create_party_registration()
    assert registry.seen_fingerprints == [_fingerprint(identity)]
    assert (ven.ven_id, ven.registration_id) == ("ven-id-ven-2", "reg-ven-2")

    # A request that carries the venID: the VTN compares the TLS certificate's fingerprint
    # (and the XML signature's) with the one from our ven_lookup, i.e. with certs.fingerprint.
    async with asyncio.timeout(STEP_TIMEOUT_S):
        response_type, payload = await ven.request_event()
    assert response_type == "oadrResponse"  # OpenLEADR's answer when no event is pending
    assert payload["response"]["response_code"] == 200


async def test_a_ven_with_another_certificate_cannot_use_a_registered_ven_id(
    pki: DevPki, vtn: tuple[str, Registry], make_ven: Any
) -> None:
    url, _ = vtn
    honest = make_ven(url, pki.vens[1], "ven-2")
    async with asyncio.timeout(STEP_TIMEOUT_S):
        await honest.create_party_registration()
    assert honest.ven_id == "ven-id-ven-2"

    async with asyncio.timeout(STEP_TIMEOUT_S):
        response_type, payload = await honest.poll()
    assert (response_type, payload["response"]["response_code"]) == ("oadrResponse", 200)

    impostor = make_ven(url, pki.vens[2], "ven-3")  # valid certificate, different fingerprint
    impostor.ven_id = honest.ven_id
    # (Polling, not RequestEvent: OpenLEADR 0.5.36 fails with HTTP 500 when it builds the error
    # reply to a RequestEvent, which would hide the 463.)
    async with asyncio.timeout(STEP_TIMEOUT_S):
        response_type, payload = await impostor.poll()

    assert response_type == "oadrResponse"
    assert payload["response"]["response_code"] == 463  # not registered or authorized
