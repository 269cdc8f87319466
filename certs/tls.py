"""TLS contexts for every Flex4Grid link: mutual TLS, 1.2 at least, the OpenADR 2.0b suites.

OpenADR 2.0b certification uses TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 and
TLS_RSA_WITH_AES_128_CBC_SHA256 (OpenSSL: ECDHE-ECDSA-AES128-SHA256, AES128-SHA256); we offer them
after the modern AEAD suites, and TLS 1.3 is used whenever both ends have it. The server requires
a client certificate; the client checks the server's hostname against its subjectAltName.

A stock context checks only chain and expiry, once per connection. Role, scope, revocation and
rotation are `certs.trust`'s job: `check_peer()` runs it on a connection's peer certificate, and
a server calls it for every request (`certs.aiohttp_guard` does so for aiohttp).

Client contexts can resume TLS sessions (`ClientContext.resuming`): a client that connects
to the same server again and again (the VTN pushing event after event to a VEN's endpoint)
offers it the session of its last connection, and a resumed handshake skips both certificate
chains and both signatures. With OpenSSL 3.0 a full handshake costs ~1.3-1.7 ms of CPU at the
client and ~1.5-2.0 ms at a server checking a client certificate, a resumed one about half
(measured here: `python -m benchmarks.tls_handshakes`).
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Collection, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
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
) -> ClientContext:
    """Presents `identity`'s chain; checks the server's chain and hostname."""
    context = ClientContext()  # CERT_REQUIRED and check_hostname
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


# --- session resumption ----------------------------------------------------------------------

DEFAULT_SESSIONS = 10_000  # ~120 MB at most


# The connections being opened to one server (`ClientContext.resuming`). asyncio's TLS
# transports (and uvloop's) call SSLContext.wrap_bio() without a session and offer no way to pass
# one; they call it in the task that opens the connection, so a context variable reaches it.
@dataclass
class _Opening:
    origin: str
    ssl_objects: list[ssl.SSLObject] = field(default_factory=list)


_OPENING: ContextVar[_Opening | None] = ContextVar("flex4grid_tls_opening", default=None)


class SessionCache:
    """The last TLS session got from each server (by origin, "https://host:port"), at most
    `capacity` of them; an expired one is never offered. Full, it keeps the sessions it has and
    takes no new origin until one expires: a client going round more servers than it can keep
    (a push to every VEN) then resumes with `capacity` of them, where evicting the oldest would
    leave it none to resume with. A session costs ~12 KB (its peer's certificates, measured)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._sessions: dict[str, ssl.SSLSession] = {}
        self._swept_at = 0.0
        self.offered = 0  # connections that offered a cached session (resumed or not)

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, origin: str) -> ssl.SSLSession | None:
        session = self._sessions.get(origin)
        if session is not None and _expired(session, time.time()):
            del self._sessions[origin]
            return None
        return session

    def put(self, origin: str, session: ssl.SSLSession | None) -> None:
        """Keep `session` (from a connection to `origin`) if the server made it resumable and
        there is room (or `origin` had one already)."""
        if session is None or not (session.has_ticket or session.id):
            return
        if origin not in self._sessions and len(self._sessions) >= self.capacity:
            self._sweep()
            if len(self._sessions) >= self.capacity:
                return
        self._sessions[origin] = session

    def _sweep(self) -> None:
        """Drop expired sessions, at most once a minute (it reads them all)."""
        now = time.time()
        if now - self._swept_at < 60.0:
            return
        self._swept_at = now
        for origin in [o for o, session in self._sessions.items() if _expired(session, now)]:
            del self._sessions[origin]


def _expired(session: ssl.SSLSession, now: float) -> bool:
    return session.time + session.timeout <= now


class ClientContext(ssl.SSLContext):
    """A client context (CERT_REQUIRED, hostname checked) that can resume sessions: a connection
    opened inside `resuming(origin)` offers the server the session of the last connection to
    that origin. A server that does not resume it answers with a full handshake, checked as
    usual; a session is only ever offered to the origin whose full handshake (chain and
    hostname checked) made it."""

    sessions: SessionCache

    def __new__(cls, sessions: int = DEFAULT_SESSIONS) -> ClientContext:
        context = super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)
        context.sessions = SessionCache(sessions)
        return context

    def __init__(self, sessions: int = DEFAULT_SESSIONS) -> None:
        super().__init__()

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        opening = _OPENING.get()
        if opening is None or server_side:
            return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)
        if session is None:
            session = self.sessions.get(opening.origin)
            self.sessions.offered += session is not None
        ssl_object = super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)
        opening.ssl_objects.append(ssl_object)
        return ssl_object

    @contextlib.contextmanager
    def resuming(self, origin: str) -> Iterator[None]:
        """Connections this task opens inside the block are to `origin`: they offer its last
        session, and the session of a full handshake is kept for the next. End the block once
        the server's first reply was read (TLS 1.3 sends its session ticket after the
        handshake)."""
        opening = _Opening(origin)
        token = _OPENING.set(opening)
        try:
            yield
        finally:
            _OPENING.reset(token)
            for ssl_object in opening.ssl_objects:
                # A resumed connection keeps the session it resumed: reading one out (Python
                # copies it through DER, certificates and all) costs ~165 us, about a quarter
                # of what resuming saves. A server refusing reuse gets a full handshake, whose
                # session is kept then.
                if ssl_object.version() is not None and not ssl_object.session_reused:
                    self.sessions.put(origin, ssl_object.session)  # a completed full handshake


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
