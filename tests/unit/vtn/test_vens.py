"""Registration rules at the VTN (vtn.vens): binding venIDs to certificates, approval policies."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from oadr.errors import InvalidData, InvalidId, NotAllowed, NotRegistered, OadrError
from oadr.model import (
    CancelPartyRegistration,
    CreatePartyRegistration,
    RegistrationId,
    RequestId,
    VenId,
)
from vtn import vens
from vtn.vens import NewIds, Policy, Provisioned, Status, VenRecord

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
FP = "AA:BB:CC:DD:EE:FF:00:11:22:33"
IDS = NewIds(VenId("new-ven"), RegistrationId("new-reg"))


def request(**overrides: object) -> CreatePartyRegistration:
    return dataclasses.replace(
        CreatePartyRegistration(request_id=RequestId("r"), ven_name="house-1"), **overrides
    )


def registered(**overrides: object) -> VenRecord:
    record = VenRecord(
        ven_id=VenId("ven-1"),
        fingerprint=FP,
        ven_name="house-1",
        status=Status.APPROVED,
        created_at=NOW,
        registration_id=RegistrationId("reg-1"),
        registered_at=NOW,
    )
    return dataclasses.replace(record, **overrides)


def register(
    req: CreatePartyRegistration,
    existing: VenRecord | None = None,
    policy: Policy = Policy.AUTO,
    provisioned: Provisioned | None = None,
) -> VenRecord:
    return vens.register(
        req,
        fingerprint=FP,
        existing=existing,
        provisioned=provisioned,
        policy=policy,
        new_ids=IDS,
        now=NOW,
    )


def test_a_new_ven_gets_fresh_ids_under_the_auto_policy() -> None:
    record = register(request())
    assert (record.ven_id, record.registration_id, record.status) == (
        "new-ven",
        "new-reg",
        Status.APPROVED,
    )
    assert record.registered and record.fingerprint == FP


def test_re_registration_keeps_ven_id_and_registration_id() -> None:
    record = register(request(ven_id=VenId("ven-1")), existing=registered())
    assert (record.ven_id, record.registration_id) == ("ven-1", "reg-1")


def test_manual_policy_queues_a_new_ven_without_a_registration_id() -> None:
    record = register(request(), policy=Policy.MANUAL)
    assert record.status is Status.PENDING
    assert record.registration_id is None and not record.registered


def test_after_approval_the_next_registration_is_a_new_one() -> None:
    approved = dataclasses.replace(
        register(request(), policy=Policy.MANUAL), status=Status.APPROVED, registered_at=NOW
    )
    record = register(request(), existing=approved, policy=Policy.MANUAL)
    assert record.registered and record.registration_id == "new-reg"


def test_a_cancelled_ven_that_was_approved_once_needs_no_second_approval() -> None:
    cancelled = vens.deregistered(registered(), NOW)
    record = register(request(), existing=cancelled, policy=Policy.MANUAL)
    assert record.status is Status.APPROVED and record.ven_id == "ven-1"
    assert record.registration_id == "new-reg"


def test_allow_list_uses_the_pre_allocated_ven_id() -> None:
    provisioned = Provisioned(fingerprint=FP, created_at=NOW, ven_id=VenId("pre-1"))
    record = register(request(), policy=Policy.ALLOW_LIST, provisioned=provisioned)
    assert record.ven_id == "pre-1" and record.registered


REFUSALS: dict[str, tuple[dict[str, object], type[OadrError]]] = {
    "not-on-allow-list": ({"policy": Policy.ALLOW_LIST}, NotRegistered),
    "rejected-before": ({"existing": registered(status=Status.REJECTED)}, NotRegistered),
    "someone-elses-ven-id": (
        {"req": request(ven_id=VenId("ven-2")), "existing": registered()},
        InvalidId,
    ),
    "ven-id-never-issued": ({"req": request(ven_id=VenId("made-up"))}, InvalidId),
    "wrong-registration-id": (
        {"req": request(registration_id=RegistrationId("x")), "existing": registered()},
        InvalidId,
    ),
    "profile-2.0a": ({"req": request(profile_name="2.0a")}, NotAllowed),
    "xmpp": ({"req": request(transport_name="xmpp")}, NotAllowed),
    "push-without-address": ({"req": request(http_pull_model=False)}, InvalidData),
}


@pytest.mark.parametrize(("arguments", "error"), REFUSALS.values(), ids=REFUSALS.keys())
def test_registration_refusals(arguments: dict[str, object], error: type[OadrError]) -> None:
    args = {"req": request(), **arguments}
    with pytest.raises(error):
        register(**args)  # type: ignore[arg-type]


def test_authorize_refuses_impersonation_and_unregistered() -> None:
    record = registered()
    assert vens.authorize(record, VenId("ven-1"), FP) == record
    assert vens.authorize(record, None, FP) == record
    with pytest.raises(NotRegistered):
        vens.authorize(record, VenId("ven-2"), FP)
    with pytest.raises(NotRegistered):
        vens.authorize(None, VenId("ven-1"), FP)
    with pytest.raises(NotRegistered):
        vens.authorize(registered(status=Status.PENDING), VenId("ven-1"), FP)
    with pytest.raises(NotRegistered):
        vens.authorize(record, VenId("ven-1"), "other fingerprint")


def test_cancel_needs_the_ven_s_own_registration_id() -> None:
    ask = CancelPartyRegistration(
        request_id=RequestId("c"), registration_id=RegistrationId("reg-1")
    )
    cancelled = vens.cancel(registered(), ask, NOW)
    assert cancelled.status is Status.CANCELLED and cancelled.registration_id is None
    with pytest.raises(InvalidId):
        vens.cancel(
            registered(), dataclasses.replace(ask, registration_id=RegistrationId("x")), NOW
        )
