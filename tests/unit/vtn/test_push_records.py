"""When an answered push is recorded as delivered (vtn.push.still_due): once only, whoever came
first (another pusher, a poll), read under lock from what the VEN was sent."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from oadr.model import CancelPartyRegistration, EventId, RegistrationId, RequestId, VenId
from tests.factories import make_event
from vtn.delivery import Sent
from vtn.push import still_due
from vtn.services.oadr_poll import Due

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
E1 = dataclasses.replace(make_event(start=NOW), event_id=EventId("e1"), modification_number=2)


def due_list(*, resent: tuple[EventId, ...] = ()) -> Due:
    payload = CancelPartyRegistration(  # any payload: still_due reads the events and the id
        request_id=RequestId("r"), registration_id=RegistrationId("g"), ven_id=VenId("v")
    )
    return Due(payload, events=(E1,), resent=resent)


def test_a_modification_not_yet_recorded_is_still_due() -> None:
    assert still_due(due_list(), {}, set())
    assert still_due(due_list(), {E1.event_id: Sent(1, NOW, 1)}, set())


def test_a_modification_someone_else_recorded_first_is_not_due_again() -> None:
    assert not still_due(due_list(), {E1.event_id: Sent(2, NOW, None)}, set())
    assert not still_due(due_list(), {E1.event_id: Sent(3, NOW, None)}, set()), "never lower"


def test_a_list_resent_for_want_of_an_answer_is_due_until_answered() -> None:
    resent = due_list(resent=(E1.event_id,))
    assert still_due(resent, {E1.event_id: Sent(2, NOW, None)}, set())
    assert still_due(resent, {E1.event_id: Sent(2, NOW, 1)}, set()), "answered an older one"
    assert not still_due(resent, {E1.event_id: Sent(2, NOW, 2)}, set()), "answered meanwhile"


def test_a_queued_message_is_due_while_undelivered() -> None:
    message = dataclasses.replace(due_list(), events=(), outbox_id=7)
    assert still_due(message, {}, {7, 8})
    assert not still_due(message, {}, {8})
