"""The harness as one or more VENs talking to a VTN under test (HTTP pull, mutual TLS).

`VtnUnderTest` holds the VTN's URL, the harness's VEN identities (one `VenLink` each, for
multi-VEN cases) and the hook that makes the VTN act. A `VenLink` posts payloads built with
`oadr.model` and encoded by `oadr.codec`, writes every exchange into the case's `Wire`, and
behaves like a well-mannered VEN for whatever a case does not look at: it answers the VTN's
RegisterReport, CreateReport, CancelReport, DistributeEvent and registration requests the way
the bootstrap sequence (N1_0020) and the event and report clauses say.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from conformance.hooks import Action, Hook, HookFailed, HookUnsupported
from conformance.model import Exchange, Wire, check, fail, skip
from oadr import codec, exchanges, signing
from oadr.enums import ItemKind, OptType, ReadingType, ReportName, ReportType, ResponseRequired
from oadr.errors import OadrError
from oadr.model import (
    CanceledPartyRegistration,
    CanceledReport,
    CancelPartyRegistration,
    CancelReport,
    CreatedEvent,
    CreatedPartyRegistration,
    CreatedReport,
    CreatePartyRegistration,
    CreateReport,
    DistributeEvent,
    EiResponse,
    Event,
    EventResponse,
    ItemBase,
    Payload,
    Poll,
    PowerAttributes,
    RegisteredReport,
    RegisterReport,
    RegistrationId,
    Report,
    ReportDescription,
    ReportRequest,
    ReportRequestId,
    ReportSpecifierId,
    RequestId,
    RequestReregistration,
    Response,
    RId,
    SamplingRate,
    VenId,
    VtnId,
)

P = TypeVar("P", bound=Payload)
OK = 200
HARNESS_SPECIFIER = ReportSpecifierId("harness-telemetry")
HARNESS_RID = RId("harness.power")
_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}-{uuid.uuid4().hex[:6]}"


def utc_now() -> datetime:
    return datetime.now(UTC)


def harness_metadata(now: datetime) -> Report:
    """The METADATA report the harness VEN registers: one power reading, 1 s to 1 min."""
    return Report(
        report_specifier_id=HARNESS_SPECIFIER,
        created=now,
        report_name=ReportName.METADATA_TELEMETRY_USAGE,
        duration=timedelta(hours=1),
        descriptions=(
            ReportDescription(
                r_id=HARNESS_RID,
                report_type=ReportType.USAGE,
                reading_type=ReadingType.DIRECT_READ,
                item_base=ItemBase(
                    kind=ItemKind.POWER_REAL,
                    description="RealPower",
                    units="W",
                    scale="k",
                    power_attributes=PowerAttributes(hertz=50.0, voltage=230.0, ac=True),
                ),
                sampling_rate=SamplingRate(
                    min_period=timedelta(seconds=1),
                    max_period=timedelta(minutes=1),
                    on_change=False,
                ),
            ),
        ),
    )


@dataclass(frozen=True, slots=True)
class Identity:
    """A VEN certificate chain and its key (PEM files)."""

    cert: Path
    key: Path


def client_context(identity: Identity | None, ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    else:
        context.load_default_certs()
    if identity is not None:
        context.load_cert_chain(identity.cert, identity.key)
    return context


@dataclass
class VenLink:
    """One harness VEN: its TLS identity, its registration and the report requests it got."""

    vtn: VtnUnderTest
    name: str
    identity: Identity | None
    ven_id: VenId | None = None
    registration_id: RegistrationId | None = None
    vtn_id: VtnId | None = None
    requested_poll_freq: timedelta | None = None
    report_requests: dict[ReportRequestId, ReportRequest] = field(default_factory=dict)
    events_seen: dict[str, int] = field(default_factory=dict)
    known_events: dict[str, Event] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        if self.vtn.url.startswith("https"):
            self.ssl_context = client_context(self.identity, self.vtn.ca_file)

    # --- the wire -------------------------------------------------------------------------------

    async def exchange(
        self,
        wire: Wire,
        service: exchanges.Service,
        body: bytes,
        *,
        content_type: str | None = None,
    ) -> tuple[int | None, bytes]:
        """POST raw bytes; (HTTP status, body), or (None, b'') when no HTTP reply came."""
        headers = {"Content-Type": content_type or "application/xml"}
        connector = aiohttp.TCPConnector(ssl=self.ssl_context if self.ssl_context else False)
        status: int | None = None
        reply = b""
        try:
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                session.post(self.vtn.url + service.path, data=body, headers=headers) as answer,
            ):
                status, reply = answer.status, await answer.read()
        except (aiohttp.ClientError, ssl.SSLError, OSError) as exc:
            reply = f"(no HTTP reply: {type(exc).__name__}: {exc})".encode()
        wire.record(
            Exchange(
                at=utc_now(),
                sender=self.name,
                service=service.value,
                request=body.decode(errors="replace"),
                reply=reply.decode(errors="replace"),
                status=status,
            )
        )
        return status, reply if status is not None else b""

    async def send(
        self,
        wire: Wire,
        payload: Payload,
        *,
        service: exchanges.Service | None = None,
        signing_key: signing.SigningKey | None = None,
    ) -> Payload:
        """Post one payload; the reply must be HTTP 200 carrying a schema-valid oadrPayload."""
        service = service or exchanges.service_for(payload, answering=DistributeEvent)
        body = self.encode(payload, signing_key=signing_key)
        status, reply = await self.exchange(wire, service, body)
        check(status is not None, f"no HTTP reply to {type(payload).__name__}")
        check(status == OK, f"HTTP {status} to a valid {type(payload).__name__}")
        return decode_reply(reply, type(payload).__name__)

    async def expect(
        self, wire: Wire, payload: Payload, kind: type[P], *, code: int | None = OK
    ) -> P:
        """Send and require a reply of type `kind` (and, unless None, eiResponse code `code`)."""
        reply = await self.send(wire, payload)
        check(
            isinstance(reply, kind),
            f"{type(payload).__name__} answered with {type(reply).__name__}, "
            f"expected {kind.__name__}",
        )
        assert isinstance(reply, kind)
        if code is not None:
            got = response_code(reply)
            check(got == code, f"{kind.__name__} carries code {got}, expected {code}")
        return reply

    def encode(self, payload: Payload, *, signing_key: signing.SigningKey | None = None) -> bytes:
        """The payload's bytes, XML-signed when the VTN wants signatures (`--sign`)."""
        wanted = self.vtn.sign and self.identity is not None  # no key: nothing to sign with
        key = signing_key or (self.signing_key() if wanted else None)
        return codec.encode(payload, signing_key=key, now=utc_now(), nonce=uuid.uuid4().hex)

    def signing_key(self) -> signing.SigningKey:
        if self.identity is None:
            skip("signed messages need a VEN certificate and key (--cert/--key)")
        chain = self.identity.cert.read_bytes()
        return signing.SigningKey.from_pem(self.identity.key.read_bytes(), chain)

    # --- registration ---------------------------------------------------------------------------

    def create_registration(self, *, reregister: bool = False) -> CreatePartyRegistration:
        return CreatePartyRegistration(
            request_id=RequestId(new_id("reg")),
            ven_name=f"{self.vtn.ven_name}-{self.name}",
            http_pull_model=True,
            registration_id=self.registration_id if reregister else None,
            ven_id=self.ven_id if reregister else None,
        )

    async def register(
        self,
        wire: Wire,
        *,
        reregister: bool = False,
        request: CreatePartyRegistration | None = None,
    ) -> CreatedPartyRegistration:
        request = request or self.create_registration(reregister=reregister)
        created = await self.expect(wire, request, CreatedPartyRegistration)
        check(
            created.response.request_id == request.request_id,
            f"requestID {created.response.request_id!r} does not echo {request.request_id!r}",
        )
        check(created.ven_id, "CreatedPartyRegistration 200 names no venID")
        check(created.registration_id, "CreatedPartyRegistration 200 names no registrationID")
        self.ven_id, self.registration_id = created.ven_id, created.registration_id
        self.vtn_id, self.requested_poll_freq = created.vtn_id, created.requested_poll_freq
        return created

    async def register_reports(self, wire: Wire) -> RegisteredReport:
        assert self.ven_id is not None
        request = RegisterReport(
            request_id=RequestId(new_id("rr")),
            reports=(harness_metadata(utc_now()),),
            ven_id=self.ven_id,
        )
        registered = await self.expect(wire, request, RegisteredReport)
        for report_request in registered.report_requests:
            self.report_requests[report_request.report_request_id] = report_request
        if registered.report_requests:
            await self.expect(wire, self.created_report(), Response)
        return registered

    async def bootstrap(self, wire: Wire) -> None:
        """N1_0020: register, take the VTN's RegisterReport if it sends one, register ours."""
        await self.register(wire)
        await self.drain(wire)
        await self.register_reports(wire)
        await self.drain(wire)

    async def ensure_registered(self, wire: Wire) -> VenId:
        if self.ven_id is None:
            await self.bootstrap(wire)
        assert self.ven_id is not None
        return self.ven_id

    def forget_registration(self) -> None:
        self.ven_id = self.registration_id = None
        self.report_requests.clear()
        self.events_seen.clear()
        self.known_events.clear()

    # --- polling, with the default answers ------------------------------------------------------

    async def poll(self, wire: Wire) -> Payload:
        assert self.ven_id is not None
        reply = await self.send(wire, Poll(ven_id=self.ven_id))
        code = response_code(reply) if isinstance(reply, Response) else None
        check(code in (None, OK), f"the VTN refused our Poll with code {code}")
        return reply

    async def poll_until(
        self, wire: Wire, wanted: Callable[[Payload], bool], what: str, timeout_s: float = 10.0
    ) -> Payload:
        """Poll until a message `wanted` accepts arrives (returned unanswered); everything else
        gets the default answer. Fails when `what` has not come within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            message = await self.poll(wire)
            if wanted(message):
                return message
            await self.answer(wire, message)
            if time.monotonic() > deadline:
                fail(f"no {what} within {timeout_s:.0f} s of polling")
            if isinstance(message, Response):
                await self.vtn.pause()

    async def drain(self, wire: Wire, limit: int = 20) -> None:
        """Poll and answer until the VTN has nothing queued (oadrResponse)."""
        for _ in range(limit):
            message = await self.poll(wire)
            if isinstance(message, Response):
                return
            await self.answer(wire, message)
        fail(f"the VTN still had messages queued after {limit} polls")

    def created_report(self) -> CreatedReport:
        assert self.ven_id is not None
        return CreatedReport(
            response=EiResponse(code=OK, request_id=RequestId("")),
            pending_reports=tuple(self.report_requests),
            ven_id=self.ven_id,
        )

    async def answer(self, wire: Wire, message: Payload) -> None:
        """What a well-behaved pull VEN posts back for a VTN-initiated message."""
        assert self.ven_id is not None
        ok = EiResponse(code=OK, request_id=exchanges.request_id_of(message))
        if isinstance(message, RegisterReport):
            await self.send(wire, RegisteredReport(response=ok, ven_id=self.ven_id))
        elif isinstance(message, CreateReport):
            for request in message.report_requests:
                self.report_requests[request.report_request_id] = request
            await self.send(wire, self.created_report())
        elif isinstance(message, CancelReport):
            for rrid in message.report_request_ids:
                self.report_requests.pop(rrid, None)
            pending = tuple(self.report_requests)
            await self.send(
                wire, CanceledReport(response=ok, pending_reports=pending, ven_id=self.ven_id)
            )
        elif isinstance(message, DistributeEvent):
            await self.answer_events(wire, message)
        elif isinstance(message, RequestReregistration):
            await self.register(wire, reregister=True)
        elif isinstance(message, CancelPartyRegistration):
            await self.send(
                wire,
                CanceledPartyRegistration(
                    response=ok, registration_id=message.registration_id, ven_id=self.ven_id
                ),
            )
            self.forget_registration()

    async def answer_events(
        self, wire: Wire, distribute: DistributeEvent, opt: OptType = OptType.OPT_IN
    ) -> CreatedEvent | None:
        """optIn (or `opt`) to each new or modified event that requires a response."""
        assert self.ven_id is not None
        responses = []
        for event in distribute.events:
            seen = self.events_seen.get(event.event_id)
            self.known_events[event.event_id] = event
            self.events_seen[event.event_id] = event.modification_number
            if seen == event.modification_number:
                continue
            if event.response_required is ResponseRequired.NEVER:
                continue
            responses.append(
                EventResponse(
                    code=OK,
                    request_id=distribute.request_id,
                    event_id=event.event_id,
                    modification_number=event.modification_number,
                    opt_type=opt,
                )
            )
        if not responses:
            return None
        created = CreatedEvent(
            response=EiResponse(code=OK, request_id=distribute.request_id),
            ven_id=self.ven_id,
            event_responses=tuple(responses),
        )
        await self.expect(wire, created, Response)
        return created


def decode_reply(reply: bytes, answering: str) -> Payload:
    try:
        return codec.decode(reply)
    except OadrError as err:
        fail(f"the reply to {answering} is not a valid oadrPayload: {err}")


async def refused(link: VenLink, wire: Wire, service: exchanges.Service, body: bytes) -> str:
    """Send `body`, which the VTN must refuse; say how it did, or fail the case if it took it.

    Refusing is: no TLS session, an HTTP 4xx, or a valid oadrPayload whose eiResponse code is
    not 200. An HTTP 5xx is a crash, not a refusal; a 200 reply without a code is acceptance.
    """
    status, reply = await link.exchange(wire, service, body)
    if status is None:
        return "no TLS session / HTTP reply"
    check(status < 500, f"HTTP {status}: the VTN failed instead of refusing")
    if 400 <= status < 500:
        return f"HTTP {status}"
    check(status == OK, f"HTTP {status}")
    try:
        answer = codec.decode(reply)
    except OadrError as err:
        fail(f"HTTP 200 with a reply that is no valid oadrPayload: {err}")
    if isinstance(answer, RequestReregistration):
        return "oadrRequestReregistration (register first)"
    code = response_code(answer)
    check(code is not None and code != OK, f"accepted: {type(answer).__name__} with code {code}")
    return f"{type(answer).__name__} {code}"


def response_code(payload: Payload) -> int | None:
    response = getattr(payload, "response", None)
    return response.code if isinstance(response, EiResponse) else None


class VtnUnderTest:
    """The VTN, how to reach it as each harness VEN, and how to make it act."""

    def __init__(
        self,
        url: str,
        identities: list[Identity],
        *,
        ca_file: Path | None,
        hook: Hook,
        ven_name: str = "conformance-ven",
        poll_pause_s: float = 0.2,
        requires_signatures: bool = False,
        sign: bool = False,
    ) -> None:
        self.url = url.rstrip("/")
        self.identities = identities
        self.ca_file = ca_file
        self.hook = hook
        self.ven_name = ven_name
        self.poll_pause_s = poll_pause_s
        self.requires_signatures = requires_signatures
        self.sign = sign  # XML-sign every message (a VTN that requires signatures)
        self.vens = [
            VenLink(self, f"ven[{i}]", identity) for i, identity in enumerate(identities or [None])
        ]

    def ven(self, index: int = 0) -> VenLink:
        if index >= len(self.vens):
            skip(f"needs {index + 1} VEN identities: give --cert/--key {index + 1} times")
        return self.vens[index]

    def anonymous(self, name: str = "ven[anonymous]") -> VenLink:
        """A VEN with no client certificate at all."""
        return VenLink(self, name, None)

    def stranger(self, identity: Identity, name: str = "ven[stranger]") -> VenLink:
        return VenLink(self, name, identity)

    def signing_key(self, index: int = 0) -> signing.SigningKey:
        return self.ven(index).signing_key()

    async def act(self, wire: Wire, action: Action) -> dict[str, Any]:
        wire.note(f"hook ({self.hook.name}): {action}")
        try:
            return await self.hook.act(action)
        except HookUnsupported as exc:
            skip(str(exc))
        except HookFailed as exc:
            fail(f"the VTN did not {action['action'].replace('_', ' ')}: {exc}")

    async def pause(self) -> None:
        await asyncio.sleep(self.poll_pause_s)
