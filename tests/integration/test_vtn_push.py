"""HTTP push over real mutual TLS, on SQLite and PostgreSQL: a VEN that registered with
oadrHttpPullModel=false runs its own HTTPS endpoint (its VEN certificate, requiring the VTN's
client certificate); the VTN POSTs the bootstrap RegisterReport and each event modification
to it, stores the oadrCreatedEvent it answers, retries while it is down, survives a restart,
and never delivers the same thing twice."""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web

from certs import fingerprint, tls
from certs.dev import DevPki
from certs.files import IdentityFiles
from oadr import codec
from oadr.enums import OptType
from oadr.exchanges import ok_response
from oadr.model import (
    CreatedEvent,
    CreatedPartyRegistration,
    CreatePartyRegistration,
    DistributeEvent,
    Event,
    EventId,
    EventResponse,
    Payload,
    RegisteredReport,
    RegisterReport,
    RegistrationId,
    RequestId,
    Response,
    Target,
    VenId,
)
from tests.factories import make_event
from tests.integration.vtn_harness import RunningVtn, utc_now
from tests.ports import free_port
from vtn.app import CONTEXT, VtnConfig, build_app
from vtn.config import VtnSettings
from vtn.push import PushConfig, retry_delay
from vtn.services import operator
from vtn.vens import Status, VenRecord

WAIT_S = 20.0
FAST_RETRY = PushConfig(
    first_retry=timedelta(milliseconds=50),
    max_retry=timedelta(milliseconds=400),
    timeout=timedelta(seconds=5),
)


async def wait_for(
    what: str, check: Callable[[], Awaitable[Any]], timeout_s: float = WAIT_S
) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := await check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)
    return result


@dataclass
class PushVen:
    """The VEN's HTTPS endpoint: records what the VTN pushed and answers like a VEN would."""

    identity: IdentityFiles
    received: list[tuple[str, Payload]] = field(default_factory=list)
    client_fingerprints: set[str] = field(default_factory=set)
    ven_id: str = ""  # what the VTN assigned, once registered
    close_each: bool = False  # close the connection after each answer (the VTN must reconnect)
    resumed: list[bool] = field(default_factory=list)  # per request: its TLS session resumed

    async def handle(self, request: web.Request) -> web.Response:
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = tls.peer_certificate(ssl_object)
        assert der is not None  # the server context requires a client certificate
        assert isinstance(ssl_object, ssl.SSLObject)
        self.resumed.append(ssl_object.session_reused)
        self.client_fingerprints.add(fingerprint.of_der(der))
        payload = codec.decode(await request.read())
        self.received.append((request.match_info["service"], payload))
        reply = answer(payload, VenId(self.ven_id))
        response = web.Response(body=codec.encode(reply), content_type="application/xml")
        if self.close_each:
            response.force_close()
        return response

    def of_type(self, kind: type[Payload]) -> list[Payload]:
        return [payload for _, payload in self.received if isinstance(payload, kind)]

    async def has(self, kind: type[Payload]) -> bool:
        return bool(self.of_type(kind))

    def event_modifications(self) -> list[tuple[EventId, int]]:
        """Every event modification pushed to this VEN, in the order they arrived."""
        seen: list[tuple[EventId, int]] = []
        for distribute in self.of_type(DistributeEvent):
            assert isinstance(distribute, DistributeEvent)
            seen += [(e.event_id, e.modification_number) for e in distribute.events]
        return seen


def answer(payload: Payload, ven_id: VenId) -> Payload:
    """optIn to every event; acknowledge everything else."""
    if isinstance(payload, DistributeEvent):
        return CreatedEvent(
            response=ok_response(payload.request_id),
            ven_id=ven_id,
            event_responses=tuple(
                EventResponse(
                    code=200,
                    request_id=payload.request_id,
                    event_id=event.event_id,
                    modification_number=event.modification_number,
                    opt_type=OptType.OPT_IN,
                )
                for event in payload.events
            ),
        )
    if isinstance(payload, RegisterReport):
        return RegisteredReport(response=ok_response(payload.request_id), ven_id=ven_id)
    return Response(response=ok_response(RequestId("")), ven_id=ven_id)


@asynccontextmanager
async def serving(
    ven: PushVen, pki: DevPki, port: int, context: ssl.SSLContext | None = None
) -> AsyncIterator[None]:
    app = web.Application()
    app.router.add_post("/OpenADR2/Simple/2.0b/{service}", ven.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    context = context or tls.server_context(ven.identity, pki.trust_store())  # needs a client cert
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    try:
        yield
    finally:
        await runner.cleanup()


@asynccontextmanager
async def push_vtn(pki: DevPki, database_url: str) -> AsyncIterator[RunningVtn]:
    config = VtnConfig(
        settings=VtnSettings(),
        database_url=database_url,
        trust=pki.trust_store(),
        push=replace(FAST_RETRY, tls=pki.client_context(pki.vtn)),
    )
    app = build_app(config)
    await app[CONTEXT].store.create_all()
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.server_context()).start()
    host, port = runner.addresses[0][:2]
    try:
        yield RunningVtn(url=f"https://{host}:{port}", app=app, pki=pki)
    finally:
        await runner.cleanup()


async def register_push(vtn: RunningVtn, ven: PushVen, port: int) -> VenId:
    reply = await vtn.client(ven.identity).send(
        CreatePartyRegistration(
            request_id=RequestId("reg-1"),
            ven_name="push-ven",
            http_pull_model=False,
            transport_address=f"https://127.0.0.1:{port}",
        )
    )
    assert isinstance(reply, CreatedPartyRegistration) and reply.response.code == 200, reply
    assert reply.ven_id is not None
    ven.ven_id = reply.ven_id
    return reply.ven_id


async def create_event(vtn: RunningVtn, ven_id: VenId) -> Event:
    now = utc_now()
    event = replace(
        make_event(start=now + timedelta(hours=1)),
        event_id=EventId(uuid.uuid4().hex),
        target=Target(ven_ids=(ven_id,)),
    )
    return await operator.create_event(vtn.context, event, actor="test", now=now)


async def opt_of(vtn: RunningVtn, event_id: str) -> tuple[OptType | None, int | None]:
    async with vtn.context.store.transaction() as tx:
        deliveries = await tx.deliveries.for_event(event_id)
    if not deliveries:
        return None, None
    (delivery,) = deliveries
    return delivery.opt_type, delivery.opt_modification_number


async def test_a_push_ven_gets_each_modification_once_and_its_opt_in_is_stored(
    pki: DevPki, database_url: str
) -> None:
    ven = PushVen(pki.vens[0])
    port = free_port()
    async with serving(ven, pki, port), push_vtn(pki, database_url) as vtn:
        ven_id = await register_push(vtn, ven, port)
        # Bootstrap: the VTN's own RegisterReport is pushed to EiReport, and answered.
        await wait_for("the VTN's RegisterReport", lambda: ven.has(RegisterReport))
        assert ("EiReport", ven.of_type(RegisterReport)[0]) in ven.received

        event = await create_event(vtn, ven_id)
        await wait_for("the stored optIn", lambda: opted(vtn, event.event_id, 0))
        await operator.modify_event(
            vtn.context, event.event_id, actor="test", now=utc_now(), priority=2
        )
        await wait_for("the optIn to modification 1", lambda: opted(vtn, event.event_id, 1))
        await asyncio.sleep(0.3)  # room for a duplicate to show up

        assert ven.event_modifications() == [(event.event_id, 0), (event.event_id, 1)]
        assert {service for service, p in ven.received if isinstance(p, DistributeEvent)} == {
            "EiEvent"
        }
        assert len(ven.of_type(RegisterReport)) == 1
        assert ven.client_fingerprints == {fingerprint.of_pem(pki.vtn.cert.read_bytes())}


async def test_a_new_connection_to_a_push_ven_resumes_its_tls_session_and_no_other_vens(
    pki: DevPki, database_url: str
) -> None:
    """Pushing event after event to a VEN, the VTN resumes the TLS session of its last
    connection to that VEN (no certificate chains, no signatures: the handshake's cost), and
    never offers it to another endpoint, even one that would take it."""
    first, other = (PushVen(pki.vens[i], close_each=True) for i in (0, 1))
    # One server context for both endpoints: the same ticket key, so the second endpoint would
    # resume a session the first one issued, if the VTN offered it there.
    shared = tls.server_context(first.identity, pki.trust_store())
    first_port, other_port = free_port(), free_port()
    async with (
        serving(first, pki, first_port, shared),
        serving(other, pki, other_port, shared),
        push_vtn(pki, database_url) as vtn,
    ):
        first_id = await register_push(vtn, first, first_port)
        await wait_for("the first VEN's RegisterReport", lambda: first.has(RegisterReport))
        event = await create_event(vtn, first_id)
        await wait_for("the first VEN's optIn", lambda: opted(vtn, event.event_id, 0))
        await register_push(vtn, other, other_port)
        await wait_for("the other VEN's RegisterReport", lambda: other.has(RegisterReport))

    assert first.event_modifications() == [(event.event_id, 0)]
    assert first.resumed[0] is False, "the very first connection is a full handshake"
    assert len(first.resumed) >= 2 and all(first.resumed[1:]), first.resumed
    assert other.resumed[0] is False, "a session is offered to its own endpoint only"
    vtn_fingerprint = fingerprint.of_pem(pki.vtn.cert.read_bytes())
    assert first.client_fingerprints == {vtn_fingerprint}  # resumed: still the VTN's cert


async def test_a_push_to_a_ven_that_is_down_is_retried_until_it_is_up(
    pki: DevPki, database_url: str
) -> None:
    ven = PushVen(pki.vens[1])
    port = free_port()  # nothing listens there yet
    async with push_vtn(pki, database_url) as vtn:
        ven_id = await register_push(vtn, ven, port)
        event = await create_event(vtn, ven_id)
        await asyncio.sleep(0.5)  # several failed attempts
        assert await opt_of(vtn, event.event_id) == (None, None), "not delivered while down"
        async with serving(ven, pki, port):
            await wait_for("the stored optIn", lambda: opted(vtn, event.event_id, 0))
            await asyncio.sleep(0.3)
    assert ven.event_modifications() == [(event.event_id, 0)]
    assert len(ven.of_type(RegisterReport)) == 1


async def test_what_is_due_is_pushed_after_a_restart(pki: DevPki, database_url: str) -> None:
    ven = PushVen(pki.vens[2])
    port = free_port()
    async with push_vtn(pki, database_url) as vtn:
        ven_id = await register_push(vtn, ven, port)
        event = await create_event(vtn, ven_id)
    # The VTN stopped with the event undelivered; a new one on the same database pushes it.
    async with serving(ven, pki, port), push_vtn(pki, database_url) as restarted:
        await wait_for("the stored optIn", lambda: opted(restarted, event.event_id, 0))
        await asyncio.sleep(0.3)
    assert ven.event_modifications() == [(event.event_id, 0)]
    assert len(ven.of_type(RegisterReport)) == 1


async def opted(vtn: RunningVtn, event_id: str, modification: int) -> bool:
    return await opt_of(vtn, event_id) == (OptType.OPT_IN, modification)


@pytest.mark.parametrize(
    ("failures", "fraction", "expected_ms"),
    [(1, 0.0, 25), (1, 1.0, 50), (2, 1.0, 100), (3, 0.5, 150), (10, 1.0, 400), (99, 0.0, 200)],
)
def test_retry_delay_doubles_with_jitter_up_to_the_cap(
    failures: int, fraction: float, expected_ms: int
) -> None:
    assert retry_delay(failures, FAST_RETRY, fraction) == timedelta(milliseconds=expected_ms)


async def test_an_event_for_many_push_vens_reaches_each_once_with_bounded_concurrency(
    pki: DevPki, database_url: str
) -> None:
    """One event for 60 push VENs: each gets it once and its optIn is stored, while no more
    than `PushConfig.concurrency` pushes are in flight (so the database pool is never queued
    past its timeout, as a task per VEN did at 10,000 VENs)."""
    count, concurrency = 60, 4
    in_flight = [0, 0]  # now, most
    pushed: dict[str, list[Payload]] = {}

    async def handle(request: web.Request) -> web.Response:
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        try:
            await asyncio.sleep(0.02)  # a VEN that takes a moment: overlaps become visible
            ven_id = VenId(request.match_info["ven"])
            payload = codec.decode(await request.read())
            pushed.setdefault(ven_id, []).append(payload)
            return web.Response(body=codec.encode(answer(payload, ven_id)))
        finally:
            in_flight[0] -= 1

    app = web.Application()
    app.router.add_post("/ven/{ven}/OpenADR2/Simple/2.0b/{service}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    context = tls.server_context(pki.vens[0], pki.trust_store())
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    config = VtnConfig(
        settings=VtnSettings(),
        database_url=database_url,
        trust=pki.trust_store(),
        push=replace(FAST_RETRY, tls=pki.client_context(pki.vtn), concurrency=concurrency),
    )
    vtn_app = build_app(config)
    store = vtn_app[CONTEXT].store
    await store.create_all()
    now = utc_now()
    ven_ids = [VenId(f"push-{i:03d}") for i in range(count)]
    async with store.transaction() as tx:
        for i, ven_id in enumerate(ven_ids):
            await tx.vens.save(
                VenRecord(
                    ven_id=ven_id, fingerprint=f"FP:{i:03d}", ven_name=ven_id,
                    status=Status.APPROVED, created_at=now,
                    registration_id=RegistrationId(f"reg-{i}"), registered_at=now,
                    http_pull_model=False, transport_address=f"https://127.0.0.1:{port}/ven/{ven_id}",
                )
            )  # fmt: skip
    vtn_runner = web.AppRunner(vtn_app)
    await vtn_runner.setup()  # starts the pusher
    try:
        event = replace(
            make_event(start=now + timedelta(hours=1)),
            event_id=EventId("for-all"),
            target=Target(ven_ids=tuple(ven_ids)),
        )
        await operator.create_event(vtn_app[CONTEXT], event, actor="test", now=now)

        async def all_opted_in() -> bool:
            async with store.transaction() as tx:
                deliveries = await tx.deliveries.for_event("for-all")
            return len([d for d in deliveries if d.opt_type is OptType.OPT_IN]) == count

        await wait_for("every optIn stored", all_opted_in)
        await asyncio.sleep(0.3)  # room for a duplicate to show up
    finally:
        await vtn_runner.cleanup()
        await runner.cleanup()
    assert sorted(pushed) == ven_ids
    assert all([type(p) for p in payloads] == [DistributeEvent] for payloads in pushed.values()), (
        "each VEN pushed the event once"
    )
    assert 1 < in_flight[1] <= concurrency
