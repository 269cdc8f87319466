"""The VTN end to end over real mutual TLS on 127.0.0.1, on SQLite and PostgreSQL: a VEN
registers (bootstrap sequence), reports, receives events by poll, answers them, and the
operator's view shows it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from certs.dev import DevPki
from oadr import exchanges
from oadr.enums import EventStatus, OptType, ReportName, ResponseCode
from oadr.model import (
    CreatedEvent,
    CreatedPartyRegistration,
    CreatedReport,
    CreatePartyRegistration,
    DistributeEvent,
    EiResponse,
    Event,
    EventResponse,
    Poll,
    QueryRegistration,
    RegisteredReport,
    RegisterReport,
    RequestEvent,
    RequestId,
    Response,
    Target,
    UpdatedReport,
    UpdateReport,
    VenId,
)
from tests.factories import make_data_report, make_event, make_metadata_report
from tests.integration.vtn_harness import VenClient, running_vtn, utc_now
from vtn.services import operator

pytestmark = pytest.mark.asyncio


def targeted_event(now: datetime, ven_id: VenId) -> Event:
    return replace(make_event(start=now + timedelta(hours=1)), target=Target(ven_ids=(ven_id,)))


async def register(client: VenClient, name: str = "house-1") -> CreatedPartyRegistration:
    reply = await client.send(
        CreatePartyRegistration(request_id=RequestId("reg-1"), ven_name=name, http_pull_model=True)
    )
    assert isinstance(reply, CreatedPartyRegistration)
    assert reply.response.code == ResponseCode.OK, reply.response
    return reply


async def bootstrap(client: VenClient) -> VenId:
    """Registration, then the VTN's RegisterReport fetched by poll and acknowledged."""
    created = await register(client)
    assert created.ven_id is not None
    ven_id = created.ven_id
    vtn_reports = await client.send(Poll(ven_id=ven_id))
    assert isinstance(vtn_reports, RegisterReport)
    ack = await client.send(
        RegisteredReport(
            response=EiResponse(code=200, request_id=vtn_reports.request_id), ven_id=ven_id
        )
    )
    assert isinstance(ack, Response) and ack.response.code == 200
    return ven_id


async def test_query_before_registration_offers_2_0b_without_ids(
    pki: DevPki, database_url: str
) -> None:
    async with running_vtn(pki, database_url) as vtn:
        reply = await vtn.client().send(QueryRegistration(request_id=RequestId("q-1")))
    assert isinstance(reply, CreatedPartyRegistration)
    assert reply.response.code == 200 and reply.response.request_id == "q-1"
    assert reply.ven_id is None
    assert reply.profiles[0].profile_name == "2.0b"
    assert reply.requested_poll_freq == timedelta(seconds=10)


async def test_registration_keeps_the_ven_id_on_re_registration(
    pki: DevPki, database_url: str
) -> None:
    async with running_vtn(pki, database_url) as vtn:
        client = vtn.client()
        first = await register(client)
        again = await register(client)
        query = await client.send(QueryRegistration(request_id=RequestId("q-2")))
    assert first.ven_id and first.ven_id == again.ven_id == query.ven_id  # type: ignore[union-attr]
    assert first.registration_id == again.registration_id


async def test_full_pull_session(pki: DevPki, database_url: str) -> None:
    async with running_vtn(pki, database_url) as vtn:
        client = vtn.client()
        ven_id = await bootstrap(client)

        # The VEN registers its telemetry; the VTN answers with a report request.
        metadata = make_metadata_report(report_name=ReportName.METADATA_TELEMETRY_USAGE)
        registered = await client.send(
            RegisterReport(request_id=RequestId("rr-1"), reports=(metadata,), ven_id=ven_id)
        )
        assert isinstance(registered, RegisteredReport) and registered.response.code == 200
        (request,) = registered.report_requests
        assert request.report_specifier_id == metadata.report_specifier_id
        ack = await client.send(
            CreatedReport(
                response=EiResponse(code=200, request_id=RequestId("rr-1")),
                pending_reports=(request.report_request_id,),
                ven_id=ven_id,
            )
        )
        assert isinstance(ack, Response) and ack.response.code == 200

        # Nothing queued: an empty poll gets oadrResponse 200 (G1_4011).
        empty = await client.send(Poll(ven_id=ven_id))
        assert isinstance(empty, Response) and empty.response.code == 200

        # The operator creates an event for this VEN; the next poll delivers it, once.
        now = utc_now()
        event = await operator.create_event(
            vtn.context, targeted_event(now, ven_id), actor="test", now=now
        )
        delivered = await client.send(Poll(ven_id=ven_id))
        assert isinstance(delivered, DistributeEvent)
        assert [e.event_id for e in delivered.events] == [event.event_id]
        assert delivered.events[0].status == EventStatus.FAR
        again = await client.send(Poll(ven_id=ven_id))
        assert isinstance(again, Response), "each modification is delivered once"

        # The VEN opts in; the VTN stores it per VEN per modification.
        answer = await client.send(
            CreatedEvent(
                response=EiResponse(code=200, request_id=delivered.request_id),
                ven_id=ven_id,
                event_responses=(
                    EventResponse(
                        code=200,
                        request_id=delivered.request_id,
                        event_id=event.event_id,
                        modification_number=0,
                        opt_type=OptType.OPT_IN,
                    ),
                ),
            )
        )
        assert isinstance(answer, Response) and answer.response.code == 200
        async with vtn.context.store.transaction() as tx:
            (delivery,) = await tx.deliveries.for_event(event.event_id)
        assert delivery.ven_id == ven_id and delivery.opt_type == OptType.OPT_IN

        # Telemetry arrives and is stored as a time series.
        r_id = request.specifier_payloads[0].r_id
        update = await client.send(
            UpdateReport(
                request_id=RequestId("up-1"),
                ven_id=ven_id,
                reports=(
                    make_data_report(
                        request.report_request_id,
                        values=(1.5, 2.5, 3.5),
                        r_id=r_id,
                        start=now,
                        report_specifier_id=request.report_specifier_id,
                    ),
                ),
            )
        )
        assert isinstance(update, UpdatedReport) and update.response.code == 200
        async with vtn.context.store.transaction() as tx:
            readings = await tx.readings.query(ven_id=ven_id)
        assert [r.value for r in readings] == [1.5, 2.5, 3.5]

        # A modification and a cancellation each reach the VEN once, with the full list.
        await operator.modify_event(
            vtn.context, event.event_id, actor="test", now=utc_now(), priority=1
        )
        modified = await client.send(Poll(ven_id=ven_id))
        assert isinstance(modified, DistributeEvent)
        assert modified.events[0].modification_number == 1
        await operator.cancel_event(vtn.context, event.event_id, actor="test", now=utc_now())
        cancelled = await client.send(Poll(ven_id=ven_id))
        assert isinstance(cancelled, DistributeEvent)
        assert cancelled.events[0].status == EventStatus.CANCELLED
        assert cancelled.events[0].modification_number == 2

        # oadrRequestEvent always returns the full current list.
        listed = await client.send(RequestEvent(request_id=RequestId("re-1"), ven_id=ven_id))
        assert isinstance(listed, DistributeEvent)
        assert listed.response is not None and listed.response.request_id == "re-1"


async def test_a_ven_cannot_act_for_another_ven(pki: DevPki, database_url: str) -> None:
    async with running_vtn(pki, database_url) as vtn:
        victim = await bootstrap(vtn.client(pki.vens[0]))
        impostor = vtn.client(pki.vens[1])
        await register(impostor, name="impostor")
        reply = await impostor.send(Poll(ven_id=victim))
    assert isinstance(reply, Response)
    assert reply.response.code == ResponseCode.NOT_REGISTERED_OR_AUTHORIZED


async def test_payload_while_unregistered_is_refused(pki: DevPki, database_url: str) -> None:
    async with running_vtn(pki, database_url) as vtn:
        reply = await vtn.client().send(
            RequestEvent(request_id=RequestId("re-1"), ven_id=VenId("never-registered"))
        )
    assert isinstance(reply, DistributeEvent)
    assert reply.response is not None
    assert reply.response.code == ResponseCode.NOT_REGISTERED_OR_AUTHORIZED
    assert reply.response.request_id == "re-1"


async def test_schema_invalid_body_gets_a_valid_454_reply(pki: DevPki, database_url: str) -> None:
    from oadr import codec

    async with running_vtn(pki, database_url) as vtn:
        status, body = await vtn.client().post_bytes(
            exchanges.Service.OADR_POLL,
            b'<?xml version="1.0"?>'
            b'<oadr:oadrPayload xmlns:oadr="http://openadr.org/oadr-2.0b/2012/07">'
            b"<oadr:oadrSignedObject>"
            b'<oadr:oadrPoll xmlns:ei="http://docs.oasis-open.org/ns/energyinterop/201110"'
            b' ei:schemaVersion="2.0b"/>'
            b"</oadr:oadrSignedObject></oadr:oadrPayload>",
        )
    assert status == 200
    reply = codec.decode(body)
    assert isinstance(reply, Response) and reply.response.code == ResponseCode.INVALID_DATA
