"""Which events a VEN is shown, and when it must be sent them again. Pure.

Every oadrDistributeEvent carries the VEN's full ordered list of pending and active events
(events not yet over that target it). The VTN sends that list again whenever an event in it has
a modification the VEN has not been sent (a new event, a change, a cancellation): each
modification reaches each VEN once. A cancelled event the VEN was never sent is left out: there
is nothing for it to cancel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from oadr import events
from oadr.enums import EventStatus
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
