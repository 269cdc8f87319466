"""Which events a VEN is shown, and when it must be sent them again. Pure.

Every oadrDistributeEvent carries the VEN's full ordered list of pending and active events
(events not yet over that target it). The VTN sends that list again whenever an event in it has
a modification the VEN has not been sent (a new event, a change, a cancellation): each
modification reaches each VEN once. A cancelled event the VEN was never sent is left out: there
is nothing for it to cancel.

Sent is not received: a pull VTN records the list as sent before its reply leaves, and a reply
can be lost after that (the worker killed, the connection cut). For an event that asks for an
answer (oadrResponseRequired "always") the VEN's oadrCreatedEvent is the receipt, so a list
with a modification sent but not answered `resend_after` ago is sent again (`unanswered`); a VEN
that had it already keeps what it runs (same modificationNumber). Events that ask for no answer
have no receipt and are sent once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from oadr import events
from oadr.enums import EventStatus, ResponseRequired
from oadr.model import Event, EventId
from vtn.vens import VenRecord


def events_for(ven: VenRecord, current: Iterable[Event], now: datetime) -> tuple[Event, ...]:
    """The events this VEN's list holds, as of `now` (status and current values refreshed)."""
    party_ids = (ven.party_id,) if ven.party_id else ()
    matching = [
        events.refresh(event, now)
        for event in current
        if events.matches_target(event.target, ven.ven_id, ven.resource_ids, ven.groups, party_ids)
    ]
    return events.order(matching, now)


def visible(listed: Iterable[Event], sent: Mapping[EventId, int]) -> tuple[Event, ...]:
    """Leave out cancelled events this VEN never saw."""
    return tuple(
        event
        for event in listed
        if event.status is not EventStatus.CANCELLED or event.event_id in sent
    )


def due(listed: Iterable[Event], sent: Mapping[EventId, int]) -> bool:
    """Whether any event in the list has a modification this VEN has not been sent."""
    return any(sent.get(event.event_id) != event.modification_number for event in listed)


@dataclass(frozen=True, slots=True)
class Sent:
    """What a VEN was sent of one event: the modification, when, and what it answered."""

    modification_number: int
    at: datetime
    answered: int | None  # the modificationNumber its last oadrCreatedEvent answered


def unanswered(
    listed: Iterable[Event], sent: Mapping[EventId, Sent], now: datetime, resend_after: timedelta
) -> bool:
    """Whether an event in the list was sent in its current modification, asks for an answer,
    and has had none for `resend_after`: the list is sent again (see the module docstring)."""
    return any(
        event.response_required is ResponseRequired.ALWAYS
        and (record := sent.get(event.event_id)) is not None
        and record.modification_number == event.modification_number
        and record.answered != event.modification_number
        and record.at <= now - resend_after
        for event in listed
    )


def awaiting_answer(listed: Iterable[Event], sent: Mapping[EventId, Sent]) -> bool:
    """Whether any event in the list was sent and its answer has not come yet."""
    return any(
        event.response_required is ResponseRequired.ALWAYS
        and (record := sent.get(event.event_id)) is not None
        and record.answered != record.modification_number
        for event in listed
    )
