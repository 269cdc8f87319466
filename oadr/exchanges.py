"""Exchanges of OpenADR 2.0b: services, endpoint paths, who sends what, which reply answers what.

Each service is an HTTP POST of one oadrPayload to `<base>/OpenADR2/Simple/2.0b/<Service>`.
Everything here is a table; `error_reply` picks the reply type from `REPLIES` and builds it
with the builder registered for that type, so a new payload means a new row, not a new branch.

oadrResponse has no service of its own: it closes an exchange of any service (the answer to
CreatedEvent, to RequestReregistration, to an empty Poll, to a report acknowledgement a pull
VEN posts), so `service_for` needs to be told which payload a Response answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from oadr.enums import ResponseCode
from oadr.errors import OadrError
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
    element_name,
)

PATH_PREFIX = "/OpenADR2/Simple/2.0b/"

# oadrSignedObject child element name -> payload type, e.g. "oadrPoll" -> Poll.
PAYLOAD_BY_ELEMENT: dict[str, type[Payload]] = {element_name(t): t for t in PAYLOAD_TYPES}


class Service(StrEnum):
    EI_REGISTER_PARTY = "EiRegisterParty"
    EI_EVENT = "EiEvent"
    EI_REPORT = "EiReport"
    EI_OPT = "EiOpt"
    OADR_POLL = "OadrPoll"

    @property
    def path(self) -> str:
        """The endpoint path under the base URL, e.g. `/OpenADR2/Simple/2.0b/EiEvent`."""
        return PATH_PREFIX + self.value


SERVICE_BY_PATH: dict[str, Service] = {s.path: s for s in Service}


class Direction(StrEnum):
    VEN_TO_VTN = "ven->vtn"
    VTN_TO_VEN = "vtn->ven"
    BOTH = "both"


_VEN, _VTN, _BOTH = Direction.VEN_TO_VTN, Direction.VTN_TO_VEN, Direction.BOTH

# Which service carries each payload and who may send it (NOTES.md "Wire").
ROUTES: dict[type[Payload], tuple[Service | None, Direction]] = {
    QueryRegistration: (Service.EI_REGISTER_PARTY, _VEN),
    CreatePartyRegistration: (Service.EI_REGISTER_PARTY, _VEN),
    CreatedPartyRegistration: (Service.EI_REGISTER_PARTY, _VTN),
    CancelPartyRegistration: (Service.EI_REGISTER_PARTY, _BOTH),
    CanceledPartyRegistration: (Service.EI_REGISTER_PARTY, _BOTH),
    RequestReregistration: (Service.EI_REGISTER_PARTY, _VTN),
    RequestEvent: (Service.EI_EVENT, _VEN),
    DistributeEvent: (Service.EI_EVENT, _VTN),
    CreatedEvent: (Service.EI_EVENT, _VEN),
    Response: (None, _BOTH),  # closes an exchange of whichever service it answers
    CreateOpt: (Service.EI_OPT, _VEN),
    CreatedOpt: (Service.EI_OPT, _VTN),
    CancelOpt: (Service.EI_OPT, _VEN),
    CanceledOpt: (Service.EI_OPT, _VTN),
    RegisterReport: (Service.EI_REPORT, _BOTH),
    RegisteredReport: (Service.EI_REPORT, _BOTH),
    CreateReport: (Service.EI_REPORT, _BOTH),
    CreatedReport: (Service.EI_REPORT, _BOTH),
    UpdateReport: (Service.EI_REPORT, _BOTH),
    UpdatedReport: (Service.EI_REPORT, _BOTH),
    CancelReport: (Service.EI_REPORT, _BOTH),
    CanceledReport: (Service.EI_REPORT, _BOTH),
    Poll: (Service.OADR_POLL, _VEN),
}

SERVICE_OF: dict[type[Payload], Service] = {
    t: service for t, (service, _) in ROUTES.items() if service is not None
}
DIRECTION_OF: dict[type[Payload], Direction] = {t: d for t, (_, d) in ROUTES.items()}


def service_for(payload: Payload, *, answering: type[Payload] | None = None) -> Service:
    """The service (endpoint) that carries `payload`.

    A Response travels on the service of the payload it answers: pass that type as `answering`.
    """
    service = SERVICE_OF.get(type(payload))
    if service is not None:
        return service
    if answering is not None and answering in SERVICE_OF:
        return SERVICE_OF[answering]
    raise ValueError(f"{type(payload).__name__} needs the type it answers to pick a service")


def sent_by_ven(payload_type: type[Payload]) -> bool:
    return DIRECTION_OF[payload_type] in (_VEN, _BOTH)


def sent_by_vtn(payload_type: type[Payload]) -> bool:
    return DIRECTION_OF[payload_type] in (_VTN, _BOTH)


# What the VTN may hand out in answer to a Poll: anything it initiates, or a Response 200.
POLL_REPLIES: tuple[type[Payload], ...] = (
    Response,
    DistributeEvent,
    RequestReregistration,
    CancelPartyRegistration,
    RegisterReport,
    CreateReport,
    UpdateReport,
    CancelReport,
)

# Which reply answers which request, in HTTP terms (the body of the reply). The first type is
# the one an error reply takes; an empty tuple means the exchange ends with no payload.
REPLIES: dict[type[Payload], tuple[type[Payload], ...]] = {
    QueryRegistration: (CreatedPartyRegistration,),
    CreatePartyRegistration: (CreatedPartyRegistration,),
    CreatedPartyRegistration: (),
    CancelPartyRegistration: (CanceledPartyRegistration,),
    CanceledPartyRegistration: (Response,),
    RequestReregistration: (Response,),
    RequestEvent: (DistributeEvent,),
    DistributeEvent: (CreatedEvent,),  # push; or nothing when no response is required
    CreatedEvent: (Response,),
    Response: (),
    CreateOpt: (CreatedOpt,),
    CreatedOpt: (),
    CancelOpt: (CanceledOpt,),
    CanceledOpt: (),
    RegisterReport: (RegisteredReport,),
    RegisteredReport: (Response,),
    CreateReport: (CreatedReport,),
    CreatedReport: (Response,),
    UpdateReport: (UpdatedReport,),
    UpdatedReport: (Response,),
    CancelReport: (CanceledReport,),
    CanceledReport: (Response,),
    Poll: POLL_REPLIES,
}


def reply_types(request_type: type[Payload]) -> tuple[type[Payload], ...]:
    return REPLIES[request_type]


def is_reply_to(request: Payload, reply: Payload) -> bool:
    """Whether `reply` is a payload type that may answer `request`."""
    return type(reply) in REPLIES[type(request)]


def request_id_of(payload: Payload) -> RequestId:
    """The requestID a reply to `payload` echoes: its own requestID, else the one in its
    eiResponse (a CreatedEvent answers a DistributeEvent's requestID), else ''."""
    own = getattr(payload, "request_id", None)
    if isinstance(own, str):
        return RequestId(own)
    response = getattr(payload, "response", None)
    if isinstance(response, EiResponse):
        return response.request_id
    return RequestId("")


def ok_response(request_id: RequestId) -> EiResponse:
    return EiResponse(code=int(ResponseCode.OK), request_id=request_id, description="OK")


_DESCRIPTION_LIMIT = 200


def _description(err: OadrError) -> str:
    # the raiser wrote `message` for the peer; keep one short line of it, nothing more
    lines = err.message.strip().splitlines()
    text = lines[0].strip() if lines else ""
    if not text:
        text = ResponseCode(err.code).name.replace("_", " ").lower()
    if len(text) > _DESCRIPTION_LIMIT:
        text = text[: _DESCRIPTION_LIMIT - 3] + "..."
    return text


@dataclass(frozen=True, slots=True)
class _ReplyContext:
    message: Payload | None
    response: EiResponse
    vtn_id: VtnId
    ven_id: VenId | None

    def text(self, field: str) -> str | None:
        value = getattr(self.message, field, None)
        return value if isinstance(value, str) and value else None


_BUILDERS: dict[type[Payload], Callable[[_ReplyContext], Payload]] = {
    # A refused registration names no venID: it would read as one granted.
    CreatedPartyRegistration: lambda c: CreatedPartyRegistration(
        response=c.response, vtn_id=c.vtn_id
    ),
    CanceledPartyRegistration: lambda c: CanceledPartyRegistration(
        response=c.response,
        registration_id=RegistrationId(r) if (r := c.text("registration_id")) else None,
        ven_id=c.ven_id,
    ),
    DistributeEvent: lambda c: DistributeEvent(
        request_id=c.response.request_id, vtn_id=c.vtn_id, response=c.response
    ),
    CreatedEvent: lambda c: CreatedEvent(response=c.response, ven_id=c.ven_id or VenId("")),
    Response: lambda c: Response(response=c.response, ven_id=c.ven_id),
    CreatedOpt: lambda c: CreatedOpt(response=c.response, opt_id=OptId(c.text("opt_id") or "")),
    CanceledOpt: lambda c: CanceledOpt(
        response=c.response, opt_id=OptId(o) if (o := c.text("opt_id")) else None
    ),
    RegisteredReport: lambda c: RegisteredReport(response=c.response, ven_id=c.ven_id),
    CreatedReport: lambda c: CreatedReport(response=c.response, ven_id=c.ven_id),
    UpdatedReport: lambda c: UpdatedReport(response=c.response, ven_id=c.ven_id),
    CanceledReport: lambda c: CanceledReport(response=c.response, ven_id=c.ven_id),
}


def error_reply(
    message: Payload | None, err: OadrError, *, vtn_id: VtnId, ven_id: VenId | None
) -> Payload:
    """A valid reply to `message` carrying err.code and a one-line description.

    The reply type is the first of REPLIES for the message's type; a message that could not be
    read (None) or has no reply of its own gets an oadrResponse.
    """
    if message is not None:
        choices = REPLIES.get(type(message), ())
        request_id = request_id_of(message)
    else:
        # Refused while decoding: the codec still tells which payload it was and its requestID.
        refused_type = PAYLOAD_BY_ELEMENT.get(err.payload_name or "")
        choices = REPLIES.get(refused_type, ()) if refused_type is not None else ()
        request_id = RequestId(err.request_id or "")
    reply_type = choices[0] if choices else Response
    response = EiResponse(code=int(err.code), request_id=request_id, description=_description(err))
    return _BUILDERS[reply_type](_ReplyContext(message, response, vtn_id, ven_id))
