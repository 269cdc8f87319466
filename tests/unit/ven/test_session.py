"""The VEN session state machine, driven through whole exchanges with hand-built VTN replies.

Test names carry the certification test plan's case ids (OPENADR-2.0b-TESTPLAN.md) where one
applies. Every scenario runs on the fixed clock of `tests/factories.py` (NOW = 12:00 UTC; the
default event runs 13:00-14:00).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from oadr import reports
from oadr.enums import (
    EventStatus,
    ItemKind,
    OptType,
    ReportName,
    ResponseCode,
    ResponseRequired,
    SignalName,
    SignalType,
)
from oadr.model import (
    CanceledPartyRegistration,
    CanceledReport,
    CancelPartyRegistration,
    CreatedEvent,
    CreatedOpt,
    CreatedReport,
    CreateOpt,
    CreatePartyRegistration,
    DistributeEvent,
    Event,
    EventId,
    EventResponse,
    Payload,
    Poll,
    QueryRegistration,
    RegisteredReport,
    RegisterReport,
    ReportRequest,
    ReportRequestId,
    RequestEvent,
    RequestId,
    ResourceStatus,
    Response,
    RId,
    SpecifierPayload,
    TimeWindow,
    UpdatedReport,
    UpdateReport,
    VenId,
)
from tests.factories import (
    EVENT_ID,
    HOUR,
    MARKET_CONTEXT,
    MINUTE,
    NOW,
    REGISTRATION_ID,
    VEN_ID,
    VTN_ID,
    make_active_period,
    make_cancel_party_registration,
    make_cancel_report,
    make_create_report,
    make_created_party_registration,
    make_distribute_event,
    make_ei_response,
    make_event,
    make_payload,
    make_register_report,
    make_registered_report,
    make_request_reregistration,
    make_response,
    make_signal,
    make_target,
    make_updated_report,
)
from ven import jsonform, outbox, reporting
from ven.model import ActiveSignal, Decision, DeviceKind
from ven.reporting import ResourceSpec, power_rid, status_rid
from ven.schedule import Policy
from ven.session import (
    Action,
    ApplySignals,
    DecisionMade,
    Phase,
    Retry,
    Session,
    SessionConfig,
    SessionState,
)

SECOND = timedelta(seconds=1)
HP = "hp-1"
HP_POWER = power_rid(HP)
HP_STATUS = status_rid(HP)


# --- helpers --------------------------------------------------------------------------------------


def opt_in(event: Event, now: datetime) -> Decision:
    return Decision(opt=OptType.OPT_IN, reason="within comfort limits")


def opt_out_policy(event: Event, now: datetime) -> Decision:
    return Decision(opt=OptType.OPT_OUT, reason="heat pump may not be touched")


def make_config(**overrides: Any) -> SessionConfig:
    config = SessionConfig(
        ven_name="ven one",
        resources=(ResourceSpec(resource_id=HP, kind=DeviceKind.HEAT_PUMP),),
        retry=Retry(base=4 * SECOND, maximum=60 * SECOND),
    )
    return dataclasses.replace(config, **overrides)


def ok_reply(request: Payload, session: Session) -> Payload:
    """What a content VTN answers to each message a VEN posts (RequestEvent: what it knows)."""
    ok = make_ei_response(request_id=getattr(request, "request_id", RequestId("")))
    if isinstance(request, QueryRegistration):
        return make_created_party_registration(response=ok, ven_id=None, registration_id=None)
    if isinstance(request, CreatePartyRegistration):
        return make_created_party_registration(response=ok)
    if isinstance(request, RegisterReport):
        return RegisteredReport(response=ok, ven_id=VEN_ID)
    if isinstance(request, UpdateReport):
        return UpdatedReport(response=ok, ven_id=VEN_ID)
    if isinstance(request, CreateOpt):
        return CreatedOpt(response=ok, opt_id=request.opt_id)
    if isinstance(request, RequestEvent):
        listed = tuple(r.event for r in session.state.events if r.listed)
        return DistributeEvent(request_id=request.request_id, vtn_id=VTN_ID, events=listed)
    if isinstance(request, CancelPartyRegistration):
        return CanceledPartyRegistration(response=ok, registration_id=REGISTRATION_ID)
    return Response(response=ok, ven_id=VEN_ID)


def drain(session: Session, now: datetime) -> list[Payload]:
    """Send every queued message, each answered OK, until only a Poll (or nothing) is left."""
    sent: list[Payload] = []
    while (request := session.next_request(now)) is not None and not isinstance(request, Poll):
        sent.append(request)
        assert len(sent) < 100, f"the VEN keeps sending: {sent[-3:]}"
        session.receive(ok_reply(request, session), now)
    return sent


def poll_gets(
    session: Session, message: Payload, now: datetime, draw: float = 0.5
) -> list[Payload]:
    """Poll, receive `message` in reply, then send what the VEN queued in answer."""
    assert isinstance(session.next_request(now), Poll)
    session.receive(message, now, draw)
    return drain(session, now)


def push(session: Session, message: Payload, now: datetime, draw: float = 0.5) -> list[Payload]:
    """The VTN pushes `message`: the VEN's HTTP reply (if any), then what it queued, sent."""
    session.receive(message, now, draw)
    reply = session.reply_to_push()
    return ([reply] if reply is not None else []) + drain(session, now)


def actions(session: Session) -> list[Action]:
    found = []
    while (action := session.next_action()) is not None:
        found.append(action)
    return found


def applied(session: Session) -> list[tuple[ActiveSignal, ...]]:
    return [a.signals for a in actions(session) if isinstance(a, ApplySignals)]


def registered(policy: Policy = opt_in, **config: Any) -> Session:
    """A session taken through the bootstrap, its queue drained, a Poll due next."""
    session = Session(make_config(**config), policy)
    assert isinstance(session.next_request(NOW), QueryRegistration)
    session.receive(make_created_party_registration(ven_id=None, registration_id=None), NOW)
    assert isinstance(session.next_request(NOW), CreatePartyRegistration)
    session.receive(make_created_party_registration(), NOW)
    drain(session, NOW)
    actions(session)
    return session


def created_events(messages: Sequence[Payload]) -> list[CreatedEvent]:
    return [m for m in messages if isinstance(m, CreatedEvent)]


def responses_of(messages: Sequence[Payload]) -> list[EventResponse]:
    return [r for m in created_events(messages) for r in m.event_responses]


def signal_values(session: Session) -> dict[str, float]:
    return {f"{s.event_id}/{s.signal_name}": s.value for s in session.state.signals}


# --- registration ---------------------------------------------------------------------------------


def test_n1_0020_bootstrap_registers_then_sends_metadata_and_asks_for_events() -> None:
    session = Session(make_config(xml_signature=True, report_only=False), opt_in)

    query = session.next_request(NOW)
    assert isinstance(query, QueryRegistration)
    session.receive(make_created_party_registration(ven_id=None, registration_id=None), NOW)
    create = session.next_request(NOW)
    assert isinstance(create, CreatePartyRegistration)
    assert (create.ven_name, create.http_pull_model, create.xml_signature) == (
        "ven one",
        True,
        True,
    )
    assert create.ven_id is None and create.transport_address is None
    assert create.request_id != query.request_id

    session.receive(make_created_party_registration(requested_poll_freq=30 * SECOND), NOW)
    status = session.status()
    assert (status.phase, status.ven_id, status.registration_id) == (
        Phase.REGISTERED,
        VEN_ID,
        REGISTRATION_ID,
    )
    assert status.poll_interval == 30 * SECOND

    sent = drain(session, NOW)
    register, request_event = sent
    assert isinstance(register, RegisterReport) and isinstance(request_event, RequestEvent)
    reports.validate_register_report(register)  # reportRequestID 0, no intervals, samplingRate
    assert {r.report_name for r in register.reports} == {
        ReportName.METADATA_TELEMETRY_USAGE,
        ReportName.METADATA_TELEMETRY_STATUS,
    }
    assert {d.r_id for r in register.reports for d in r.descriptions} == {HP_POWER, HP_STATUS}
    assert session.next_request(NOW) == Poll(ven_id=VEN_ID)


def test_n1_0020_vtn_register_report_is_answered_with_registered_report() -> None:
    session = registered()
    sent = poll_gets(session, make_register_report(request_id=RequestId("vtn-rr")), NOW)
    assert sent == [
        RegisteredReport(response=make_ei_response(request_id=RequestId("vtn-rr")), ven_id=VEN_ID)
    ]


def test_n1_0025_pre_allocated_ven_id_is_sent_when_registering() -> None:
    session = Session(make_config(ven_id=VenId("pre-1")), opt_in)
    session.next_request(NOW)
    session.receive(make_created_party_registration(ven_id=None, registration_id=None), NOW)
    create = session.next_request(NOW)
    assert isinstance(create, CreatePartyRegistration) and create.ven_id == "pre-1"


@pytest.mark.parametrize("code", [463, 452, 469], ids=["463-awaiting-approval", "452", "469"])
def test_n1_0070_refused_registration_is_retried_with_growing_backoff(code: int) -> None:
    session = Session(make_config(), opt_in)
    session.next_request(NOW)
    session.receive(make_created_party_registration(ven_id=None, registration_id=None), NOW)
    refusal = make_created_party_registration(
        response=make_ei_response(code=code), ven_id=None, registration_id=None
    )

    session.next_request(NOW)
    session.receive(refusal, NOW, draw=0.0)
    assert session.next_request(NOW + SECOND) is None
    assert session.timer() == NOW + 2 * SECOND  # half of base 4 s, no jitter at draw 0
    assert isinstance(session.next_request(NOW + 2 * SECOND), CreatePartyRegistration)
    session.receive(refusal, NOW + 2 * SECOND, draw=0.0)
    assert session.timer() == NOW + 6 * SECOND  # 2 s + half of 8 s
    assert str(code) in (session.status().last_error or "")

    session.next_request(NOW + 6 * SECOND)
    session.receive(make_created_party_registration(), NOW + 6 * SECOND)
    assert session.state.phase == Phase.REGISTERED and session.state.refusals == 0


def test_a_created_party_registration_without_ven_id_is_a_refusal() -> None:
    session = Session(make_config(), opt_in)
    session.next_request(NOW)
    session.receive(make_created_party_registration(ven_id=None, registration_id=None), NOW)
    session.next_request(NOW)
    session.receive(make_created_party_registration(ven_id=None), NOW)
    assert session.state.phase == Phase.REGISTERING
    assert session.next_request(NOW) is None


def test_n1_0050_request_reregistration_by_poll_keeps_ven_id_and_events() -> None:
    session = registered()
    poll_gets(session, make_distribute_event(), NOW)

    sent = poll_gets(session, make_request_reregistration(), NOW)
    kinds = [type(m) for m in sent]
    assert kinds == [Response, CreatePartyRegistration, RegisterReport, RequestEvent]
    create = sent[1]
    assert isinstance(create, CreatePartyRegistration)
    assert (create.ven_id, create.registration_id) == (VEN_ID, REGISTRATION_ID)
    assert session.state.events and session.state.events[0].event_id == EVENT_ID


def test_n0_5050_pushed_request_reregistration_is_answered_in_the_reply() -> None:
    session = registered(http_pull_model=False, transport_address="https://ven.example/")
    session.receive(make_request_reregistration(), NOW)
    reply = session.reply_to_push()
    assert isinstance(reply, Response) and reply.response.code == 200
    assert isinstance(session.next_request(NOW), CreatePartyRegistration)


def test_n1_0040_vtn_cancels_registration_then_the_ven_registers_again() -> None:
    session = registered()
    poll_gets(session, make_distribute_event(events=[make_event(start=NOW)]), NOW)
    assert applied(session)  # the event is running

    assert isinstance(session.next_request(NOW), Poll)
    session.receive(make_cancel_party_registration(request_id=RequestId("c-1")), NOW, draw=0.0)
    answer = session.next_request(NOW)
    assert answer == CanceledPartyRegistration(
        response=make_ei_response(request_id=RequestId("c-1")),
        registration_id=REGISTRATION_ID,
        ven_id=VEN_ID,
    )
    session.receive(make_response(), NOW)
    assert applied(session) == [()]  # its events no longer drive devices
    assert session.state.phase == Phase.QUERYING and session.state.registration_id is None
    assert session.next_request(NOW) is None  # backoff first
    assert isinstance(session.next_request(NOW + 2 * SECOND), QueryRegistration)


def test_n1_0040_cancel_naming_another_registration_is_refused_452() -> None:
    session = registered()
    sent = poll_gets(session, make_cancel_party_registration(registration_id="someone-else"), NOW)
    assert len(sent) == 1 and isinstance(sent[0], CanceledPartyRegistration)
    assert sent[0].response.code == ResponseCode.INVALID_ID
    assert session.state.phase == Phase.REGISTERED


def test_n1_0030_ven_cancels_its_registration_and_stays_away_until_told() -> None:
    session = registered()
    session.cancel_registration()
    cancel = session.next_request(NOW)
    assert isinstance(cancel, CancelPartyRegistration)
    assert (cancel.registration_id, cancel.ven_id) == (REGISTRATION_ID, VEN_ID)
    session.receive(ok_reply(cancel, session), NOW)
    assert session.state.phase == Phase.CANCELLED
    assert session.next_request(NOW + HOUR) is None
    session.register()
    assert isinstance(session.next_request(NOW + HOUR), QueryRegistration)


def test_n1_0080_payload_pushed_while_unregistered_is_refused_463() -> None:
    session = Session(make_config(http_pull_model=False), opt_in)
    session.receive(make_distribute_event(), NOW)
    reply = session.reply_to_push()
    assert isinstance(reply, CreatedEvent) and reply.response.code == 463
    assert session.state.events == ()


def test_n0_push_ven_registers_with_its_address_and_never_polls() -> None:
    session = registered(http_pull_model=False, transport_address="https://ven.example/oadr")
    assert session.next_request(NOW + HOUR) is None
    session.cancel_registration()  # re-check what it registered with via a fresh session
    fresh = Session(make_config(http_pull_model=False, transport_address="https://x/"), opt_in)
    fresh.next_request(NOW)
    fresh.receive(make_created_party_registration(ven_id=None, registration_id=None), NOW)
    create = fresh.next_request(NOW)
    assert isinstance(create, CreatePartyRegistration)
    assert (create.http_pull_model, create.transport_address) == (False, "https://x/")


# --- polling and delivery -------------------------------------------------------------------------


def test_g1_4011_empty_poll_waits_the_requested_poll_frequency() -> None:
    session = registered()
    assert isinstance(session.next_request(NOW), Poll)
    session.receive(make_response(), NOW)
    assert session.next_request(NOW + 9 * SECOND) is None
    assert session.timer() == NOW + 10 * SECOND
    assert isinstance(session.next_request(NOW + 10 * SECOND), Poll)


def test_g1_4015_ven_drains_the_vtn_queue_by_polling_again_at_once() -> None:
    session = registered()
    first = poll_gets(session, make_distribute_event(), NOW)
    assert [type(m) for m in first] == [CreatedEvent]
    assert isinstance(session.next_request(NOW), Poll)  # again, before the interval
    second = poll_gets(session, make_create_report(), NOW)
    assert [type(m) for m in second] == [CreatedReport]
    assert isinstance(session.next_request(NOW), Poll)


def test_poll_answered_463_means_the_vtn_lost_us_and_we_register_again() -> None:
    session = registered()
    session.next_request(NOW)
    session.receive(make_response(response=make_ei_response(code=463)), NOW)
    create = session.next_request(NOW)
    assert isinstance(create, CreatePartyRegistration) and create.ven_id == VEN_ID


def test_undelivered_request_stays_queued_behind_capped_exponential_backoff() -> None:
    session = registered()
    poll = session.next_request(NOW)
    assert poll is not None
    moment, waits = NOW, []
    for _ in range(6):
        request = session.next_request(moment)
        assert request == poll  # the same request, kept
        session.failed(request, moment, draw=0.999)
        assert session.next_request(moment) is None
        retry_at = session.timer()
        assert retry_at is not None
        waits.append(retry_at - moment)
        moment = retry_at
    assert waits[1] > waits[0] and waits[2] > waits[1]
    assert max(waits) <= 60 * SECOND  # capped
    assert session.status().last_error == "Poll not delivered (6 in a row)"
    session.receive(make_response(), moment)
    assert session.state.failures == 0 and session.state.retry_at is None


@pytest.mark.parametrize(
    ("failures", "draw", "expected"),
    [
        (1, 0.0, 2 * SECOND),
        (1, 0.5, 3 * SECOND),
        (2, 0.0, 4 * SECOND),
        (3, 0.0, 8 * SECOND),
        (10, 0.0, 30 * SECOND),
        (10, 0.999999, 60 * SECOND - timedelta(microseconds=30)),
    ],
    ids=["first", "jitter", "doubles", "doubles-again", "capped", "capped-full-jitter"],
)
def test_backoff_delay(failures: int, draw: float, expected: timedelta) -> None:
    assert Retry(base=4 * SECOND, maximum=60 * SECOND).delay(failures, draw) == expected


def test_clock_skew_over_30_seconds_is_flagged() -> None:
    session = registered()
    session.next_request(NOW)
    session.receive(make_response(), NOW, vtn_time=NOW + 5 * SECOND)
    assert (session.status().clock_skew, session.status().clock_skew_flagged) == (5 * SECOND, False)
    session.next_request(NOW + HOUR)
    session.receive(make_response(), NOW + HOUR, vtn_time=NOW + HOUR - 45 * SECOND)
    assert session.status().clock_skew == -45 * SECOND and session.status().clock_skew_flagged
    assert session.status().last_contact == NOW + HOUR


# --- events ---------------------------------------------------------------------------------------


def test_e1_1010_empty_distribute_event_is_not_answered() -> None:
    session = registered()
    assert poll_gets(session, make_distribute_event(events=[]), NOW) == []
    push = registered(http_pull_model=False)
    push.receive(make_distribute_event(events=[]), NOW)
    assert push.reply_to_push() is None


def test_new_event_is_answered_once_with_the_policy_decision() -> None:
    session = registered()
    sent = poll_gets(session, make_distribute_event(request_id=RequestId("d-1")), NOW)
    (created,) = created_events(sent)
    assert created.response.request_id == "d-1" and created.ven_id == VEN_ID
    assert created.event_responses == (
        EventResponse(
            code=200,
            request_id=RequestId("d-1"),
            event_id=EVENT_ID,
            modification_number=0,
            opt_type=OptType.OPT_IN,
            description="within comfort limits",
        ),
    )
    assert DecisionMade(EVENT_ID, 0, opt_in(make_event(), NOW)) in actions(session)


def test_e1_1030_the_same_event_again_is_not_answered_again() -> None:
    session = registered()
    poll_gets(session, make_distribute_event(), NOW)
    other = make_event(event_id=EventId("event-2"), start=NOW + 2 * HOUR)
    sent = poll_gets(session, make_distribute_event(events=[make_event(), other]), NOW)
    assert [(r.event_id, r.modification_number) for r in responses_of(sent)] == [("event-2", 0)]


def test_pushed_event_is_answered_in_the_http_reply_not_queued() -> None:
    session = registered(http_pull_model=False)
    session.receive(make_distribute_event(), NOW)
    reply = session.reply_to_push()
    assert isinstance(reply, CreatedEvent) and len(reply.event_responses) == 1
    assert session.state.outbox == ()


def test_modification_is_answered_with_its_number_and_asks_the_policy_again() -> None:
    asked: list[int] = []

    def policy(event: Event, now: datetime) -> Decision:
        asked.append(event.modification_number)
        return opt_in(event, now)

    session = registered(policy)
    poll_gets(session, make_distribute_event(), NOW)
    modified = make_event(modification_number=1, signals=(make_signal((2.0,)),))
    sent = poll_gets(session, make_distribute_event(events=[modified]), NOW)
    assert [r.modification_number for r in responses_of(sent)] == [1]
    assert asked == [0, 1]


def test_response_required_never_is_not_answered_but_still_runs() -> None:
    session = registered()
    event = make_event(start=NOW, response_required=ResponseRequired.NEVER)
    assert poll_gets(session, make_distribute_event(events=[event]), NOW) == []
    assert signal_values(session) == {"event-1/SIMPLE": 1.0}


def test_a_e1_0392_lower_modification_number_is_answered_450_and_the_newer_stays() -> None:
    session = registered()
    poll_gets(session, make_distribute_event(events=[make_event(modification_number=3)]), NOW)
    stale = make_event(modification_number=2, signals=(make_signal((3.0,)),))
    sent = poll_gets(session, make_distribute_event(events=[stale]), NOW)
    assert [(r.code, r.modification_number) for r in responses_of(sent)] == [(450, 2)]
    assert session.state.events[0].event.modification_number == 3


def test_a_e1_0110_new_event_with_modification_number_above_zero_is_new() -> None:
    session = registered()
    sent = poll_gets(
        session, make_distribute_event(events=[make_event(modification_number=4)]), NOW
    )
    assert [(r.code, r.modification_number, r.opt_type) for r in responses_of(sent)] == [
        (200, 4, OptType.OPT_IN)
    ]


@pytest.mark.parametrize(
    ("event", "config", "code", "opt"),
    [
        pytest.param(
            make_event(start=NOW, market_context="http://other.example/dr"),
            {"market_contexts": frozenset({MARKET_CONTEXT})},
            200,
            OptType.OPT_OUT,
            id="a_e1_0325-unknown-market-context-optout",
        ),
        pytest.param(
            make_event(start=NOW),
            {"market_contexts": frozenset({MARKET_CONTEXT})},
            200,
            OptType.OPT_IN,
            id="known-market-context-optin",
        ),
        pytest.param(
            make_event(start=NOW, target=make_target(ven_ids=(VenId("ven-9"),))),
            {},
            462,
            OptType.OPT_OUT,
            id="a_e1_0300-other-ven-462",
        ),
        pytest.param(
            make_event(start=NOW, target=make_target(resource_ids=(HP,))),
            {},
            200,
            OptType.OPT_IN,
            id="a_e1_0070-our-resource-targeted",
        ),
        pytest.param(
            make_event(start=NOW, target=make_target(group_ids=("north",))),
            {"group_ids": ("north",)},
            200,
            OptType.OPT_IN,
            id="our-group-targeted",
        ),
        pytest.param(
            make_event(
                start=NOW,
                signals=(make_signal(signal_name=SignalName.SIMPLE, signal_type=SignalType.PRICE),),
            ),
            {},
            454,
            OptType.OPT_OUT,
            id="e1_1070-signal-type-not-allowed-454",
        ),
        pytest.param(
            make_event(start=NOW, signals=(make_signal((7.0,)),)),
            {},
            454,
            OptType.OPT_OUT,
            id="simple-level-out-of-range-454",
        ),
    ],
)
def test_which_events_this_ven_runs(
    event: Event, config: dict[str, Any], code: int, opt: OptType
) -> None:
    session = registered(**config)
    sent = poll_gets(session, make_distribute_event(events=[event]), NOW)
    assert [(r.code, r.opt_type) for r in responses_of(sent)] == [(code, opt)]
    runs = opt == OptType.OPT_IN
    assert bool(session.state.signals) is runs
    assert session.status().events[0].drives is runs


def test_a_e1_0130_test_event_is_answered_but_never_drives_devices() -> None:
    session = registered()
    sent = poll_gets(
        session, make_distribute_event(events=[make_event(start=NOW, test_event=True)]), NOW
    )
    assert [r.opt_type for r in responses_of(sent)] == [OptType.OPT_IN]
    session.handle_timer(NOW + MINUTE)
    assert session.state.signals == ()
    assert session.status().events[0].reason == "test event"


def test_a_e1_0345_unknown_cancelled_event_is_acknowledged_never_an_error() -> None:
    session = registered()
    cancelled = make_event(status=EventStatus.CANCELLED, modification_number=2)
    sent = poll_gets(session, make_distribute_event(events=[cancelled]), NOW)
    assert [(r.code, r.modification_number) for r in responses_of(sent)] == [(200, 2)]
    assert session.state.signals == ()


def test_repeated_event_id_in_one_message_is_answered_452() -> None:
    session = registered()
    sent = poll_gets(session, make_distribute_event(events=[make_event(), make_event()]), NOW)
    assert [r.code for r in responses_of(sent)] == [200, 452]


def test_a_e1_0390_distribute_event_from_another_vtn_is_refused() -> None:
    session = registered()
    sent = poll_gets(session, make_distribute_event(vtn_id="vtn-other"), NOW)
    (created,) = created_events(sent)
    assert created.response.code == 452 and session.state.events == ()


def test_event_runs_through_its_intervals_and_ends() -> None:
    session = registered(http_pull_model=False)  # no polls: the timer follows the event alone
    event = make_event(duration=2 * HOUR, signals=(make_signal((1.0, 3.0)),))
    push(session, make_distribute_event(events=[event]), NOW)
    actions(session)

    assert session.timer() == NOW + HOUR  # dtstart
    session.handle_timer(NOW + HOUR)
    (start,) = applied(session)
    assert [(s.value, s.until) for s in start] == [(1.0, NOW + 2 * HOUR)]
    session.handle_timer(NOW + 2 * HOUR)
    (second,) = applied(session)
    assert [(s.value, s.until) for s in second] == [(3.0, NOW + 3 * HOUR)]
    session.handle_timer(NOW + 3 * HOUR)
    assert applied(session) == [()]
    assert session.status().events[0].status == EventStatus.COMPLETED


@pytest.mark.parametrize(
    ("draw", "start"),
    [(0.0, NOW + HOUR), (0.5, NOW + HOUR + 5 * MINUTE), (0.9, NOW + HOUR + 9 * MINUTE)],
    ids=["draw-0", "draw-half", "draw-0.9"],
)
def test_a_e1_0260_randomized_start_within_startafter(draw: float, start: datetime) -> None:
    session = registered()
    event = make_event(active_period=make_active_period(start_after=10 * MINUTE))
    poll_gets(session, make_distribute_event(events=[event]), NOW, draw=draw)
    assert session.status().events[0].start_at == start
    session.handle_timer(start - SECOND)
    assert session.state.signals == ()
    session.handle_timer(start)
    assert signal_values(session) == {"event-1/SIMPLE": 1.0}


def test_a_e1_0262_modification_keeping_dtstart_keeps_the_randomized_start() -> None:
    session = registered()
    period = make_active_period(start_after=10 * MINUTE)
    poll_gets(session, make_distribute_event(events=[make_event(active_period=period)]), NOW, 0.5)
    modified = make_event(active_period=period, modification_number=1)
    poll_gets(session, make_distribute_event(events=[modified]), NOW, draw=0.9)
    assert session.status().events[0].start_at == NOW + HOUR + 5 * MINUTE
    moved = make_event(
        active_period=make_active_period(start=NOW + 2 * HOUR, start_after=10 * MINUTE),
        modification_number=2,
    )
    poll_gets(session, make_distribute_event(events=[moved]), NOW, draw=0.9)
    assert session.status().events[0].start_at == NOW + 2 * HOUR + 9 * MINUTE


def test_a_e1_0267_explicit_cancellation_of_an_active_event_stops_it_randomized() -> None:
    session = registered()
    period = make_active_period(start=NOW - MINUTE, start_after=10 * MINUTE)
    poll_gets(session, make_distribute_event(events=[make_event(active_period=period)]), NOW, 0.0)
    assert signal_values(session) == {"event-1/SIMPLE": 1.0}
    cancelled = make_event(
        active_period=period, status=EventStatus.CANCELLED, modification_number=1
    )
    sent = poll_gets(session, make_distribute_event(events=[cancelled]), NOW, draw=0.5)
    assert [(r.modification_number, r.opt_type) for r in responses_of(sent)] == [
        (1, OptType.OPT_IN)
    ]
    assert session.status().events[0].end_at == NOW + 5 * MINUTE
    assert [s.until for s in session.state.signals] == [NOW + 5 * MINUTE]
    session.handle_timer(NOW + 5 * MINUTE)
    assert session.state.signals == ()


def test_a_e1_0268_implicit_cancellation_ends_an_event_without_answer() -> None:
    session = registered()
    poll_gets(session, make_distribute_event(events=[make_event(start=NOW)]), NOW)
    assert session.state.signals
    other = make_event(event_id=EventId("event-2"), start=NOW + 3 * HOUR)
    sent = poll_gets(session, make_distribute_event(events=[other]), NOW + MINUTE)
    assert [r.event_id for r in responses_of(sent)] == ["event-2"]
    assert session.state.signals == ()
    lines = {line.event_id: line.status for line in session.status().events}
    assert lines[EVENT_ID] == EventStatus.CANCELLED
    # listing the cancelled event again as not cancelled is refused: it stays cancelled
    relisted = make_distribute_event(events=[make_event(start=NOW), other])
    again = poll_gets(session, relisted, NOW + MINUTE)
    assert [r.code for r in responses_of(again)] == [451]


def test_cancelling_an_event_that_has_not_started_means_it_never_starts() -> None:
    session = registered()
    period = make_active_period(start_after=10 * MINUTE)
    poll_gets(session, make_distribute_event(events=[make_event(active_period=period)]), NOW)
    cancelled = make_event(
        active_period=period, status=EventStatus.CANCELLED, modification_number=1
    )
    poll_gets(session, make_distribute_event(events=[cancelled]), NOW)
    session.handle_timer(NOW + HOUR + 30 * MINUTE)
    assert session.state.signals == ()


def _prioritised(event_id: str, priority: int | None, start: datetime, value: float) -> Event:
    return make_event(
        event_id=EventId(event_id),
        priority=priority,
        active_period=make_active_period(start=start, duration=2 * HOUR),
        signals=(make_signal((value,), durations=(2 * HOUR,)),),
    )


@pytest.mark.parametrize(
    ("a", "b", "winner"),
    [
        ((1, NOW), (2, NOW), "a"),
        ((2, NOW), (1, NOW), "b"),
        ((0, NOW), (3, NOW), "b"),
        ((None, NOW), (5, NOW), "b"),
        ((1, NOW - HOUR), (1, NOW), "a"),
        ((1, NOW), (1, NOW - HOUR), "b"),
        ((None, NOW), (0, NOW), "a"),
    ],
    ids=[
        "lower-number-wins",
        "lower-number-wins-b",
        "zero-is-lowest",
        "absent-is-lowest",
        "tie-earlier-start",
        "tie-earlier-start-b",
        "tie-eventid",
    ],
)
def test_a_e1_0270_overlapping_events_the_higher_priority_wins(
    a: tuple[int | None, datetime], b: tuple[int | None, datetime], winner: str
) -> None:
    session = registered()
    first = _prioritised("a", a[0], a[1], 1.0)
    second = _prioritised("b", b[0], b[1], 2.0)
    poll_gets(session, make_distribute_event(events=[first, second]), NOW)
    (signal,) = session.state.signals
    assert signal.event_id == winner


def test_signals_with_different_targets_do_not_compete() -> None:
    session = registered()
    first = _prioritised("a", 1, NOW, 1.0)
    second = dataclasses.replace(
        _prioritised("b", 2, NOW, 2.0), target=make_target(resource_ids=(HP,))
    )
    poll_gets(session, make_distribute_event(events=[first, second]), NOW)
    assert {s.event_id for s in session.state.signals} == {"a", "b"}


def test_load_dispatch_signal_in_force_carries_its_unit() -> None:
    session = registered()
    from tests.factories import make_item_base

    signal = make_signal(
        (3.0,),
        signal_name=SignalName.LOAD_DISPATCH,
        signal_type=SignalType.SETPOINT,
        item_base=make_item_base(ItemKind.POWER_REAL),
    )
    poll_gets(
        session, make_distribute_event(events=[make_event(start=NOW, signals=(signal,))]), NOW
    )
    (active,) = session.state.signals
    assert (active.signal_name, active.signal_type, active.value) == (
        SignalName.LOAD_DISPATCH,
        SignalType.SETPOINT,
        3.0,
    )
    assert active.item_base is not None and active.item_base.kind == ItemKind.POWER_REAL


def test_policy_opt_out_keeps_the_event_from_devices() -> None:
    session = registered(opt_out_policy)
    sent = poll_gets(session, make_distribute_event(events=[make_event(start=NOW)]), NOW)
    assert [r.opt_type for r in responses_of(sent)] == [OptType.OPT_OUT]
    assert session.state.signals == ()


def test_finished_events_the_vtn_no_longer_lists_are_forgotten() -> None:
    session = registered()
    poll_gets(session, make_distribute_event(), NOW)
    poll_gets(session, make_distribute_event(events=[]), NOW)  # cancelled before it started
    session.handle_timer(NOW + 23 * HOUR)
    assert [r.event_id for r in session.state.events] == [EVENT_ID]
    session.handle_timer(NOW + 24 * HOUR)
    assert session.state.events == ()


# --- opt ------------------------------------------------------------------------------------------


def test_e1_1060_manual_opt_out_sends_create_opt_and_releases_devices() -> None:
    session = registered()
    poll_gets(session, make_distribute_event(events=[make_event(start=NOW)]), NOW)
    actions(session)

    session.opt_out(EVENT_ID, NOW + MINUTE, "guests tonight")
    assert applied(session) == [()]
    opt = session.next_request(NOW + MINUTE)
    assert isinstance(opt, CreateOpt)
    assert (opt.event_id, opt.modification_number, opt.opt_type) == (EVENT_ID, 0, OptType.OPT_OUT)
    assert opt.market_context is None and opt.ven_id == VEN_ID and opt.created == NOW + MINUTE
    session.receive(CreatedOpt(response=make_ei_response(), opt_id=opt.opt_id), NOW + MINUTE)
    assert [o.answer_code for o in session.status().opts] == [200]
    line = session.status().events[0]
    assert (line.opt, line.reason, line.drives) == (OptType.OPT_OUT, "guests tonight", False)

    # a later modification stays opted out without asking the household again
    modified = make_event(start=NOW, modification_number=1)
    sent = poll_gets(session, make_distribute_event(events=[modified]), NOW + 2 * MINUTE)
    assert [r.opt_type for r in responses_of(sent)] == [OptType.OPT_OUT]
    assert session.state.signals == ()


def test_opting_out_of_an_unknown_event_is_an_error() -> None:
    session = registered()
    with pytest.raises(KeyError):
        session.opt_out(EventId("nope"), NOW, "why not")


# --- reports --------------------------------------------------------------------------------------


def power_request(rrid: str = "rr-1", **overrides: Any) -> ReportRequest:
    request = ReportRequest(
        report_request_id=ReportRequestId(rrid),
        report_specifier_id=reporting.USAGE_SPECIFIER_ID,
        granularity=MINUTE,
        report_back_duration=5 * MINUTE,
        specifier_payloads=(SpecifierPayload(r_id=HP_POWER, reading_type="Direct Read"),),
    )
    return dataclasses.replace(request, **overrides)


def status_request(rrid: str = "rr-s", **overrides: Any) -> ReportRequest:
    request = power_request(
        rrid,
        report_specifier_id=reporting.STATUS_SPECIFIER_ID,
        specifier_payloads=(SpecifierPayload(r_id=HP_STATUS, reading_type="x-notApplicable"),),
    )
    return dataclasses.replace(request, **overrides)


def with_requests(*requests: ReportRequest) -> tuple[Session, list[Payload]]:
    """A push VEN (no polls, so its timer follows the reports) given a CreateReport."""
    session = registered(http_pull_model=False)
    create = make_create_report(request_id=RequestId("cr-1"), report_requests=requests)
    return session, push(session, create, NOW)


def update_reports(session: Session, now: datetime) -> list[UpdateReport]:
    session.handle_timer(now)
    return [m for m in drain(session, now) if isinstance(m, UpdateReport)]


def test_r1_3020_periodic_report_sends_the_mean_of_each_granularity_slice() -> None:
    session, sent = with_requests(power_request())
    assert sent == [
        CreatedReport(
            response=make_ei_response(request_id=RequestId("cr-1")),
            pending_reports=(ReportRequestId("rr-1"),),
            ven_id=VEN_ID,
        )
    ]
    for seconds, kw in [(0, 2.0), (30, 4.0), (60, 1.0), (150, 5.0)]:
        session.record_reading(HP_POWER, kw, NOW + seconds * SECOND)
    assert session.timer() == NOW + 5 * MINUTE

    (update,) = update_reports(session, NOW + 5 * MINUTE)
    (report,) = update.reports
    assert (report.report_request_id, report.report_name) == ("rr-1", ReportName.TELEMETRY_USAGE)
    assert (report.start, report.duration) == (NOW, 5 * MINUTE)
    values = [(i.start, i.duration, i.payloads[0].value) for i in report.intervals]
    assert values == [
        (NOW, MINUTE, 3.0),
        (NOW + MINUTE, MINUTE, 1.0),
        (NOW + 2 * MINUTE, MINUTE, 5.0),
    ]
    assert update_reports(session, NOW + 9 * MINUTE) == []
    (later,) = update_reports(session, NOW + 10 * MINUTE)
    assert later.reports[0].start == NOW + 5 * MINUTE and later.reports[0].intervals == ()


def test_r1_3010_one_shot_report_is_sent_once() -> None:
    session, _ = with_requests(
        power_request(report_back_duration=timedelta(0), granularity=timedelta(0))
    )
    session.record_reading(HP_POWER, 1.5, NOW - MINUTE)
    session.record_reading(HP_POWER, 2.5, NOW - SECOND)
    (update,) = update_reports(session, NOW)
    assert [p.value for i in update.reports[0].intervals for p in i.payloads] == [2.5]
    assert session.status().pending_reports == ()
    assert update_reports(session, NOW + HOUR) == []


def test_r1_3025_status_report_carries_resource_status() -> None:
    session, _ = with_requests(status_request())
    manual = ResourceStatus(online=True, manual_override=True)
    session.record_reading(HP_STATUS, ResourceStatus(online=True, manual_override=False), NOW)
    session.record_reading(HP_STATUS, manual, NOW + 10 * SECOND)
    (update,) = update_reports(session, NOW + 5 * MINUTE)
    report = update.reports[0]
    assert report.report_name == ReportName.TELEMETRY_STATUS
    assert report.intervals[0].payloads[0].value == manual


def test_r1_3027_report_interval_ends_the_request() -> None:
    window = TimeWindow(start=NOW, duration=7 * MINUTE)
    session, _ = with_requests(power_request(interval=window))
    assert len(update_reports(session, NOW + 5 * MINUTE)) == 1
    (last,) = update_reports(session, NOW + 7 * MINUTE)
    assert (last.reports[0].start, last.reports[0].duration) == (NOW + 5 * MINUTE, 2 * MINUTE)
    assert session.status().pending_reports == ()


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (power_request(report_specifier_id="nobody-offers-this"), 461),
        (
            power_request(
                specifier_payloads=(SpecifierPayload(r_id=RId("x"), reading_type="Direct Read"),)
            ),
            452,
        ),
        (power_request(granularity=SECOND), 454),
        (power_request("0"), 452),
    ],
    ids=[
        "r1_3190-unknown-specifier-461",
        "unknown-rid-452",
        "granularity-too-fine-454",
        "rrid-0-452",
    ],
)
def test_r1_3190_invalid_report_requests_are_refused_whole(
    request_: ReportRequest, code: int
) -> None:
    session, sent = with_requests(power_request("rr-ok"), request_)
    (created,) = sent
    assert isinstance(created, CreatedReport)
    assert created.response.code == code and created.pending_reports == ()
    assert session.status().pending_reports == ()


def test_r1_3180_a_resent_create_report_is_not_an_error_but_a_reused_id_is() -> None:
    session, _ = with_requests(power_request())
    again = push(session, make_create_report(report_requests=(power_request(),)), NOW)
    assert isinstance(again[0], CreatedReport) and again[0].response.code == 200
    other = power_request(granularity=2 * MINUTE)
    reused = push(session, make_create_report(report_requests=(other,)), NOW)
    assert isinstance(reused[0], CreatedReport) and reused[0].response.code == 452
    both = push(session, make_create_report(report_requests=(power_request("rr-2"),)), NOW)
    assert isinstance(both[0], CreatedReport) and both[0].pending_reports == ("rr-1", "rr-2")


def test_r1_3040_cancel_report_lists_the_remaining_requests() -> None:
    session, _ = with_requests(power_request("rr-1"), status_request("rr-2"))
    sent = push(session, make_cancel_report(request_id=RequestId("x-1")), NOW + MINUTE)
    assert sent == [
        CanceledReport(
            response=make_ei_response(request_id=RequestId("x-1")),
            pending_reports=(ReportRequestId("rr-2"),),
            ven_id=VEN_ID,
        )
    ]
    assert update_reports(session, NOW + 5 * MINUTE)[0].reports[0].report_request_id == "rr-2"


def test_r1_3045_cancel_with_report_to_follow_sends_a_final_report() -> None:
    session, _ = with_requests(power_request(interval=TimeWindow(start=NOW, duration=timedelta(0))))
    session.record_reading(HP_POWER, 2.0, NOW + 10 * SECOND)
    cancel = make_cancel_report(report_to_follow=True)
    sent = push(session, cancel, NOW + 2 * MINUTE)
    assert [type(m) for m in sent] == [CanceledReport, UpdateReport]
    final = sent[1]
    assert isinstance(final, UpdateReport)
    assert [p.value for i in final.reports[0].intervals for p in i.payloads] == [2.0]
    assert session.status().pending_reports == ()


def test_cancel_report_for_an_unknown_request_is_answered_452() -> None:
    session, _ = with_requests(power_request())
    sent = push(session, make_cancel_report(report_request_ids=("nope",)), NOW)
    assert isinstance(sent[0], CanceledReport) and sent[0].response.code == 452


def test_r1_3050_cancel_piggy_backed_on_updated_report() -> None:
    session, _ = with_requests(power_request())
    session.handle_timer(NOW + 5 * MINUTE)
    update = session.next_request(NOW + 5 * MINUTE)
    assert isinstance(update, UpdateReport)
    cancel = make_cancel_report(request_id=RequestId("pb-1"))
    session.receive(make_updated_report(cancel_report=cancel), NOW + 5 * MINUTE)
    canceled = session.next_request(NOW + 5 * MINUTE)
    assert isinstance(canceled, CanceledReport) and canceled.response.request_id == "pb-1"
    assert session.status().pending_reports == ()


def test_r1_3060_requests_piggy_backed_on_registered_report() -> None:
    session = Session(make_config(), opt_in)
    session.next_request(NOW)
    session.receive(make_created_party_registration(ven_id=None, registration_id=None), NOW)
    session.next_request(NOW)
    session.receive(make_created_party_registration(), NOW)
    register = session.next_request(NOW)
    assert isinstance(register, RegisterReport)
    session.receive(make_registered_report(report_requests=(power_request(),)), NOW)
    (created,) = [m for m in drain(session, NOW) if isinstance(m, CreatedReport)]
    assert created.pending_reports == ("rr-1",) and created.response.code == 200


def test_r1_3170_metadata_request_is_answered_with_our_register_report() -> None:
    metadata = power_request("rr-meta", report_specifier_id="METADATA", specifier_payloads=())
    session, sent = with_requests(metadata)
    assert [type(m) for m in sent] == [CreatedReport, RegisterReport]
    register = sent[1]
    assert isinstance(register, RegisterReport) and register.report_request_id == "rr-meta"
    assert session.status().pending_reports == ()


def test_readings_buffered_through_an_outage_all_go_out_in_order() -> None:
    session, _ = with_requests(power_request())
    moment = NOW
    for minute in range(30):  # the VTN is unreachable for half an hour
        session.record_reading(HP_POWER, float(minute), NOW + minute * MINUTE)
        moment = NOW + minute * MINUTE
        session.handle_timer(moment)
        request = session.next_request(moment)
        if request is not None:
            session.failed(request, moment, draw=0.0)
    session.handle_timer(NOW + 30 * MINUTE)
    back = NOW + HOUR
    sent = [m for m in drain(session, back) if isinstance(m, UpdateReport)]
    values = [p.value for m in sent for i in m.reports[0].intervals for p in i.payloads]
    assert values == [float(m) for m in range(30)]
    assert [m.reports[0].start for m in sent] == [NOW + k * 5 * MINUTE for k in range(6)]


def test_reading_buffer_is_bounded_and_counts_what_it_dropped() -> None:
    session = registered(max_readings=3)
    for second in range(5):
        session.record_reading(HP_POWER, float(second), NOW + second * SECOND)
    session.record_reading("not-ours.power", 1.0, NOW)
    assert [r.value for r in session.state.readings] == [2.0, 3.0, 4.0]
    assert (session.status().buffered_readings, session.status().dropped_readings) == (3, 2)


def test_queued_data_reports_are_bounded_during_a_long_outage() -> None:
    session, _ = with_requests(power_request(report_back_duration=MINUTE))
    session = Session(
        dataclasses.replace(session.config, max_queued_reports=3), opt_in, session.state
    )
    session.handle_timer(NOW + 10 * MINUTE)
    assert session.status().queued.count("UpdateReport") == 3
    assert session.status().dropped_reports == 7


# --- persistence ----------------------------------------------------------------------------------


def save(state: SessionState) -> bytes:
    return jsonform.dumps(state)  # what ven.store writes


def reload(saved: bytes | str) -> SessionState:
    return jsonform.loads(saved, SessionState)


def rich_session() -> Session:
    """A session whose state holds every kind of content: events with randomized starts,
    report requests, readings of both kinds, queued replies, an opt, a clock skew."""
    session = registered()
    period = make_active_period(start=NOW, start_after=10 * MINUTE)
    assert isinstance(session.next_request(NOW), Poll)
    session.receive(make_distribute_event(events=[make_event(active_period=period)]), NOW)
    session.receive(make_create_report(report_requests=(power_request(), status_request())), NOW)
    session.receive(make_request_reregistration(), NOW, vtn_time=NOW - 3 * SECOND)
    session.record_reading(HP_POWER, 1.25, NOW)
    session.record_reading(HP_STATUS, ResourceStatus(online=True, manual_override=False), NOW)
    session.opt_out(EVENT_ID, NOW, "manual")
    session.handle_timer(NOW + 5 * MINUTE)
    kinds = set(session.status().queued)
    assert {"CreatedEvent", "CreateOpt", "UpdateReport"} <= kinds
    assert session.state.clock_skew == -3 * SECOND and session.state.events[0].decision
    return session


def test_state_round_trips_through_json_with_every_kind_of_content() -> None:
    session = rich_session()
    loaded = reload(save(session.state))
    assert loaded == session.state
    assert [type(q.payload) for q in loaded.outbox] == [
        type(q.payload) for q in session.state.outbox
    ]


def test_a_state_saved_by_an_older_gateway_loads_and_is_written_alike() -> None:
    """Gateways saved their state with pydantic's TypeAdapter before `ven.jsonform`: an
    upgraded gateway resumes from that file, and what it writes is the same JSON."""
    session = rich_session()
    written_by_pydantic = TypeAdapter(SessionState).dump_json(session.state)
    assert reload(written_by_pydantic) == session.state
    assert save(session.state) == written_by_pydantic


QUEUED_TYPES = [
    CreatedEvent,
    CreatedReport,
    CanceledReport,
    RegisterReport,
    RegisteredReport,
    UpdateReport,
    CreateOpt,
    RequestEvent,
    Response,
    CancelPartyRegistration,
    CanceledPartyRegistration,
    Poll,
]


def test_every_queued_payload_reloads_as_its_own_type() -> None:
    """oadrPoll and oadrRequestReregistration look alike in JSON; the tags keep them apart."""
    queue = []
    for payload_type in QUEUED_TYPES:
        payload = make_payload(payload_type)
        if payload_type is Poll:
            with pytest.raises(KeyError):  # a VEN never queues a Poll: it derives it
                outbox.wrap(payload)
            continue
        queue.append(outbox.wrap(payload))
    loaded = jsonform.loads(jsonform.dumps(tuple(queue)), tuple[outbox.Queued, ...])
    assert [type(q.payload) for q in loaded] == QUEUED_TYPES[:-1]
    assert loaded == tuple(queue)


def test_restart_reapplies_the_schedule_and_resends_what_was_not_acknowledged() -> None:
    session = registered()
    poll_gets(session, make_distribute_event(events=[make_event(start=NOW - MINUTE)]), NOW)
    session.next_request(NOW)
    session.receive(
        make_distribute_event(
            events=[make_event(start=NOW - MINUTE), make_event(event_id=EventId("e2"))]
        ),
        NOW,
    )
    in_flight = session.next_request(NOW)
    assert isinstance(in_flight, CreatedEvent)  # acknowledged in state before it is sent

    saved = save(session.state)  # ... and the process is killed here
    restarted = Session(make_config(), opt_in, reload(saved))
    (reapplied,) = applied(restarted)
    assert [s.event_id for s in reapplied] == ["event-1"]
    assert restarted.next_request(NOW + SECOND) == in_flight


# --- invariants over any sequence of DistributeEvents --------------------------------------------

EVENT_IDS = ("e-a", "e-b", "e-c")


@st.composite
def versions(draw: st.DrawFn) -> Event:
    """One version of one of three events around NOW, possibly cancelled or stale."""
    start = NOW + draw(st.integers(-3, 3)) * 30 * MINUTE
    duration = draw(st.sampled_from([30 * MINUTE, HOUR, timedelta(0)]))
    return make_event(
        event_id=EventId(draw(st.sampled_from(EVENT_IDS))),
        modification_number=draw(st.integers(0, 3)),
        start=start,
        duration=duration,
        status=draw(st.sampled_from([EventStatus.FAR, EventStatus.ACTIVE, EventStatus.CANCELLED])),
        priority=draw(st.sampled_from([None, 0, 1, 2])),
        response_required=draw(st.sampled_from(list(ResponseRequired))),
        market_context=draw(st.sampled_from([MARKET_CONTEXT, "http://elsewhere.example"])),
        test_event=draw(st.sampled_from([None, False, True])),
    )


@st.composite
def distributions(draw: st.DrawFn) -> list[tuple[list[Event], int, float]]:
    steps = draw(st.lists(st.lists(versions(), max_size=3), min_size=1, max_size=6))
    return [
        (_first_of_each(events), draw(st.integers(0, 20)), draw(st.floats(0.0, 0.999)))
        for events in steps
    ]


def _first_of_each(events: list[Event]) -> list[Event]:
    unique: dict[str, Event] = {}
    for event in events:
        unique.setdefault(event.event_id, event)
    return list(unique.values())


def _may_run(event: Event, now: datetime) -> bool:
    if event.status == EventStatus.CANCELLED or event.test_event:
        return False
    if event.market_context != MARKET_CONTEXT:
        return False
    period = event.active_period
    return period.start <= now and (
        period.duration == timedelta(0) or now < period.start + period.duration
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=distributions())
def test_any_sequence_of_distribute_events_keeps_the_invariants(
    steps: list[tuple[list[Event], int, float]],
) -> None:
    session = registered(market_contexts=frozenset({MARKET_CONTEXT}))
    answered: list[tuple[str, int]] = []
    now = NOW
    for events, minutes, draw in steps:
        now += minutes * 5 * MINUTE
        session.handle_timer(now)
        sent = poll_gets(session, make_distribute_event(events=events), now, draw)
        answered += [
            (r.event_id, r.modification_number) for r in responses_of(sent) if r.code == 200
        ]
        # only events the VTN lists now, not cancelled, not test, ours, running now drive devices
        listed = {e.event_id for e in events}
        for signal in session.state.signals:
            held = next(r for r in session.state.events if r.event_id == signal.event_id)
            assert signal.event_id in listed and _may_run(held.event, now)
            assert held.event.modification_number == signal.modification_number
        assert reload(save(session.state)) == session.state
    assert len(answered) == len(set(answered))


def test_poll_answered_with_a_payload_no_vtn_may_send_waits_for_the_next_poll() -> None:
    session = registered()
    session.next_request(NOW)
    session.receive(make_created_party_registration(), NOW)
    assert session.next_request(NOW) is None
    assert "CreatedPartyRegistration" in (session.status().last_error or "")
    assert isinstance(session.next_request(NOW + 10 * SECOND), Poll)


@pytest.mark.parametrize(
    "module", ["ven.session", "ven.state", "ven.schedule", "ven.reporting", "ven.outbox"]
)
def test_the_session_modules_import_no_io_framework(module: str) -> None:
    code = (
        f"import importlib, sys; importlib.import_module({module!r}); "
        "print(sorted(m for m in ('aiohttp', 'sqlalchemy', 'asyncio', 'pydantic')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_whole_day_registration_event_and_telemetry_over_poll() -> None:
    """N1_0020 bootstrap, E1_1025 load dispatch event, R1_3160 periodic telemetry, end to end."""
    session = registered()
    assert [type(m) for m in poll_gets(session, make_register_report(), NOW)] == [RegisteredReport]
    create = make_create_report(report_requests=(power_request(report_back_duration=HOUR),))
    assert [type(m) for m in poll_gets(session, create, NOW)] == [CreatedReport]
    dispatch = make_signal(
        (2.0, 1.0),
        durations=(30 * MINUTE, 30 * MINUTE),
        signal_name=SignalName.LOAD_DISPATCH,
        signal_type=SignalType.SETPOINT,
    )
    event = make_event(signals=(dispatch,))
    assert len(responses_of(poll_gets(session, make_distribute_event(events=[event]), NOW))) == 1
    assert isinstance(session.next_request(NOW), Poll)
    session.receive(make_response(), NOW)
    actions(session)

    moment, seen, reports_sent = NOW, [], []
    while moment < NOW + 3 * HOUR:
        moment += MINUTE
        session.record_reading(HP_POWER, 2.0 if signal_values(session) else 4.0, moment)
        if (timer := session.timer()) is not None and timer <= moment:
            session.handle_timer(moment)
        seen += [tuple(s.value for s in a) for a in applied(session)]
        while (request := session.next_request(moment)) is not None:
            reports_sent += [request] if isinstance(request, UpdateReport) else []
            session.receive(ok_reply(request, session), moment)

    assert seen == [(2.0,), (1.0,), ()]
    assert [m.reports[0].start for m in reports_sent] == [NOW, NOW + HOUR, NOW + 2 * HOUR]
    means = [[p.value for i in m.reports[0].intervals for p in i.payloads] for m in reports_sent]
    assert means[0] == [4.0] * 59 and means[1][:1] == [4.0] and set(means[1][1:]) == {2.0}
