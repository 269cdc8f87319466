"""The VEN's links to its VTN: HTTP pull (the VEN posts, the VTN answers) and HTTP push (the
VEN serves an HTTPS endpoint the VTN posts to). Adapters only: the session decides what to send.

Both run over mutual TLS with certificates from `certs/`; messages are signed when the VEN
registered for XML signatures, and a signed reply from the VTN is verified (its nonce checked
against a replay guard). The VTN's HTTP `Date` header comes back with every reply so the
session can measure clock skew.
"""

from __future__ import annotations

import logging
import ssl
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from certs import fingerprint
from certs.roles import Role
from certs.trust import TrustStore
from oadr import codec, exchanges
from oadr.errors import NotRegistered, OadrError
from oadr.model import Payload, Response, VtnId
from oadr.signing import DEFAULT_WINDOW, ReplayGuard, SigningKey
from ven.http1 import HttpClient, HttpError, PinMismatch

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("flex4grid.ven")

OADR_BASE = exchanges.PATH_PREFIX.rstrip("/")  # /OpenADR2/Simple/2.0b


class TransportError(Exception):
    """The VTN could not be reached or gave no valid OpenADR reply; the session backs off."""


@dataclass(frozen=True, slots=True)
class Reply:
    payload: Payload
    vtn_time: datetime | None  # the VTN's clock, from its HTTP Date header


def base_url(vtn_url: str) -> str:
    """Accept the VTN's root URL or its OpenADR base (OpenLEADR's `vtn_url` style)."""
    url = vtn_url.rstrip("/")
    return url[: -len(OADR_BASE)] if url.endswith(OADR_BASE) else url


def _vtn_time(headers: Mapping[str, str]) -> datetime | None:
    value = headers.get("date")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError):
        return None


def _pinned(vtn_fingerprint: str) -> Callable[[bytes | None], None]:
    """Checks the VTN's OpenADR fingerprint right after each TLS handshake, before a byte of
    the request is sent (OpenADR deployments exchange the VTN fingerprint out of band)."""
    expected = vtn_fingerprint.upper()

    def check(der: bytes | None) -> None:
        if der is None or fingerprint.of_der(der) != expected:
            raise PinMismatch("the VTN's certificate does not have the configured fingerprint")

    return check


class VtnClient:
    """HTTP pull: POST one payload to its service and decode the VTN's reply."""

    def __init__(
        self,
        vtn_url: str,
        ssl_context: ssl.SSLContext | None,
        *,
        signing_key: SigningKey | None = None,
        vtn_fingerprint: str | None = None,
        timeout: timedelta = timedelta(seconds=30),
        replay_window: timedelta = timedelta(minutes=5),
    ) -> None:
        self.base_url = base_url(vtn_url)
        self.signing_key = signing_key
        self.vtn_fingerprint = vtn_fingerprint
        self._replay_guard = ReplayGuard(window=replay_window)
        self._path_prefix = urlsplit(self.base_url).path.rstrip("/")
        self._http = HttpClient(
            self.base_url,
            ssl_context,
            timeout_s=timeout.total_seconds(),
            max_body_bytes=codec.DEFAULT_LIMITS.max_bytes,
            check_peer=None if vtn_fingerprint is None else _pinned(vtn_fingerprint),
        )

    async def close(self) -> None:
        await self._http.close()

    async def send(
        self,
        payload: Payload,
        now: datetime,
        service: exchanges.Service | None = None,
    ) -> Reply:
        """Post `payload`; `service` is needed only for an oadrResponse (it has no service)."""
        service = service or exchanges.service_for(payload)
        body = codec.encode(
            payload,
            signing_key=self.signing_key,
            now=now,
            nonce=uuid.uuid4().hex if self.signing_key else None,
        )
        try:
            response = await self._http.post(
                self._path_prefix + service.path, body, {"Content-Type": "application/xml"}
            )
        except PinMismatch as exc:
            raise TransportError(str(exc)) from exc
        except HttpError as exc:
            raise TransportError(f"{service.value}: {exc}") from exc
        if response.status != 200:
            raise TransportError(f"{service.value}: HTTP {response.status}")
        vtn_time = _vtn_time(response.headers)
        data = response.body
        try:
            received = codec.receive(data, now=now, replay_guard=self._replay_guard)
        except OadrError as err:
            raise TransportError(f"{service.value}: the VTN's reply is refused: {err}") from err
        return Reply(received.payload, vtn_time)


PushHandler = Callable[[Payload, datetime], Awaitable[Payload | None]]


def push_app(
    handler: PushHandler,
    trust: TrustStore | None,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    require_signature: bool = False,
    replay_window: timedelta = DEFAULT_WINDOW,
    signing_key: SigningKey | None = None,
) -> web.Application:
    """The VEN's HTTPS endpoint for HTTP push: the VTN posts VTN-initiated payloads here.

    Only a client certificate the trust store accepts for the `vtn` role may push. The reply is
    what the session answers (oadrCreatedEvent, oadrCreatedReport, ...) or an oadrResponse 200.
    """
    from aiohttp import web  # the server half of aiohttp (~2 MB) only when push is served

    guard = ReplayGuard(window=replay_window)

    async def receive(request: web.Request) -> web.Response:
        now = clock()
        message: Payload | None = None
        try:
            if trust is not None:
                transport = request.transport
                ssl_object = None if transport is None else transport.get_extra_info("ssl_object")
                der = None if ssl_object is None else ssl_object.getpeercert(binary_form=True)
                verdict = trust.check(der, Role.VTN, now) if der is not None else None
                if verdict is None or not verdict.accepted:
                    raise NotRegistered("only the VTN may push to this VEN")
            received = codec.receive(
                await request.read(),
                now=now,
                replay_guard=guard,
                require_signature=require_signature,
            )
            message = received.payload
            reply = await handler(message, now)
            if reply is None:
                reply = exchanges_ok(message)
        except OadrError as err:
            log.warning("push refused with %d: %s", int(err.code), err.message)
            reply = exchanges.error_reply(message, err, vtn_id=_vtn_id(message), ven_id=None)
        # Signed like everything this VEN sends: a VTN that requires signatures refuses an
        # unsigned answer to its push and pushes again.
        body = codec.encode(
            reply,
            signing_key=signing_key,
            now=clock(),
            nonce=uuid.uuid4().hex if signing_key else None,
        )
        return web.Response(body=body, content_type="application/xml")

    app = web.Application()
    app.router.add_post(exchanges.PATH_PREFIX + "{service}", receive)
    return app


def exchanges_ok(message: Payload) -> Payload:
    return Response(response=exchanges.ok_response(exchanges.request_id_of(message)))


def _vtn_id(message: Payload | None) -> VtnId:
    return VtnId(getattr(message, "vtn_id", "") or "")
