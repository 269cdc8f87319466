"""EiRegisterParty: query, create (and re-create), cancel; the VEN's answer to a VTN cancel.

A successful registration queues the VTN's own oadrRegisterReport (the bootstrap sequence,
N1_0020): the VEN fetches it with its next poll.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from oadr.enums import ResponseCode
from oadr.errors import InvalidId, NotRegistered
from oadr.exchanges import ok_response
from oadr.model import (
    CanceledPartyRegistration,
    CancelPartyRegistration,
    CreatedPartyRegistration,
    CreatePartyRegistration,
    EiResponse,
    QueryRegistration,
    RegisterReport,
    RegistrationId,
    RequestId,
    Response,
    VenId,
)
from vtn import vens
from vtn.services.context import Caller, Context, Handler, authorized_ven
from vtn.vens import NewIds, Status


def _created(
    context: Context, response: EiResponse, record: vens.VenRecord | None
) -> CreatedPartyRegistration:
    registered = record is not None and record.registered
    return CreatedPartyRegistration(
        response=response,
        vtn_id=context.settings.vtn_id,
        registration_id=record.registration_id if registered and record else None,
        ven_id=record.ven_id if registered and record else None,
        requested_poll_freq=context.settings.poll_interval,
    )


def _fingerprint(caller: Caller, request: CreatePartyRegistration) -> str:
    if caller.fingerprint is not None:
        return caller.fingerprint
    # Insecure HTTP: no certificate, so the VEN's name stands in for its identity.
    return f"insecure:{request.ven_name or request.ven_id or request.request_id}"


async def query(
    context: Context, request: QueryRegistration, caller: Caller, now: datetime
) -> CreatedPartyRegistration:
    """N1_0010/N1_0015: what the VTN offers, and this certificate's registration if it has one."""
    async with context.store.transaction() as tx:
        record = (
            None if caller.fingerprint is None else await tx.vens.by_fingerprint(caller.fingerprint)
        )
    return _created(context, ok_response(request.request_id), record)


async def create(
    context: Context, request: CreatePartyRegistration, caller: Caller, now: datetime
) -> CreatedPartyRegistration:
    fingerprint = _fingerprint(caller, request)
    async with context.store.transaction() as tx:
        existing = await tx.vens.by_fingerprint(fingerprint)
        if existing is None and request.ven_id is not None and caller.fingerprint is not None:
            # A new certificate naming a venID: a VEN that renewed its certificate (rotation).
            claimed = await tx.vens.get(request.ven_id)
            if claimed is not None:
                existing = vens.rotated(
                    claimed,
                    vens.Certificate(
                        fingerprint, caller.certificate_name, caller.certificate_issuer
                    ),
                    now,
                )
        record = vens.register(
            request,
            fingerprint=fingerprint,
            existing=existing,
            provisioned=await tx.vens.provisioned(fingerprint),
            policy=context.settings.registration,
            new_ids=NewIds(VenId(context.new_id()), RegistrationId(context.new_id())),
            now=now,
        )
        record = dataclasses.replace(
            record,
            certificate_name=caller.certificate_name or record.certificate_name,
            certificate_issuer=caller.certificate_issuer or record.certificate_issuer,
        )
        await tx.vens.save(record)
        if record.status is Status.PENDING:
            response = EiResponse(
                code=int(ResponseCode.NOT_REGISTERED_OR_AUTHORIZED),
                request_id=request.request_id,
                description="registration received; awaiting approval by the VTN operator",
            )
            return _created(context, response, None)
        newly_registered = existing is None or not existing.registered
        if newly_registered:
            # Bootstrap: the VTN registers its own (empty) report capabilities with the VEN.
            await tx.outbox.put(
                record.ven_id,
                RegisterReport(request_id=RequestId(context.new_id()), ven_id=record.ven_id),
                now,
            )
    if newly_registered:
        context.notify(record.ven_id)
    return _created(context, ok_response(request.request_id), record)


async def cancel(
    context: Context, request: CancelPartyRegistration, caller: Caller, now: datetime
) -> CanceledPartyRegistration:
    """N1_0030: the VEN cancels its registration; it may register again later."""
    async with context.store.transaction() as tx:
        record = await authorized_ven(tx, request.ven_id, caller)
        await tx.vens.save(vens.cancel(record, request, now))
    return CanceledPartyRegistration(
        response=ok_response(request.request_id),
        registration_id=request.registration_id,
        ven_id=record.ven_id,
    )


async def canceled(
    context: Context, answer: CanceledPartyRegistration, caller: Caller, now: datetime
) -> Response:
    """The VEN confirms a cancellation the VTN sent (N1_0040); the VTN already applied it."""
    async with context.store.transaction() as tx:
        record = None
        if caller.fingerprint is not None:
            record = await tx.vens.by_fingerprint(caller.fingerprint)
        elif answer.ven_id is not None:
            record = await tx.vens.get(answer.ven_id)
        if record is None:
            raise NotRegistered("no VEN known for this certificate")
        if answer.ven_id is not None and answer.ven_id != record.ven_id:
            raise InvalidId(f"venID {answer.ven_id!r} does not belong to this certificate")
        await tx.vens.touch(record.ven_id, now)
    return Response(response=ok_response(answer.response.request_id), ven_id=record.ven_id)


HANDLERS: dict[type[Any], Handler] = {
    QueryRegistration: query,
    CreatePartyRegistration: create,
    CancelPartyRegistration: cancel,
    CanceledPartyRegistration: canceled,
}
