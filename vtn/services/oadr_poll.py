"""OadrPoll: hand a pull VEN the next thing the VTN has for it (G1_4011, G1_4015).

Order: the full event list when an event has a modification this VEN has not been sent, or one
it was sent `RESEND_AFTER_POLLS` poll intervals ago and has not answered although asked to (the
reply may have been lost after the commit, vtn/delivery.py); else the oldest queued
VTN-initiated message; else oadrResponse 200. What is handed out is marked delivered in the same
transaction, committed before the reply leaves. HTTP push (`vtn.push`) uses the same `next_due`
/ `mark_delivered`, marking only after the VEN answered.

A poll that finds nothing new writes nothing: one statement (`Vens.poll_state`) finds the VEN,
whether a queued message waits and whether any event is current, and last_seen_at is written
only when the stored value is older than half of min(poll interval, 60 s). Our reading:
last_seen_at serves "online / last seen" (the console's window is at least 3 poll intervals and
a minute, the metrics' 5 minutes), so it may lag by that much; it is not an audit of each poll.

With the VTN's quiet-poll memory (`vtn.quiet`, wired by `vtn.app`), a VEN whose poll found
nothing new is remembered under the change token read before that poll's transaction, and its
next polls are answered without the database until anything that could give it something new
is committed (`vtn.store.changes`); their last-seen times are written in batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from oadr.exchanges import ok_response
from oadr.model import (
    CancelPartyRegistration,
    DistributeEvent,
    Event,
    EventId,
    Payload,
    Poll,
    RequestId,
    Response,
    VenId,
)
from vtn import delivery, vens
from vtn.quiet import key_of as quiet_key
from vtn.services.context import Caller, Context, Handler, authorize_caller, seen_recently
from vtn.store.db import Tx
from vtn.store.vens import PollState


@dataclass(frozen=True, slots=True)
class Due:
    """The next message a VEN is due: its event list, or one queued message (`outbox_id`)."""

    payload: Payload
    events: tuple[Event, ...] = ()
    outbox_id: int | None = None
    resent: tuple[EventId, ...] = ()  # sent before in this modification, not answered


# A list sent with a modification that asks for an answer and got none is sent again after this
# many poll intervals (vtn/delivery.py: a pull reply can be lost after the VTN recorded it).
RESEND_AFTER_POLLS = 3


def resend_after(context: Context) -> timedelta:
    return RESEND_AFTER_POLLS * context.settings.poll_interval


async def next_due(
    context: Context, tx: Tx, ven: vens.VenRecord, now: datetime, hints: PollState | None = None
) -> Due | None:
    """What `ven` is due now, if anything. `hints` (read in this transaction) lets a poll skip
    the event and outbox queries when they can only come back empty."""
    due, _ = await _next_due(context, tx, ven, now, hints)
    return due


async def _next_due(
    context: Context, tx: Tx, ven: vens.VenRecord, now: datetime, hints: PollState | None
) -> tuple[Due | None, bool]:
    """`next_due`, and whether the VEN still owes an answer to an event it was sent (then its
    next polls are not quiet: the list may have to go again)."""
    awaiting = False
    if hints is None or hints.current_events:
        current = await tx.events.current_with_sent(ven.ven_id, now)
        due, awaiting = list_due(context, ven, current, now)
        if due is not None:
            return due, True
    if hints is None or hints.next_message is not None:
        queued = await tx.outbox.next(ven.ven_id)  # locks the row: delivered once
        if queued is not None:
            message_id, payload = queued
            return Due(payload, outbox_id=message_id), True
    return None, awaiting


async def due_among(
    context: Context, tx: Tx, among: Sequence[vens.VenRecord], now: datetime
) -> dict[VenId, Due]:
    """`next_due` for many VENs in three queries, however many (push planning). Queued messages
    are not locked here: whoever records a delivery checks it again under lock."""
    if not among:
        return {}
    ven_ids = [ven.ven_id for ven in among]
    current = await tx.events.current(now)
    sent = await tx.deliveries.sent_records(ven_ids, [event.event_id for event in current])
    queued = await tx.outbox.next_among(ven_ids)
    found: dict[VenId, Due] = {}
    for ven in among:
        with_sent = [(event, sent.get((ven.ven_id, event.event_id))) for event in current]
        due, _ = list_due(context, ven, with_sent, now)
        if due is None and ven.ven_id in queued:
            message_id, payload = queued[ven.ven_id]
            due = Due(payload, outbox_id=message_id)
        if due is not None:
            found[ven.ven_id] = due
    return found


def list_due(
    context: Context,
    ven: vens.VenRecord,
    current: Sequence[tuple[Event, delivery.Sent | None]],
    now: datetime,
) -> tuple[Due | None, bool]:
    """The VEN's event list if it is due (a modification not sent, or one sent and unanswered
    too long), from the current events and what it was sent of each; and whether it still owes
    an answer. Pure (`context` gives only ids and settings)."""
    listed = delivery.events_for(ven, (event for event, _ in current), now)
    ids = {event.event_id for event in listed}
    sent = {
        event.event_id: record
        for event, record in current
        if record is not None and event.event_id in ids
    }
    numbers = {event_id: record.modification_number for event_id, record in sent.items()}
    listed = delivery.visible(listed, numbers)
    if delivery.due(listed, numbers) or delivery.unanswered(
        listed, sent, now, resend_after(context)
    ):
        distribute = DistributeEvent(
            request_id=RequestId(context.new_id()),
            vtn_id=context.settings.vtn_id,
            events=listed,
        )
        resent = tuple(
            e.event_id for e in listed if numbers.get(e.event_id) == e.modification_number
        )
        return Due(distribute, events=listed, resent=resent), True
    return None, delivery.awaiting_answer(listed, sent)


async def mark_delivered(tx: Tx, ven: vens.VenRecord, due: Due, now: datetime) -> None:
    """Record that the VEN has `due`: each event modification and each queued message once."""
    await mark_delivered_many(tx, [(ven, due, now)])


async def mark_delivered_many(
    tx: Tx, delivered: Sequence[tuple[vens.VenRecord, Due, datetime]]
) -> None:
    """`mark_delivered` for many, in a few statements however many (push recording)."""
    # Only raises what was recorded (`mark_sent_many`): a newer modification may have reached
    # the VEN meanwhile (a push VEN may poll too), and going back would send it again.
    await tx.deliveries.mark_sent_many(
        [(ven.ven_id, due.events, at) for ven, due, at in delivered if due.outbox_id is None]
    )
    for ven, due, at in delivered:
        if due.resent:
            await tx.deliveries.resent(ven.ven_id, due.resent, at)
    await tx.outbox.mark_delivered_many(
        [(due.outbox_id, at) for _, due, at in delivered if due.outbox_id is not None]
    )
    for ven, due, at in delivered:
        if isinstance(due.payload, CancelPartyRegistration):
            # N1_0040: the registration ends once the VEN has been told.
            await tx.vens.save(vens.deregistered(ven, at))


async def poll(context: Context, request: Poll, caller: Caller, now: datetime) -> Payload:
    quiet = context.quiet
    key = token = None
    if quiet is not None:
        key = quiet_key(caller.fingerprint, request.ven_id)
        token = quiet.token()  # read before the transaction: see vtn/store/changes.py
        known = quiet.lookup(key, token)
        if known is not None and key is not None:
            ven = authorize_caller(known, request.ven_id, caller)
            if not seen_recently(ven, now, context.settings.poll_interval):
                quiet.seen(key, ven, now)
            return Response(response=ok_response(RequestId("")), ven_id=ven.ven_id)
    async with context.store.transaction() as tx:
        state = await tx.vens.poll_state(now, fingerprint=caller.fingerprint, ven_id=request.ven_id)
        ven = authorize_caller(None if state is None else state.ven, request.ven_id, caller)
        if not seen_recently(ven, now, context.settings.poll_interval):
            await tx.vens.touch(ven.ven_id, now)
            ven = replace(ven, last_seen_at=now)
        due, awaiting = await _next_due(context, tx, ven, now, state)
        if due is not None:
            await mark_delivered(tx, ven, due, now)
            return due.payload
    if quiet is not None and not awaiting:
        quiet.remember(key, token, ven)
    return Response(response=ok_response(RequestId("")), ven_id=ven.ven_id)


HANDLERS: dict[type[Any], Handler] = {Poll: poll}
