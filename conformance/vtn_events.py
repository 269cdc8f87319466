"""VTN cases, events and opt groups (test plan E1_10xx, A_E3_04xx-07xx, P1_20xx).

The VTN issues events through the hook; the harness VEN polls them and checks every
oadrDistributeEvent with the certification validator's event rules (`oadr.events.validate`:
signal names and types, interval values, ids listed once), plus what each case is about:
the full list, modificationNumber +1 per change, cancellation, targeting, randomization,
responseRequired, and refusing CreatedEvent/CreateOpt/CancelOpt that name the wrong thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from conformance.model import Case, Group, Wire, check, fail
from conformance.vtn_peer import OK, VenLink, VtnUnderTest, new_id, refused, utc_now
from oadr import events
from oadr.enums import EventStatus, OptReason, OptType, ResponseRequired, SignalName
from oadr.errors import OadrError
from oadr.exchanges import Service
from oadr.model import (
    CanceledOpt,
    CancelOpt,
    CreatedEvent,
    CreatedOpt,
    CreateOpt,
    DistributeEvent,
    EiResponse,
    Event,
    EventId,
    EventResponse,
    OptId,
    Payload,
    RequestEvent,
    RequestId,
    Response,
    TimeWindow,
    VenId,
)

MARKET_CONTEXT = "http://flex4grid.org/market/default"


def _iso(value: timedelta) -> str:
    return f"PT{int(value.total_seconds())}S"


def event_action(
    ven_id: str,
    start: datetime,
    *,
    signal_name: str = SignalName.SIMPLE,
    signal_type: str = "level",
    values: tuple[float, ...] = (1.0, 2.0),
    interval: timedelta = timedelta(minutes=30),
    response_required: str = ResponseRequired.ALWAYS,
    start_after: timedelta | None = None,
) -> dict[str, Any]:
    return {
        "action": "create_event",
        "ven_ids": [ven_id],
        "signal_name": str(signal_name),
        "signal_type": signal_type,
        "intervals": [{"duration": _iso(interval), "value": v} for v in values],
        "start": start.isoformat().replace("+00:00", "Z"),
        "response_required": str(response_required),
        "start_after": _iso(start_after) if start_after is not None else None,
        "market_context": None,
    }


def valid(distribute: DistributeEvent, ven: VenLink) -> None:
    """The checks every oadrDistributeEvent gets (TESTPLAN.md, conformance-rule validator),
    including "all previous events present": a pull VTN sends the full list every time."""
    vtn_id = ven.vtn_id
    try:
        events.validate_distribution(distribute)
    except OadrError as err:
        fail(f"invalid oadrDistributeEvent: {err}")
    check(distribute.request_id, "oadrDistributeEvent has no requestID")
    check(
        vtn_id is None or distribute.vtn_id == vtn_id,
        f"vtnID {distribute.vtn_id!r} is not {vtn_id!r}",
    )
    now = utc_now()
    for event in distribute.events:
        if event.status is not EventStatus.ACTIVE and event.status is not EventStatus.CANCELLED:
            for signal in event.signals:
                check(
                    signal.current_value in (None, 0.0),
                    f"event {event.event_id}: currentValue {signal.current_value} while not active",
                )
        if event.status is EventStatus.FAR:
            check(event.active_period.start > now, f"event {event.event_id} far but started")
    listed = {e.event_id for e in distribute.events}
    for known in ven.known_events.values():
        end = events.end(known)
        pending = known.status is not EventStatus.CANCELLED and (end is None or end > now)
        check(
            not pending or known.event_id in listed,
            f"oadrDistributeEvent omits pending event {known.event_id} (full list required)",
        )


def carrying(event_id: str | None, known: set[str]) -> Callable[[Payload], bool]:
    """A DistributeEvent with this event (or, when the hook gave no id, a new one)."""

    def wanted(message: Payload) -> bool:
        if not isinstance(message, DistributeEvent):
            return False
        ids = {e.event_id for e in message.events}
        return event_id in ids if event_id is not None else bool(ids - known)

    return wanted


def find(distribute: DistributeEvent, event_id: str | None, known: set[str]) -> Event:
    for event in distribute.events:
        if event.event_id == event_id or (event_id is None and event.event_id not in known):
            return event
    fail(f"event {event_id!r} is not in the oadrDistributeEvent")


async def issue(
    vtn: VtnUnderTest, wire: Wire, ven: VenLink, **options: Any
) -> tuple[Event, DistributeEvent]:
    """Have the VTN create an event for `ven`, poll it, check it; unanswered."""
    ven_id = await ven.ensure_registered(wire)
    await ven.drain(wire)
    known = set(ven.events_seen)
    start = options.pop("start", utc_now() + timedelta(hours=1))
    created = await vtn.act(wire, event_action(ven_id, start, **options))
    event_id = created.get("event_id")
    message = await ven.poll_until(wire, carrying(event_id, known), "oadrDistributeEvent")
    assert isinstance(message, DistributeEvent)
    valid(message, ven)
    event = find(message, event_id, known)
    check(
        event.modification_number == 0,
        f"a new event has modificationNumber {event.modification_number}",
    )
    return event, message


async def opt_in(ven: VenLink, wire: Wire, distribute: DistributeEvent) -> None:
    await ven.answer_events(wire, distribute)


async def price_event(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    event, message = await issue(
        vtn, wire, ven, signal_name=SignalName.ELECTRICITY_PRICE, signal_type="price",
        values=(0.25, 0.31),
    )  # fmt: skip
    signal = event.signals[0]
    check(signal.signal_name == SignalName.ELECTRICITY_PRICE, f"signalName {signal.signal_name}")
    check([i.value for i in signal.intervals] == [0.25, 0.31], "interval values changed")
    check([i.uid for i in signal.intervals] == [0, 1], "interval uids are not 0..n-1")
    check(event.response_required is ResponseRequired.ALWAYS, "oadrResponseRequired lost")
    await opt_in(ven, wire, message)


async def dispatch_event(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    event, message = await issue(
        vtn, wire, ven, signal_name=SignalName.LOAD_DISPATCH, signal_type="setpoint",
        values=(-5.0,),
    )  # fmt: skip
    signal = event.signals[0]
    check(signal.signal_type == "setpoint", f"signalType {signal.signal_type}")
    check(signal.item_base is not None, "a LOAD_DISPATCH setpoint needs an itemBase (powerReal)")
    await opt_in(ven, wire, message)


async def modification(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    event, message = await issue(vtn, wire, ven)
    await opt_in(ven, wire, message)
    await vtn.act(
        wire,
        {"action": "modify_event", "event_id": event.event_id, "signal_name": "SIMPLE",
         "signal_type": "level", "intervals": [{"duration": "PT30M", "value": 3.0}]},
    )  # fmt: skip

    def modified(m: Payload) -> bool:
        return isinstance(m, DistributeEvent) and any(
            e.event_id == event.event_id and e.modification_number > 0 for e in m.events
        )

    update = await ven.poll_until(wire, modified, "the modified event")
    assert isinstance(update, DistributeEvent)
    valid(update, ven)
    new = find(update, event.event_id, set())
    check(new.modification_number == 1, f"modificationNumber {new.modification_number}, not 1")
    check(new.signals[0].intervals[0].value == 3.0, "the modification's value is not there")
    await opt_in(ven, wire, update)


async def cancellation(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    event, message = await issue(vtn, wire, ven)
    await opt_in(ven, wire, message)
    await vtn.act(wire, {"action": "cancel_event", "event_id": event.event_id})

    def cancelled(m: Payload) -> bool:
        if not isinstance(m, DistributeEvent):
            return False
        now = [e for e in m.events if e.event_id == event.event_id]
        return not now or now[0].status is EventStatus.CANCELLED  # explicit or implicit

    update = await ven.poll_until(wire, cancelled, "the event's cancellation", timeout_s=3.0)
    assert isinstance(update, DistributeEvent)
    listed = [e for e in update.events if e.event_id == event.event_id]
    if not listed:  # implicitly cancelled: no longer owed a place in the full list
        ven.known_events[event.event_id] = replace(event, status=EventStatus.CANCELLED)
    valid(update, ven)
    if listed:
        check(
            listed[0].modification_number == event.modification_number + 1,
            f"cancellation has modificationNumber {listed[0].modification_number}",
        )
    await opt_in(ven, wire, update)
    # and a RequestEvent no longer shows it pending
    request = RequestEvent(request_id=RequestId(new_id("req")), ven_id=ven.ven_id or VenId(""))
    again = await ven.expect(wire, request, DistributeEvent)
    still = [e for e in again.events if e.event_id == event.event_id]
    check(
        not still or still[0].status is EventStatus.CANCELLED,
        "oadrRequestEvent still lists the cancelled event as pending",
    )


async def request_event(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    event, message = await issue(vtn, wire, ven)
    await opt_in(ven, wire, message)
    request = RequestEvent(request_id=RequestId(new_id("req")), ven_id=ven.ven_id or VenId(""))
    reply = await ven.expect(wire, request, DistributeEvent, code=None)
    check(
        reply.response is not None,
        "oadrDistributeEvent answering oadrRequestEvent has no eiResponse",
    )
    assert reply.response is not None
    check(reply.response.code == OK, f"eiResponse code {reply.response.code}")
    check(
        reply.response.request_id == request.request_id,
        f"eiResponse requestID {reply.response.request_id!r} does not echo the request's",
    )
    valid(reply, ven)
    check(event.event_id in {e.event_id for e in reply.events}, "the pending event is not listed")


async def targeting(vtn: VtnUnderTest, wire: Wire) -> None:
    ven, other = vtn.ven(0), vtn.ven(1)
    await ven.ensure_registered(wire)
    event, message = await issue(vtn, wire, other)
    await opt_in(other, wire, message)
    request = RequestEvent(request_id=RequestId(new_id("req")), ven_id=ven.ven_id or VenId(""))
    mine = await ven.expect(wire, request, DistributeEvent, code=None)
    check(
        event.event_id not in {e.event_id for e in mine.events},
        f"event {event.event_id} for {other.ven_id} reached {ven.ven_id}",
    )


async def response_never(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    event, message = await issue(vtn, wire, ven, response_required=ResponseRequired.NEVER)
    check(event.response_required is ResponseRequired.NEVER, "oadrResponseRequired is not never")
    await opt_in(ven, wire, message)  # posts nothing for it


async def randomization(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    event, message = await issue(vtn, wire, ven, start_after=timedelta(minutes=5))
    check(
        event.active_period.start_after == timedelta(minutes=5),
        f"tolerance/startafter is {event.active_period.start_after}, asked for 5 minutes",
    )
    await opt_in(ven, wire, message)


def _created_event(ven: VenLink, event_id: str, modification: int, ven_id: str) -> CreatedEvent:
    return CreatedEvent(
        response=EiResponse(code=OK, request_id=RequestId("")),
        ven_id=VenId(ven_id),
        event_responses=(
            EventResponse(
                code=OK,
                request_id=RequestId(new_id("req")),
                event_id=EventId(event_id),
                modification_number=modification,
                opt_type=OptType.OPT_IN,
            ),
        ),
    )


async def unknown_event_id(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    ven_id = await ven.ensure_registered(wire)
    bogus = _created_event(ven, new_id("no-such-event"), 0, ven_id)
    await refused(ven, wire, Service.EI_EVENT, ven.encode(bogus))


async def wrong_modification(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    event, message = await issue(vtn, wire, ven)
    await opt_in(ven, wire, message)
    bogus = _created_event(ven, event.event_id, 7, ven.ven_id or "")
    await refused(ven, wire, Service.EI_EVENT, ven.encode(bogus))


async def unknown_ven_id(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    event, message = await issue(vtn, wire, ven)
    await opt_in(ven, wire, message)
    bogus = _created_event(ven, event.event_id, 0, new_id("no-such-ven"))
    await refused(ven, wire, Service.EI_EVENT, ven.encode(bogus))


# --- opt ------------------------------------------------------------------------------------------


def _schedule(ven_id: VenId, opt_id: str) -> CreateOpt:
    now = utc_now()
    return CreateOpt(
        request_id=RequestId(new_id("opt")),
        opt_id=OptId(opt_id),
        opt_type=OptType.OPT_OUT,
        opt_reason=OptReason.ECONOMIC,
        ven_id=ven_id,
        created=now,
        market_context=MARKET_CONTEXT,
        availability=(TimeWindow(start=now + timedelta(hours=3), duration=timedelta(hours=2)),),
    )


async def new_opt_schedule(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    ven_id = await ven.ensure_registered(wire)
    request = _schedule(ven_id, new_id("opt"))
    created = await ven.expect(wire, request, CreatedOpt)
    check(created.opt_id == request.opt_id, f"optID {created.opt_id!r} not echoed")
    check(created.response.request_id == request.request_id, "requestID not echoed")


async def cancel_opt_schedule(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    ven_id = await ven.ensure_registered(wire)
    request = _schedule(ven_id, new_id("opt"))
    await ven.expect(wire, request, CreatedOpt)
    cancel = CancelOpt(request_id=RequestId(new_id("cancel")), opt_id=request.opt_id, ven_id=ven_id)
    canceled = await ven.expect(wire, cancel, CanceledOpt)
    check(canceled.opt_id == request.opt_id, f"optID {canceled.opt_id!r} not echoed")


async def opt_negative(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    ven_id = await ven.ensure_registered(wire)
    cancel = CancelOpt(
        request_id=RequestId(new_id("cancel")), opt_id=OptId(new_id("no-such-opt")), ven_id=ven_id
    )
    await refused(ven, wire, Service.EI_OPT, ven.encode(cancel))


async def opt_for_event(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    event, message = await issue(vtn, wire, ven)
    await opt_in(ven, wire, message)
    request = CreateOpt(
        request_id=RequestId(new_id("opt")),
        opt_id=OptId(new_id("opt")),
        opt_type=OptType.OPT_OUT,
        opt_reason=OptReason.NOT_PARTICIPATING,
        ven_id=ven.ven_id or VenId(""),
        created=utc_now(),
        event_id=event.event_id,
        modification_number=event.modification_number,
    )
    created = await ven.expect(wire, request, CreatedOpt)
    check(created.opt_id == request.opt_id, "optID not echoed")
    reply = await ven.poll(wire)  # the VTN may confirm with a new distribution; either is fine
    if not isinstance(reply, Response):
        await ven.answer(wire, reply)


def _c(
    case_id: str, plan: tuple[str, ...], title: str, clause: str, group: Group, run: object
) -> Case[VtnUnderTest]:
    return Case(case_id, plan, title, clause, group, run)  # type: ignore[arg-type]


E, OPT = Group.EVENTS, Group.OPT
CASES: list[Case[VtnUnderTest]] = [
    _c(
        "VTN-EVT-01",
        ("E1_1020",),
        "Electricity price event",
        (
            "a created event reaches its VEN by poll, valid, modificationNumber 0, values and uids "
            "intact"
        ),
        E,
        price_event,
    ),
    _c(
        "VTN-EVT-02",
        ("E1_1025",),
        "Load dispatch event",
        "LOAD_DISPATCH setpoint with its powerReal itemBase",
        E,
        dispatch_event,
    ),
    _c(
        "VTN-EVT-03",
        ("A_E3_0470",),
        "Event modification",
        "a modification arrives with modificationNumber + 1 and the new values",
        E,
        modification,
    ),
    _c(
        "VTN-EVT-04",
        ("A_E3_0490", "A_E3_0525"),
        "Event cancellation",
        (
            "a cancellation arrives (status cancelled, modificationNumber + 1, or omitted) and "
            "RequestEvent no longer lists it pending"
        ),
        E,
        cancellation,
    ),
    _c(
        "VTN-EVT-05",
        ("E1_1050", "A_E3_0680"),
        "oadrRequestEvent",
        "RequestEvent -> DistributeEvent 200, requestID echoed, all pending events",
        E,
        request_event,
    ),
    _c(
        "VTN-EVT-06",
        ("A_E3_0435",),
        "Targeting",
        "an event for one VEN does not reach another",
        E,
        targeting,
    ),
    _c(
        "VTN-EVT-07",
        ("A_E3_0455",),
        "responseRequired never",
        "oadrResponseRequired=never is carried",
        E,
        response_never,
    ),
    _c(
        "VTN-EVT-08",
        ("A_E3_0685",),
        "Randomized event",
        "tolerance/tolerate/startafter is carried",
        E,
        randomization,
    ),
    _c(
        "VTN-EVT-09",
        ("A_E3_0720",),
        "Mismatched eventID",
        "oadrCreatedEvent for an unknown eventID is refused",
        E,
        unknown_event_id,
    ),
    _c(
        "VTN-EVT-10",
        ("A_E3_0730",),
        "Mismatched modificationNumber",
        "oadrCreatedEvent for a modification never sent is refused",
        E,
        wrong_modification,
    ),
    _c(
        "VTN-EVT-11",
        ("A_E3_0780",),
        "Unrecognized venID",
        "oadrCreatedEvent naming an unknown venID is refused",
        E,
        unknown_ven_id,
    ),
    _c(
        "VTN-OPT-01",
        ("P1_2010",),
        "New opt schedule",
        "oadrCreateOpt -> oadrCreatedOpt 200, optID and requestID echoed",
        OPT,
        new_opt_schedule,
    ),
    _c(
        "VTN-OPT-02",
        ("P1_2020",),
        "Cancel opt schedule",
        "oadrCancelOpt -> oadrCanceledOpt 200, optID echoed",
        OPT,
        cancel_opt_schedule,
    ),
    _c(
        "VTN-OPT-03",
        ("P1_2050",),
        "Opt negative",
        "oadrCancelOpt for an unknown optID is refused",
        OPT,
        opt_negative,
    ),
    _c(
        "VTN-OPT-04",
        ("E1_1060",),
        "Opt tied to an event",
        "oadrCreateOpt naming an event -> oadrCreatedOpt 200",
        OPT,
        opt_for_event,
    ),
]
