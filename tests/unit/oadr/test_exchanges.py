"""oadr.exchanges: services, paths, directions, reply table, requestIDs and error replies."""

from __future__ import annotations

import pytest

from oadr import exchanges
from oadr.enums import ResponseCode
from oadr.errors import (
    DeploymentError,
    InvalidData,
    InvalidId,
    NotRegistered,
    OadrError,
    OutOfSequence,
    ReportNotSupported,
    SignalNotSupported,
)
from oadr.exchanges import Direction, Service
from oadr.model import (
    PAYLOAD_TYPES,
    CanceledOpt,
    CanceledPartyRegistration,
    CanceledReport,
    CancelOpt,
    CancelPartyRegistration,
    CancelReport,
    CreatedEvent,
    CreatedOpt,
    CreatedPartyRegistration,
    CreatedReport,
    CreateOpt,
    CreatePartyRegistration,
    CreateReport,
    DistributeEvent,
    EiResponse,
    OptId,
    Payload,
    Poll,
    QueryRegistration,
    RegisteredReport,
    RegisterReport,
    RegistrationId,
    RequestEvent,
    RequestId,
    RequestReregistration,
    Response,
    UpdatedReport,
    UpdateReport,
    VenId,
    VtnId,
)
from tests.factories import (
    make_created_event,
    make_distribute_event,
    make_ei_response,
    make_payload,
)

REG, EVT, OPT, REP, POLL = (
    Service.EI_REGISTER_PARTY,
    Service.EI_EVENT,
    Service.EI_OPT,
    Service.EI_REPORT,
    Service.OADR_POLL,
)
VEN, VTN, BOTH = Direction.VEN_TO_VTN, Direction.VTN_TO_VEN, Direction.BOTH

# NOTES.md "Wire": which service carries what, and who sends it
EXPECTED_ROUTES: dict[type[Payload], tuple[Service | None, Direction]] = {
    QueryRegistration: (REG, VEN),
    CreatePartyRegistration: (REG, VEN),
    CreatedPartyRegistration: (REG, VTN),
    CancelPartyRegistration: (REG, BOTH),
    CanceledPartyRegistration: (REG, BOTH),
    RequestReregistration: (REG, VTN),
    RequestEvent: (EVT, VEN),
    DistributeEvent: (EVT, VTN),
    CreatedEvent: (EVT, VEN),
    Response: (None, BOTH),
    CreateOpt: (OPT, VEN),
    CreatedOpt: (OPT, VTN),
    CancelOpt: (OPT, VEN),
    CanceledOpt: (OPT, VTN),
    RegisterReport: (REP, BOTH),
    RegisteredReport: (REP, BOTH),
    CreateReport: (REP, BOTH),
    CreatedReport: (REP, BOTH),
    UpdateReport: (REP, BOTH),
    UpdatedReport: (REP, BOTH),
    CancelReport: (REP, BOTH),
    CanceledReport: (REP, BOTH),
    Poll: (POLL, VEN),
}

# The reply each request gets (first = the type an error reply takes)
EXPECTED_REPLY: dict[type[Payload], type[Payload]] = {
    QueryRegistration: CreatedPartyRegistration,
    CreatePartyRegistration: CreatedPartyRegistration,
    CancelPartyRegistration: CanceledPartyRegistration,
    CanceledPartyRegistration: Response,
    RequestReregistration: Response,
    RequestEvent: DistributeEvent,
    DistributeEvent: CreatedEvent,
    CreatedEvent: Response,
    CreateOpt: CreatedOpt,
    CancelOpt: CanceledOpt,
    RegisterReport: RegisteredReport,
    RegisteredReport: Response,
    CreateReport: CreatedReport,
    CreatedReport: Response,
    UpdateReport: UpdatedReport,
    UpdatedReport: Response,
    CancelReport: CanceledReport,
    CanceledReport: Response,
    Poll: Response,
}
NO_REPLY_OF_THEIR_OWN = [CreatedPartyRegistration, Response, CreatedOpt, CanceledOpt]


def _id(t: type[Payload]) -> str:
    return t.__name__


def test_tables_cover_all_23_payload_types() -> None:
    assert set(exchanges.ROUTES) == set(PAYLOAD_TYPES)
    assert set(exchanges.REPLIES) == set(PAYLOAD_TYPES)
    assert len(PAYLOAD_TYPES) == 23


@pytest.mark.parametrize(
    "service",
    list(Service),
    ids=[s.value for s in Service],
)
def test_endpoint_paths(service: Service) -> None:
    assert service.path == f"/OpenADR2/Simple/2.0b/{service.value}"
    assert exchanges.SERVICE_BY_PATH[service.path] is service


def test_the_five_services() -> None:
    names = {s.value for s in Service}
    assert names == {"EiRegisterParty", "EiEvent", "EiReport", "EiOpt", "OadrPoll"}


@pytest.mark.parametrize("payload_type", PAYLOAD_TYPES, ids=_id)
def test_routes_match_the_notes(payload_type: type[Payload]) -> None:
    service, direction = EXPECTED_ROUTES[payload_type]
    assert exchanges.ROUTES[payload_type] == (service, direction)
    assert exchanges.sent_by_ven(payload_type) is (direction in (VEN, BOTH))
    assert exchanges.sent_by_vtn(payload_type) is (direction in (VTN, BOTH))
    if service is not None:
        assert exchanges.service_for(make_payload(payload_type)) is service


@pytest.mark.parametrize(
    ("answering", "service"),
    [
        pytest.param(RequestReregistration, REG, id="reregistration"),
        pytest.param(CreatedEvent, EVT, id="created-event"),
        pytest.param(Poll, POLL, id="empty-poll"),
        pytest.param(CreatedReport, REP, id="created-report"),
    ],
)
def test_a_response_travels_on_the_service_it_answers(
    answering: type[Payload], service: Service
) -> None:
    assert exchanges.service_for(make_payload(Response), answering=answering) is service


def test_a_response_alone_has_no_service() -> None:
    with pytest.raises(ValueError, match="Response"):
        exchanges.service_for(make_payload(Response))


@pytest.mark.parametrize("request_type", list(EXPECTED_REPLY), ids=_id)
def test_reply_table(request_type: type[Payload]) -> None:
    assert exchanges.reply_types(request_type)[0] is EXPECTED_REPLY[request_type]


@pytest.mark.parametrize("payload_type", NO_REPLY_OF_THEIR_OWN, ids=_id)
def test_replies_get_no_reply(payload_type: type[Payload]) -> None:
    assert exchanges.reply_types(payload_type) == ()


def test_poll_may_be_answered_by_any_vtn_initiated_payload() -> None:
    poll = make_payload(Poll)
    for reply_type in (Response, DistributeEvent, CreateReport, RequestReregistration):
        assert exchanges.is_reply_to(poll, make_payload(reply_type))
    assert not exchanges.is_reply_to(poll, make_payload(CreatedEvent))
    assert all(exchanges.sent_by_vtn(t) for t in exchanges.POLL_REPLIES)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(make_payload(QueryRegistration), "req-1", id="own-request-id"),
        pytest.param(make_distribute_event(request_id=RequestId("d-7")), "d-7", id="distribute"),
        pytest.param(
            make_created_event(response=make_ei_response(request_id=RequestId("d-7"))),
            "d-7",
            id="created-event-echoes-distribute",
        ),
        pytest.param(make_payload(Poll), "", id="poll-has-none"),
        pytest.param(make_payload(RequestReregistration), "", id="reregistration-has-none"),
    ],
)
def test_request_id_of(payload: Payload, expected: str) -> None:
    assert exchanges.request_id_of(payload) == expected


def test_ok_response() -> None:
    assert exchanges.ok_response(RequestId("r-1")) == EiResponse(
        code=200, request_id=RequestId("r-1"), description="OK"
    )


# --- error replies --------------------------------------------------------------------------------

VTN_ID, VEN_ID = VtnId("vtn-1"), VenId("ven-1")


def _reply(message: Payload | None, err: OadrError) -> Payload:
    return exchanges.error_reply(message, err, vtn_id=VTN_ID, ven_id=VEN_ID)


def _response_of(reply: Payload) -> EiResponse:
    response = getattr(reply, "response", None)
    assert isinstance(response, EiResponse)
    return response


@pytest.mark.parametrize("request_type", PAYLOAD_TYPES, ids=_id)
def test_error_reply_for_every_payload_has_the_right_type_and_code(
    request_type: type[Payload],
) -> None:
    message = make_payload(request_type)
    reply = _reply(message, InvalidId("eventID 'x' is not known"))
    assert type(reply) is EXPECTED_REPLY.get(request_type, Response)
    response = _response_of(reply)
    assert response.code == ResponseCode.INVALID_ID
    assert response.request_id == exchanges.request_id_of(message)
    assert response.description == "eventID 'x' is not known"


@pytest.mark.parametrize(
    "err",
    [
        OutOfSequence("stale"),
        InvalidData("bad"),
        SignalNotSupported("custom"),
        ReportNotSupported("no"),
        NotRegistered("who"),
        DeploymentError("ref 1234"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_error_reply_carries_the_errors_code(err: OadrError) -> None:
    reply = _reply(make_payload(CreateOpt), err)
    assert isinstance(reply, CreatedOpt)
    assert reply.response.code == int(err.code)


def test_error_reply_to_an_unreadable_message_is_a_response() -> None:
    reply = _reply(None, InvalidData("not XML"))
    assert isinstance(reply, Response)
    assert reply.response == EiResponse(code=454, request_id=RequestId(""), description="not XML")


def test_error_reply_keeps_the_ids_its_type_requires() -> None:
    opt = _reply(make_payload(CreateOpt), InvalidData("x"))
    assert isinstance(opt, CreatedOpt) and opt.opt_id == OptId("opt-1")
    canceled = _reply(make_payload(CancelOpt), InvalidId("x"))
    assert isinstance(canceled, CanceledOpt) and canceled.opt_id == OptId("opt-1")
    registration = _reply(make_payload(CancelPartyRegistration), InvalidId("x"))
    assert isinstance(registration, CanceledPartyRegistration)
    assert registration.registration_id == RegistrationId("reg-1")
    created = _reply(make_payload(QueryRegistration), NotRegistered("x"))
    assert isinstance(created, CreatedPartyRegistration) and created.vtn_id == VTN_ID
    distribute = _reply(make_payload(RequestEvent), NotRegistered("x"))
    assert isinstance(distribute, DistributeEvent)
    assert (distribute.vtn_id, distribute.events) == (VTN_ID, ())
    event_reply = _reply(make_payload(DistributeEvent), SignalNotSupported("x"))
    assert isinstance(event_reply, CreatedEvent) and event_reply.ven_id == VEN_ID


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param("line one\n  Traceback (most recent call last):", "line one", id="one-line"),
        pytest.param("x" * 500, "x" * 197 + "...", id="capped"),
        pytest.param("", "invalid data", id="empty-uses-code-name"),
    ],
)
def test_error_description_is_short(message: str, expected: str) -> None:
    reply = _reply(make_payload(Poll), InvalidData(message))
    assert _response_of(reply).description == expected
