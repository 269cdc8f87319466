"""The per-request certificate check for an aiohttp server.

TLS verified the chain when the connection opened; this middleware asks the `TrustStore` again on
every request, with the time of the request, so a certificate revoked or rotated out while a
keep-alive connection stays open is refused on its next request. The accepted `Verdict` is left
on the request under `PEER` (its `name` and `fingerprint` identify the peer).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from certs.files import CertsError
from certs.roles import Role
from certs.tls import check_peer
from certs.trust import TrustStore, Verdict

PEER = web.RequestKey("flex4grid.peer", Verdict)

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def peer_verdict(
    request: web.BaseRequest, trust: TrustStore, accept: Role | Collection[Role], now: datetime
) -> Verdict:
    transport = request.transport
    ssl_object = None if transport is None else transport.get_extra_info("ssl_object")
    return check_peer(ssl_object, trust, accept, now)


def middleware(
    trust: TrustStore,
    accept: Role | Collection[Role],
    clock: Callable[[], datetime] = utc_now,
    reload: bool = True,
) -> Middleware:
    """Refuse (403) a request whose peer certificate the trust store does not accept.

    With `reload`, every request first re-reads CRLs whose files changed (a few stat calls).
    """

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if reload:
            try:
                trust.reload()
            except CertsError as err:  # keep the last good CRLs; say why once per request
                log.error("trust store not reloaded: %s", err)
        verdict = peer_verdict(request, trust, accept, clock())
        if not verdict.accepted:
            log.warning("refused peer certificate: %s (%s)", verdict.reason, verdict.detail)
            raise web.HTTPForbidden(text=f"certificate refused: {verdict.reason}\n")
        request[PEER] = verdict
        return await handler(request)

    return guard
