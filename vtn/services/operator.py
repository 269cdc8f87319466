"""What the DSO's operator does (admin API, CLI): events, VEN approval, report requests.

Each operation validates with the pure rules, saves, writes the audit log in the same
transaction, and wakes the VENs it concerns once committed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from oadr import events, reports
from oadr.enums import EventStatus
from oadr.errors import InvalidId, NotAllowed
from oadr.model import (
    CancelPartyRegistration,
    CancelReport,
    CreateReport,
    Event,
    EventId,
    ReportRequest,
    ReportRequestId,
    RequestId,
    RequestReregistration,
    VenId,
)
from vtn import delivery, vens
from vtn.services.context import Context
from vtn.store.audit import AuditEntry
from vtn.store.db import Tx
from vtn.vens import Provisioned, Status, VenRecord


class NotFound(InvalidId):
    """The operator named something the VTN does not have."""


async def _audit(
    tx: Tx, actor: str, action: str, subject: str, now: datetime, **detail: Any
) -> None:
    await tx.audit.add(
        AuditEntry(at=now, actor=actor, action=action, subject=subject, detail=detail)
    )


def _wake(context: Context, ven_ids: Iterable[VenId]) -> None:
    for ven_id in ven_ids:
        context.notify(ven_id)


# --- events ---------------------------------------------------------------------------------------


class EventBatch:
    """Event changes made in one transaction (`event_batch`): all of them commit or none do, and
    the VENs they concern are woken once, after the commit. An aggregator re-sharing one ask
    across hundreds of members makes one commit instead of hundreds."""

    def __init__(self, context: Context, tx: Tx, actor: str, now: datetime) -> None:
        self.context = context
        self.tx = tx
        self.actor = actor
        self.now = now
        self.woken: set[VenId] = set()
        self._registered: list[VenRecord] | None = None

    async def _target(self, *found: Event) -> None:
        if self._registered is None:  # the same for every change in the transaction
            self._registered = await self.tx.vens.registered()
        for event in found:
            self.woken.update(
                ven.ven_id
                for ven in self._registered
                if delivery.events_for(ven, [event], self.now)
            )

    async def has_event(self, event_id: str) -> bool:
        return await self.tx.events.get(event_id) is not None

    async def create_event(self, event: Event) -> Event:
        """A new event; its modificationNumber starts at 0 and `created` is now."""
        now = self.now
        event = dataclasses.replace(
            event,
            event_id=event.event_id or EventId(self.context.new_id()),
            modification_number=0,
            created=now,
            modified=None,
            status=EventStatus.FAR,
        )
        event = events.refresh(event, now)
        events.validate(event)
        if await self.tx.events.get(event.event_id) is not None:
            raise InvalidId(f"event {event.event_id!r} already exists")
        await self.tx.events.add(event, now)
        await _audit(self.tx, self.actor, "event.create", event.event_id, now)
        await self._target(event)
        return event

    async def modify_event(self, event_id: str, **changes: Any) -> Event:
        now = self.now
        current = await self.tx.events.get(event_id, for_update=True)
        if current is None:
            raise NotFound(f"no event {event_id!r}")
        modified = events.refresh(events.modify(current, now, **changes), now)
        events.validate(modified)
        await self.tx.events.replace(modified, now)
        await _audit(self.tx, self.actor, "event.modify", event_id, now, changed=sorted(changes))
        await self._target(current, modified)
        return modified

    async def cancel_event(self, event_id: str) -> Event:
        now = self.now
        current = await self.tx.events.get(event_id, for_update=True)
        if current is None:
            raise NotFound(f"no event {event_id!r}")
        cancelled = events.cancel(current, now)
        if cancelled is not current:
            await self.tx.events.replace(cancelled, now)
            await _audit(self.tx, self.actor, "event.cancel", event_id, now)
        await self._target(current)
        return cancelled


@asynccontextmanager
async def event_batch(context: Context, *, actor: str, now: datetime) -> AsyncIterator[EventBatch]:
    """Create, modify and cancel events in one transaction; wake their VENs once committed."""
    async with context.store.transaction() as tx:
        batch = EventBatch(context, tx, actor, now)
        yield batch
    _wake(context, batch.woken)


async def create_event(context: Context, event: Event, *, actor: str, now: datetime) -> Event:
    """A new event; its modificationNumber starts at 0 and `created` is now."""
    async with event_batch(context, actor=actor, now=now) as batch:
        return await batch.create_event(event)


async def modify_event(
    context: Context, event_id: str, *, actor: str, now: datetime, **changes: Any
) -> Event:
    async with event_batch(context, actor=actor, now=now) as batch:
        return await batch.modify_event(event_id, **changes)


async def cancel_event(context: Context, event_id: str, *, actor: str, now: datetime) -> Event:
    async with event_batch(context, actor=actor, now=now) as batch:
        return await batch.cancel_event(event_id)


# --- VENs -----------------------------------------------------------------------------------------


async def _ven(tx: Tx, ven_id: str) -> VenRecord:
    record = await tx.vens.get(ven_id)
    if record is None:
        raise NotFound(f"no VEN {ven_id!r}")
    return record


async def approve_ven(context: Context, ven_id: str, *, actor: str, now: datetime) -> VenRecord:
    """Approve a VEN waiting in the manual queue; its next registration attempt succeeds."""
    async with context.store.transaction() as tx:
        record = await _ven(tx, ven_id)
        if record.status not in (Status.PENDING, Status.REJECTED):
            raise NotAllowed(f"VEN {ven_id!r} is {record.status.value}, not waiting for approval")
        record = dataclasses.replace(record, status=Status.APPROVED, registered_at=now)
        await tx.vens.save(record)
        await _audit(tx, actor, "ven.approve", ven_id, now)
    return record


async def reject_ven(context: Context, ven_id: str, *, actor: str, now: datetime) -> VenRecord:
    async with context.store.transaction() as tx:
        record = await _ven(tx, ven_id)
        if record.registered:
            await tx.outbox.put(record.ven_id, _cancel_registration(context, record), now)
        record = dataclasses.replace(record, status=Status.REJECTED, registration_id=None)
        await tx.vens.save(record)
        await _audit(tx, actor, "ven.reject", ven_id, now)
    return record


def _cancel_registration(context: Context, record: VenRecord) -> CancelPartyRegistration:
    assert record.registration_id is not None
    return CancelPartyRegistration(
        request_id=RequestId(context.new_id()),
        registration_id=record.registration_id,
        ven_id=record.ven_id,
    )


async def deregister_ven(context: Context, ven_id: str, *, actor: str, now: datetime) -> None:
    """N1_0040: the VTN cancels a registration; it ends when the VEN has been told (next poll)."""
    async with context.store.transaction() as tx:
        record = await _ven(tx, ven_id)
        if not record.registered:
            raise NotAllowed(f"VEN {ven_id!r} is not registered")
        await tx.outbox.put(record.ven_id, _cancel_registration(context, record), now)
        await _audit(tx, actor, "ven.deregister", ven_id, now)
    context.notify(record.ven_id)


async def request_reregistration(
    context: Context, ven_id: str, *, actor: str, now: datetime
) -> None:
    """N1_0050."""
    async with context.store.transaction() as tx:
        record = await _ven(tx, ven_id)
        if not record.registered:
            raise NotAllowed(f"VEN {ven_id!r} is not registered")
        await tx.outbox.put(record.ven_id, RequestReregistration(ven_id=record.ven_id), now)
        await _audit(tx, actor, "ven.reregister", ven_id, now)
    context.notify(record.ven_id)


async def set_groups(
    context: Context, ven_id: str, groups: Iterable[str], *, actor: str, now: datetime
) -> VenRecord:
    async with context.store.transaction() as tx:
        record = dataclasses.replace(await _ven(tx, ven_id), groups=tuple(dict.fromkeys(groups)))
        await tx.vens.save(record)
        await _audit(tx, actor, "ven.groups", ven_id, now, groups=list(record.groups))
    context.notify(record.ven_id)  # its event list may have changed
    return record


async def provision(
    context: Context, provisioned: Provisioned, *, actor: str, now: datetime
) -> None:
    """Allow a fingerprint in advance (allow-list policy), optionally with its venID."""
    async with context.store.transaction() as tx:
        await tx.vens.provision(dataclasses.replace(provisioned, created_at=now))
        await _audit(tx, actor, "ven.provision", provisioned.fingerprint, now)


# --- reports --------------------------------------------------------------------------------------


async def request_report(
    context: Context, ven_id: str, request: ReportRequest, *, actor: str, now: datetime
) -> ReportRequest:
    """Ask a VEN for a report it registered (oadrCreateReport, R1_3070/R1_3080)."""
    async with context.store.transaction() as tx:
        record = await _ven(tx, ven_id)
        if not record.registered:
            raise NotAllowed(f"VEN {ven_id!r} is not registered")
        if not request.report_request_id:
            request = dataclasses.replace(
                request, report_request_id=ReportRequestId(context.new_id())
            )
        reports.validate_report_request(
            request, await tx.reports.registered(ven_id), await tx.reports.request_ids(ven_id)
        )
        await tx.reports.add_request(ven_id, request, now)
        await tx.outbox.put(
            ven_id,
            CreateReport(
                request_id=RequestId(context.new_id()),
                report_requests=(request,),
                ven_id=record.ven_id,
            ),
            now,
        )
        await _audit(
            tx, actor, "report.request", ven_id, now, report_request_id=request.report_request_id
        )
    context.notify(record.ven_id)
    return request


async def cancel_report(
    context: Context, ven_id: str, report_request_id: str, *, actor: str, now: datetime
) -> None:
    """R1_3100: cancel a report request; the VEN sends one last report if it has one."""
    async with context.store.transaction() as tx:
        record = await _ven(tx, ven_id)
        if not await tx.reports.cancel_request(ven_id, report_request_id, now):
            raise NotFound(f"no active report request {report_request_id!r} for VEN {ven_id!r}")
        await tx.outbox.put(
            ven_id,
            CancelReport(
                request_id=RequestId(context.new_id()),
                report_request_ids=(ReportRequestId(report_request_id),),
                report_to_follow=True,
                ven_id=record.ven_id,
            ),
            now,
        )
        await _audit(tx, actor, "report.cancel", ven_id, now, report_request_id=report_request_id)
    context.notify(record.ven_id)


__all__ = ["NotFound", "vens"]
