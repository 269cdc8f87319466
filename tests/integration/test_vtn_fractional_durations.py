"""Durations with a fraction of a second at the VTN's OpenADR edge: always a valid reply.

xcal:DurationValueType (the 2.0b XSD, `(\\d+S)?`) has whole seconds only. A peer's `PT0.5S`
fails the schema check and is answered 454; a value of our own that has a fraction (a VTN
started with `--poll-interval 0.5`, an operator's 90.5 s event) cannot be encoded and is
answered 469 with a reference in the log, never HTTP 500. Over real mutual TLS, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from certs.dev import DevPki
from oadr import codec, exchanges
from oadr.enums import ResponseCode
from oadr.model import (
    CreatedPartyRegistration,
    CreatePartyRegistration,
    DistributeEvent,
    EventId,
    Payload,
    Poll,
    QueryRegistration,
    RequestEvent,
    RequestId,
    Target,
    VenId,
)
from tests.factories import make_event
from tests.integration.vtn_harness import RunningVtn, VenClient, running_vtn, utc_now
from vtn.config import VtnSettings
from vtn.services import operator

FIXTURES = Path(__file__).parents[1] / "fixtures" / "xml"
HALF_SECOND = timedelta(milliseconds=500)


async def post(client: VenClient, payload: Payload | bytes, service: exchanges.Service) -> Payload:
    """The reply, which must come with HTTP 200 and decode (schema-checked) as OpenADR."""
    body = payload if isinstance(payload, bytes) else codec.encode(payload)
    status, reply = await client.post_bytes(service, body)
    assert status == 200, reply[:200]
    return codec.decode(reply)


def code_of(reply: Payload) -> int:
    response = getattr(reply, "response", None)
    assert response is not None, reply
    return int(response.code)


async def register(client: VenClient) -> VenId:
    reply = await post(
        client,
        CreatePartyRegistration(request_id=RequestId("r-1"), ven_name="house"),
        exchanges.Service.EI_REGISTER_PARTY,
    )
    assert isinstance(reply, CreatedPartyRegistration) and reply.ven_id is not None
    return reply.ven_id


@pytest.fixture
async def vtn(pki: DevPki, database_url: str) -> AsyncIterator[RunningVtn]:
    async with running_vtn(pki, database_url) as running:
        yield running


async def test_a_sub_second_poll_frequency_is_answered_469_not_500(
    pki: DevPki, database_url: str
) -> None:
    async with running_vtn(pki, database_url, VtnSettings(poll_interval=HALF_SECOND)) as vtn:
        client = vtn.client(pki.vens[0])
        requests: list[tuple[Payload, exchanges.Service]] = [
            (QueryRegistration(request_id=RequestId("q-1")), exchanges.Service.EI_REGISTER_PARTY),
            (
                CreatePartyRegistration(request_id=RequestId("r-1"), ven_name="house"),
                exchanges.Service.EI_REGISTER_PARTY,
            ),
        ]
        for request, service in requests:
            reply = await post(client, request, service)
            assert isinstance(reply, CreatedPartyRegistration)
            assert code_of(reply) == ResponseCode.DEPLOYMENT_ERROR  # 469


async def test_an_event_with_a_fraction_of_a_second_is_answered_469_not_500(
    vtn: RunningVtn, pki: DevPki
) -> None:
    client = vtn.client(pki.vens[0])
    ven_id = await register(client)
    now = utc_now()
    event = replace(
        make_event(start=now + timedelta(minutes=1), duration=timedelta(seconds=90.5)),
        event_id=EventId("ev-fraction"),
        target=Target(ven_ids=(ven_id,)),
    )
    await operator.create_event(vtn.context, event, actor="test", now=now)
    reply = await post(
        client, RequestEvent(request_id=RequestId("e-1"), ven_id=ven_id), exchanges.Service.EI_EVENT
    )
    assert isinstance(reply, DistributeEvent) and not reply.events
    assert code_of(reply) == ResponseCode.DEPLOYMENT_ERROR
    for _ in range(3):  # what the VTN queued for the VEN: each poll gets a valid reply
        await post(client, Poll(ven_id=ven_id), exchanges.Service.OADR_POLL)


FRACTIONS = {
    # fixture, what to replace, the fractional duration put there
    "opt-availability": ("oadrCreateOpt/flex4grid-schedule.xml", "xcal:duration", "PT0.5S"),
    "register-report-min-period": (
        "oadrRegisterReport/flex4grid-ven-metadata.xml",
        "oadr:oadrMinPeriod",
        "PT1.25S",
    ),
    "register-report-duration": (
        "oadrRegisterReport/flex4grid-ven-metadata.xml",
        "xcal:duration",
        "PT1.25S",
    ),
    "update-report-interval": (
        "oadrUpdateReport/flex4grid-telemetry-usage.xml",
        "xcal:duration",
        "PT59.5S",
    ),
}


@pytest.mark.parametrize(("fixture", "tag", "duration"), FRACTIONS.values(), ids=FRACTIONS.keys())
async def test_a_peers_fractional_duration_is_refused_454(
    vtn: RunningVtn, pki: DevPki, fixture: str, tag: str, duration: str
) -> None:
    client = vtn.client(pki.vens[0])
    ven_id = await register(client)
    text = (FIXTURES / fixture).read_text()
    text = re.sub(r"<ei:venID>[^<]*</ei:venID>", f"<ei:venID>{ven_id}</ei:venID>", text)
    changed = re.sub(rf"<{tag}>[^<]*</{tag}>", f"<{tag}>{duration}</{tag}>", text)
    assert changed != text
    service = exchanges.service_for(codec.decode(text.encode()))
    reply = await post(client, changed.encode(), service)
    assert code_of(reply) == ResponseCode.INVALID_DATA  # 454: the XSD refuses it
