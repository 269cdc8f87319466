"""Each conformance case can fail: deliberately broken peers, one per group, and the cases that
must catch them.

Broken VTNs are our VTN behind a small TLS front that forwards to it over plain HTTP and
misbehaves on the way (trusts any client, strips XML signatures, skips schema validation,
rewrites the venID it grants, drops events from the list), or our VTN through a hook that
acknowledges a cancellation and does nothing. Broken VENs are a small scripted VEN
(`FakeVen`) with one fault each: it never acknowledges, answers what must not be answered,
polls too fast, keeps reporting after a cancellation, answers an error for an unknown
cancelled event, opts out of an event it was never sent. Only the cases a fault concerns are
run, to keep this quick.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from lxml import etree

from certs.dev import DevPki
from conformance import scripted_vtn
from conformance.hooks import Action, AdminApiHook
from conformance.model import CaseResult, Verdict
from conformance.runner import run_cases
from conformance.scripted_vtn import ScriptedVtn
from conformance.ven_cases import CASES as VEN_CASES
from conformance.vtn_peer import Identity, VtnUnderTest, harness_metadata
from conformance.vtn_suite import CASES as VTN_CASES
from oadr import codec, exchanges
from oadr.enums import OptReason, OptType, ResponseRequired
from oadr.errors import OadrError
from oadr.model import (
    CanceledReport,
    CancelReport,
    CreatedEvent,
    CreatedPartyRegistration,
    CreatedReport,
    CreateOpt,
    CreatePartyRegistration,
    CreateReport,
    DistributeEvent,
    EiResponse,
    EventId,
    EventResponse,
    OptId,
    Payload,
    Poll,
    RegisteredReport,
    RegisterReport,
    Report,
    ReportInterval,
    ReportPayload,
    ReportRequest,
    ReportRequestId,
    RequestId,
    Response,
    UpdateReport,
    VenId,
)
from oadr.xmlvalues import DS
from tests.integration.test_conformance_ours import OurVtn, our_vtn

Transform = Callable[[bytes], bytes]


def verdicts(results: list[CaseResult]) -> dict[str, Verdict]:
    return {r.case_id: r.verdict for r in results}


def only(cases: list[Any], *ids: str) -> list[Any]:
    chosen = [c for c in cases if c.case_id in ids]
    assert len(chosen) == len(ids)
    return chosen


# --- broken VTNs ----------------------------------------------------------------------------------


def _same(body: bytes) -> bytes:
    return body


@asynccontextmanager
async def broken_front(
    pki: DevPki,
    backend: str,
    *,
    request: Transform = _same,
    reply: Transform = _same,
    verify_clients: bool = True,
    lax: bool = False,
) -> AsyncIterator[str]:
    """A TLS front for a plain-HTTP VTN that transforms what passes through it; `lax`: it
    answers whatever fails the schema with oadrResponse 200 instead of passing it on."""

    async def forward(incoming: web.Request) -> web.Response:
        body = request(await incoming.read())
        if lax and not decodes(body):
            accepted = Response(response=EiResponse(code=200, request_id=RequestId("")))
            return web.Response(body=codec.encode(accepted), content_type="application/xml")
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                backend + incoming.path, data=body, headers={"Content-Type": "application/xml"}
            ) as answer,
        ):
            out = await answer.read()
            return web.Response(
                status=answer.status, body=reply(out) if answer.status == 200 else out,
                content_type="application/xml",
            )  # fmt: skip

    app = web.Application()
    app.router.add_post("/OpenADR2/Simple/2.0b/{service}", forward)
    context = pki.server_context()
    if not verify_clients:
        context.verify_mode = ssl.CERT_NONE
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"https://{host}:{port}"
    finally:
        await runner.cleanup()


def strip_signature(body: bytes) -> bytes:
    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return body
    for signature in root.findall(f"{{{DS}}}Signature"):
        root.remove(signature)
    return etree.tostring(root)


def decodes(body: bytes) -> bool:
    try:
        codec.decode(body)
    except OadrError:
        return False
    return True


def rewrite_reply(change: Callable[[Payload], Payload]) -> Transform:
    def transform(body: bytes) -> bytes:
        try:
            return codec.encode(change(codec.decode(body)))
        except OadrError:
            return body

    return transform


def wrong_ven_id(payload: Payload) -> Payload:
    if isinstance(payload, CreatedPartyRegistration) and payload.ven_id:
        return replace(payload, ven_id=VenId(payload.ven_id + "-not-yours"))
    return payload


def newest_event_only(payload: Payload) -> Payload:
    if isinstance(payload, DistributeEvent) and len(payload.events) > 1:
        return replace(payload, events=payload.events[-1:])
    return payload


@dataclass
class IgnoresCancellation:
    """The VTN acknowledges a cancellation and then never distributes it."""

    inner: AdminApiHook
    name: str = "admin API that ignores cancellations"

    async def act(self, action: Action) -> dict[str, Any]:
        if action["action"] == "cancel_event":
            return {}
        return await self.inner.act(action)


def harness(pki: DevPki, url: str, vtn: OurVtn, *, tls_admin: bool = False) -> VtnUnderTest:
    identities = [Identity(cert=i.chain, key=i.key) for i in pki.vens[:2]]
    context = pki.client_context(pki.vens[0]) if tls_admin else None
    hook = AdminApiHook(vtn.url, vtn.token, context)
    return VtnUnderTest(url, identities, ca_file=pki.vtn.root, hook=hook, poll_pause_s=0.05)


async def run_against_front(
    pki: DevPki, tmp_path: Path, ids: tuple[str, ...], **front: Any
) -> dict[str, Verdict]:
    async with (
        our_vtn(pki, f"sqlite+aiosqlite:///{tmp_path}/vtn.db", tls=False) as vtn,
        broken_front(pki, vtn.url, **front) as url,
    ):
        results = await run_cases(only(VTN_CASES, *ids), harness(pki, url, vtn), timeout_s=15)
    return verdicts(results)


@pytest.mark.parametrize(
    ("front", "caught"),
    [
        pytest.param({"verify_clients": False}, ("VTN-SEC-02", "VTN-SEC-03", "VTN-SEC-04"),
                     id="trusts-any-client"),
        pytest.param({"request": strip_signature}, ("VTN-SEC-06", "VTN-SEC-07"),
                     id="ignores-signatures"),
        pytest.param({"lax": True}, ("VTN-SEC-05",), id="skips-schema-validation"),
        pytest.param({"reply": rewrite_reply(wrong_ven_id)}, ("VTN-REG-02", "VTN-REG-04"),
                     id="grants-a-wrong-ven-id"),
        pytest.param({"reply": rewrite_reply(newest_event_only)}, ("VTN-EVT-02", "VTN-EVT-05"),
                     id="omits-pending-events"),
    ],
)  # fmt: skip
async def test_a_broken_vtn_fails_the_cases_about_its_fault(
    pki: DevPki, tmp_path: Path, front: dict[str, Any], caught: tuple[str, ...]
) -> None:
    # the cases run after VTN-EVT-01 so that the list has an earlier event to omit
    setup = ("VTN-EVT-01",) if "VTN-EVT-02" in caught else ()
    got = await run_against_front(pki, tmp_path, (*setup, *caught), **front)
    assert {c: got[c] for c in caught} == dict.fromkeys(caught, Verdict.FAIL)


async def test_the_same_front_without_faults_passes_those_cases(
    pki: DevPki, tmp_path: Path
) -> None:
    """The front itself is not what fails them (the insecure backend cannot check identities,
    so the security cases about certificates are not in this list)."""
    ids = ("VTN-REG-02", "VTN-REG-04", "VTN-EVT-01", "VTN-EVT-02", "VTN-EVT-05", "VTN-SEC-05")
    got = await run_against_front(pki, tmp_path, ids)
    assert got == dict.fromkeys(ids, Verdict.PASS)


async def test_a_vtn_that_ignores_cancellations_fails_the_cancellation_case(
    pki: DevPki, tmp_path: Path
) -> None:
    async with our_vtn(pki, f"sqlite+aiosqlite:///{tmp_path}/vtn.db") as vtn:
        peer = harness(pki, vtn.url, vtn, tls_admin=True)
        peer.hook = IgnoresCancellation(peer.hook)  # type: ignore[arg-type]
        results = await run_cases(only(VTN_CASES, "VTN-EVT-04"), peer, timeout_s=15)
    (result,) = results
    assert result.verdict is Verdict.FAIL
    assert "cancellation" in result.reason
    assert result.exchanges  # the report shows what was exchanged


# --- broken VENs ----------------------------------------------------------------------------------


@dataclass
class FakeVen:
    """A scripted pull VEN with optional faults, good enough to reach every VEN case."""

    url: str
    context: ssl.SSLContext
    poll_s: float | None = None  # None: as the VTN asks
    acknowledges: bool = True
    answers_everything: bool = False
    honours_report_cancel: bool = True
    errors_unknown_cancel: bool = False
    opts_out_of_unknown_event: bool = False
    ven_id: VenId | None = None
    requests: dict[ReportRequestId, ReportRequest] = field(default_factory=dict)
    last_sent: dict[str, float] = field(default_factory=dict)
    seen: set[tuple[str, int]] = field(default_factory=set)

    async def post(self, session: aiohttp.ClientSession, payload: Payload) -> Payload | None:
        service = exchanges.service_for(payload, answering=DistributeEvent)
        async with session.post(
            self.url + service.path, data=codec.encode(payload),
            headers={"Content-Type": "application/xml"},
        ) as reply:  # fmt: skip
            body = await reply.read()
        return codec.decode(body) if body else None

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(ssl=self.context)
        async with aiohttp.ClientSession(connector=connector) as session:
            created = await self.post(
                session, CreatePartyRegistration(request_id=RequestId("r1"), ven_name="fake")
            )
            assert isinstance(created, CreatedPartyRegistration)
            self.ven_id = created.ven_id
            assert created.requested_poll_freq is not None
            period = self.poll_s or created.requested_poll_freq.total_seconds()
            report = RegisterReport(
                request_id=RequestId("r2"), ven_id=self.ven_id,
                reports=(harness_metadata(datetime.now(UTC)),),
            )  # fmt: skip
            await self.post(session, report)
            if self.opts_out_of_unknown_event:
                opt = CreateOpt(
                    request_id=RequestId("o1"), opt_id=OptId("opt-1"), opt_type=OptType.OPT_OUT,
                    opt_reason=OptReason.NOT_PARTICIPATING, ven_id=self.ven_id or VenId(""),
                    created=datetime.now(UTC), event_id=EventId("never-sent"),
                    modification_number=0,
                )  # fmt: skip
                await self.post(session, opt)
            while True:
                message = await self.post(session, Poll(ven_id=self.ven_id or VenId("")))
                if message is not None and not isinstance(message, Response):
                    await self.handle(session, message)
                    continue
                await self.send_reports(session)
                await asyncio.sleep(period)

    async def handle(self, session: aiohttp.ClientSession, message: Payload) -> None:
        ok = EiResponse(code=200, request_id=exchanges.request_id_of(message))
        if isinstance(message, RegisterReport):
            await self.post(session, RegisteredReport(response=ok, ven_id=self.ven_id))
        elif isinstance(message, CreateReport):
            for request in message.report_requests:
                self.requests[request.report_request_id] = request
            await self.post(
                session,
                CreatedReport(
                    response=ok, ven_id=self.ven_id, pending_reports=tuple(self.requests)
                ),
            )
        elif isinstance(message, CancelReport):
            if self.honours_report_cancel:
                for rrid in message.report_request_ids:
                    self.requests.pop(rrid, None)
            await self.post(session, CanceledReport(response=ok, ven_id=self.ven_id))
        elif isinstance(message, DistributeEvent):
            await self.answer(session, message)

    async def answer(self, session: aiohttp.ClientSession, message: DistributeEvent) -> None:
        responses = []
        for event in message.events:
            key = (event.event_id, event.modification_number)
            fresh = key not in self.seen
            self.seen.add(key)
            wanted = fresh and event.response_required is ResponseRequired.ALWAYS
            if self.answers_everything or (wanted and self.acknowledges):
                unknown_cancel = event.modification_number > 0 and not any(
                    e == event.event_id and m < event.modification_number for e, m in self.seen
                )
                code = 452 if self.errors_unknown_cancel and unknown_cancel else 200
                responses.append(EventResponse(
                    code=code, request_id=message.request_id, event_id=event.event_id,
                    modification_number=event.modification_number, opt_type=OptType.OPT_IN,
                ))  # fmt: skip
        if responses or self.answers_everything:
            await self.post(session, CreatedEvent(
                response=EiResponse(code=200, request_id=message.request_id),
                ven_id=self.ven_id or VenId(""), event_responses=tuple(responses),
            ))  # fmt: skip

    async def send_reports(self, session: aiohttp.ClientSession) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        loop_now = asyncio.get_running_loop().time()
        for rrid, request in list(self.requests.items()):
            back = request.report_back_duration.total_seconds()
            last = self.last_sent.get(rrid)
            if last is not None and (back == 0 or loop_now - last < back):
                continue
            self.last_sent[rrid] = loop_now
            interval = ReportInterval(
                start=now, duration=timedelta(seconds=1),
                payloads=tuple(ReportPayload(r_id=p.r_id, value=1.0)
                               for p in request.specifier_payloads),
            )  # fmt: skip
            await self.post(session, UpdateReport(
                request_id=RequestId(f"u-{rrid}"), ven_id=self.ven_id,
                reports=(Report(report_specifier_id=request.report_specifier_id,
                                report_request_id=request.report_request_id, created=now,
                                report_name="TELEMETRY_USAGE", start=now,
                                duration=timedelta(seconds=1), intervals=(interval,)),),
            ))  # fmt: skip


async def grade_fake_ven(pki: DevPki, ids: tuple[str, ...], **faults: Any) -> dict[str, Verdict]:
    vtn = ScriptedVtn(poll_freq=timedelta(seconds=1))
    serving = await scripted_vtn.serve(vtn, "127.0.0.1", 0, pki.server_context())
    ven = FakeVen(serving.url, pki.client_context(pki.vens[0]), **faults)
    task = asyncio.create_task(ven.run())
    try:
        cases = only(VEN_CASES, "VEN-REG-02", *ids)  # registered first, as in a full run
        results = await run_cases(cases, vtn, timeout_s=15)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)  # a cancel of this call is not swallowed
        await serving.runner.cleanup()
    return verdicts(results)


@pytest.mark.parametrize(
    ("faults", "caught"),
    [
        pytest.param({"acknowledges": False}, ("VEN-EVT-02",),
                     id="never-acknowledges"),
        pytest.param({"answers_everything": True}, ("VEN-EVT-01", "VEN-EVT-03"),
                     id="answers-what-must-not-be-answered"),
        pytest.param({"poll_s": 0.2}, ("VEN-POLL-01",), id="polls-too-often"),
        pytest.param({"honours_report_cancel": False}, ("VEN-REP-03",),
                     id="reports-after-cancellation"),
        pytest.param({"errors_unknown_cancel": True}, ("VEN-EVT-06",),
                     id="errors-for-unknown-cancelled-event"),
        pytest.param({"opts_out_of_unknown_event": True}, ("VEN-OPT-01",),
                     id="opts-out-of-an-event-never-sent"),
    ],
)  # fmt: skip
async def test_a_broken_ven_fails_the_cases_about_its_fault(
    pki: DevPki, faults: dict[str, Any], caught: tuple[str, ...]
) -> None:
    got = await grade_fake_ven(pki, caught, **faults)
    assert got["VEN-REG-02"] is Verdict.PASS  # it got far enough to be graded
    assert {c: got[c] for c in caught} == dict.fromkeys(caught, Verdict.FAIL)


async def test_the_fake_ven_without_faults_passes_those_cases(pki: DevPki) -> None:
    ids = ("VEN-POLL-01", "VEN-EVT-01", "VEN-EVT-02", "VEN-EVT-03", "VEN-EVT-06", "VEN-REP-03")
    got = await grade_fake_ven(pki, ids)
    assert got == dict.fromkeys(("VEN-REG-02", *ids), Verdict.PASS)
