"""OadrPoll: hand a pull VEN the next thing the VTN has for it (G1_4011, G1_4015).

Order: the full event list when an event has a modification this VEN has not been sent; else
the oldest queued VTN-initiated message; else oadrResponse 200. What is handed out is marked
delivered in the same transaction, committed before the reply leaves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from oadr.exchanges import ok_response
from oadr.model import CancelPartyRegistration, DistributeEvent, Payload, Poll, RequestId, Response
from vtn import delivery, vens
from vtn.services.context import Caller, Context, Handler, authorized_ven
from vtn.services.ei_event import current_list


async def poll(context: Context, request: Poll, caller: Caller, now: datetime) -> Payload:
    async with context.store.transaction() as tx:
        ven = await authorized_ven(tx, request.ven_id, caller)
        await tx.vens.touch(ven.ven_id, now)
        listed, sent = await current_list(tx, ven, now)
        if delivery.due(listed, sent):
            await tx.deliveries.mark_sent(ven.ven_id, listed, now)
            return DistributeEvent(
                request_id=RequestId(context.new_id()),
                vtn_id=context.settings.vtn_id,
                events=listed,
            )
        queued = await tx.outbox.next(ven.ven_id)
        if queued is not None:
            message_id, payload = queued
            await tx.outbox.mark_delivered(message_id, now)
            if isinstance(payload, CancelPartyRegistration):
                # N1_0040: the registration ends once the VEN has been told.
                await tx.vens.save(vens.deregistered(ven, now))
            return payload
    return Response(response=ok_response(RequestId("")), ven_id=ven.ven_id)


HANDLERS: dict[type[Any], Handler] = {Poll: poll}
