"""Event changes in one transaction (`operator.event_batch`), as an aggregator re-sharing one
ask across its members makes them: all commit or none do, and a VEN polling afterwards gets
every change of the batch in one reply. On SQLite and PostgreSQL, over real mutual TLS.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from certs.dev import DevPki
from oadr import codec, exchanges
from oadr.errors import InvalidId
from oadr.model import (
    CreatedPartyRegistration,
    CreatePartyRegistration,
    DistributeEvent,
    Event,
    EventId,
    Poll,
    RequestId,
    Target,
    VenId,
)
from tests.factories import make_event
from tests.integration.vtn_harness import VenClient, running_vtn, utc_now
from vtn.services import operator


async def register(client: VenClient) -> VenId:
    status, body = await client.post_bytes(
        exchanges.Service.EI_REGISTER_PARTY,
        codec.encode(CreatePartyRegistration(request_id=RequestId("r-1"), ven_name="house")),
    )
    reply = codec.decode(body)
    assert status == 200 and isinstance(reply, CreatedPartyRegistration) and reply.ven_id
    return reply.ven_id


async def test_a_batch_commits_all_its_changes_or_none(pki: DevPki, database_url: str) -> None:
    async with running_vtn(pki, database_url) as vtn:
        client = vtn.client(pki.vens[0])
        ven_id = await register(client)
        now = utc_now()
        target = Target(ven_ids=(ven_id,))

        def event(n: int) -> Event:
            return make_event(
                start=now + timedelta(hours=1), event_id=EventId(f"share-{n}"), target=target
            )

        await operator.create_event(vtn.context, event(0), actor="test", now=now)
        # The third change fails (that event exists): the two before it are not kept either.
        with pytest.raises(InvalidId):
            async with operator.event_batch(vtn.context, actor="test", now=now) as batch:
                await batch.create_event(event(1))
                await batch.modify_event("share-0", vtn_comment="changed")
                await batch.create_event(event(0))
        async with vtn.context.store.transaction() as tx:
            assert await tx.events.get("share-1") is None
            kept = await tx.events.get("share-0")
            assert kept is not None and kept.modification_number == 0

        async with operator.event_batch(vtn.context, actor="test", now=now) as batch:
            assert await batch.has_event("share-0") and not await batch.has_event("share-1")
            await batch.create_event(event(1))
            await batch.create_event(event(2))
            await batch.modify_event("share-0", vtn_comment="changed")
        status, body = await client.post_bytes(
            exchanges.Service.OADR_POLL, codec.encode(Poll(ven_id=ven_id))
        )
        reply = codec.decode(body)
        assert status == 200 and isinstance(reply, DistributeEvent)
        got = {e.event_id: e.modification_number for e in reply.events}
        assert got == {"share-0": 1, "share-1": 0, "share-2": 0}
        async with vtn.context.store.transaction() as tx:
            logged = [(e.action, e.subject) for e in await tx.audit.page() if e.actor == "test"]
        # The failed batch left no trace in the audit log either.
        assert sorted(logged) == [
            ("event.create", "share-0"),
            ("event.create", "share-1"),
            ("event.create", "share-2"),
            ("event.modify", "share-0"),
        ]


async def test_marking_a_delivery_never_goes_back(pki: DevPki, database_url: str) -> None:
    # A push and a poll may overlap: the older list, recorded last, must not lower the
    # modification recorded as sent (the VEN would be sent the newer one again).
    async with running_vtn(pki, database_url) as vtn:
        ven_id = await register(vtn.client(pki.vens[0]))
        now = utc_now()
        start = now + timedelta(hours=1)
        first = await operator.create_event(
            vtn.context,
            make_event(start=start, event_id=EventId("e-1"), target=Target(ven_ids=(ven_id,))),
            actor="test",
            now=now,
        )
        other = await operator.create_event(
            vtn.context,
            make_event(start=start, event_id=EventId("e-2"), target=Target(ven_ids=(ven_id,))),
            actor="test",
            now=now,
        )
        second = await operator.modify_event(vtn.context, "e-1", actor="test", now=now,
                                             vtn_comment="changed")  # fmt: skip
        t1, t2, t3 = (now + timedelta(seconds=s) for s in (1, 2, 3))
        async with vtn.context.store.transaction() as tx:
            await tx.deliveries.mark_sent(ven_id, [first, other], t1)
        async with vtn.context.store.transaction() as tx:
            await tx.deliveries.mark_sent(ven_id, [second, other], t2)
        async with vtn.context.store.transaction() as tx:
            await tx.deliveries.mark_sent(ven_id, [first], t3)  # late, and older
        async with vtn.context.store.transaction() as tx:
            got = {d.event_id: d for d in await tx.deliveries.for_ven(ven_id)}
        assert (got["e-1"].modification_number, got["e-1"].delivered_at) == (1, t2)
        assert (got["e-2"].modification_number, got["e-2"].delivered_at) == (0, t1)
