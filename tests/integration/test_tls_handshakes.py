"""Real mutual TLS on 127.0.0.1: our contexts at both ends, the trust store on every request.

Refusals come in two layers: OpenSSL refuses the handshake when the chain or the dates are bad
(by the real clock), and the server's per-request check (`certs.aiohttp_guard`, with an injected
clock) refuses the rest — wrong role, CA out of scope, revoked, rotated past the overlap.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509

from certs import aiohttp_guard, fingerprint, tls
from certs.ca import CertificateAuthority, Issued
from certs.dev import DevPki, make_dev_pki
from certs.files import IdentityFiles
from certs.keys import KeyType
from certs.roles import Role
from certs.templates import Validity, parse_san
from certs.trust import TrustStore

VEN_SIDE = frozenset([Role.VEN, Role.AGGREGATOR])
DAY = timedelta(days=1)
REAL_NOW = datetime.now(UTC)  # certificates must be valid by the clock OpenSSL reads


@dataclass
class Clock:
    """The server's idea of now, for the per-request check; tests move it instead of sleeping."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now


async def _whoami(request: web.Request) -> web.Response:
    verdict = request[aiohttp_guard.PEER]
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    assert ssl_object is not None
    return web.json_response(
        {
            "name": verdict.name,
            "role": verdict.role,
            "fingerprint": verdict.fingerprint,
            "tls": ssl_object.version(),
            "cipher": ssl_object.cipher()[0],
        }
    )


@asynccontextmanager
async def serve(identity: IdentityFiles, trust: TrustStore, clock: Clock) -> AsyncIterator[str]:
    app = web.Application(middlewares=[aiohttp_guard.middleware(trust, VEN_SIDE, clock)])
    app.router.add_get("/", _whoami)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context(identity, trust))
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def client(context: ssl.SSLContext) -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context), timeout=timeout
    ) as session:
        yield session


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as response:
        if response.status == 200:
            return response.status, await response.json()
        return response.status, await response.text()


def _write(issued: Issued, directory: Path) -> IdentityFiles:
    identity = IdentityFiles(directory)
    issued.write(identity)
    return identity


@pytest.fixture
def own_pki(tmp_path: Path) -> DevPki:
    return make_dev_pki(tmp_path / "pki", now=REAL_NOW)


async def test_valid_vens_are_accepted_with_their_identity(pki: DevPki) -> None:
    trust = pki.trust_store()
    async with serve(pki.vtn, trust, Clock()) as url:
        for ven in pki.vens:
            async with client(tls.client_context(ven, trust)) as session:
                status, body = await get(session, url)
            assert status == 200, body
            assert body["name"] == ven.directory.name
            assert body["role"] == "ven"
            assert body["fingerprint"] == fingerprint.of_pem(ven.cert.read_bytes())
            assert body["tls"] == "TLSv1.3"  # both ends have it


@pytest.mark.parametrize(
    ("key_type", "cipher"),
    [(KeyType.P256, "ECDHE-ECDSA-AES128-SHA256"), (KeyType.RSA2048, "AES128-SHA256")],
    ids=["ecdsa", "rsa"],
)
async def test_openadr_2_0b_cipher_suites_are_offered(
    own_pki: DevPki, tmp_path: Path, key_type: KeyType, cipher: str
) -> None:
    """A peer that speaks only TLS 1.2 and only the certification suite still gets in."""
    dso = CertificateAuthority.open(own_pki.dso_ca)
    vtn = _write(
        dso.issue(Role.VTN, "vtn", REAL_NOW, key_type=key_type, sans=[parse_san("127.0.0.1")]),
        tmp_path / "vtn",
    )
    ven = _write(dso.issue(Role.VEN, "ven", REAL_NOW, key_type=key_type), tmp_path / "ven")
    trust = own_pki.trust_store()
    old_school = tls.client_context(ven, trust)
    old_school.maximum_version = ssl.TLSVersion.TLSv1_2
    old_school.set_ciphers(cipher)

    async with serve(vtn, trust, Clock()) as url, client(old_school) as session:
        status, body = await get(session, url)

    assert status == 200, body
    assert (body["tls"], body["cipher"]) == ("TLSv1.2", cipher)


def test_contexts_refuse_anything_older_than_tls_1_2(pki: DevPki) -> None:
    trust = pki.trust_store()
    server = tls.server_context(pki.vtn, trust)
    client_side = tls.client_context(pki.vens[0], trust)
    for context in (server, client_side):
        assert context.minimum_version is ssl.TLSVersion.TLSv1_2
        assert context.verify_mode is ssl.CERT_REQUIRED
        names = {c["name"] for c in context.get_ciphers()}
        assert {"ECDHE-ECDSA-AES128-SHA256", "AES128-SHA256"} <= names
    assert client_side.check_hostname


async def _refused_at_handshake(url: str, identity: IdentityFiles, trust: TrustStore) -> None:
    async with client(tls.client_context(identity, trust)) as session:
        with pytest.raises(aiohttp.ClientError):
            await get(session, url)


def _dated(own_pki: DevPki, not_before: datetime, not_after: datetime) -> Issued:
    ca = CertificateAuthority.open(own_pki.dso_ca)
    return ca.issue(Role.VEN, "ven-dated", REAL_NOW, validity=Validity(not_before, not_after))


@pytest.mark.parametrize(
    "make",
    [
        lambda pki: _dated(pki, REAL_NOW - 30 * DAY, REAL_NOW - DAY),
        lambda pki: _dated(pki, REAL_NOW + DAY, REAL_NOW + 30 * DAY),
    ],
    ids=["expired", "not-yet-valid"],
)
async def test_out_of_date_certificates_are_refused_at_handshake(
    own_pki: DevPki, tmp_path: Path, make: Callable[[DevPki], Issued]
) -> None:
    trust = own_pki.trust_store()
    peer = _write(make(own_pki), tmp_path / "peer")
    async with serve(own_pki.vtn, trust, Clock()) as url:
        await _refused_at_handshake(url, peer, trust)
        async with client(tls.client_context(own_pki.vens[0], trust)) as session:
            assert (await get(session, url))[0] == 200  # the server is fine


async def test_unknown_ca_is_refused_at_handshake(pki: DevPki, tmp_path: Path) -> None:
    stranger_pki = make_dev_pki(tmp_path / "other", now=REAL_NOW)
    trust = pki.trust_store()
    # The stranger trusts our root, so only our server can object.
    stranger_trust = TrustStore([*trust.cas, *stranger_pki.trust_store().cas])
    async with serve(pki.vtn, trust, Clock()) as url:
        await _refused_at_handshake(url, stranger_pki.vens[0], stranger_trust)


@pytest.mark.parametrize(
    ("clock_offset", "reason"),
    [(3 * 365 * DAY, "expired"), (-DAY, "not-yet-valid")],
    ids=["expired", "not-yet-valid"],
)
async def test_per_request_check_uses_the_servers_clock(
    pki: DevPki, clock_offset: timedelta, reason: str
) -> None:
    trust = pki.trust_store()
    clock = Clock()
    async with (
        serve(pki.vtn, trust, clock) as url,
        client(tls.client_context(pki.vens[0], trust)) as session,
    ):
        assert (await get(session, url))[0] == 200
        clock.now = REAL_NOW + clock_offset  # same keep-alive connection, later request
        assert await get(session, url) == (403, f"certificate refused: {reason}\n")


async def test_wrong_role_is_refused(pki: DevPki) -> None:
    trust = pki.trust_store()
    # Another VTN's certificate is a fine TLS client certificate, but not a VEN.
    async with (
        serve(pki.vtn, trust, Clock()) as url,
        client(tls.client_context(pki.vtn, trust)) as session,
    ):
        assert await get(session, url) == (403, "certificate refused: wrong-role\n")


async def test_aggregator_ca_issuing_outside_its_scope_is_refused(
    own_pki: DevPki, tmp_path: Path
) -> None:
    """The aggregator CA's key signs an aggregator certificate: TLS accepts the chain, we don't."""
    agg = CertificateAuthority.open(own_pki.aggregator_ca)
    key = agg.issue(Role.VEN, "placeholder", REAL_NOW).key
    from certs import templates

    rogue_cert = templates.leaf(
        "rogue-aggregator", Role.AGGREGATOR, key, agg.certificate, agg.key,
        x509.random_serial_number(), Validity.starting(REAL_NOW, 30 * DAY),
    )  # fmt: skip
    rogue = _write(Issued(rogue_cert, key, agg.intermediates, agg.root), tmp_path / "rogue")
    trust = own_pki.trust_store()
    async with (
        serve(own_pki.vtn, trust, Clock()) as url,
        client(tls.client_context(rogue, trust)) as session,
    ):
        assert await get(session, url) == (403, "certificate refused: ca-out-of-scope\n")


async def test_a_ven_revoked_while_connected_is_refused_on_its_next_request(
    own_pki: DevPki,
) -> None:
    trust = own_pki.trust_store()
    ven = own_pki.vens[1]
    async with serve(own_pki.vtn, trust, Clock()) as url:
        async with client(tls.client_context(ven, trust)) as session:
            assert (await get(session, url))[0] == 200

            CertificateAuthority.open(own_pki.aggregator_ca).revoke(
                ven.load_certificate(), datetime.now(UTC)
            )

            # The middleware reloads changed CRLs; no server restart, same connection.
            assert await get(session, url) == (403, "certificate refused: revoked\n")
        async with client(tls.client_context(own_pki.vens[2], trust)) as session:
            assert (await get(session, url))[0] == 200


async def test_rotation_overlap_then_cut_off(own_pki: DevPki, tmp_path: Path) -> None:
    trust = own_pki.trust_store()
    old = own_pki.vens[1]
    rotated_at = datetime.now(UTC)
    new = _write(
        CertificateAuthority.open(own_pki.aggregator_ca).rotate(
            old.load_certificate(), rotated_at, timedelta(days=7)
        ),
        tmp_path / "ven-2-new",
    )
    clock = Clock()
    async with (
        serve(own_pki.vtn, trust, clock) as url,
        client(tls.client_context(old, trust)) as old_session,
        client(tls.client_context(new, trust)) as new_session,
    ):
        clock.now = rotated_at + timedelta(days=6)
        old_status, old_body = await get(old_session, url)
        new_status, new_body = await get(new_session, url)
        assert (old_status, new_status) == (200, 200)
        assert old_body["name"] == new_body["name"] == "ven-2"  # one identity
        assert old_body["fingerprint"] != new_body["fingerprint"]

        clock.now = rotated_at + timedelta(days=7, seconds=1)
        assert await get(old_session, url) == (403, "certificate refused: superseded\n")
        assert (await get(new_session, url))[0] == 200


async def test_client_checks_the_server_hostname(own_pki: DevPki, tmp_path: Path) -> None:
    dso = CertificateAuthority.open(own_pki.dso_ca)
    elsewhere = _write(
        dso.issue(Role.VTN, "vtn", REAL_NOW, sans=[parse_san("vtn.example.org")]),
        tmp_path / "vtn-elsewhere",
    )
    trust = own_pki.trust_store()
    async with (
        serve(elsewhere, trust, Clock()) as url,
        client(tls.client_context(own_pki.vens[0], trust)) as session,
    ):
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await get(session, url)


async def test_a_ven_checks_that_the_server_is_a_vtn(pki: DevPki) -> None:
    """The client asks the trust store about the server too: here a VEN poses as a server with
    a perfectly valid TLS certificate for 127.0.0.1."""
    trust = pki.trust_store()
    async with serve(pki.vens[0], trust, Clock()) as url:
        port = int(url.rsplit(":", 1)[1].rstrip("/"))
        context = tls.client_context(pki.vens[1], trust)
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            verdict = tls.check_peer(ssl_object, trust, Role.VTN, datetime.now(UTC))
        finally:
            writer.close()
            await writer.wait_closed()
    assert verdict.reason == "wrong-role"
    assert verdict.name == "ven-1"
