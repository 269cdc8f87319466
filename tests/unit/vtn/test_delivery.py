"""Which events a VEN is shown and when its list is due again (vtn.delivery)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from oadr import events
from oadr.enums import EventStatus, ResponseRequired
from oadr.model import EventId, Target, VenId
from tests.factories import make_event
from vtn import delivery
from vtn.vens import Status, VenRecord

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
VEN = VenRecord(
    ven_id=VenId("ven-1"),
    fingerprint="fp",
    ven_name="house-1",
    status=Status.APPROVED,
    created_at=NOW,
    groups=("feeder-7",),
    resource_ids=("heat-pump",),
)


def event(event_id: str, start_in: timedelta, target: Target | None = None, **overrides: object):  # type: ignore[no-untyped-def]
    return dataclasses.replace(
        make_event(start=NOW + start_in),
        event_id=EventId(event_id),
        target=target or Target(),
        **overrides,
    )


def test_the_list_holds_only_events_that_target_this_ven_active_first() -> None:
    listed = delivery.events_for(
        VEN,
        [
            event("later", timedelta(hours=2)),
            event("other-ven", timedelta(hours=1), Target(ven_ids=(VenId("ven-2"),))),
            event("by-group", timedelta(hours=1), Target(group_ids=("feeder-7",))),
            event("by-resource", timedelta(minutes=-10), Target(resource_ids=("heat-pump",))),
        ],
        NOW,
    )
    assert [e.event_id for e in listed] == ["by-resource", "by-group", "later"]
    assert listed[0].status is EventStatus.ACTIVE  # refreshed as of now
    assert listed[0].signals[0].current_value == events.current_value(
        listed[0].signals[0], listed[0], NOW
    )


def test_due_when_any_modification_was_not_sent() -> None:
    listed = (event("a", timedelta(hours=1)), event("b", timedelta(hours=2)))
    assert delivery.due(listed, {})
    assert delivery.due(listed, {EventId("a"): 0})
    assert not delivery.due(listed, {EventId("a"): 0, EventId("b"): 0})
    modified = (listed[0], dataclasses.replace(listed[1], modification_number=1))
    assert delivery.due(modified, {EventId("a"): 0, EventId("b"): 0})


def test_a_cancelled_event_the_ven_never_saw_is_left_out() -> None:
    cancelled = event("gone", timedelta(hours=1), status=EventStatus.CANCELLED)
    assert delivery.visible((cancelled,), {}) == ()
    assert delivery.visible((cancelled,), {EventId("gone"): 0}) == (cancelled,)


GRACE = timedelta(seconds=30)


def test_a_modification_sent_and_unanswered_past_the_grace_is_sent_again() -> None:
    listed = [event("e", timedelta(hours=1))]
    sent_at = NOW - GRACE
    unanswered = {EventId("e"): delivery.Sent(0, sent_at, answered=None)}
    assert delivery.unanswered(listed, unanswered, NOW, GRACE)
    assert not delivery.unanswered(listed, unanswered, NOW - timedelta(seconds=1), GRACE)
    assert delivery.awaiting_answer(listed, unanswered)


def test_an_answered_modification_or_an_older_sent_one_is_not_resent_by_this_rule() -> None:
    listed = [event("e", timedelta(hours=1), modification_number=2)]
    answered = {EventId("e"): delivery.Sent(2, NOW - GRACE, answered=2)}
    assert not delivery.unanswered(listed, answered, NOW, GRACE)
    assert not delivery.awaiting_answer(listed, answered)
    older = {EventId("e"): delivery.Sent(1, NOW - GRACE, answered=1)}
    assert not delivery.unanswered(listed, older, NOW, GRACE), "due() sends a newer one anyway"
    never: dict[EventId, delivery.Sent] = {}
    assert not delivery.unanswered(listed, never, NOW, GRACE)


def test_events_that_ask_for_no_answer_are_never_resent() -> None:
    listed = [event("e", timedelta(hours=1), response_required=ResponseRequired.NEVER)]
    sent = {EventId("e"): delivery.Sent(0, NOW - 10 * GRACE, answered=None)}
    assert not delivery.unanswered(listed, sent, NOW, GRACE)
    assert not delivery.awaiting_answer(listed, sent)
