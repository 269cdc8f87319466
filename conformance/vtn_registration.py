"""VTN cases, registration and poll groups (test plan N1_00xx, G1_4011, G1_4015).

The harness is the VEN: it queries, registers (the bootstrap sequence), re-registers, cancels,
and checks the VTN's side of each exchange, including that a VTN refuses payloads from a VEN
that is not (or no longer) registered.
"""

from __future__ import annotations

from datetime import timedelta

from conformance.model import Case, Group, Wire, check, fail
from conformance.vtn_events import event_action
from conformance.vtn_peer import (
    HARNESS_RID,
    HARNESS_SPECIFIER,
    OK,
    VtnUnderTest,
    new_id,
    refused,
    response_code,
    utc_now,
)
from oadr import exchanges, reports
from oadr.enums import PROFILE_2_0B, OptReason, OptType, TransportName
from oadr.errors import OadrError
from oadr.exchanges import Service
from oadr.model import (
    CanceledPartyRegistration,
    CancelPartyRegistration,
    CreatedPartyRegistration,
    CreateOpt,
    CreateReport,
    DistributeEvent,
    EiResponse,
    OptId,
    Poll,
    QueryRegistration,
    RegisterReport,
    RequestEvent,
    RequestId,
    RequestReregistration,
    Response,
    TimeWindow,
    VenId,
)


def _check_offer(created: CreatedPartyRegistration, request_id: str) -> None:
    check(
        created.response.request_id == request_id,
        f"requestID {created.response.request_id!r} does not echo {request_id!r}",
    )
    check(created.vtn_id, "no vtnID")
    offers = {(p.profile_name, t) for p in created.profiles for t in p.transports}
    check(
        (PROFILE_2_0B, TransportName.SIMPLE_HTTP) in offers,
        f"profiles {sorted(offers)} do not offer 2.0b over simpleHttp",
    )
    check(
        created.requested_poll_freq is not None,
        "no oadrRequestedOadrPollFreq (required for pull VENs)",
    )


async def query(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    request = QueryRegistration(request_id=RequestId(new_id("query")))
    created = await ven.expect(wire, request, CreatedPartyRegistration)
    _check_offer(created, request.request_id)


async def bootstrap(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    ven.forget_registration()
    request = ven.create_registration()
    created = await ven.register(wire, request=request)
    _check_offer(created, request.request_id)
    # The VTN registers its own reports first (N1_0020), then takes ours.
    first = await ven.poll(wire)
    check(
        isinstance(first, RegisterReport),
        f"after registration the VTN sent {type(first).__name__}, not its oadrRegisterReport",
    )
    assert isinstance(first, RegisterReport)
    try:
        reports.validate_register_report(first)
    except OadrError as err:
        fail(f"the VTN's own METADATA is invalid: {err}")
    await ven.answer(wire, first)
    registered = await ven.register_reports(wire)
    for request_made in registered.report_requests:
        check(
            request_made.report_request_id not in ("", "0"),
            "a report request in oadrRegisteredReport has reportRequestID 0 or empty",
        )
    await ven.drain(wire)


async def query_while_registered(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    ven_id = await ven.ensure_registered(wire)
    request = QueryRegistration(request_id=RequestId(new_id("query")))
    created = await ven.expect(wire, request, CreatedPartyRegistration)
    _check_offer(created, request.request_id)
    check(created.ven_id == ven_id, f"venID {created.ven_id!r}, registered as {ven_id!r}")
    check(
        created.registration_id == ven.registration_id,
        f"registrationID {created.registration_id!r}, registered as {ven.registration_id!r}",
    )


async def reregister(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    ven_id = await ven.ensure_registered(wire)
    created = await ven.register(wire, reregister=True)
    check(
        created.ven_id == ven_id, f"re-registration changed venID {ven_id!r} to {created.ven_id!r}"
    )
    await ven.drain(wire)


async def new_registration_while_registered(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    await ven.ensure_registered(wire)
    created = await ven.register(wire)  # no registrationID: a fresh registration
    check(created.registration_id, "no registrationID")
    await ven.drain(wire)


async def _cancel_own(vtn: VtnUnderTest, wire: Wire) -> VenId:
    ven = vtn.ven()
    ven_id = await ven.ensure_registered(wire)
    assert ven.registration_id is not None
    request = CancelPartyRegistration(
        request_id=RequestId(new_id("cancel")), registration_id=ven.registration_id, ven_id=ven_id
    )
    canceled = await ven.expect(wire, request, CanceledPartyRegistration)
    check(
        canceled.registration_id == ven.registration_id,
        f"registrationID {canceled.registration_id!r} does not echo {ven.registration_id!r}",
    )
    check(canceled.response.request_id == request.request_id, "requestID not echoed")
    ven.forget_registration()
    return ven_id


async def ven_cancels(vtn: VtnUnderTest, wire: Wire) -> None:
    await _cancel_own(vtn, wire)
    await vtn.ven().bootstrap(wire)


async def payload_while_unregistered(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    old_ven_id = await _cancel_own(vtn, wire)
    now = utc_now()
    for payload in (
        Poll(ven_id=old_ven_id),
        RequestEvent(request_id=RequestId(new_id("req")), ven_id=old_ven_id),
        CreateOpt(
            request_id=RequestId(new_id("opt")),
            opt_id=OptId(new_id("opt")),
            opt_type=OptType.OPT_OUT,
            opt_reason=OptReason.ECONOMIC,
            ven_id=old_ven_id,
            created=now,
            market_context="http://conformance.invalid/market",
            availability=(TimeWindow(start=now + timedelta(hours=1), duration=timedelta(hours=1)),),
        ),
    ):
        await refused(ven, wire, exchanges.service_for(payload), ven.encode(payload))
    await ven.bootstrap(wire)


async def vtn_cancels(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    ven_id = await ven.ensure_registered(wire)
    await ven.drain(wire)
    await vtn.act(wire, {"action": "deregister_ven", "ven_id": ven_id})
    message = await ven.poll_until(
        wire, lambda m: isinstance(m, CancelPartyRegistration), "oadrCancelPartyRegistration"
    )
    assert isinstance(message, CancelPartyRegistration)
    check(
        message.registration_id == ven.registration_id,
        f"registrationID {message.registration_id!r}, registered as {ven.registration_id!r}",
    )
    answer = CanceledPartyRegistration(
        response=EiResponse(code=OK, request_id=message.request_id),
        registration_id=message.registration_id,
        ven_id=ven_id,
    )
    reply = await ven.send(wire, answer)
    check(response_code(reply) in (None, OK), f"our oadrCanceledPartyRegistration got {reply}")
    ven.forget_registration()
    await refused(ven, wire, Service.OADR_POLL, ven.encode(Poll(ven_id=ven_id)))
    await ven.bootstrap(wire)


async def vtn_requests_reregistration(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    ven_id = await ven.ensure_registered(wire)
    await ven.drain(wire)
    await vtn.act(wire, {"action": "reregister_ven", "ven_id": ven_id})
    await ven.poll_until(
        wire, lambda m: isinstance(m, RequestReregistration), "oadrRequestReregistration"
    )
    created = await ven.register(wire, reregister=True)
    check(created.ven_id == ven_id, f"re-registration changed venID to {created.ven_id!r}")
    await ven.drain(wire)


async def registration_negative(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    ven_id = await ven.ensure_registered(wire)
    unknown = CancelPartyRegistration(
        request_id=RequestId(new_id("cancel")),
        registration_id=new_id("no-such-registration"),  # type: ignore[arg-type]
        ven_id=VenId(new_id("no-such-ven")),
    )
    await refused(ven, wire, Service.EI_REGISTER_PARTY, ven.encode(unknown))
    # still registered: the refusal must not have cancelled anything
    reply = await ven.poll(wire)
    check(response_code(reply) in (None, OK), f"after a refused cancel, Poll got {reply}")
    await ven.answer(wire, reply)
    assert ven_id


async def empty_poll(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    await ven.ensure_registered(wire)
    await ven.drain(wire)
    reply = await ven.poll(wire)
    check(isinstance(reply, Response), f"an empty queue answered {type(reply).__name__}")
    check(response_code(reply) == OK, f"oadrResponse code {response_code(reply)}")


async def dequeue(vtn: VtnUnderTest, wire: Wire) -> None:
    ven = vtn.ven()
    ven_id = await ven.ensure_registered(wire)
    await ven.drain(wire)
    start = utc_now() + timedelta(hours=2)
    await vtn.act(wire, event_action(ven_id, start))
    await vtn.act(
        wire,
        {
            "action": "request_report",
            "ven_id": ven_id,
            "report_specifier_id": HARNESS_SPECIFIER,
            "r_ids": [HARNESS_RID],
            "granularity": "PT0S",
            "report_back_duration": "PT0S",
        },
    )
    got: set[type] = set()
    for _ in range(10):
        message = await ven.poll(wire)
        if isinstance(message, Response):
            break
        got.add(type(message))
        await ven.answer(wire, message)
    check(DistributeEvent in got, "the queued oadrDistributeEvent never came by poll")
    check(CreateReport in got, "the queued oadrCreateReport never came by poll")
    await ven.drain(wire)


def _c(
    case_id: str, plan: tuple[str, ...], title: str, clause: str, group: Group, run: object
) -> Case[VtnUnderTest]:
    return Case(case_id, plan, title, clause, group, run)  # type: ignore[arg-type]


R, P = Group.REGISTRATION, Group.POLL
CASES: list[Case[VtnUnderTest]] = [
    _c(
        "VTN-REG-01",
        ("N1_0010",),
        "Query registration",
        (
            "oadrQueryRegistration -> oadrCreatedPartyRegistration 200, requestID echoed, "
            "2.0b/simpleHttp offered, poll frequency given"
        ),
        R,
        query,
    ),
    _c(
        "VTN-REG-02",
        ("N1_0020",),
        "Bootstrap sequence",
        (
            "register -> VTN oadrRegisterReport (valid METADATA) -> VEN RegisterReport -> "
            "oadrRegisteredReport 200"
        ),
        R,
        bootstrap,
    ),
    _c(
        "VTN-REG-03",
        ("N1_0015",),
        "Query while registered",
        "oadrCreatedPartyRegistration names the VEN's venID and registrationID",
        R,
        query_while_registered,
    ),
    _c(
        "VTN-REG-04",
        ("N1_0065",),
        "Re-registration",
        "re-registering with registrationID keeps the venID",
        R,
        reregister,
    ),
    _c(
        "VTN-REG-05",
        ("N1_0060",),
        "New registration while registered",
        "a registration without registrationID is answered 200",
        R,
        new_registration_while_registered,
    ),
    _c(
        "VTN-REG-06",
        ("N1_0030",),
        "VEN cancels registration",
        "oadrCancelPartyRegistration -> oadrCanceledPartyRegistration 200, registrationID echoed",
        R,
        ven_cancels,
    ),
    _c(
        "VTN-REG-07",
        ("N1_0080",),
        "Payload while unregistered",
        "Poll, RequestEvent, CreateOpt from a cancelled VEN are refused",
        R,
        payload_while_unregistered,
    ),
    _c(
        "VTN-REG-08",
        ("N1_0040",),
        "VTN cancels registration",
        "VTN oadrCancelPartyRegistration by poll; afterwards the VEN's Poll is refused",
        R,
        vtn_cancels,
    ),
    _c(
        "VTN-REG-09",
        ("N1_0050",),
        "VTN requests re-registration",
        "oadrRequestReregistration by poll; re-registration keeps the venID",
        R,
        vtn_requests_reregistration,
    ),
    _c(
        "VTN-REG-10",
        ("N1_0070",),
        "Registration negative",
        "cancelling an unknown registration is refused and changes nothing",
        R,
        registration_negative,
    ),
    _c(
        "VTN-POLL-01", ("G1_4011",), "Empty poll", "nothing queued: oadrResponse 200", P, empty_poll
    ),
    _c(
        "VTN-POLL-02",
        ("G1_4015",),
        "De-queue by poll",
        "a queued oadrDistributeEvent and oadrCreateReport both come by repeated polls",
        P,
        dequeue,
    ),
]
