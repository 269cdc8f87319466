"""Messages waiting to go to the VTN, each tagged with its payload type.

The outbox is part of the persisted session state. A bare union of payload dataclasses does not
reload reliably from JSON (oadrPoll and oadrRequestReregistration both hold just a venID), so
each queued payload sits in a wrapper whose `kind` literal names its type; `ven.jsonform` (or any
loader) then picks the one right member.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from oadr.model import (
    CanceledPartyRegistration,
    CanceledReport,
    CancelPartyRegistration,
    CreatedEvent,
    CreatedReport,
    CreateOpt,
    Payload,
    RegisteredReport,
    RegisterReport,
    RequestEvent,
    Response,
    UpdateReport,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedCreatedEvent:
    kind: Literal["CreatedEvent"] = "CreatedEvent"
    payload: CreatedEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedCreatedReport:
    kind: Literal["CreatedReport"] = "CreatedReport"
    payload: CreatedReport


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedCanceledReport:
    kind: Literal["CanceledReport"] = "CanceledReport"
    payload: CanceledReport


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedRegisterReport:
    kind: Literal["RegisterReport"] = "RegisterReport"
    payload: RegisterReport


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedRegisteredReport:
    kind: Literal["RegisteredReport"] = "RegisteredReport"
    payload: RegisteredReport


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedUpdateReport:
    kind: Literal["UpdateReport"] = "UpdateReport"
    payload: UpdateReport


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedCreateOpt:
    kind: Literal["CreateOpt"] = "CreateOpt"
    payload: CreateOpt


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedRequestEvent:
    kind: Literal["RequestEvent"] = "RequestEvent"
    payload: RequestEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedResponse:
    kind: Literal["Response"] = "Response"
    payload: Response


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedCancelPartyRegistration:
    kind: Literal["CancelPartyRegistration"] = "CancelPartyRegistration"
    payload: CancelPartyRegistration


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedCanceledPartyRegistration:
    kind: Literal["CanceledPartyRegistration"] = "CanceledPartyRegistration"
    payload: CanceledPartyRegistration


Queued = (
    QueuedCreatedEvent
    | QueuedCreatedReport
    | QueuedCanceledReport
    | QueuedRegisterReport
    | QueuedRegisteredReport
    | QueuedUpdateReport
    | QueuedCreateOpt
    | QueuedRequestEvent
    | QueuedResponse
    | QueuedCancelPartyRegistration
    | QueuedCanceledPartyRegistration
)

_WRAPPERS: dict[type[Payload], type[Queued]] = {
    CreatedEvent: QueuedCreatedEvent,
    CreatedReport: QueuedCreatedReport,
    CanceledReport: QueuedCanceledReport,
    RegisterReport: QueuedRegisterReport,
    RegisteredReport: QueuedRegisteredReport,
    UpdateReport: QueuedUpdateReport,
    CreateOpt: QueuedCreateOpt,
    RequestEvent: QueuedRequestEvent,
    Response: QueuedResponse,
    CancelPartyRegistration: QueuedCancelPartyRegistration,
    CanceledPartyRegistration: QueuedCanceledPartyRegistration,
}


def wrap(payload: Payload) -> Queued:
    """The tagged outbox entry for `payload`; KeyError for a payload a VEN never queues."""
    wrapper = _WRAPPERS[type(payload)]
    return wrapper(payload=payload)  # type: ignore[arg-type]
