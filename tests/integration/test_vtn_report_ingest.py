"""Report ingest in group commits (vtn/groupcommit.py, `ei_report.store_updates`): concurrent
oadrUpdateReports share one transaction, each is answered only once its readings are committed,
and one VEN's bad update never costs another VEN its readings."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy.exc import DBAPIError

from oadr.errors import InvalidId
from oadr.model import RegistrationId, RequestId, UpdatedReport, UpdateReport, VenId
from tests.factories import NOW, make_data_report, make_metadata_report, make_report_request
from vtn.config import VtnSettings
from vtn.groupcommit import GroupCommit
from vtn.services import ei_report
from vtn.services.context import Caller, Context
from vtn.store.db import Store
from vtn.vens import Status, VenRecord

VENS = [VenId(f"ven-{i}") for i in range(4)]


def caller(ven_id: VenId) -> Caller:
    return Caller(fingerprint=f"AA:{ven_id}")


@pytest.fixture
async def context(database_url: str) -> AsyncIterator[Context]:
    store = Store(database_url)
    await store.create_all()
    async with store.transaction() as tx:
        for ven_id in VENS:
            await tx.vens.save(
                VenRecord(
                    ven_id=ven_id,
                    fingerprint=caller(ven_id).fingerprint or "",
                    ven_name=ven_id,
                    status=Status.APPROVED,
                    created_at=NOW,
                    registration_id=RegistrationId(f"reg-{ven_id}"),
                    registered_at=NOW,
                )
            )
            await tx.reports.register(ven_id, [make_metadata_report()], NOW)
            await tx.reports.add_request(ven_id, make_report_request("rr-1"), NOW)
    context = Context(store=store, settings=VtnSettings())
    context.updates = GroupCommit(
        store.transaction, functools.partial(ei_report.store_updates, context)
    )
    yield context
    await store.close()


def update(ven_id: VenId, request_id: str = "rr-1", **report: object) -> UpdateReport:
    values = report.pop("values", (1.0, 2.0, 3.0))
    return UpdateReport(
        request_id=RequestId(f"up-{ven_id}"),
        ven_id=ven_id,
        reports=(make_data_report(request_id, values=values, **report),),  # type: ignore[arg-type]
    )


async def stored(context: Context, ven_id: VenId) -> list[float | None]:
    async with context.store.transaction() as tx:
        return [r.value for r in await tx.readings.query(ven_id=ven_id)]


async def test_concurrent_updates_share_one_transaction_and_all_are_stored(
    context: Context,
) -> None:
    replies = await asyncio.gather(
        *(ei_report.update_report(context, update(v), caller(v), NOW) for v in VENS)
    )
    assert all(isinstance(r, UpdatedReport) and r.response.code == 200 for r in replies)
    assert [r.ven_id for r in replies] == VENS
    assert context.updates is not None and context.updates.batches == 1
    for ven_id in VENS:
        assert await stored(context, ven_id) == [1.0, 2.0, 3.0]


async def test_a_refused_update_leaves_the_others_in_its_batch_stored(context: Context) -> None:
    good, bad = VENS[0], VENS[1]
    replies = await asyncio.gather(
        ei_report.update_report(context, update(good), caller(good), NOW),
        ei_report.update_report(context, update(bad, "rr-unknown"), caller(bad), NOW),
        # the VEN of VENS[3] sends an update as VENS[2]: refused (463), nothing stored for either
        ei_report.update_report(context, update(VENS[2]), caller(VENS[3]), NOW),
        return_exceptions=True,
    )
    assert isinstance(replies[0], UpdatedReport) and replies[0].response.code == 200
    assert isinstance(replies[1], InvalidId)
    assert getattr(replies[2], "code", None) == 463
    assert context.updates is not None and context.updates.batches == 1
    assert await stored(context, good) == [1.0, 2.0, 3.0]
    for ven_id in VENS[1:]:
        assert await stored(context, ven_id) == []


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_an_update_that_breaks_the_transaction_fails_alone(context: Context) -> None:
    """A reading whose duration PostgreSQL cannot store (integer seconds out of range) fails
    the batch's transaction; each update is then written alone, and only that one fails."""
    report = make_data_report("rr-1", values=(9.0,))
    too_long = replace(
        report, intervals=(replace(report.intervals[0], duration=timedelta(days=100_000)),)
    )
    bad = VENS[1]
    bad_update = UpdateReport(request_id=RequestId("up-bad"), ven_id=bad, reports=(too_long,))
    replies = await asyncio.gather(
        *(
            ei_report.update_report(context, bad_update if v == bad else update(v), caller(v), NOW)
            for v in VENS
        ),
        return_exceptions=True,
    )
    assert isinstance(replies[1], DBAPIError)
    for ven_id, reply in zip(VENS, replies, strict=True):
        if ven_id != bad:
            assert isinstance(reply, UpdatedReport) and reply.response.code == 200
            assert await stored(context, ven_id) == [1.0, 2.0, 3.0]
    assert await stored(context, bad) == []


async def test_a_ven_that_hangs_up_mid_batch_disturbs_nobody(context: Context) -> None:
    """Its request is cancelled while its batch is written (the VEN closed the connection):
    the others are answered, and its readings are stored all the same (a resend is stored
    once), so nothing depends on whether the reply reached it."""
    tasks = [
        asyncio.create_task(ei_report.update_report(context, update(v), caller(v), NOW))
        for v in VENS
    ]
    await asyncio.sleep(0)  # every request has handed its update over
    tasks[1].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[1], asyncio.CancelledError)
    assert all(isinstance(r, UpdatedReport) for i, r in enumerate(results) if i != 1)
    for ven_id in VENS:
        assert await stored(context, ven_id) == [1.0, 2.0, 3.0]
    again = await ei_report.update_report(context, update(VENS[1]), caller(VENS[1]), NOW)
    assert isinstance(again, UpdatedReport) and again.response.code == 200
    assert await stored(context, VENS[1]) == [1.0, 2.0, 3.0]


async def test_a_burst_larger_than_a_batch_is_stored_in_several(context: Context) -> None:
    assert context.updates is not None
    small = GroupCommit(
        context.store.transaction,
        functools.partial(ei_report.store_updates, context),
        max_batch=2,
    )
    context.updates = small
    replies = await asyncio.gather(
        *(ei_report.update_report(context, update(v), caller(v), NOW) for v in VENS)
    )
    assert all(isinstance(r, UpdatedReport) for r in replies)
    assert small.batches == 2
    for ven_id in VENS:
        assert await stored(context, ven_id) == [1.0, 2.0, 3.0]
