"""OadrPoll: hand a pull VEN the next thing the VTN has for it (G1_4011, G1_4015).

Order: the full event list when an event has a modification this VEN has not been sent; else
the oldest queued VTN-initiated message; else oadrResponse 200. What is handed out is marked
delivered in the same transaction, committed before the reply leaves. HTTP push (`vtn.push`)
uses the same `next_due` / `mark_delivered`, marking only after the VEN answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from oadr.exchanges import ok_response
from oadr.model import (
    CancelPartyRegistration,
    DistributeEvent,
    Event,
    Payload,
    Poll,
    RequestId,
    Response,
)
from vtn import delivery, vens
from vtn.services.context import Caller, Context, Handler, authorized_ven
from vtn.services.ei_event import current_list
from vtn.store.db import Tx


@dataclass(frozen=True, slots=True)
class Due:
    """The next message a VEN is due: its event list, or one queued message (`outbox_id`)."""

    payload: Payload
    events: tuple[Event, ...] = ()
    outbox_id: int | None = None


async def next_due(context: Context, tx: Tx, ven: vens.VenRecord, now: datetime) -> Due | None:
    listed, sent = await current_list(tx, ven, now)
    if delivery.due(listed, sent):
        distribute = DistributeEvent(
            request_id=RequestId(context.new_id()), vtn_id=context.settings.vtn_id, events=listed
        )
        return Due(distribute, events=listed)
    queued = await tx.outbox.next(ven.ven_id)
    if queued is not None:
        message_id, payload = queued
        return Due(payload, outbox_id=message_id)
    return None


async def mark_delivered(tx: Tx, ven: vens.VenRecord, due: Due, now: datetime) -> None:
    """Record that the VEN has `due`: each event modification and each queued message once."""
    if due.outbox_id is None:
        # Only raise what was recorded: a newer modification may have reached the VEN meanwhile
        # (a push VEN may poll too), and going back would send it again.
        sent = await tx.deliveries.sent(ven.ven_id, [event.event_id for event in due.events])
        newer = [e for e in due.events if sent.get(e.event_id, -1) < e.modification_number]
        await tx.deliveries.mark_sent(ven.ven_id, newer, now)
        return
    await tx.outbox.mark_delivered(due.outbox_id, now)
    if isinstance(due.payload, CancelPartyRegistration):
        # N1_0040: the registration ends once the VEN has been told.
        await tx.vens.save(vens.deregistered(ven, now))


async def poll(context: Context, request: Poll, caller: Caller, now: datetime) -> Payload:
    async with context.store.transaction() as tx:
        ven = await authorized_ven(tx, request.ven_id, caller)
        await tx.vens.touch(ven.ven_id, now)
        due = await next_due(context, tx, ven, now)
        if due is not None:
            await mark_delivered(tx, ven, due, now)
            return due.payload
    return Response(response=ok_response(RequestId("")), ven_id=ven.ven_id)


HANDLERS: dict[type[Any], Handler] = {Poll: poll}
