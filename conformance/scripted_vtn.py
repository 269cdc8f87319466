"""The scripted test VTN that grades a VEN (HTTP pull, mutual TLS, aiohttp).

It answers the five services the way a plain 2.0b VTN does: registers the VEN (queueing its own
oadrRegisterReport, the bootstrap sequence N1_0020), hands out queued messages on oadrPoll and
acknowledges everything else. The VEN cases (`ven_cases`) queue events, modifications,
cancellations and report requests with `send()` and wait for the VEN's answers with `wait()`.
Every exchange, its arrival time, its HTTP headers and the TLS session are recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from aiohttp import web

from conformance.model import Exchange, Wire, fail
from oadr import codec, exchanges
from oadr.errors import OadrError
from oadr.model import (
    CanceledOpt,
    CanceledPartyRegistration,
    CanceledReport,
    CancelOpt,
    CancelPartyRegistration,
    CancelReport,
    CreatedOpt,
    CreatedPartyRegistration,
    CreatedReport,
    CreateOpt,
    CreatePartyRegistration,
    CreateReport,
    DistributeEvent,
    EiResponse,
    Event,
    Payload,
    Poll,
    QueryRegistration,
    RegisteredReport,
    RegisterReport,
    RegistrationId,
    Report,
    RequestEvent,
    RequestId,
    Response,
    UpdatedReport,
    UpdateReport,
    VenId,
    VtnId,
)

P = TypeVar("P", bound=Payload)
OK = 200
VTN_ID = VtnId("conformance-vtn")


def utc_now() -> datetime:
    return datetime.now(UTC)


def ok(request_id: str) -> EiResponse:
    return EiResponse(code=OK, request_id=RequestId(request_id), description="OK")


@dataclass(frozen=True, slots=True)
class Arrival:
    """A payload the VEN posted, when (monotonic seconds) and with which HTTP headers."""

    at_s: float
    payload: Payload
    headers: tuple[tuple[str, str], ...]
    tls: tuple[str, str] | None  # (cipher, protocol)


@dataclass
class ScriptedVtn:
    """State of the test VTN; one VEN at a time (the first that registers)."""

    poll_freq: timedelta = timedelta(seconds=1)
    ven_id: VenId | None = None
    registration_id: RegistrationId | None = None
    metadata: tuple[Report, ...] = ()
    events: dict[str, Event] = field(default_factory=dict)
    arrivals: list[Arrival] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # bodies we could not read, and why
    wire: Wire = field(default_factory=Wire)
    _outbox: list[Payload] = field(default_factory=list)
    _fetched: dict[int, float] = field(default_factory=dict)  # id(payload) -> when polled
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    # --- what cases use -------------------------------------------------------------------------

    def send(self, *payloads: Payload) -> None:
        """Queue payloads for the VEN's next polls."""
        self._outbox.extend(payloads)

    def fetched_at(self, payload: Payload) -> float | None:
        """When (monotonic seconds) the VEN polled `payload`, or None if it has not yet."""
        return self._fetched.get(id(payload))

    def distribute(self) -> DistributeEvent:
        """The full list of the VEN's events, as every oadrDistributeEvent carries it."""
        return DistributeEvent(
            request_id=RequestId(f"dist-{uuid.uuid4().hex[:8]}"),
            vtn_id=VTN_ID,
            response=ok(""),
            events=tuple(self.events.values()),
        )

    def since(self, mark: float, kind: type[P]) -> list[P]:
        return [a.payload for a in self.arrivals if a.at_s >= mark and isinstance(a.payload, kind)]

    async def wait(
        self,
        kind: type[P],
        what: str,
        *,
        since: float,
        timeout_s: float,
        match: Callable[[P], bool] = lambda _: True,
    ) -> P:
        """The first `kind` payload the VEN posted after `since` that `match` accepts."""
        deadline = time.monotonic() + timeout_s
        while True:
            for payload in self.since(since, kind):
                if match(payload):
                    return payload
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                fail(f"the VEN sent no {what} within {timeout_s:.0f} s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()

    async def quiet(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def _until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()
        return True

    async def moved_on(self, payload: Payload, timeout_s: float, grace_s: float = 0.3) -> None:
        """Wait until the VEN has polled `payload` and then polled again: whatever it had to
        say about it, it has said (plus `grace_s` for an answer still in flight)."""

        def polled_after() -> bool:
            fetched = self.fetched_at(payload)
            return fetched is not None and any(
                a.at_s > fetched and isinstance(a.payload, Poll) for a in self.arrivals
            )

        if not await self._until(polled_after, timeout_s):
            fail(
                f"the VEN did not poll {type(payload).__name__} and poll again in {timeout_s:.0f} s"
            )
        await asyncio.sleep(grace_s)

    async def gather(
        self,
        kind: type[P],
        count: int,
        *,
        since: float,
        timeout_s: float,
        match: Callable[[P], bool] = lambda _: True,
    ) -> list[Arrival]:
        """Arrivals of `kind` after `since` once there are `count` (or all there are by then)."""

        def found() -> list[Arrival]:
            return [
                a for a in self.arrivals
                if a.at_s >= since and isinstance(a.payload, kind) and match(a.payload)
            ]  # fmt: skip

        await self._until(lambda: len(found()) >= count, timeout_s)
        return found()

    # --- the services ---------------------------------------------------------------------------

    def reply_to(self, message: Payload) -> Payload | None:
        """The scripted VTN's answer; None means an empty HTTP 200 (nothing to say)."""
        rid = exchanges.request_id_of(message)
        if isinstance(message, QueryRegistration):
            return self._created(rid)
        if isinstance(message, CreatePartyRegistration):
            if message.ven_id is None or message.ven_id != self.ven_id:
                # a new registration (a re-registration names the venID it has): new ids and
                # the VTN's own report registration queued, as in the bootstrap sequence
                self.ven_id = self.ven_id or VenId(f"ven-{uuid.uuid4().hex[:10]}")
                self.registration_id = RegistrationId(f"reg-{uuid.uuid4().hex[:10]}")
                self.send(RegisterReport(request_id=RequestId("vtn-reports"), ven_id=self.ven_id))
            return self._created(rid)
        if isinstance(message, CancelPartyRegistration):
            return CanceledPartyRegistration(
                response=ok(rid), registration_id=message.registration_id, ven_id=message.ven_id
            )
        if isinstance(message, Poll):
            if self._outbox:
                queued = self._outbox.pop(0)
                self._fetched[id(queued)] = time.monotonic()
                return queued
            return Response(response=ok(""), ven_id=message.ven_id)
        if isinstance(message, RegisterReport):
            self.metadata = message.reports
            return RegisteredReport(response=ok(rid), ven_id=self.ven_id)
        if isinstance(message, RequestEvent):
            reply = self.distribute()
            return DistributeEvent(
                request_id=reply.request_id, vtn_id=VTN_ID, response=ok(rid), events=reply.events
            )
        if isinstance(message, UpdateReport):
            return UpdatedReport(response=ok(rid), ven_id=self.ven_id)
        if isinstance(message, CreateOpt):
            return CreatedOpt(response=ok(rid), opt_id=message.opt_id)
        if isinstance(message, CancelOpt):
            return CanceledOpt(response=ok(rid), opt_id=message.opt_id)
        if isinstance(message, CreateReport):  # a VEN asking for ours: we offer none
            return CreatedReport(response=ok(rid), ven_id=self.ven_id)
        if isinstance(message, CancelReport):
            return CanceledReport(response=ok(rid), ven_id=self.ven_id)
        return Response(response=ok(rid), ven_id=self.ven_id)

    def _created(self, request_id: str) -> CreatedPartyRegistration:
        return CreatedPartyRegistration(
            response=ok(request_id),
            vtn_id=VTN_ID,
            registration_id=self.registration_id,
            ven_id=self.ven_id,
            requested_poll_freq=self.poll_freq,
        )

    async def handle(self, request: web.Request) -> web.Response:
        service = exchanges.SERVICE_BY_PATH.get(request.path)
        body = await request.read()
        if service is None:
            return web.Response(status=404)
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        cipher = ssl_object.cipher() if isinstance(ssl_object, ssl.SSLObject) else None
        try:
            message = codec.decode(body)
        except OadrError as err:
            self.refused.append(f"{service.value}: {err}")
            self._record(service.value, body, b"", 400)
            return web.Response(status=400, text=str(err))
        self.arrivals.append(
            Arrival(
                at_s=time.monotonic(),
                payload=message,
                headers=tuple((k, v) for k, v in request.headers.items()),
                tls=(cipher[0], cipher[1]) if cipher else None,
            )
        )
        self._changed.set()
        reply = self.reply_to(message)
        out = codec.encode(reply) if reply is not None else b""
        self._record(service.value, body, out, 200)
        return web.Response(body=out, content_type="application/xml")

    def _record(self, service: str, body: bytes, reply: bytes, status: int) -> None:
        self.wire.record(
            Exchange(
                at=utc_now(),
                sender="ven",
                service=service,
                request=body.decode(errors="replace"),
                reply=reply.decode(errors="replace"),
                status=status,
            )
        )


def application(vtn: ScriptedVtn) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    for service in exchanges.Service:
        app.router.add_post(service.path, vtn.handle)
    return app


@dataclass
class Serving:
    vtn: ScriptedVtn
    runner: web.AppRunner
    url: str


async def serve(
    vtn: ScriptedVtn, host: str, port: int, ssl_context: ssl.SSLContext | None
) -> Serving:
    runner = web.AppRunner(application(vtn))
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
    bound_host, bound_port = runner.addresses[0][:2]
    scheme = "https" if ssl_context else "http"
    return Serving(vtn, runner, f"{scheme}://{bound_host}:{bound_port}")
