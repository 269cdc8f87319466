"""VEN registration at the VTN (EiRegisterParty; cert-test cases N1_0010..N1_0080). Pure.

A VEN is known by the fingerprint of its client certificate: registration binds a venID to that
fingerprint, re-registration from the same certificate keeps the venID, and every later message
must come from the certificate its venID is bound to.

Approval policy per deployment:
  auto        every VEN with a trusted certificate is registered at once;
  manual      a new VEN waits in a queue until an operator approves it; until then its
              oadrCreatePartyRegistration is answered 463 "awaiting approval" with no venID;
  allow-list  only pre-provisioned fingerprints register (optionally with a pre-allocated venID).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from oadr.enums import PROFILE_2_0B, TransportName
from oadr.errors import InvalidData, InvalidId, NotAllowed, NotRegistered
from oadr.model import CancelPartyRegistration, CreatePartyRegistration, RegistrationId, VenId


class Status(StrEnum):
    PENDING = "pending"  # waiting for an operator (manual policy)
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"  # deregistered by either side; may register again


class Policy(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"
    ALLOW_LIST = "allow-list"


@dataclass(frozen=True, slots=True, kw_only=True)
class VenRecord:
    ven_id: VenId
    fingerprint: str
    ven_name: str
    status: Status
    created_at: datetime
    registration_id: RegistrationId | None = None
    http_pull_model: bool = True
    transport_address: str | None = None
    xml_signature: bool = False
    report_only: bool = False
    profile_name: str = PROFILE_2_0B
    groups: tuple[str, ...] = ()
    resource_ids: tuple[str, ...] = ()
    party_id: str | None = None
    registered_at: datetime | None = None
    last_seen_at: datetime | None = None
    previous_fingerprint: str | None = None  # the certificate before a rotation
    certificate_name: str | None = None  # subject CN of the certificate (kept by rotation)
    certificate_issuer: str | None = None  # issuer DN

    @property
    def registered(self) -> bool:
        return self.status is Status.APPROVED and self.registration_id is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Provisioned:
    """A fingerprint an operator allowed in advance, with an optional pre-allocated venID."""

    fingerprint: str
    created_at: datetime
    ven_name: str | None = None
    ven_id: VenId | None = None
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Certificate:
    """The client certificate a request came with, as the trust store accepted it."""

    fingerprint: str
    name: str | None = None
    issuer: str | None = None


@dataclass(frozen=True, slots=True)
class NewIds:
    """Fresh identifiers the caller drew (this module draws no randomness)."""

    ven_id: VenId
    registration_id: RegistrationId


def register(
    request: CreatePartyRegistration,
    *,
    fingerprint: str,
    existing: VenRecord | None,
    provisioned: Provisioned | None,
    policy: Policy,
    new_ids: NewIds,
    now: datetime,
) -> VenRecord:
    """The VEN record after `request`; its status says whether the VEN is now registered.

    `existing` is the record bound to this certificate's fingerprint, if any.
    """
    _check_request(request)
    if existing is not None and existing.status is Status.REJECTED:
        raise NotRegistered("this certificate's registration was rejected by the operator")
    if policy is Policy.ALLOW_LIST and provisioned is None:
        raise NotRegistered("this certificate is not on the VTN's allow-list")

    ven_id = _ven_id(request, existing, provisioned, new_ids)
    if request.registration_id is not None and (
        existing is None or request.registration_id != existing.registration_id
    ):
        raise InvalidId(f"registrationID {request.registration_id!r} is not this VEN's")

    if existing is not None and existing.status in (Status.APPROVED, Status.PENDING):
        status = existing.status
    elif existing is not None and existing.registered_at is not None:
        status = Status.APPROVED  # approved once, cancelled since: no second approval needed
    elif policy is Policy.MANUAL:
        status = Status.PENDING
    else:
        status = Status.APPROVED
    # A registrationID exists only while registered; a VEN waiting for approval has none, so
    # its first registration after approval is new (and starts the bootstrap sequence).
    registration_id: RegistrationId | None = None
    if status is Status.APPROVED:
        registration_id = (
            existing.registration_id
            if existing is not None and existing.registration_id is not None
            else new_ids.registration_id
        )
    base = existing or VenRecord(
        ven_id=ven_id,
        fingerprint=fingerprint,
        ven_name=request.ven_name or (provisioned.ven_name if provisioned else None) or ven_id,
        status=status,
        created_at=now,
        groups=provisioned.groups if provisioned else (),
    )
    return dataclasses.replace(
        base,
        ven_id=ven_id,
        status=status,
        registration_id=registration_id,
        ven_name=request.ven_name or base.ven_name,
        http_pull_model=request.http_pull_model is not False,
        transport_address=request.transport_address,
        xml_signature=request.xml_signature,
        report_only=request.report_only,
        profile_name=request.profile_name,
        registered_at=now if status is Status.APPROVED else base.registered_at,
        last_seen_at=now,
    )


def _check_request(request: CreatePartyRegistration) -> None:
    if request.profile_name != PROFILE_2_0B:
        raise NotAllowed(f"profile {request.profile_name!r} is not offered; this VTN speaks 2.0b")
    if request.transport_name != TransportName.SIMPLE_HTTP:
        raise NotAllowed(f"transport {request.transport_name!r} is not offered; use simpleHttp")
    if request.http_pull_model is False and not request.transport_address:
        raise InvalidData("a push VEN (oadrHttpPullModel false) needs oadrTransportAddress")


def _ven_id(
    request: CreatePartyRegistration,
    existing: VenRecord | None,
    provisioned: Provisioned | None,
    new_ids: NewIds,
) -> VenId:
    if existing is not None:
        if request.ven_id is not None and request.ven_id != existing.ven_id:
            raise InvalidId(f"venID {request.ven_id!r} is not the one bound to this certificate")
        return existing.ven_id
    if provisioned is not None and provisioned.ven_id is not None:
        if request.ven_id is not None and request.ven_id != provisioned.ven_id:
            raise InvalidId(f"venID {request.ven_id!r} is not the one allocated to this VEN")
        return provisioned.ven_id
    if request.ven_id is not None:
        raise InvalidId(f"venID {request.ven_id!r} was not issued by this VTN")
    return new_ids.ven_id


def rotated(record: VenRecord, certificate: Certificate, now: datetime) -> VenRecord:
    """A VEN that renewed its certificate keeps its venID (issue: rotation without outage).

    Allowed only for the same identity from the same CA: the new certificate's subject name
    and issuer must equal the registered one's. The old fingerprint stays accepted for as long
    as the trust store accepts the old certificate (the CA's overlap window), then no longer.
    """
    same_identity = (
        record.certificate_name is not None
        and certificate.name == record.certificate_name
        and certificate.issuer == record.certificate_issuer
    )
    if not same_identity:
        raise NotRegistered(f"venID {record.ven_id!r} is bound to another certificate identity")
    return dataclasses.replace(
        record,
        previous_fingerprint=record.fingerprint,
        fingerprint=certificate.fingerprint,
        last_seen_at=now,
    )


def cancel(record: VenRecord, request: CancelPartyRegistration, now: datetime) -> VenRecord:
    """The VEN cancels its own registration (N1_0030)."""
    if request.registration_id != record.registration_id:
        raise InvalidId(f"registrationID {request.registration_id!r} is not this VEN's")
    return deregistered(record, now)


def deregistered(record: VenRecord, now: datetime) -> VenRecord:
    return dataclasses.replace(
        record, status=Status.CANCELLED, registration_id=None, last_seen_at=now
    )


def authorize(record: VenRecord | None, ven_id: VenId | None, fingerprint: str) -> VenRecord:
    """The registered VEN a message may act for, or NotRegistered (463).

    The venID a message names must be bound to the certificate that sent it (no impersonation);
    a message that names no venID acts for the certificate's own VEN.
    """
    if record is None or not record.registered:
        raise NotRegistered("no registered VEN for this certificate; register first")
    if ven_id is not None and ven_id != record.ven_id:
        raise NotRegistered(f"venID {ven_id!r} does not belong to the certificate that sent it")
    if fingerprint not in (record.fingerprint, record.previous_fingerprint):
        raise NotRegistered("the certificate does not match the VEN's registration")
    return record
