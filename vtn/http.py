"""The OpenADR 2.0b HTTP edge: POST /OpenADR2/Simple/2.0b/{service} (simple HTTP, pull).

The only place an `OadrError` becomes bytes. Every body that can be answered gets a valid,
schema-checked reply with the right response code (HTTP 200); only what has no OpenADR answer
gets an HTTP error: a body too large to read (413), a content type that is not XML (415), an
unknown service path (404). Anything unexpected is logged with a reference id and answered 469.
"""

from __future__ import annotations

import dataclasses
import email.utils
import functools
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from certs import fingerprint
from certs.files import CertsError
from certs.roles import Role
from certs.trust import TrustStore
from oadr import codec, exchanges, templates
from oadr.errors import (
    DeploymentError,
    NotRecognized,
    NotRegistered,
    OadrError,
    ReplayDetected,
)
from oadr.model import EiResponse, Payload, RequestId, Response, VenId
from oadr.signing import ReplayGuard, SignedTemplate, SigningKey, VerifiedSignature
from vtn import services
from vtn.metrics import VtnMetrics
from vtn.replay import NonceLog
from vtn.services.context import Caller, Context

log = logging.getLogger("flex4grid.vtn")

XML_TYPES = frozenset({"application/xml", "text/xml", ""})


@dataclass
class Edge:
    """What the OpenADR endpoint needs besides the services: trust and replay protection."""

    context: Context
    trust: TrustStore | None  # None: plain HTTP (--insecure-http), no client certificates
    replay_guard: ReplayGuard
    metrics: VtnMetrics
    nonces: NonceLog  # durable, cross-worker replay check (vtn/replay.py)


EDGE = web.AppKey("flex4grid.vtn.edge", Edge)
_VEN_SIDE = frozenset((Role.VEN, Role.AGGREGATOR))


def _caller(request: web.Request, edge: Edge, now: datetime) -> Caller:
    """Who sent the request: its client certificate, after the trust store accepted it for a
    VEN now (role, validity, revocation, rotation). Insecure HTTP: nobody in particular."""
    if edge.trust is None:
        return Caller(None)
    try:
        edge.trust.reload()  # a CRL published since the last request takes effect now
    except CertsError as err:
        log.error("trust store not reloaded, keeping the last good CRLs: %s", err)
    transport = request.transport
    ssl_object = None if transport is None else transport.get_extra_info("ssl_object")
    der = None if ssl_object is None else ssl_object.getpeercert(binary_form=True)
    if der is None:
        raise NotRegistered("a client certificate is required")
    # Cached per certificate and trust generation (certs.trust): the full chain, role and
    # revocation check runs once per VEN, and again after a CRL or rotation file changed.
    verdict = edge.trust.check(der, _VEN_SIDE, now)
    if not verdict.accepted:
        raise NotRegistered(f"client certificate refused: {verdict.reason.value}")
    return Caller(
        verdict.fingerprint,
        certificate_name=verdict.name,
        certificate_issuer=verdict.issuer,
    )


async def post_service(request: web.Request) -> web.Response:
    edge = request.app[EDGE]
    settings = edge.context.settings
    service = exchanges.SERVICE_BY_PATH.get(request.path)
    if service is None:
        raise web.HTTPNotFound(text="not an OpenADR 2.0b service\n")
    if request.content_type not in XML_TYPES:
        raise web.HTTPUnsupportedMediaType(text="OpenADR messages are application/xml\n")
    body = await request.read()
    started = time.perf_counter()
    now = edge.context.clock()
    message: Payload | None = None
    signed = False
    try:
        received = codec.receive(
            body,
            now=now,
            replay_guard=edge.replay_guard,
            require_signature=settings.require_signatures,
            limits=settings.limits,
        )
        message = received.payload
        signed = received.signature is not None
        if received.signature is not None:
            await _remember_nonce(edge, received.signature, now)
        # Decoded first, so even a refused certificate gets a reply of the right type.
        caller = _caller(request, edge, now)
        if exchanges.SERVICE_OF.get(type(message)) not in (service, None):
            raise NotRecognized(f"{type(message).__name__} does not belong to {service.value}")
        signer = (
            None
            if received.signature is None
            else fingerprint.of_der(received.signature.certificate_der)
        )
        reply = await services.handle(
            edge.context, message, dataclasses.replace(caller, signer_fingerprint=signer), now
        )
    except OadrError as err:
        log.info("%s refused with %d: %s", service.value, int(err.code), err.message)
        reply = _error_reply(edge, message, err)
    except Exception:
        reference = uuid.uuid4().hex[:12]
        log.exception("unexpected failure on %s, reference %s", service.value, reference)
        reply = _error_reply(
            edge, message, DeploymentError(f"internal error; reference {reference}")
        )
    sign = signed or settings.require_signatures
    try:
        encoded = _encode(edge, reply, sign=sign, now=now)
    except Exception:  # a stored value the 2.0b schema cannot carry, e.g. a 0.5 s duration
        reference = uuid.uuid4().hex[:12]
        log.exception("cannot encode the reply on %s, reference %s", service.value, reference)
        reply = _error_reply(
            edge, message, DeploymentError(f"internal error; reference {reference}")
        )
        encoded = _encode(edge, reply, sign=sign, now=now)
    response = getattr(reply, "response", None)
    code = int(getattr(response, "code", 200))
    edge.metrics.observe(service.value, message, reply, code, time.perf_counter() - started)
    # The Date header is the VTN's clock too: a VEN measures its clock skew from it.
    headers = {"Date": email.utils.format_datetime(now.astimezone(UTC), usegmt=True)}
    return web.Response(body=encoded, content_type="application/xml", headers=headers)


async def _remember_nonce(edge: Edge, signature: VerifiedSignature, now: datetime) -> None:
    """Durable, cross-worker replay check (group commits, see vtn/replay.py)."""
    if not await edge.nonces.remember(signature.nonce, signature.timestamp, now):
        raise ReplayDetected("this ReplayProtect nonce was used before")


def _error_reply(edge: Edge, message: Payload | None, err: OadrError) -> Payload:
    ven_id = getattr(message, "ven_id", None)
    if message is not None and not exchanges.sent_by_ven(type(message)):
        # A payload only a VTN sends has no reply a VTN could give: answer oadrResponse.
        err.request_id = exchanges.request_id_of(message)
        err.payload_name = None
        message = None
    return exchanges.error_reply(
        message,
        err,
        vtn_id=edge.context.settings.vtn_id,
        ven_id=VenId(ven_id) if isinstance(ven_id, str) else None,
    )


def _encode(edge: Edge, reply: Payload, *, sign: bool, now: datetime) -> bytes:
    key = edge.context.settings.signing_key if sign else None
    if _templated(reply):
        # The answer to a poll with nothing new: the same for every VEN but the venID.
        assert isinstance(reply, Response) and reply.ven_id is not None
        shape = reply.response.code, reply.response.description
        if key is None:
            return _unsigned_response(*shape).join({"ven_id": reply.ven_id.encode()})
        template = _signed_response(*shape, key)
        return template.fill(ven_id=reply.ven_id, now=now, nonce=uuid.uuid4().hex)
    return codec.encode(reply, signing_key=key, now=now, nonce=uuid.uuid4().hex if key else None)


def _templated(reply: Payload) -> bool:
    """An oadrResponse without requestID to a VEN whose venID needs no escaping."""
    return (
        isinstance(reply, Response)
        and not reply.response.request_id
        and reply.ven_id is not None
        and templates.verbatim(reply.ven_id)
    )


@functools.lru_cache(maxsize=16)
def _signed_response(code: int, description: str | None, key: SigningKey) -> SignedTemplate:
    """A signed oadrResponse with no requestID, as a template for any venID (the answer to a
    signed poll with nothing new): built, validated and canonicalised once; each reply still
    gets its own timestamp, nonce and signature (`SignedTemplate.fill`)."""
    return codec.signed_template(_response(code, description), key)


@functools.lru_cache(maxsize=16)
def _unsigned_response(code: int, description: str | None) -> templates.Cut:
    """An unsigned oadrResponse with no requestID, encoded once and cut around its venID: the
    answer to a poll with nothing new, for any VEN. (Was one encoded reply per VEN, an LRU of
    8,192: past 8,192 VENs polling in turn, every poll missed it.)"""
    return codec.unsigned_template(_response(code, description))


def _response(code: int, description: str | None) -> Response:
    return Response(
        response=EiResponse(code=code, request_id=RequestId(""), description=description)
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post(exchanges.PATH_PREFIX + "{service}", post_service)
