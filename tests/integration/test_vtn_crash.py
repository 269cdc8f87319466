"""Nothing the VTN acknowledged is lost when it is killed with SIGKILL, and after a restart each
VEN gets every event modification exactly once. The VTN runs as a real `flex4grid vtn serve`
process on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path

import aiohttp

from certs.dev import DevPki
from oadr.enums import EventStatus, OptType, ReportName
from oadr.model import (
    CreatedEvent,
    CreatedPartyRegistration,
    CreatePartyRegistration,
    DistributeEvent,
    EiResponse,
    EventResponse,
    Poll,
    RegisteredReport,
    RegisterReport,
    RequestId,
    Response,
    Target,
    UpdatedReport,
    UpdateReport,
    VenId,
)
from tests.factories import make_data_report, make_event, make_metadata_report
from tests.integration.vtn_harness import VenClient, utc_now
from tests.ports import free_port
from vtn.config import VtnSettings
from vtn.services import operator
from vtn.services.context import Context
from vtn.store.db import Store


@contextmanager
def _vtn_process(
    pki: DevPki, database_url: str, port: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    command = [
        sys.executable, "-m", "flex4grid.cli", "vtn", "serve",
        "--db", database_url, "--port", str(port),
        "--tls-cert", str(pki.vtn.chain), "--tls-key", str(pki.vtn.key),
        "--ca-file", str(pki.root / "ca.pem"), "--ca-file", str(pki.dso_ca / "ca.pem"),
        "--ca-file", str(pki.aggregator_ca / "ca.pem"),
        # Long enough that no restart here takes three poll intervals: a modification sent and
        # not answered for that long is sent again (README), which is not what this test is about.
        "--poll-interval", "60",
    ]  # fmt: skip
    with log.open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


async def _wait_ready(client: VenClient, process: subprocess.Popen[bytes], log: Path) -> None:
    connector = aiohttp.TCPConnector(ssl=client.ssl_context)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(200):
            assert process.poll() is None, _read(log)
            try:
                async with session.get(client.base_url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("the VTN did not come up:\n" + _read(log))


def _read(log: Path) -> str:
    return log.read_text()  # only on failure; blocking is fine there


@asynccontextmanager
async def _operator(database_url: str) -> AsyncIterator[Context]:
    """The operator's side, in this process, on the VTN's database (as the admin API would)."""
    store = Store(database_url)
    try:
        yield Context(store=store, settings=VtnSettings())
    finally:
        await store.close()


def _kill(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


async def test_sigkill_loses_nothing_acknowledged(
    pki: DevPki, database_url: str, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "vtn.log"
    client = VenClient(f"https://127.0.0.1:{port}", pki.client_context())

    with _vtn_process(pki, database_url, port, log) as first:
        await _wait_ready(client, first, log)
        created = await client.send(
            CreatePartyRegistration(request_id=RequestId("r"), ven_name="house-1")
        )
        assert isinstance(created, CreatedPartyRegistration) and created.ven_id is not None
        ven_id: VenId = created.ven_id
        assert isinstance(await client.send(Poll(ven_id=ven_id)), RegisterReport)
        metadata = make_metadata_report(report_name=ReportName.METADATA_TELEMETRY_USAGE)
        registered = await client.send(
            RegisterReport(request_id=RequestId("rr"), reports=(metadata,), ven_id=ven_id)
        )
        assert isinstance(registered, RegisteredReport)
        (request,) = registered.report_requests

        now = utc_now()
        async with _operator(database_url) as context:
            event = await operator.create_event(
                context,
                dataclasses.replace(
                    make_event(start=now + timedelta(hours=1)), target=Target(ven_ids=(ven_id,))
                ),
                actor="test",
                now=now,
            )
        delivered = await client.send(Poll(ven_id=ven_id))
        assert isinstance(delivered, DistributeEvent)

        # Acknowledged by the VTN, then the VTN dies: the optIn and the readings must survive.
        acked = await client.send(
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
        assert isinstance(acked, Response) and acked.response.code == 200
        r_id = request.specifier_payloads[0].r_id
        updated = await client.send(
            UpdateReport(
                request_id=RequestId("up"),
                ven_id=ven_id,
                reports=(
                    make_data_report(
                        request.report_request_id,
                        values=(4.25,),
                        r_id=r_id,
                        start=now,
                        report_specifier_id=request.report_specifier_id,
                    ),
                ),
            )
        )  # fmt: skip
        assert isinstance(updated, UpdatedReport) and updated.response.code == 200
        # A modification made while the VEN has not polled yet...
        async with _operator(database_url) as context:
            await operator.modify_event(
                context, event.event_id, actor="test", now=utc_now(), priority=2
            )
        _kill(first)  # ...and the VTN is killed before the VEN's next poll.

    with _vtn_process(pki, database_url, port, log) as second:
        await _wait_ready(client, second, log)
        after = await client.send(Poll(ven_id=ven_id))
        assert isinstance(after, DistributeEvent), "the modification made before the kill"
        assert [(e.event_id, e.modification_number) for e in after.events] == [(event.event_id, 1)]
        assert after.events[0].status is EventStatus.FAR
        again = await client.send(Poll(ven_id=ven_id))
        assert isinstance(again, Response), "delivered exactly once"

        _kill(second)  # right after acknowledging that delivery: still nothing repeated
    with _vtn_process(pki, database_url, port, log) as third:
        await _wait_ready(client, third, log)
        assert isinstance(await client.send(Poll(ven_id=ven_id)), Response)
        async with _operator(database_url) as context, context.store.transaction() as tx:
            (delivery,) = await tx.deliveries.for_event(event.event_id)
            readings = await tx.readings.query(ven_id=ven_id)
        assert (delivery.opt_type, delivery.opt_modification_number) == (OptType.OPT_IN, 0)
        assert delivery.modification_number == 1
        assert [reading.value for reading in readings] == [4.25]
