"""Admin API handlers: read the request, call the store or `vtn.services.operator`, reply JSON.

Thin by design: validation is pydantic (`vtn.admin.schemas`) and the OpenADR rules; changes go
through the operator services, which audit them with the token's name as the actor.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web

from oadr import events as event_rules
from oadr.model import Event, VenId
from vtn import delivery
from vtn.admin import bodies, schemas
from vtn.admin.middleware import ADMIN, TOKEN, ApiError
from vtn.services import operator
from vtn.services.context import Context
from vtn.store import jsonform
from vtn.store.db import Tx
from vtn.vens import Provisioned, Status, VenRecord

_T = TypeVar("_T")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def _context(request: web.Request) -> Context:
    return request.app[ADMIN].context


def _now(request: web.Request) -> datetime:
    """The VTN's clock (`Context.clock`), so the admin API and OpenADR agree on what is now."""
    return _context(request).clock()


def _actor(request: web.Request) -> str:
    return request[TOKEN].name


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, not {text!r}") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return value


def _paging(request: web.Request) -> tuple[int, int]:
    return (
        _int(request, "offset", 0, 0, 2**31),
        _int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
    )


def _time(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO 8601 time, not {text!r}") from None
    if value.tzinfo is None:
        raise ApiError(400, f"{name} needs a UTC offset (e.g. 2026-01-15T12:00:00Z)")
    return value.astimezone(UTC)


def _page(items: Sequence[_T], offset: int, limit: int) -> dict[str, Any]:
    """A page from `limit + 1` fetched items (the extra one says whether more follow)."""
    more = len(items) > limit
    return {
        "items": [jsonform.dump(item) for item in items[:limit]],
        "offset": offset,
        "limit": limit,
        "next_offset": offset + limit if more else None,
    }


async def _ven(tx: Tx, ven_id: str) -> VenRecord:
    record = await tx.vens.get(ven_id)
    if record is None:
        raise operator.NotFound(f"no VEN {ven_id!r}")
    return record


# --- VENs -----------------------------------------------------------------------------------------


async def list_vens(request: web.Request) -> web.Response:
    offset, limit = _paging(request)
    status_text = request.query.get("status")
    try:
        status = None if status_text is None else Status(status_text)
    except ValueError:
        choices = ", ".join(s.value for s in Status)
        raise ApiError(400, f"status must be one of {choices}") from None
    async with _context(request).store.transaction() as tx:
        found = await tx.vens.page(status=status, offset=offset, limit=limit + 1)
    return web.json_response(_page(found, offset, limit))


async def get_ven(request: web.Request) -> web.Response:
    ven_id = request.match_info["ven_id"]
    async with _context(request).store.transaction() as tx:
        record = await _ven(tx, ven_id)
        detail = schemas.VenDetail(
            ven=record,
            registered_reports=await tx.reports.registered(ven_id),
            report_requests=await tx.reports.requests(ven_id),
            opts=[opt for _, opt in await tx.opts.active(ven_id)],
            pending_messages=await tx.outbox.pending(ven_id),
        )
    return bodies.reply(detail)


async def approve_ven(request: web.Request) -> web.Response:
    record = await operator.approve_ven(
        _context(request), request.match_info["ven_id"], actor=_actor(request), now=_now(request)
    )
    return bodies.reply(record)


async def reject_ven(request: web.Request) -> web.Response:
    record = await operator.reject_ven(
        _context(request), request.match_info["ven_id"], actor=_actor(request), now=_now(request)
    )
    return bodies.reply(record)


async def deregister_ven(request: web.Request) -> web.Response:
    ven_id = request.match_info["ven_id"]
    await operator.deregister_ven(
        _context(request), ven_id, actor=_actor(request), now=_now(request)
    )
    detail = f"oadrCancelPartyRegistration queued for {ven_id}"
    return bodies.reply(schemas.Done(detail=detail), status=202)


async def reregister_ven(request: web.Request) -> web.Response:
    ven_id = request.match_info["ven_id"]
    await operator.request_reregistration(
        _context(request), ven_id, actor=_actor(request), now=_now(request)
    )
    detail = f"oadrRequestReregistration queued for {ven_id}"
    return bodies.reply(schemas.Done(detail=detail), status=202)


async def set_groups(request: web.Request) -> web.Response:
    body = await bodies.read(request, schemas.GroupsBody)
    record = await operator.set_groups(
        _context(request),
        request.match_info["ven_id"],
        body.groups,
        actor=_actor(request),
        now=_now(request),
    )
    return bodies.reply(record)


async def provision(request: web.Request) -> web.Response:
    body = await bodies.read(request, schemas.ProvisionBody)
    now = _now(request)
    provisioned = Provisioned(
        fingerprint=body.fingerprint,
        created_at=now,
        ven_name=body.ven_name,
        ven_id=None if body.ven_id is None else VenId(body.ven_id),
        groups=tuple(body.groups),
    )
    context = _context(request)
    async with context.store.transaction() as tx:
        if await tx.vens.provisioned(body.fingerprint) is not None:
            raise ApiError(409, f"fingerprint {body.fingerprint} is already provisioned")
    await operator.provision(context, provisioned, actor=_actor(request), now=now)
    return bodies.reply(schemas.Done(detail=f"fingerprint {body.fingerprint} allowed"), status=201)


# --- events ---------------------------------------------------------------------------------------


async def create_event(request: web.Request) -> web.Response:
    body = await bodies.read(request, schemas.EventCreate)
    context = _context(request)
    now = _now(request)
    if body.event_id is not None:
        async with context.store.transaction() as tx:
            if await tx.events.get(body.event_id) is not None:
                raise ApiError(409, f"event {body.event_id!r} already exists")
    created = await operator.create_event(
        context, schemas.event(body, created=now), actor=_actor(request), now=now
    )
    return bodies.reply(created, status=201)


async def list_events(request: web.Request) -> web.Response:
    offset, limit = _paging(request)
    state = request.query.get("status", "all")
    if state not in ("all", "active", "pending"):
        raise ApiError(400, "status must be one of all, active, pending")
    now = _now(request)
    async with _context(request).store.transaction() as tx:
        found = await tx.events.listing(now=now, state=state, offset=offset, limit=limit + 1)
    return web.json_response(_page([event_rules.refresh(e, now) for e in found], offset, limit))


async def _event(tx: Tx, event_id: str) -> Event:
    found = await tx.events.get(event_id)
    if found is None:
        raise operator.NotFound(f"no event {event_id!r}")
    return found


async def get_event(request: web.Request) -> web.Response:
    event_id = request.match_info["event_id"]
    now = _now(request)
    async with _context(request).store.transaction() as tx:
        event = event_rules.refresh(await _event(tx, event_id), now)
        sent = {d.ven_id: d for d in await tx.deliveries.for_event(event_id)}
        targeted = {
            ven.ven_id
            for ven in await tx.vens.registered()
            if delivery.events_for(ven, [event], now)
        }
    rows = []
    for ven_id in sorted(targeted | set(sent)):
        d = sent.get(ven_id)
        rows.append(
            schemas.VenDelivery(
                ven_id=ven_id,
                targeted=ven_id in targeted,
                delivered_modification=None if d is None else d.modification_number,
                delivered_at=None if d is None else d.delivered_at,
                up_to_date=d is not None and d.modification_number == event.modification_number,
                opt_type=None if d is None else d.opt_type,
                opt_modification_number=None if d is None else d.opt_modification_number,
                response_code=None if d is None else d.response_code,
                responded_at=None if d is None else d.responded_at,
            )
        )
    return bodies.reply(schemas.EventDetail(event=event, deliveries=rows))


async def modify_event(request: web.Request) -> web.Response:
    event_id = request.match_info["event_id"]
    patch = await bodies.read(request, schemas.EventPatch)
    context = _context(request)
    async with context.store.transaction() as tx:
        current = await _event(tx, event_id)
    modified = await operator.modify_event(
        context,
        event_id,
        actor=_actor(request),
        now=_now(request),
        **schemas.changes(current, patch),
    )
    return bodies.reply(modified)


async def cancel_event(request: web.Request) -> web.Response:
    cancelled = await operator.cancel_event(
        _context(request), request.match_info["event_id"], actor=_actor(request), now=_now(request)
    )
    return bodies.reply(cancelled)


# --- reports, readings, opts, audit ---------------------------------------------------------------


async def registered_reports(request: web.Request) -> web.Response:
    ven_id = request.match_info["ven_id"]
    async with _context(request).store.transaction() as tx:
        await _ven(tx, ven_id)
        found = await tx.reports.registered(ven_id)
    return web.json_response([jsonform.dump(r) for r in found])


async def report_requests(request: web.Request) -> web.Response:
    ven_id = request.match_info["ven_id"]
    async with _context(request).store.transaction() as tx:
        await _ven(tx, ven_id)
        found = await tx.reports.requests(ven_id)
    return web.json_response([jsonform.dump(r) for r in found])


async def request_report(request: web.Request) -> web.Response:
    ven_id = request.match_info["ven_id"]
    body = await bodies.read(request, schemas.ReportRequestBody)
    context = _context(request)
    async with context.store.transaction() as tx:
        await _ven(tx, ven_id)
        registered = await tx.reports.registered(ven_id)
    wanted = schemas.report_request(body, registered, context.new_id())
    made = await operator.request_report(
        context, ven_id, wanted, actor=_actor(request), now=_now(request)
    )
    return bodies.reply(made, status=201)


async def cancel_report_request(request: web.Request) -> web.Response:
    ven_id = request.match_info["ven_id"]
    request_id = request.match_info["report_request_id"]
    await operator.cancel_report(
        _context(request), ven_id, request_id, actor=_actor(request), now=_now(request)
    )
    detail = f"oadrCancelReport {request_id} queued for {ven_id}"
    return bodies.reply(schemas.Done(detail=detail), status=202)


async def readings(request: web.Request) -> web.Response:
    offset, limit = _paging(request)
    start, end = _time(request, "start"), _time(request, "end")
    if start is not None and end is not None and end <= start:
        raise ApiError(400, "end must be after start")
    async with _context(request).store.transaction() as tx:
        found = await tx.readings.query(
            ven_id=request.query.get("ven_id"),
            r_id=request.query.get("r_id"),
            resource_id=request.query.get("resource_id"),
            start=start,
            end=end,
            offset=offset,
            limit=limit + 1,
        )
    return web.json_response(_page(found, offset, limit))


async def opts(request: web.Request) -> web.Response:
    offset, limit = _paging(request)
    ven_id = request.query.get("ven_id")
    async with _context(request).store.transaction() as tx:
        if ven_id is not None:
            await _ven(tx, ven_id)
        active = await tx.opts.active(ven_id)
    window = [schemas.OptOut(ven_id=v, opt=opt) for v, opt in active[offset : offset + limit + 1]]
    return web.json_response(_page(window, offset, limit))


async def audit(request: web.Request) -> web.Response:
    offset, limit = _paging(request)
    async with _context(request).store.transaction() as tx:
        found = await tx.audit.page(
            subject=request.query.get("subject"), offset=offset, limit=limit + 1
        )
    return web.json_response(_page(found, offset, limit))
