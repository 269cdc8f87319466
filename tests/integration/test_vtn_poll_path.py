"""The poll's fast path (vtn/services/oadr_poll.py) on SQLite and PostgreSQL: a poll with
nothing new writes nothing and asks one question (with the quiet-poll memory of vtn/quiet.py:
none), yet every event modification and every queued message still reaches the VEN exactly once,
whoever wrote it (this process, another process on the same database), and last_seen_at stays
fresh enough. Every test runs with and without the memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from oadr.enums import OptType, ResponseRequired
from oadr.errors import NotRegistered
from oadr.model import (
    DistributeEvent,
    Event,
    EventId,
    Payload,
    Poll,
    RegistrationId,
    RequestReregistration,
    Response,
    Target,
    VenId,
)
from tests.factories import NOW, make_event
from vtn.config import VtnSettings
from vtn.quiet import QuietPolls
from vtn.services import oadr_poll, operator
from vtn.services.context import Caller, Context, seen_recently
from vtn.store.db import Store
from vtn.store.events import OptAnswer
from vtn.vens import Status, VenRecord

POLL_INTERVAL = timedelta(seconds=10)
VEN = VenId("ven-1")
OTHER = VenId("ven-2")
FINGERPRINTS = {VEN: "AA:01", OTHER: "AA:02"}


@pytest.fixture(params=["database", "memory"])
async def context(database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Context]:
    store = Store(database_url)
    await store.create_all()
    async with store.transaction() as tx:
        for ven_id, fingerprint in FINGERPRINTS.items():
            await tx.vens.save(
                VenRecord(
                    ven_id=ven_id,
                    fingerprint=fingerprint,
                    ven_name=ven_id,
                    status=Status.APPROVED,
                    created_at=NOW,
                    registration_id=RegistrationId(f"reg-{ven_id}"),
                    registered_at=NOW,
                )
            )
    context = Context(store=store, settings=VtnSettings(poll_interval=POLL_INTERVAL))
    if request.param == "memory":
        context.quiet = QuietPolls(store, refresh_every=0.05, flush_every=0.1)
        await context.quiet.start()
    yield context
    if context.quiet is not None:
        await context.quiet.stop()
    await store.close()


@pytest.fixture
async def elsewhere(context: Context) -> AsyncIterator[Store]:
    """The same database as another process sees it (`flex4grid vtn event create`, a second
    worker): its commits bump the change counter, not this process's own count."""
    store = Store(context.store.url)
    yield store
    await store.close()


class Statements:
    """Every SQL statement the store sends while counting."""

    def __init__(self, store: Store) -> None:
        self.sql: list[str] = []
        event.listen(store.engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.sql.append(" ".join(statement.split()).upper())

    def queries(self) -> list[str]:
        """Leaving out transaction control (BEGIN / COMMIT) and the memory's background reads."""
        return [
            s
            for s in self.sql
            if s.startswith(("SELECT", "UPDATE", "INSERT", "DELETE")) and "POLL_CHANGES" not in s
        ]


async def poll(context: Context, now: datetime, ven_id: VenId = VEN) -> Payload:
    return await oadr_poll.poll(context, Poll(ven_id=ven_id), Caller(FINGERPRINTS[ven_id]), now)


async def last_seen(context: Context, ven_id: VenId = VEN) -> datetime | None:
    """As stored, once the memory's queued last-seen times are written (it does so every
    `flush_every`)."""
    if context.quiet is not None:
        await context.quiet.flush()
    async with context.store.transaction() as tx:
        ven = await tx.vens.get(ven_id)
    assert ven is not None
    return ven.last_seen_at


def for_ven(ven_id: VenId, start: datetime) -> Event:
    return replace(make_event(start=start), target=Target(ven_ids=(ven_id,)))


async def test_a_poll_with_nothing_new_asks_one_question_and_writes_nothing(
    context: Context,
) -> None:
    assert isinstance(await poll(context, NOW), Response)  # first poll: last_seen_at written
    statements = Statements(context.store)

    reply = await poll(context, NOW + timedelta(seconds=1))

    assert isinstance(reply, Response) and reply.response.code == 200
    if context.quiet is None:
        (query,) = statements.queries()
        assert query.startswith("SELECT")
    else:
        assert statements.queries() == []  # answered from memory
    assert await last_seen(context) == NOW


async def test_last_seen_at_is_written_once_it_is_older_than_half_the_poll_interval(
    context: Context,
) -> None:
    assert await last_seen(context) is None
    await poll(context, NOW)
    assert await last_seen(context) == NOW
    await poll(context, NOW + POLL_INTERVAL / 2)  # not older than half: left alone
    assert await last_seen(context) == NOW
    later = NOW + POLL_INTERVAL / 2 + timedelta(milliseconds=1)
    await poll(context, later)
    assert await last_seen(context) == later


@pytest.mark.parametrize(
    ("interval", "fresh_for"),
    [
        (timedelta(seconds=10), timedelta(seconds=5)),
        (timedelta(minutes=1), timedelta(seconds=30)),
        (timedelta(hours=1), timedelta(seconds=30)),  # never staler than 30 s
    ],
    ids=["10s", "1min", "1h"],
)
def test_last_seen_at_is_fresh_for_half_of_min_poll_interval_and_a_minute(
    interval: timedelta, fresh_for: timedelta
) -> None:
    ven = VenRecord(
        ven_id=VEN, fingerprint="AA", ven_name="v", status=Status.APPROVED, created_at=NOW,
        last_seen_at=NOW,
    )  # fmt: skip
    assert seen_recently(ven, NOW + fresh_for, interval)
    assert not seen_recently(ven, NOW + fresh_for + timedelta(microseconds=1), interval)
    assert not seen_recently(replace(ven, last_seen_at=None), NOW, interval)
    assert not seen_recently(ven, NOW - timedelta(seconds=1), interval)  # clock set back


async def test_each_event_modification_reaches_the_ven_once(context: Context) -> None:
    created = await operator.create_event(
        context, for_ven(VEN, NOW + timedelta(hours=1)), actor="t", now=NOW
    )
    first = await poll(context, NOW)
    assert isinstance(first, DistributeEvent)
    assert [(e.event_id, e.modification_number) for e in first.events] == [(created.event_id, 0)]
    assert isinstance(await poll(context, NOW), Response)
    assert isinstance(await poll(context, NOW, OTHER), Response), "not targeted at the other VEN"

    await operator.modify_event(context, created.event_id, actor="t", now=NOW, priority=3)
    second = await poll(context, NOW)
    assert isinstance(second, DistributeEvent)
    assert [(e.modification_number, e.priority) for e in second.events] == [(1, 3)]
    assert isinstance(await poll(context, NOW), Response)

    await operator.cancel_event(context, created.event_id, actor="t", now=NOW)
    third = await poll(context, NOW)
    assert isinstance(third, DistributeEvent)
    assert [e.modification_number for e in third.events] == [2]
    assert isinstance(await poll(context, NOW), Response)


async def test_the_event_list_holds_every_current_event_and_drops_ended_ones(
    context: Context,
) -> None:
    early = await operator.create_event(
        context, replace(for_ven(VEN, NOW), event_id=EventId("early")), actor="t", now=NOW
    )
    late_start = NOW + timedelta(hours=3)
    late = await operator.create_event(
        context, replace(for_ven(VEN, late_start), event_id=EventId("late")), actor="t", now=NOW
    )
    listed = await poll(context, NOW)
    assert isinstance(listed, DistributeEvent)
    assert {e.event_id for e in listed.events} == {early.event_id, late.event_id}

    # Once the first is over, a new modification of the other lists the other alone.
    after = NOW + timedelta(hours=2)
    await operator.modify_event(context, late.event_id, actor="t", now=after, priority=2)
    relisted = await poll(context, after)
    assert isinstance(relisted, DistributeEvent)
    assert [e.event_id for e in relisted.events] == [late.event_id]


async def test_a_queued_message_is_delivered_once_and_in_order(context: Context) -> None:
    async with context.store.transaction() as tx:
        await tx.outbox.put(VEN, RequestReregistration(ven_id=VEN), NOW)
        await tx.outbox.put(VEN, RequestReregistration(ven_id=VEN), NOW)
    replies = [await poll(context, NOW) for _ in range(3)]
    assert [type(r) for r in replies] == [RequestReregistration, RequestReregistration, Response]
    async with context.store.transaction() as tx:
        assert await tx.outbox.pending(VEN) == 0
    assert isinstance(await poll(context, NOW, OTHER), Response)


async def test_a_poll_from_another_certificate_is_refused(context: Context) -> None:
    with pytest.raises(NotRegistered):
        await oadr_poll.poll(context, Poll(ven_id=VEN), Caller(FINGERPRINTS[OTHER]), NOW)
    with pytest.raises(NotRegistered):
        await oadr_poll.poll(context, Poll(ven_id=VEN), Caller("FF:FF"), NOW)


async def eventually(context: Context, now: datetime, expected: type[Payload]) -> Payload:
    """Poll until the reply is of the expected type, for at most 3 s (another process's commit
    reaches the memory within its refresh period, 50 ms here)."""
    deadline = asyncio.get_running_loop().time() + 3
    while True:
        reply = await poll(context, now)
        if isinstance(reply, expected) or asyncio.get_running_loop().time() > deadline:
            return reply
        await asyncio.sleep(0.02)


async def test_an_event_written_by_another_process_reaches_a_ven_it_had_nothing_for(
    context: Context, elsewhere: Store
) -> None:
    for _ in range(3):
        assert isinstance(await poll(context, NOW), Response)
    other = Context(store=elsewhere, settings=context.settings)
    created = await operator.create_event(
        other, for_ven(VEN, NOW + timedelta(hours=1)), actor="cli", now=NOW
    )
    reply = await eventually(context, NOW, DistributeEvent)
    assert isinstance(reply, DistributeEvent)
    assert [e.event_id for e in reply.events] == [created.event_id]
    assert isinstance(await poll(context, NOW), Response), "each modification once"


async def test_a_registration_cancelled_by_another_process_is_not_answered_from_memory(
    context: Context, elsewhere: Store
) -> None:
    assert isinstance(await poll(context, NOW), Response)
    assert isinstance(await poll(context, NOW), Response)
    async with elsewhere.transaction() as tx:
        ven = await tx.vens.get(VEN)
        assert ven is not None
        await tx.vens.save(replace(ven, status=Status.CANCELLED, registration_id=None))
    deadline = asyncio.get_running_loop().time() + 3
    with pytest.raises(NotRegistered):
        while asyncio.get_running_loop().time() < deadline:
            await poll(context, NOW)
            await asyncio.sleep(0.02)


async def test_memory_answers_only_while_the_change_counter_is_being_read(
    context: Context,
) -> None:
    quiet = context.quiet or QuietPolls(context.store)  # the database variant: a memory now
    context.quiet = quiet
    await quiet.start()
    assert isinstance(await poll(context, NOW), Response)
    statements = Statements(context.store)
    await poll(context, NOW)
    assert statements.queries() == []
    await quiet.stop()  # nobody reads the change counter any more
    assert quiet.token() is None
    await poll(context, NOW)
    assert [q.split()[0] for q in statements.queries()] == ["SELECT"]


async def test_last_seen_times_of_memory_answered_polls_reach_the_database(
    context: Context,
) -> None:
    await poll(context, NOW)
    later = NOW + POLL_INTERVAL  # stale: written again
    await poll(context, later)
    await poll(context, later + timedelta(seconds=1))  # fresh: left alone
    stored = None
    for _ in range(60):  # flushed every 0.1 s without anybody asking; a busy machine is slower
        await asyncio.sleep(0.05)
        async with context.store.transaction() as tx:
            ven = await tx.vens.get(VEN)
        stored = None if ven is None else ven.last_seen_at
        if stored == later:
            break
    assert stored == later


async def test_a_list_sent_but_never_answered_is_sent_again_after_three_poll_intervals(
    context: Context,
) -> None:
    """A pull reply can be lost after the VTN recorded it as sent (the worker killed between
    commit and write): the missing oadrCreatedEvent says so, and the list goes again."""
    created = await operator.create_event(
        context, for_ven(VEN, NOW + timedelta(hours=1)), actor="t", now=NOW
    )
    assert isinstance(await poll(context, NOW), DistributeEvent)  # "lost"
    grace = oadr_poll.RESEND_AFTER_POLLS * POLL_INTERVAL
    assert isinstance(await poll(context, NOW + grace - timedelta(seconds=1)), Response)
    again = await poll(context, NOW + grace)
    assert isinstance(again, DistributeEvent)
    assert [(e.event_id, e.modification_number) for e in again.events] == [(created.event_id, 0)]
    assert isinstance(await poll(context, NOW + grace + POLL_INTERVAL), Response), "not before"

    async with context.store.transaction() as tx:  # the VEN's oadrCreatedEvent arrives
        at = NOW + grace + POLL_INTERVAL
        await tx.deliveries.record_opts(
            [OptAnswer(VEN, created.event_id, 0, OptType.OPT_IN, 200, at)]
        )
    for polls in (2, 5, 20):
        assert isinstance(await poll(context, NOW + polls * grace), Response), "answered: done"


async def test_a_list_whose_events_ask_for_no_answer_is_sent_once(context: Context) -> None:
    event = replace(
        for_ven(VEN, NOW + timedelta(hours=1)), response_required=ResponseRequired.NEVER
    )
    await operator.create_event(context, event, actor="t", now=NOW)
    assert isinstance(await poll(context, NOW), DistributeEvent)
    for polls in (3, 10):
        assert isinstance(await poll(context, NOW + polls * POLL_INTERVAL), Response)
