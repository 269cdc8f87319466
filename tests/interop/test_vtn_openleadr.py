"""An OpenLEADR VEN (`openleadr.OpenADRClient`) against our VTN, over real mutual TLS.

The VEN registers, polls, receives an event the operator created for it, answers optIn,
registers its TELEMETRY_USAGE report and sends telemetry; the VTN's store must show the optIn
per VEN and modification and the readings. Both unsigned and signed (XML signatures required
by the VTN, OpenLEADR checking our signed replies against the VTN's fingerprint); on SQLite and
PostgreSQL. OpenLEADR polls at the frequency our VTN asks for (1 s here).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from openleadr import OpenADRClient

from certs import fingerprint
from certs.dev import DevPki
from certs.files import IdentityFiles
from oadr import codec, exchanges
from oadr.enums import OptType, ResponseCode
from oadr.model import CreatedEvent, EventId, Poll, Response, Target, VenId
from oadr.signing import SigningKey
from tests.factories import make_event
from tests.integration.vtn_harness import RunningVtn, running_vtn
from vtn.config import TelemetryDefaults, VtnSettings
from vtn.services import operator
from vtn.vens import VenRecord

pytestmark = [
    # OpenLEADR's own code stores plain-string keys on aiohttp apps; aiohttp warns about that.
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
]

WAIT_S = 20.0
POLL = timedelta(seconds=1)
TELEMETRY = TelemetryDefaults(granularity=timedelta(seconds=1), report_back=timedelta(seconds=1))


def utc_now() -> datetime:
    return datetime.now(UTC)


async def wait_for(
    what: str, check: Callable[[], Awaitable[Any]], timeout_s: float = WAIT_S
) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


def vtn_settings(*, signed: bool, pki: DevPki) -> VtnSettings:
    signing_key = SigningKey.from_pem(pki.vtn.key.read_bytes(), pki.vtn.cert.read_bytes())
    return VtnSettings(
        poll_interval=POLL,
        telemetry=TELEMETRY,
        require_signatures=signed,
        signing_key=signing_key if signed else None,
    )


def make_client(vtn: RunningVtn, identity: IdentityFiles, *, signed: bool) -> OpenADRClient:
    return OpenADRClient(
        ven_name=f"openleadr-{identity.directory.name}",
        vtn_url=vtn.url + exchanges.PATH_PREFIX.rstrip("/"),
        cert=str(identity.chain),
        key=str(identity.key),
        ca_file=str(identity.root),
        # With a fingerprint OpenLEADR refuses every reply that is not signed by that certificate.
        vtn_fingerprint=fingerprint.of_pem(vtn.pki.vtn.cert.read_bytes()) if signed else None,
        disable_signature=not signed,
        show_fingerprint=False,
    )


@asynccontextmanager
async def started(client: OpenADRClient) -> AsyncIterator[OpenADRClient]:
    try:
        async with asyncio.timeout(WAIT_S):
            await client.run()
        yield client
    finally:
        if client.client_session is not None:
            async with asyncio.timeout(WAIT_S):
                await client.stop()


async def registered_ven(vtn: RunningVtn, identity: IdentityFiles) -> VenRecord | None:
    async with vtn.context.store.transaction() as tx:
        record = await tx.vens.by_fingerprint(fingerprint.of_pem(identity.cert.read_bytes()))
    return record if record is not None and record.registered else None


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
async def test_openleadr_ven_gets_an_event_opts_in_and_reports(
    pki: DevPki, database_url: str, signed: bool
) -> None:
    identity = pki.vens[0]
    opted: list[dict[str, Any]] = []
    readings_sent: list[float] = []

    async def on_event(event: dict[str, Any]) -> str:
        opted.append(event)
        return "optIn"

    def measure() -> float:
        value = 1000.0 + len(readings_sent)
        readings_sent.append(value)
        return value

    began = time.monotonic()
    async with running_vtn(pki, database_url, vtn_settings(signed=signed, pki=pki)) as vtn:
        client = make_client(vtn, identity, signed=signed)
        client.add_handler("on_event", on_event)
        _, r_id = client.add_report(
            callback=measure,
            resource_id="meter-1",
            measurement="power_real",
            unit="W",
            report_duration=timedelta(hours=1),
            sampling_rate=timedelta(seconds=1),
        )
        async with started(client):
            ven = await wait_for("the registration", lambda: registered_ven(vtn, identity))
            assert client.ven_id == ven.ven_id
            assert client.poll_frequency == POLL

            now = utc_now()
            event = replace(
                make_event(start=now + timedelta(hours=1)),
                event_id=EventId(uuid.uuid4().hex),
                target=Target(ven_ids=(ven.ven_id,)),
            )
            event = await operator.create_event(vtn.context, event, actor="interop", now=now)

            async def opted_in() -> Any:
                async with vtn.context.store.transaction() as tx:
                    deliveries = await tx.deliveries.for_event(event.event_id)
                return [d for d in deliveries if d.opt_type is not None]

            (delivery,) = await wait_for("the VEN's optIn", opted_in)
            assert delivery.ven_id == ven.ven_id
            assert delivery.opt_type is OptType.OPT_IN
            assert delivery.opt_modification_number == 0
            assert [e["event_descriptor"]["event_id"] for e in opted] == [event.event_id]

            async def telemetry() -> Any:
                async with vtn.context.store.transaction() as tx:
                    readings = await tx.readings.query(ven_id=ven.ven_id)
                return readings if len(readings) >= 2 else None

            readings = await wait_for("two telemetry readings", telemetry)
            values = [reading.value for reading in readings]
            assert set(values) <= set(readings_sent), (values, readings_sent)
            assert {reading.resource_id for reading in readings} == {"meter-1"}
            assert {reading.r_id for reading in readings} == {r_id}

            if signed:
                # The deployment requires signatures: the same VEN's unsigned poll is refused.
                status, body = await vtn.client(identity).post_bytes(
                    exchanges.Service.OADR_POLL, codec.encode(Poll(ven_id=VenId(ven.ven_id)))
                )
                reply = codec.decode(body)
                assert status == 200
                assert isinstance(reply, Response)
                assert reply.response.code == ResponseCode.NOT_REGISTERED_OR_AUTHORIZED
    elapsed = time.monotonic() - began
    print(f"interop {'signed' if signed else 'unsigned'} run: {elapsed:.1f} s")


@pytest.mark.xfail(
    strict=True,
    reason="OpenLEADR defect: it answers oadrDistributeEvent with eiResponse 452 when the vtnID "
    "is lower case ('not allowed by the OpenADR standard'); neither the 2.0b XSD (vtnID is an "
    "xs:string) nor the profile puts a case rule on vtnID. Our VTN ignores that top-level code "
    "and stores each eventResponse, so the optIn still counts.",
)
async def test_openleadr_accepts_a_lower_case_vtn_id(pki: DevPki, database_url: str) -> None:
    identity = pki.vens[1]
    sent: list[str] = []

    async def on_event(event: dict[str, Any]) -> str:
        return "optIn"

    async with running_vtn(pki, database_url, vtn_settings(signed=False, pki=pki)) as vtn:
        assert vtn.context.settings.vtn_id.islower()
        client = make_client(vtn, identity, signed=False)
        client.add_handler("on_event", on_event)
        client.add_hook("before_send_xml", sent.append)
        async with started(client):
            ven = await wait_for("the registration", lambda: registered_ven(vtn, identity))
            now = utc_now()
            event = replace(
                make_event(start=now + timedelta(hours=1)),
                event_id=EventId(uuid.uuid4().hex),
                target=Target(ven_ids=(ven.ven_id,)),
            )
            await operator.create_event(vtn.context, event, actor="interop", now=now)

            async def created_event() -> Any:
                return [body for body in sent if "oadrCreatedEvent" in body]

            (body,) = await wait_for("the VEN's oadrCreatedEvent", created_event)
    created = codec.decode(body.encode())
    assert isinstance(created, CreatedEvent)
    assert created.event_responses[0].code == ResponseCode.OK
    assert created.response.code == ResponseCode.OK
