"""OpenADR 2.0b messages to and from bytes: the hardened parser, the schema check, the envelope.

    decode(data) -> Payload                      trusted or already-authenticated input
    receive(data, now=..., replay_guard=...) -> Received   signature verified when present
    encode(payload, signing_key=..., now=..., nonce=...) -> bytes

Untrusted bytes are refused before they cost anything: a body over `Limits.max_bytes`, a
DOCTYPE or ENTITY declaration (XXE, billion laughs), anything but UTF-8, nesting deeper than
`Limits.max_depth`, a root other than oadrPayload. The parser never resolves entities, loads a
DTD or touches the network. Every decoded document is validated against the official XSDs, and
`receive` reads only the element that `oadr.signing.verify` returned, so a wrapped signature
cannot smuggle in an unsigned payload.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from lxml import etree

from oadr import elements as el
from oadr import schema, signing, templates
from oadr import xmlvalues as xv
from oadr.enums import SCHEMA_VERSION, OptReason, OptType
from oadr.errors import HostileInput, InvalidData, MalformedMessage, OadrError, SignatureInvalid
from oadr.model import (
    CanceledOpt,
    CanceledPartyRegistration,
    CanceledReport,
    CancelOpt,
    CancelPartyRegistration,
    CancelReport,
    CreatedEvent,
    CreatedOpt,
    CreatedPartyRegistration,
    CreatedReport,
    CreateOpt,
    CreatePartyRegistration,
    CreateReport,
    DistributeEvent,
    EventId,
    EventResponse,
    OptId,
    Payload,
    Poll,
    Profile,
    QueryRegistration,
    RegisteredReport,
    RegisterReport,
    RegistrationId,
    ReportRequestId,
    RequestEvent,
    RequestId,
    RequestReregistration,
    Response,
    UpdatedReport,
    UpdateReport,
    VenId,
    VtnId,
    element_name,
)
from oadr.xmlvalues import EI, EMIX, OADR, PYLD, XCAL, qname

Element = etree._Element
_P = TypeVar("_P", bound=Payload)

SIGNED_OBJECT_ID = "oadrSignedObject"
_PAYLOAD_TAG = qname(OADR, "oadrPayload")
_SIGNED_OBJECT_TAG = qname(OADR, "oadrSignedObject")


@dataclass(frozen=True, slots=True)
class Limits:
    """What an untrusted message may cost before it is refused."""

    max_bytes: int = 4 * 1024 * 1024
    max_depth: int = 32


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Received:
    """A decoded payload and, when it was signed, the verified signature (certificate, nonce)."""

    payload: Payload
    signature: signing.VerifiedSignature | None


# --- public API -----------------------------------------------------------------------------------


def decode(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> Payload:
    """Parse, validate and decode without looking at a signature (trusted input, tools)."""
    root = parse(data, limits=limits)
    return _decode_signed_object(_signed_object(root))


def receive(
    data: bytes,
    *,
    now: datetime,
    replay_guard: signing.ReplayGuard | None,
    require_signature: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> Received:
    """Decode an incoming message, verifying its XML signature when it has one.

    Only the element the signature covers is decoded. `require_signature` refuses unsigned
    messages (463), for deployments that announced oadrXmlSignature.
    """
    root = parse(data, limits=limits)
    if signing.is_signed(root):
        try:
            verified = signing.verify(root, now=now, replay_guard=replay_guard)
        except OadrError as err:
            _annotate(err, root.find(_SIGNED_OBJECT_TAG))
            raise
        return Received(_decode_signed_object(verified.signed_object), verified)
    signed_object = _signed_object(root)
    if require_signature:
        refusal = SignatureInvalid("XML signatures are required and the message has none")
        _annotate(refusal, signed_object)
        raise refusal
    return Received(_decode_signed_object(signed_object), None)


def encode(
    payload: Payload,
    *,
    signing_key: signing.SigningKey | None = None,
    now: datetime | None = None,
    nonce: str | None = None,
    validate: bool = True,
) -> bytes:
    """The oadrPayload document for `payload`, signed when a key is given (then `now` and
    `nonce` are required: ReplayProtect carries them). Validated against the XSDs unless
    `validate=False` (for callers that validated the same shape already, e.g. benchmarks)."""
    root = _tree(payload, validate=validate)
    if signing_key is not None:
        if now is None or nonce is None:
            raise ValueError("signing needs `now` and a fresh `nonce` for ReplayProtect")
        signing.sign(root, signing_key, now=now, nonce=nonce)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def signed_template(payload: Response, signing_key: signing.SigningKey) -> signing.SignedTemplate:
    """An oadrResponse signed as a `signing.SignedTemplate`: the document `encode` signs, for any
    venID, timestamp and nonce (`fill`), built and validated once. `payload.ven_id` is ignored."""
    sentinel = VenId(f"ven{uuid.uuid4().hex}")
    root = _tree(dataclasses.replace(payload, ven_id=sentinel), validate=True)
    return signing.template(root, signing_key, sentinel)


def unsigned_template(payload: Response) -> templates.Cut:
    """An unsigned oadrResponse cut around its venID (slot "ven_id", to fill with a
    `templates.verbatim` venID): the document `encode` makes, built and validated once.
    `payload.ven_id` is ignored."""
    sentinel = VenId(f"ven{uuid.uuid4().hex}")
    document = encode(dataclasses.replace(payload, ven_id=sentinel))
    return templates.cut(document, {"ven_id": sentinel}, expect=(), free="ven_id")


def _tree(payload: Payload, *, validate: bool) -> etree._Element:
    root = etree.Element(_PAYLOAD_TAG, nsmap=xv.NSMAP)
    signed_object = el.sub(root, OADR, "oadrSignedObject")
    signed_object.set(qname(OADR, "Id"), SIGNED_OBJECT_ID)
    element = el.sub(signed_object, OADR, element_name(type(payload)))
    element.set(qname(EI, "schemaVersion"), SCHEMA_VERSION)
    _ENCODERS[type(payload)](element, payload)
    if validate:
        schema.validate(root)
    return root


# --- the hardened parser --------------------------------------------------------------------------

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)
_ENCODING_DECLARATION = re.compile(rb"\A\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


@functools.cache
def _too_deep(max_depth: int) -> etree.XPath:
    # True when any element sits deeper than max_depth: evaluated in C by libxml2.
    return etree.XPath("boolean(" + "/*" * (max_depth + 1) + ")")


def parse(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> Element:
    """Untrusted bytes to a schema-valid oadrPayload tree, or an OadrError."""
    if not isinstance(data, bytes | bytearray):
        raise TypeError("decode() takes bytes as they came off the wire")
    if len(data) > limits.max_bytes:
        raise HostileInput(
            f"message of {len(data)} bytes exceeds the {limits.max_bytes} byte limit"
        )
    if data.startswith(_UTF16_32_BOMS) or b"\x00" in data:
        raise HostileInput("OpenADR messages must be UTF-8")
    declared = _ENCODING_DECLARATION.match(data)
    if declared is not None and declared.group(1).lower() not in (b"utf-8", b"utf8", b"us-ascii"):
        raise HostileInput(f"OpenADR messages must be UTF-8, not {declared.group(1)[:20]!r}")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise HostileInput("DOCTYPE and ENTITY declarations are refused")
    try:
        root = etree.fromstring(bytes(data), _PARSER)
    except etree.XMLSyntaxError as exc:
        raise MalformedMessage(f"not well-formed XML: {exc.msg}") from exc
    if root is None or root.tag != _PAYLOAD_TAG:
        tag = "nothing" if root is None else etree.QName(root).localname
        raise MalformedMessage(f"the root element must be oadrPayload, not {tag}")
    if _too_deep(limits.max_depth)(root):
        raise HostileInput(f"elements nested deeper than {limits.max_depth} levels")
    try:
        schema.validate(root)
    except OadrError as err:
        _annotate(err, root.find(_SIGNED_OBJECT_TAG))
        raise
    return root


def _signed_object(root: Element) -> Element:
    found = root.find(_SIGNED_OBJECT_TAG)
    if found is None:  # the schema requires it; keep the guard explicit
        raise MalformedMessage("oadrPayload has no oadrSignedObject")
    return found


def _payload_element(signed_object: Element) -> Element:
    for child in signed_object:
        if isinstance(child.tag, str):
            return child
    raise MalformedMessage("oadrSignedObject carries no payload")


def _annotate(err: OadrError, signed_object: Element | None) -> None:
    """Record the payload name and requestID of a refused message, when they can be read."""
    if signed_object is None:
        return
    try:
        payload = _payload_element(signed_object)
    except OadrError:
        return
    err.payload_name = etree.QName(payload).localname
    request_id = payload.find(f".//{qname(PYLD, 'requestID')}")
    if request_id is not None:
        err.request_id = request_id.text or ""


def _decode_signed_object(signed_object: Element) -> Payload:
    payload = _payload_element(signed_object)
    decoder = _DECODERS.get(payload.tag)
    if decoder is None:
        raise MalformedMessage(f"unknown payload {etree.QName(payload).localname}")
    try:
        return decoder(payload)
    except OadrError as err:
        _annotate(err, signed_object)
        raise


# --- payload encoders -----------------------------------------------------------------------------


def _request_id(element: Element, request_id: str) -> None:
    el.sub(element, PYLD, "requestID", request_id)


def _optional(element: Element, namespace: str, local: str, value: str | None) -> None:
    if value is not None:
        el.sub(element, namespace, local, value)


def _enc_query_registration(element: Element, p: QueryRegistration) -> None:
    _request_id(element, p.request_id)


def _enc_create_party_registration(element: Element, p: CreatePartyRegistration) -> None:
    _request_id(element, p.request_id)
    _optional(element, EI, "registrationID", p.registration_id)
    _optional(element, EI, "venID", p.ven_id)
    el.sub(element, OADR, "oadrProfileName", p.profile_name)
    el.sub(element, OADR, "oadrTransportName", p.transport_name)
    _optional(element, OADR, "oadrTransportAddress", p.transport_address)
    el.sub(element, OADR, "oadrReportOnly", xv.format_bool(p.report_only))
    el.sub(element, OADR, "oadrXmlSignature", xv.format_bool(p.xml_signature))
    _optional(element, OADR, "oadrVenName", p.ven_name)
    if p.http_pull_model is not None:
        el.sub(element, OADR, "oadrHttpPullModel", xv.format_bool(p.http_pull_model))


def _enc_created_party_registration(element: Element, p: CreatedPartyRegistration) -> None:
    el.add_response(element, p.response)
    _optional(element, EI, "registrationID", p.registration_id)
    _optional(element, EI, "venID", p.ven_id)
    el.sub(element, EI, "vtnID", p.vtn_id)
    profiles = el.sub(element, OADR, "oadrProfiles")
    for profile in p.profiles:
        profile_element = el.sub(profiles, OADR, "oadrProfile")
        el.sub(profile_element, OADR, "oadrProfileName", profile.profile_name)
        transports = el.sub(profile_element, OADR, "oadrTransports")
        for transport in profile.transports:
            el.sub(el.sub(transports, OADR, "oadrTransport"), OADR, "oadrTransportName", transport)
    if p.requested_poll_freq is not None:
        el.add_duration(element, OADR, "oadrRequestedOadrPollFreq", p.requested_poll_freq)


def _enc_cancel_party_registration(element: Element, p: CancelPartyRegistration) -> None:
    _request_id(element, p.request_id)
    el.sub(element, EI, "registrationID", p.registration_id)
    _optional(element, EI, "venID", p.ven_id)


def _enc_canceled_party_registration(element: Element, p: CanceledPartyRegistration) -> None:
    el.add_response(element, p.response)
    _optional(element, EI, "registrationID", p.registration_id)
    _optional(element, EI, "venID", p.ven_id)


def _enc_request_reregistration(element: Element, p: RequestReregistration) -> None:
    el.sub(element, EI, "venID", p.ven_id)


def _enc_request_event(element: Element, p: RequestEvent) -> None:
    inner = el.sub(element, PYLD, "eiRequestEvent")
    _request_id(inner, p.request_id)
    el.sub(inner, EI, "venID", p.ven_id)
    if p.reply_limit is not None:
        el.sub(inner, PYLD, "replyLimit", str(p.reply_limit))


def _enc_distribute_event(element: Element, p: DistributeEvent) -> None:
    if p.response is not None:
        el.add_response(element, p.response)
    _request_id(element, p.request_id)
    el.sub(element, EI, "vtnID", p.vtn_id)
    for event in p.events:
        el.add_event(element, event)


def _enc_created_event(element: Element, p: CreatedEvent) -> None:
    inner = el.sub(element, PYLD, "eiCreatedEvent")
    el.add_response(inner, p.response)
    if p.event_responses:
        responses = el.sub(inner, EI, "eventResponses")
        for r in p.event_responses:
            response = el.sub(responses, EI, "eventResponse")
            el.sub(response, EI, "responseCode", f"{int(r.code):03d}")
            _optional(response, EI, "responseDescription", r.description)
            _request_id(response, r.request_id)
            qualified = el.sub(response, EI, "qualifiedEventID")
            el.sub(qualified, EI, "eventID", r.event_id)
            el.sub(qualified, EI, "modificationNumber", str(r.modification_number))
            el.sub(response, EI, "optType", r.opt_type.value)
    el.sub(inner, EI, "venID", p.ven_id)


def _enc_response(element: Element, p: Response) -> None:
    el.add_response(element, p.response)
    _optional(element, EI, "venID", p.ven_id)


def _enc_create_opt(element: Element, p: CreateOpt) -> None:
    el.sub(element, EI, "optID", p.opt_id)
    el.sub(element, EI, "optType", p.opt_type.value)
    el.sub(element, EI, "optReason", p.opt_reason.value)
    _optional(element, EMIX, "marketContext", p.market_context)
    el.sub(element, EI, "venID", p.ven_id)
    if p.availability is not None:
        components = el.sub(el.sub(element, XCAL, "vavailability"), XCAL, "components")
        for window in p.availability:
            el.add_window(el.sub(components, XCAL, "available"), window)
    el.sub(element, EI, "createdDateTime", xv.format_datetime(p.created))
    _request_id(element, p.request_id)
    if p.event_id is not None:
        if p.modification_number is None:
            raise ValueError("an opt tied to an event needs its modification_number")
        qualified = el.sub(element, EI, "qualifiedEventID")
        el.sub(qualified, EI, "eventID", p.event_id)
        el.sub(qualified, EI, "modificationNumber", str(p.modification_number))
    el.add_target(element, p.target)
    if p.device_class is not None:
        el.add_target(element, p.device_class, OADR, "oadrDeviceClass")


def _enc_created_opt(element: Element, p: CreatedOpt) -> None:
    el.add_response(element, p.response)
    el.sub(element, EI, "optID", p.opt_id)


def _enc_cancel_opt(element: Element, p: CancelOpt) -> None:
    _request_id(element, p.request_id)
    el.sub(element, EI, "optID", p.opt_id)
    el.sub(element, EI, "venID", p.ven_id)


def _enc_canceled_opt(element: Element, p: CanceledOpt) -> None:
    el.add_response(element, p.response)
    _optional(element, EI, "optID", p.opt_id)


def _enc_register_report(element: Element, p: RegisterReport) -> None:
    _request_id(element, p.request_id)
    for report in p.reports:
        el.add_report(element, report)
    _optional(element, EI, "venID", p.ven_id)
    _optional(element, EI, "reportRequestID", p.report_request_id)


def _enc_registered_report(element: Element, p: RegisteredReport) -> None:
    el.add_response(element, p.response)
    for request in p.report_requests:
        el.add_report_request(element, request)
    _optional(element, EI, "venID", p.ven_id)


def _enc_create_report(element: Element, p: CreateReport) -> None:
    _request_id(element, p.request_id)
    for request in p.report_requests:
        el.add_report_request(element, request)
    _optional(element, EI, "venID", p.ven_id)


def _pending(element: Element, pending: tuple[ReportRequestId, ...]) -> None:
    container = el.sub(element, OADR, "oadrPendingReports")
    for report_request_id in pending:
        el.sub(container, EI, "reportRequestID", report_request_id)


def _enc_created_report(element: Element, p: CreatedReport) -> None:
    el.add_response(element, p.response)
    _pending(element, p.pending_reports)
    _optional(element, EI, "venID", p.ven_id)


def _enc_update_report(element: Element, p: UpdateReport) -> None:
    _request_id(element, p.request_id)
    for report in p.reports:
        el.add_report(element, report)
    _optional(element, EI, "venID", p.ven_id)


def _enc_cancel_report_body(element: Element, p: CancelReport) -> None:
    _request_id(element, p.request_id)
    for report_request_id in p.report_request_ids:
        el.sub(element, EI, "reportRequestID", report_request_id)
    el.sub(element, PYLD, "reportToFollow", xv.format_bool(p.report_to_follow))
    _optional(element, EI, "venID", p.ven_id)


def _enc_updated_report(element: Element, p: UpdatedReport) -> None:
    el.add_response(element, p.response)
    if p.cancel_report is not None:
        _enc_cancel_report_body(el.sub(element, OADR, "oadrCancelReport"), p.cancel_report)
    _optional(element, EI, "venID", p.ven_id)


def _enc_canceled_report(element: Element, p: CanceledReport) -> None:
    el.add_response(element, p.response)
    _pending(element, p.pending_reports)
    _optional(element, EI, "venID", p.ven_id)


def _enc_poll(element: Element, p: Poll) -> None:
    el.sub(element, EI, "venID", p.ven_id)


_ENCODERS: dict[type[Any], Callable[[Element, Any], None]] = {
    QueryRegistration: _enc_query_registration,
    CreatePartyRegistration: _enc_create_party_registration,
    CreatedPartyRegistration: _enc_created_party_registration,
    CancelPartyRegistration: _enc_cancel_party_registration,
    CanceledPartyRegistration: _enc_canceled_party_registration,
    RequestReregistration: _enc_request_reregistration,
    RequestEvent: _enc_request_event,
    DistributeEvent: _enc_distribute_event,
    CreatedEvent: _enc_created_event,
    Response: _enc_response,
    CreateOpt: _enc_create_opt,
    CreatedOpt: _enc_created_opt,
    CancelOpt: _enc_cancel_opt,
    CanceledOpt: _enc_canceled_opt,
    RegisterReport: _enc_register_report,
    RegisteredReport: _enc_registered_report,
    CreateReport: _enc_create_report,
    CreatedReport: _enc_created_report,
    UpdateReport: _enc_update_report,
    UpdatedReport: _enc_updated_report,
    CancelReport: _enc_cancel_report_body,
    CanceledReport: _enc_canceled_report,
    Poll: _enc_poll,
}


# --- payload decoders -----------------------------------------------------------------------------


def _req_id(element: Element) -> RequestId:
    return RequestId(el.text_of(element, PYLD, "requestID"))


def _opt_ven(element: Element) -> VenId | None:
    value = el.optional_text(element, EI, "venID")
    return None if value is None else VenId(value)


def _opt_bool(element: Element, local: str) -> bool | None:
    value = el.optional_text(element, OADR, local)
    return None if value is None else xv.parse_bool(value)


def _dec_query_registration(e: Element) -> QueryRegistration:
    return QueryRegistration(request_id=_req_id(e))


def _dec_create_party_registration(e: Element) -> CreatePartyRegistration:
    registration_id = el.optional_text(e, EI, "registrationID")
    return CreatePartyRegistration(
        request_id=_req_id(e),
        registration_id=None if registration_id is None else RegistrationId(registration_id),
        ven_id=_opt_ven(e),
        profile_name=el.text_of(e, OADR, "oadrProfileName").strip(),
        transport_name=el.text_of(e, OADR, "oadrTransportName").strip(),
        transport_address=el.optional_text(e, OADR, "oadrTransportAddress"),
        report_only=xv.parse_bool(el.text_of(e, OADR, "oadrReportOnly")),
        xml_signature=xv.parse_bool(el.text_of(e, OADR, "oadrXmlSignature")),
        ven_name=el.optional_text(e, OADR, "oadrVenName"),
        http_pull_model=_opt_bool(e, "oadrHttpPullModel"),
    )


def _dec_created_party_registration(e: Element) -> CreatedPartyRegistration:
    registration_id = el.optional_text(e, EI, "registrationID")
    profiles = tuple(
        Profile(
            profile_name=el.text_of(profile, OADR, "oadrProfileName").strip(),
            transports=tuple(
                el.text_of(transport, OADR, "oadrTransportName").strip()
                for transport in el.require(profile, OADR, "oadrTransports")
            ),
        )
        for profile in el.require(e, OADR, "oadrProfiles")
    )
    return CreatedPartyRegistration(
        response=el.read_response(el.require(e, EI, "eiResponse")),
        vtn_id=VtnId(el.text_of(e, EI, "vtnID")),
        profiles=profiles,
        registration_id=None if registration_id is None else RegistrationId(registration_id),
        ven_id=_opt_ven(e),
        requested_poll_freq=el.read_duration(e, OADR, "oadrRequestedOadrPollFreq"),
    )


def _dec_cancel_party_registration(e: Element) -> CancelPartyRegistration:
    return CancelPartyRegistration(
        request_id=_req_id(e),
        registration_id=RegistrationId(el.text_of(e, EI, "registrationID")),
        ven_id=_opt_ven(e),
    )


def _dec_canceled_party_registration(e: Element) -> CanceledPartyRegistration:
    registration_id = el.optional_text(e, EI, "registrationID")
    return CanceledPartyRegistration(
        response=el.read_response(el.require(e, EI, "eiResponse")),
        registration_id=None if registration_id is None else RegistrationId(registration_id),
        ven_id=_opt_ven(e),
    )


def _dec_request_reregistration(e: Element) -> RequestReregistration:
    return RequestReregistration(ven_id=VenId(el.text_of(e, EI, "venID")))


def _dec_request_event(e: Element) -> RequestEvent:
    inner = el.require(e, PYLD, "eiRequestEvent")
    reply_limit = el.optional_text(inner, PYLD, "replyLimit")
    return RequestEvent(
        request_id=_req_id(inner),
        ven_id=VenId(el.text_of(inner, EI, "venID")),
        reply_limit=None if reply_limit is None else xv.parse_int(reply_limit),
    )


def _dec_distribute_event(e: Element) -> DistributeEvent:
    response = el.find(e, EI, "eiResponse")
    return DistributeEvent(
        request_id=_req_id(e),
        vtn_id=VtnId(el.text_of(e, EI, "vtnID")),
        events=tuple(el.read_event(event) for event in e.iterchildren(qname(OADR, "oadrEvent"))),
        response=None if response is None else el.read_response(response),
    )


def _dec_created_event(e: Element) -> CreatedEvent:
    inner = el.require(e, PYLD, "eiCreatedEvent")
    responses = el.find(inner, EI, "eventResponses")
    event_responses: list[EventResponse] = []
    for r in () if responses is None else responses.iterchildren(qname(EI, "eventResponse")):
        qualified = el.require(r, EI, "qualifiedEventID")
        event_responses.append(
            EventResponse(
                code=xv.parse_int(el.text_of(r, EI, "responseCode")),
                request_id=_req_id(r),
                event_id=EventId(el.text_of(qualified, EI, "eventID")),
                modification_number=xv.parse_int(el.text_of(qualified, EI, "modificationNumber")),
                opt_type=el.enum_value(OptType, el.text_of(r, EI, "optType"), "optType"),
                description=el.optional_text(r, EI, "responseDescription"),
            )
        )
    return CreatedEvent(
        response=el.read_response(el.require(inner, EI, "eiResponse")),
        ven_id=VenId(el.text_of(inner, EI, "venID")),
        event_responses=tuple(event_responses),
    )


def _dec_response(e: Element) -> Response:
    return Response(response=el.read_response(el.require(e, EI, "eiResponse")), ven_id=_opt_ven(e))


def _dec_create_opt(e: Element) -> CreateOpt:
    availability = el.find(e, XCAL, "vavailability")
    qualified = el.find(e, EI, "qualifiedEventID")
    device_class = el.find(e, OADR, "oadrDeviceClass")
    return CreateOpt(
        request_id=_req_id(e),
        opt_id=OptId(el.text_of(e, EI, "optID")),
        opt_type=el.enum_value(OptType, el.text_of(e, EI, "optType"), "optType"),
        opt_reason=el.enum_value(OptReason, el.text_of(e, EI, "optReason"), "optReason"),
        ven_id=VenId(el.text_of(e, EI, "venID")),
        created=xv.parse_datetime(el.text_of(e, EI, "createdDateTime")),
        target=el.read_target(el.require(e, EI, "eiTarget")),
        market_context=el.optional_text(e, EMIX, "marketContext"),
        availability=None
        if availability is None
        else tuple(
            el.read_window(el.require(available, XCAL, "properties"))
            for available in el.require(availability, XCAL, "components")
        ),
        event_id=None if qualified is None else EventId(el.text_of(qualified, EI, "eventID")),
        modification_number=None
        if qualified is None
        else xv.parse_int(el.text_of(qualified, EI, "modificationNumber")),
        device_class=None if device_class is None else el.read_target(device_class),
    )


def _dec_created_opt(e: Element) -> CreatedOpt:
    return CreatedOpt(
        response=el.read_response(el.require(e, EI, "eiResponse")),
        opt_id=OptId(el.text_of(e, EI, "optID")),
    )


def _dec_cancel_opt(e: Element) -> CancelOpt:
    return CancelOpt(
        request_id=_req_id(e),
        opt_id=OptId(el.text_of(e, EI, "optID")),
        ven_id=VenId(el.text_of(e, EI, "venID")),
    )


def _dec_canceled_opt(e: Element) -> CanceledOpt:
    opt_id = el.optional_text(e, EI, "optID")
    return CanceledOpt(
        response=el.read_response(el.require(e, EI, "eiResponse")),
        opt_id=None if opt_id is None else OptId(opt_id),
    )


def _report_request_ids(e: Element) -> tuple[ReportRequestId, ...]:
    return tuple(ReportRequestId(v) for v in el.all_text(e, EI, "reportRequestID"))


def _dec_register_report(e: Element) -> RegisterReport:
    report_request_id = el.optional_text(e, EI, "reportRequestID")
    return RegisterReport(
        request_id=_req_id(e),
        reports=tuple(el.read_report(r) for r in e.iterchildren(qname(OADR, "oadrReport"))),
        ven_id=_opt_ven(e),
        report_request_id=None if report_request_id is None else ReportRequestId(report_request_id),
    )


def _dec_registered_report(e: Element) -> RegisteredReport:
    return RegisteredReport(
        response=el.read_response(el.require(e, EI, "eiResponse")),
        report_requests=tuple(
            el.read_report_request(r) for r in e.iterchildren(qname(OADR, "oadrReportRequest"))
        ),
        ven_id=_opt_ven(e),
    )


def _dec_create_report(e: Element) -> CreateReport:
    return CreateReport(
        request_id=_req_id(e),
        report_requests=tuple(
            el.read_report_request(r) for r in e.iterchildren(qname(OADR, "oadrReportRequest"))
        ),
        ven_id=_opt_ven(e),
    )


def _dec_created_report(e: Element) -> CreatedReport:
    return CreatedReport(
        response=el.read_response(el.require(e, EI, "eiResponse")),
        pending_reports=_report_request_ids(el.require(e, OADR, "oadrPendingReports")),
        ven_id=_opt_ven(e),
    )


def _dec_update_report(e: Element) -> UpdateReport:
    return UpdateReport(
        request_id=_req_id(e),
        reports=tuple(el.read_report(r) for r in e.iterchildren(qname(OADR, "oadrReport"))),
        ven_id=_opt_ven(e),
    )


def _dec_cancel_report(e: Element) -> CancelReport:
    return CancelReport(
        request_id=_req_id(e),
        report_request_ids=_report_request_ids(e),
        report_to_follow=xv.parse_bool(el.text_of(e, PYLD, "reportToFollow")),
        ven_id=_opt_ven(e),
    )


def _dec_updated_report(e: Element) -> UpdatedReport:
    cancel = el.find(e, OADR, "oadrCancelReport")
    return UpdatedReport(
        response=el.read_response(el.require(e, EI, "eiResponse")),
        cancel_report=None if cancel is None else _dec_cancel_report(cancel),
        ven_id=_opt_ven(e),
    )


def _dec_canceled_report(e: Element) -> CanceledReport:
    return CanceledReport(
        response=el.read_response(el.require(e, EI, "eiResponse")),
        pending_reports=_report_request_ids(el.require(e, OADR, "oadrPendingReports")),
        ven_id=_opt_ven(e),
    )


def _dec_poll(e: Element) -> Poll:
    return Poll(ven_id=VenId(el.text_of(e, EI, "venID")))


_DECODER_LIST: tuple[tuple[type[Any], Callable[[Element], Payload]], ...] = (
    (QueryRegistration, _dec_query_registration),
    (CreatePartyRegistration, _dec_create_party_registration),
    (CreatedPartyRegistration, _dec_created_party_registration),
    (CancelPartyRegistration, _dec_cancel_party_registration),
    (CanceledPartyRegistration, _dec_canceled_party_registration),
    (RequestReregistration, _dec_request_reregistration),
    (RequestEvent, _dec_request_event),
    (DistributeEvent, _dec_distribute_event),
    (CreatedEvent, _dec_created_event),
    (Response, _dec_response),
    (CreateOpt, _dec_create_opt),
    (CreatedOpt, _dec_created_opt),
    (CancelOpt, _dec_cancel_opt),
    (CanceledOpt, _dec_canceled_opt),
    (RegisterReport, _dec_register_report),
    (RegisteredReport, _dec_registered_report),
    (CreateReport, _dec_create_report),
    (CreatedReport, _dec_created_report),
    (UpdateReport, _dec_update_report),
    (UpdatedReport, _dec_updated_report),
    (CancelReport, _dec_cancel_report),
    (CanceledReport, _dec_canceled_report),
    (Poll, _dec_poll),
)
_DECODERS: dict[str, Callable[[Element], Payload]] = {
    qname(OADR, element_name(payload_type)): decoder for payload_type, decoder in _DECODER_LIST
}

__all__ = [
    "DEFAULT_LIMITS",
    "InvalidData",
    "Limits",
    "Received",
    "decode",
    "encode",
    "parse",
    "receive",
]
