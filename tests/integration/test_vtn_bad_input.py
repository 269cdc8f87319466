"""Everything bad a VEN can send, as a table: each case gets the response code it must (in a
valid, decodable reply of the right type, HTTP 200), or the HTTP status where no OpenADR reply
can be given. Over real mutual TLS, on SQLite and PostgreSQL; after each case, and after the
whole table on one VTN, the VTN still answers a normal poll.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from certs.ca import CertificateAuthority
from certs.dev import DevPki, make_dev_pki
from certs.files import IdentityFiles
from oadr import codec, exchanges
from oadr.codec import Limits
from oadr.enums import OptType, ReportName, ResponseCode
from oadr.model import (
    CanceledOpt,
    CancelOpt,
    CreatedEvent,
    CreatedPartyRegistration,
    CreatePartyRegistration,
    DistributeEvent,
    EiResponse,
    EventId,
    EventResponse,
    OptId,
    Payload,
    Poll,
    RegisteredReport,
    RegisterReport,
    ReportRequestId,
    RequestEvent,
    RequestId,
    Response,
    Target,
    UpdatedReport,
    UpdateReport,
    VenId,
)
from oadr.signing import SigningKey
from tests.factories import make_data_report, make_event, make_metadata_report
from tests.integration.vtn_harness import RunningVtn, running_vtn, utc_now
from vtn.config import VtnSettings
from vtn.services import operator

HOSTILE = Path(__file__).parents[1] / "fixtures" / "xml" / "hostile"
LIMITS = Limits(max_bytes=64 * 1024)  # small, so the oversize cases stay cheap
NOT_REGISTERED = ResponseCode.NOT_REGISTERED_OR_AUTHORIZED


@dataclass
class Env:
    """A running VTN with two registered VENs (A = pki.vens[0], B = pki.vens[1]); vens[2] is
    never registered."""

    vtn: RunningVtn
    ven_a: VenId
    ven_b: VenId

    @property
    def pki(self) -> DevPki:
        return self.vtn.pki

    async def post(
        self,
        body: bytes,
        *,
        service: str = exchanges.Service.OADR_POLL.value,
        identity: IdentityFiles | None = None,
        content_type: str = "application/xml",
    ) -> tuple[int, bytes]:
        return await post(
            self.vtn.url + exchanges.PATH_PREFIX + service,
            body,
            self.pki.client_context(identity or self.pki.vens[0]),
            content_type,
        )

    def signed(
        self, payload: Payload, identity: IdentityFiles, *, at: datetime | None = None
    ) -> bytes:
        return signed(payload, identity, at=at)

    def usual(self, payload: Payload, identity: IdentityFiles) -> bytes:
        """How a well-behaved VEN sends `payload` to this VTN: signed when it must be."""
        return usual(self.vtn, payload, identity)


def signed(payload: Payload, identity: IdentityFiles, *, at: datetime | None = None) -> bytes:
    key = SigningKey.from_pem(identity.key.read_bytes(), identity.cert.read_bytes())
    return codec.encode(payload, signing_key=key, now=at or utc_now(), nonce=uuid.uuid4().hex)


def usual(vtn: RunningVtn, payload: Payload, identity: IdentityFiles) -> bytes:
    if vtn.context.settings.require_signatures:
        return signed(payload, identity)
    return codec.encode(payload)


async def post(
    url: str, body: bytes, context: ssl.SSLContext, content_type: str = "application/xml"
) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
        session.post(url, data=body, headers={"Content-Type": content_type}) as response,
    ):
        return response.status, await response.read()


async def register(vtn: RunningVtn, identity: IdentityFiles) -> VenId:
    request = CreatePartyRegistration(
        request_id=RequestId("reg"), ven_name=identity.directory.name, http_pull_model=True
    )
    status, body = await post(
        vtn.url + exchanges.Service.EI_REGISTER_PARTY.path,
        usual(vtn, request, identity),
        vtn.pki.client_context(identity),
    )
    assert status == 200, body
    reply = codec.decode(body)
    assert isinstance(reply, CreatedPartyRegistration) and reply.response.code == 200, reply
    assert reply.ven_id
    return reply.ven_id


async def normal_poll_works(env: Env) -> None:
    """The VTN is still up and still answers a registered VEN's poll with 200."""
    status, body = await env.post(env.usual(Poll(ven_id=env.ven_a), env.pki.vens[0]))
    assert status == 200, body
    reply = codec.decode(body)
    assert exchanges.is_reply_to(Poll(ven_id=env.ven_a), reply)
    response: EiResponse | None = getattr(reply, "response", None)
    assert response is None or response.code == ResponseCode.OK, response


# --- the cases ------------------------------------------------------------------------------------

Send = Callable[[Env], Awaitable[tuple[int, bytes]]]


@dataclass(frozen=True)
class Case:
    id: str
    send: Send
    status: int = 200
    reply: type[Payload] | None = None  # the reply type (HTTP 200 only)
    code: ResponseCode | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # a VTN configured differently
    defect: str | None = None  # a known defect of ours: the case is a strict xfail


def fixture(name: str) -> Send:
    async def send(env: Env) -> tuple[int, bytes]:
        return await env.post((HOSTILE / name).read_bytes())

    return send


async def unknown_ven_id(env: Env) -> tuple[int, bytes]:
    return await env.post(codec.encode(Poll(ven_id=VenId("no-such-ven"))))


async def another_vens_id(env: Env) -> tuple[int, bytes]:
    return await env.post(codec.encode(Poll(ven_id=env.ven_b)), identity=env.pki.vens[0])


async def while_unregistered(env: Env) -> tuple[int, bytes]:
    request = RequestEvent(request_id=RequestId("re-1"), ven_id=VenId("made-up"))
    return await env.post(codec.encode(request), service="EiEvent", identity=env.pki.vens[2])


async def schema_invalid_cancel_opt(env: Env) -> tuple[int, bytes]:
    """A CancelOpt with an element the schema does not allow: answered in its own reply type."""
    body = codec.encode(
        CancelOpt(request_id=RequestId("co-1"), opt_id=OptId("opt-1"), ven_id=env.ven_a)
    )
    body = body.replace(b"<ei:optID>opt-1</ei:optID>", b"<ei:optID>opt-1</ei:optID><ei:bogus/>")
    assert b"bogus" in body
    return await env.post(body, service="EiOpt")


async def oversize(env: Env) -> tuple[int, bytes]:
    return await env.post(b"<" + b"x" * (LIMITS.max_bytes + 4096) + b"/>")


async def over_the_codec_limit(env: Env) -> tuple[int, bytes]:
    """Over the codec's limit but under the HTTP cap: refused by the codec, in a reply."""
    body = codec.encode(Poll(ven_id=env.ven_a))
    padding = b"<!--" + b"x" * (LIMITS.max_bytes - len(body)) + b"-->"
    return await env.post(body + padding)


async def wrong_content_type(env: Env) -> tuple[int, bytes]:
    return await env.post(codec.encode(Poll(ven_id=env.ven_a)), content_type="application/json")


async def unknown_service(env: Env) -> tuple[int, bytes]:
    return await env.post(codec.encode(Poll(ven_id=env.ven_a)), service="EiNoSuchService")


async def wrong_service(env: Env) -> tuple[int, bytes]:
    return await env.post(codec.encode(Poll(ven_id=env.ven_a)), service="EiEvent")


async def created_event_never_sent(env: Env) -> tuple[int, bytes]:
    """A answers an event that exists, but was sent to B only."""
    now = utc_now()
    event = replace(
        make_event(start=now + timedelta(hours=1)),
        event_id=EventId(uuid.uuid4().hex),
        target=Target(ven_ids=(env.ven_b,)),
    )
    await operator.create_event(env.vtn.context, event, actor="test", now=now)
    answer = CreatedEvent(
        response=EiResponse(code=200, request_id=RequestId("d-1")),
        ven_id=env.ven_a,
        event_responses=(
            EventResponse(
                code=200,
                request_id=RequestId("d-1"),
                event_id=event.event_id,
                modification_number=0,
                opt_type=OptType.OPT_IN,
            ),
        ),
    )
    return await env.post(codec.encode(answer), service="EiEvent")


async def cancel_unknown_opt(env: Env) -> tuple[int, bytes]:
    cancel = CancelOpt(request_id=RequestId("co-1"), opt_id=OptId("no-such-opt"), ven_id=env.ven_a)
    return await env.post(codec.encode(cancel), service="EiOpt")


async def update_unknown_request(env: Env) -> tuple[int, bytes]:
    update = UpdateReport(
        request_id=RequestId("up-1"),
        reports=(make_data_report(report_request_id="never-requested"),),
        ven_id=env.ven_a,
    )
    return await env.post(codec.encode(update), service="EiReport")


async def metadata_with_data(env: Env) -> tuple[int, bytes]:
    """METADATA reports carry reportRequestID 0 and no intervals; this one has a request id."""
    register = RegisterReport(
        request_id=RequestId("rr-1"),
        reports=(
            make_metadata_report(
                ReportName.METADATA_TELEMETRY_USAGE, report_request_id=ReportRequestId("7")
            ),
        ),
        ven_id=env.ven_a,
    )
    return await env.post(codec.encode(register), service="EiReport")


async def vtn_only_payload(env: Env) -> tuple[int, bytes]:
    distribute = DistributeEvent(
        request_id=RequestId("de-1"), vtn_id=env.vtn.context.settings.vtn_id
    )
    return await env.post(codec.encode(distribute), service="EiEvent")


def signed_poll(at: Callable[[], datetime], signer: int = 0) -> Send:
    async def send(env: Env) -> tuple[int, bytes]:
        body = env.signed(Poll(ven_id=env.ven_a), env.pki.vens[signer], at=at())
        return await env.post(body)

    return send


async def replayed(env: Env) -> tuple[int, bytes]:
    body = env.signed(Poll(ven_id=env.ven_a), env.pki.vens[0])
    first_status, first = await env.post(body)
    first_reply = codec.decode(first)
    assert first_status == 200 and isinstance(first_reply, Response | RegisterReport)
    return await env.post(body)


async def unsigned_poll(env: Env) -> tuple[int, bytes]:
    return await env.post(codec.encode(Poll(ven_id=env.ven_a)))


CASES = [
    Case("unknown-venID", unknown_ven_id, reply=Response, code=NOT_REGISTERED),
    Case("another-VENs-venID", another_vens_id, reply=Response, code=NOT_REGISTERED),
    Case("payload-while-unregistered", while_unregistered, reply=DistributeEvent,
         code=NOT_REGISTERED),
    Case("schema-invalid-poll", fixture("schema-invalid-poll-without-venid.xml"),
         reply=Response, code=ResponseCode.INVALID_DATA),
    Case("schema-invalid-in-its-reply-type", schema_invalid_cancel_opt, reply=CanceledOpt,
         code=ResponseCode.INVALID_DATA),
    Case("not-xml", fixture("not-xml.xml"), reply=Response, code=ResponseCode.INVALID_DATA),
    Case("truncated-xml", fixture("truncated.xml"), reply=Response,
         code=ResponseCode.INVALID_DATA),
    Case("billion-laughs", fixture("billion-laughs.xml"), reply=Response,
         code=ResponseCode.INVALID_DATA),
    Case("xxe-file", fixture("xxe-file.xml"), reply=Response, code=ResponseCode.INVALID_DATA),
    Case("oversize-body", oversize, status=413),
    Case("over-the-codec-limit", over_the_codec_limit, reply=Response,
         code=ResponseCode.INVALID_DATA),
    Case("wrong-content-type", wrong_content_type, status=415),
    Case("unknown-service-path", unknown_service, status=404),
    Case("payload-to-the-wrong-service", wrong_service, reply=Response,
         code=ResponseCode.NOT_RECOGNIZED),
    Case("createdEvent-for-an-event-never-sent", created_event_never_sent, reply=Response,
         code=ResponseCode.INVALID_ID),
    Case("cancelOpt-of-an-unknown-optID", cancel_unknown_opt, reply=CanceledOpt,
         code=ResponseCode.INVALID_ID),
    Case("updateReport-for-an-unknown-request", update_unknown_request, reply=UpdatedReport,
         code=ResponseCode.INVALID_ID),
    Case("metadata-report-breaking-the-rules", metadata_with_data, reply=RegisteredReport,
         code=ResponseCode.INVALID_DATA),
    Case("vtn-only-payload-from-a-ven", vtn_only_payload, reply=Response,
         code=ResponseCode.NOT_RECOGNIZED),
    Case("stale-signature", signed_poll(lambda: utc_now() - timedelta(minutes=10)),
         reply=Response, code=NOT_REGISTERED),
    Case("signature-from-the-future", signed_poll(lambda: utc_now() + timedelta(minutes=10)),
         reply=Response, code=NOT_REGISTERED),
    Case("replayed-signed-message", replayed, reply=Response, code=NOT_REGISTERED),
    Case("signed-by-another-certificate", signed_poll(utc_now, signer=1), reply=Response,
         code=NOT_REGISTERED),
    Case("unsigned-when-signatures-required", unsigned_poll, reply=Response,
         code=NOT_REGISTERED, settings={"require_signatures": True}),
]  # fmt: skip


def settings(**overrides: Any) -> VtnSettings:
    key = None  # replies are signed only when a signing key is configured
    return replace(VtnSettings(limits=LIMITS, signing_key=key), **overrides)


async def started_env(vtn: RunningVtn) -> Env:
    return Env(vtn, await register(vtn, vtn.pki.vens[0]), await register(vtn, vtn.pki.vens[1]))


def check(case: Case, status: int, body: bytes) -> None:
    assert status == case.status, (case.id, status, body[:300])
    if case.status != 200:
        return
    reply = codec.decode(body)  # valid against the 2.0b schema, or this raises
    assert type(reply) is case.reply, (case.id, reply)
    response = getattr(reply, "response", None)
    assert isinstance(response, EiResponse)
    assert response.code == case.code, (case.id, response)


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, marks=[pytest.mark.xfail(strict=True, reason=case.defect)])
        if case.defect
        else case
        for case in CASES
    ],
    ids=[case.id for case in CASES],
)
async def test_bad_input_gets_the_right_answer(pki: DevPki, database_url: str, case: Case) -> None:
    async with running_vtn(pki, database_url, settings(**case.settings)) as vtn:
        env = await started_env(vtn)
        status, body = await case.send(env)
        check(case, status, body)
        await normal_poll_works(env)


async def test_the_vtn_survives_the_whole_table(pki: DevPki, database_url: str) -> None:
    async with running_vtn(pki, database_url, settings()) as vtn:
        env = await started_env(vtn)
        for case in CASES:
            if case.settings:
                continue
            status, body = await case.send(env)
            if case.defect:  # the answer is wrong (see the case), but it is an answer
                assert status == 200 and codec.decode(body)
            else:
                check(case, status, body)
        await normal_poll_works(env)


async def test_a_revoked_ven_certificate_is_refused_on_the_next_request(
    tmp_path: Path, database_url: str
) -> None:
    own_pki = make_dev_pki(tmp_path / "pki")  # revoking must not touch the session's PKI
    async with running_vtn(own_pki, database_url, settings()) as vtn:
        env = await started_env(vtn)
        await normal_poll_works(env)
        CertificateAuthority.open(own_pki.dso_ca).revoke(
            own_pki.vens[0].load_certificate(), utc_now()
        )
        status, body = await env.post(codec.encode(Poll(ven_id=env.ven_a)))
        check(Case("revoked", unknown_ven_id, reply=Response, code=NOT_REGISTERED), status, body)
        # The other VEN, whose certificate stands, is still served.
        status, body = await env.post(
            codec.encode(Poll(ven_id=env.ven_b)), identity=own_pki.vens[1]
        )
        reply = codec.decode(body)
        assert status == 200 and isinstance(reply, Response | RegisterReport)
