"""EiReport: the VEN registers its reports, the VTN requests telemetry and stores it.

The VTN registers its own report capabilities with every new VEN (an empty oadrRegisterReport,
queued at registration); it offers no reports of its own, so a VEN's request for one is 461.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from oadr import reports
from oadr.errors import OadrError, ReportNotSupported
from oadr.exchanges import ok_response
from oadr.model import (
    CanceledReport,
    CancelReport,
    CreatedReport,
    CreateReport,
    RegisteredReport,
    RegisterReport,
    Response,
    UpdatedReport,
    UpdateReport,
    VenId,
)
from vtn import reporting
from vtn.services.context import Caller, Context, Handler, authorized_ven, touch_if_stale
from vtn.store.db import Tx
from vtn.store.reports import reading_rows


async def register_report(
    context: Context, request: RegisterReport, caller: Caller, now: datetime
) -> RegisteredReport:
    """The VEN's METADATA reports replace what it registered before; the VTN answers with its
    telemetry requests (R1_3080) and cancels the ones the old registration had."""
    async with context.store.transaction() as tx:
        ven = await authorized_ven(tx, request.ven_id, caller)
        reports.validate_register_report(request)
        await tx.reports.register(ven.ven_id, request.reports, now)
        for old in await tx.reports.requests(ven.ven_id):
            await tx.reports.cancel_request(ven.ven_id, old.report_request_id, now)
        requests = reporting.telemetry_requests(
            request.reports, context.settings.telemetry, context.new_id
        )
        reports.validate_report_requests(
            requests, request.reports, await tx.reports.request_ids(ven.ven_id)
        )
        for report_request in requests:
            await tx.reports.add_request(ven.ven_id, report_request, now)
        resource_ids = reporting.resource_ids(request.reports)
        await tx.vens.save(dataclasses.replace(ven, resource_ids=resource_ids, last_seen_at=now))
    return RegisteredReport(
        response=ok_response(request.request_id), report_requests=requests, ven_id=ven.ven_id
    )


async def registered_report(
    context: Context, answer: RegisteredReport, caller: Caller, now: datetime
) -> Response:
    """The VEN's answer to the VTN's own RegisterReport; the VTN has no reports to give."""
    async with context.store.transaction() as tx:
        ven = await authorized_ven(tx, answer.ven_id, caller)
        await tx.vens.touch(ven.ven_id, now)
    if answer.report_requests:
        raise ReportNotSupported("this VTN offers no reports of its own")
    return Response(response=ok_response(answer.response.request_id), ven_id=ven.ven_id)


async def create_report(
    context: Context, request: CreateReport, caller: Caller, now: datetime
) -> CreatedReport:
    async with context.store.transaction() as tx:
        await authorized_ven(tx, request.ven_id, caller)
    raise ReportNotSupported("this VTN offers no reports of its own")


async def created_report(
    context: Context, answer: CreatedReport, caller: Caller, now: datetime
) -> Response:
    """The VEN acknowledges report requests: the ones it lists are now pending at the VEN."""
    async with context.store.transaction() as tx:
        ven = await authorized_ven(tx, answer.ven_id, caller)
        await tx.reports.acknowledge(ven.ven_id, answer.pending_reports, now)
        await tx.vens.touch(ven.ven_id, now)
    return Response(response=ok_response(answer.response.request_id), ven_id=ven.ven_id)


@dataclasses.dataclass(frozen=True, slots=True)
class Update:
    """An oadrUpdateReport to store, and who sent it when."""

    request: UpdateReport
    caller: Caller
    now: datetime


async def update_report(
    context: Context, request: UpdateReport, caller: Caller, now: datetime
) -> UpdatedReport:
    """Store the readings of each report; each must answer a request the VTN made (452 else).

    A report for a request cancelled since is still stored: it is the "reportToFollow" one, or
    was on its way when the cancellation was sent. Readings sent twice are stored once. With the
    VTN's group commit (`context.updates`, wired by `vtn.app`) concurrent updates share one
    transaction; either way the reply leaves after the readings were committed.
    """
    update = Update(request, caller, now)
    if context.updates is not None:
        ven_id = await context.updates.submit(update)
    else:
        async with context.store.transaction() as tx:
            (outcome,) = await store_updates(context, tx, [update])
        if isinstance(outcome, Exception):
            raise outcome
        ven_id = outcome
    return UpdatedReport(response=ok_response(request.request_id), ven_id=ven_id)


async def store_updates(
    context: Context, tx: Tx, updates: Sequence[Update]
) -> list[VenId | Exception]:
    """Store the readings of these updates in `tx`, all in one statement; for each, the venID
    it was stored for, or the OpenADR error that refused it (it then stores nothing)."""
    outcomes: list[VenId | Exception] = []
    rows: list[dict[str, Any]] = []
    for update in updates:
        try:
            ven = await authorized_ven(tx, update.request.ven_id, update.caller)
            made, registered = await tx.reports.answered(
                ven.ven_id, [report.report_request_id for report in update.request.reports]
            )
            answered = reports.answers(update.request, made)
        except OadrError as refused:
            outcomes.append(refused)
            continue
        resource_of = reporting.resource_of(registered)
        for report, _request in answered:
            rows.extend(reading_rows(ven.ven_id, report, resource_of, update.now))
        await touch_if_stale(context, tx, ven, update.now)
        outcomes.append(ven.ven_id)
    await tx.readings.add_rows(rows)
    return outcomes


async def cancel_report(
    context: Context, request: CancelReport, caller: Caller, now: datetime
) -> CanceledReport:
    """The VEN cancels a report it requested from the VTN; there are none to cancel (452)."""
    async with context.store.transaction() as tx:
        ven = await authorized_ven(tx, request.ven_id, caller)
    reports.cancel({}, request)  # raises InvalidId for the first id
    return CanceledReport(response=ok_response(request.request_id), ven_id=ven.ven_id)


async def canceled_report(
    context: Context, answer: CanceledReport, caller: Caller, now: datetime
) -> Response:
    async with context.store.transaction() as tx:
        ven = await authorized_ven(tx, answer.ven_id, caller)
        await tx.vens.touch(ven.ven_id, now)
    return Response(response=ok_response(answer.response.request_id), ven_id=ven.ven_id)


HANDLERS: dict[type[Any], Handler] = {
    RegisterReport: register_report,
    RegisteredReport: registered_report,
    CreateReport: create_report,
    CreatedReport: created_report,
    UpdateReport: update_report,
    CancelReport: cancel_report,
    CanceledReport: canceled_report,
}
