"""EiEvent: a VEN asks for its events (oadrRequestEvent) and answers them (oadrCreatedEvent)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from oadr.errors import InvalidId
from oadr.exchanges import ok_response
from oadr.model import (
    CreatedEvent,
    DistributeEvent,
    Event,
    EventId,
    RequestEvent,
    RequestId,
    Response,
    VenId,
)
from vtn import delivery
from vtn.services.context import Caller, Context, Handler, authorized_ven
from vtn.store.db import Tx
from vtn.store.events import OptAnswer
from vtn.vens import VenRecord


async def current_list(
    tx: Tx, ven: VenRecord, now: datetime
) -> tuple[tuple[Event, ...], dict[EventId, int]]:
    """The VEN's full event list now, and what it has been sent of those events."""
    listed = delivery.events_for(ven, await tx.events.current(now), now)
    sent = await tx.deliveries.sent(ven.ven_id, [event.event_id for event in listed])
    return delivery.visible(listed, sent), sent


async def request_event(
    context: Context, request: RequestEvent, caller: Caller, now: datetime
) -> DistributeEvent:
    """E1_1050: the full list, whatever was sent before; replyLimit caps its length."""
    async with context.store.transaction() as tx:
        ven = await authorized_ven(tx, request.ven_id, caller)
        await tx.vens.touch(ven.ven_id, now)
        listed, _ = await current_list(tx, ven, now)
        if request.reply_limit is not None:
            listed = listed[: request.reply_limit]
        await tx.deliveries.mark_sent(ven.ven_id, listed, now)
    return DistributeEvent(
        request_id=RequestId(context.new_id()),
        vtn_id=context.settings.vtn_id,
        events=listed,
        response=ok_response(request.request_id),
    )


async def created_event(
    context: Context, created: CreatedEvent, caller: Caller, now: datetime
) -> Response:
    """Store the VEN's optIn/optOut per event modification (A_E3_0440..0500)."""
    async with context.store.transaction() as tx:
        ven = await authorized_ven(tx, created.ven_id, caller)
        await tx.vens.touch(ven.ven_id, now)
        sent = await tx.deliveries.sent(
            ven.ven_id, [answer.event_id for answer in created.event_responses]
        )
        # Nothing is stored when one answer is for an event or modification never sent.
        await tx.deliveries.record_opts(answers(ven.ven_id, created, sent, now))
    return Response(response=ok_response(created.response.request_id), ven_id=ven.ven_id)


def answers(
    ven_id: VenId, created: CreatedEvent, sent: Mapping[EventId, int], now: datetime
) -> list[OptAnswer]:
    """The opt answers of an oadrCreatedEvent, given the modification of each event the VEN was
    sent; InvalidId for an answer to an event or a modification it was never sent. Pure."""
    found = []
    for answer in created.event_responses:
        latest = sent.get(answer.event_id)
        if latest is None:
            raise InvalidId(f"event {answer.event_id!r} was never sent to this VEN")
        if answer.modification_number > latest:
            raise InvalidId(
                f"event {answer.event_id!r} has no modification {answer.modification_number}"
                " sent to this VEN"
            )
        found.append(
            OptAnswer(
                ven_id,
                answer.event_id,
                answer.modification_number,
                answer.opt_type,
                answer.code,
                now,
            )
        )
    return found


HANDLERS: dict[type[Any], Handler] = {RequestEvent: request_event, CreatedEvent: created_event}
