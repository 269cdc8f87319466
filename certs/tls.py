"""TLS contexts for every Flex4Grid link: mutual TLS, 1.2 at least, the OpenADR 2.0b suites.

OpenADR 2.0b certification uses TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 and
TLS_RSA_WITH_AES_128_CBC_SHA256 (OpenSSL: ECDHE-ECDSA-AES128-SHA256, AES128-SHA256); we offer them
after the modern AEAD suites, and TLS 1.3 is used whenever both ends have it. The server requires
a client certificate; the client checks the server's hostname against its subjectAltName.

A stock context checks only chain and expiry, once per connection. Role, scope, revocation and
rotation are `certs.trust`'s job: `check_peer()` runs it on a connection's peer certificate, and
a server calls it for every request (`certs.aiohttp_guard` does so for aiohttp).
"""

from __future__ import annotations

import ssl
from collections.abc import Collection
from datetime import datetime

from certs.files import CertFileError, IdentityFiles, check_key_matches, load_certificates, load_key
from certs.roles import Role
from certs.trust import Reason, TrustStore, Verdict

OPENADR_CIPHERS = ("ECDHE-ECDSA-AES128-SHA256", "AES128-SHA256")
MODERN_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
)
TLS12_CIPHERS = ":".join(MODERN_CIPHERS + OPENADR_CIPHERS)


def server_context(
    identity: IdentityFiles, trust: TrustStore, passphrase: bytes | None = None
) -> ssl.SSLContext:
    """Presents `identity`'s chain; requires a client certificate that chains to `trust`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_REQUIRED
    _configure(context, identity, trust, passphrase)
    return context


def client_context(
    identity: IdentityFiles, trust: TrustStore, passphrase: bytes | None = None
) -> ssl.SSLContext:
    """Presents `identity`'s chain; checks the server's chain and hostname."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname
    _configure(context, identity, trust, passphrase)
    return context


def _configure(
    context: ssl.SSLContext, identity: IdentityFiles, trust: TrustStore, passphrase: bytes | None
) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.load_verify_locations(cadata=trust.pem_bundle())
    # Check the files ourselves first: ssl's own errors name neither the file nor the problem.
    chain = load_certificates(identity.chain)
    if not chain:
        raise CertFileError(identity.chain, "contains no certificate")
    check_key_matches(load_key(identity.key, passphrase), chain[0], identity.key)
    context.load_cert_chain(identity.chain, identity.key, password=passphrase)


def peer_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> bytes | None:
    """The DER certificate the peer presented, or None (no TLS, or no client certificate)."""
    if ssl_object is None:
        return None
    return ssl_object.getpeercert(binary_form=True)


def check_peer(
    ssl_object: ssl.SSLObject | ssl.SSLSocket | None,
    trust: TrustStore,
    accept: Role | Collection[Role],
    now: datetime,
) -> Verdict:
    der = peer_certificate(ssl_object)
    if der is None:
        return Verdict(Reason.NO_CERTIFICATE, "the peer presented no certificate")
    return trust.check(der, accept, now)
