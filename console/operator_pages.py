"""The DSO operator's pages: VENs (online, approval queue, groups), events (create, modify,
cancel, per-VEN delivery and opt status, live), congestion points (load against capacity, the
forecast's traffic light), the market's requests, bids, awards and statements, and the audit log.

Every change goes through the same services as the admin API (`vtn.services.operator`, which
validates before it stores and audits in the same transaction), with the console user as actor.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from console import forms, involvement, views
from console.accounts import Role
from console.store import ConsoleStore
from console.web import PREFIX, NotFound, Viewer, context_of, now_of, page, render, see_other
from oadr import events as event_rules
from oadr.errors import OadrError
from oadr.model import Event
from vtn import delivery
from vtn.admin import schemas
from vtn.services import operator
from vtn.store.db import Tx
from vtn.vens import Status, VenRecord

OPERATOR = page(Role.OPERATOR)
BASE = PREFIX + "/operator"


def add_routes(app: web.Application) -> None:
    app.router.add_get(BASE + "/vens", OPERATOR(vens_page))
    app.router.add_post(BASE + "/vens/{ven_id}/approve", OPERATOR(approve))
    app.router.add_post(BASE + "/vens/{ven_id}/reject", OPERATOR(reject))
    app.router.add_post(BASE + "/vens/{ven_id}/groups", OPERATOR(set_groups))
    app.router.add_get(BASE + "/events", OPERATOR(events_page))
    app.router.add_post(BASE + "/events", OPERATOR(create_event))
    app.router.add_get(BASE + "/events/{event_id}", OPERATOR(event_page))
    app.router.add_get(BASE + "/events/{event_id}/deliveries", OPERATOR(event_deliveries))
    app.router.add_post(BASE + "/events/{event_id}/modify", OPERATOR(modify_event))
    app.router.add_post(BASE + "/events/{event_id}/cancel", OPERATOR(cancel_event))
    app.router.add_get(BASE + "/grid", OPERATOR(grid_page))
    app.router.add_get(BASE + "/market", OPERATOR(market_page))
    app.router.add_get(BASE + "/audit", OPERATOR(audit_page))


def online(ven: VenRecord, now: datetime, poll_interval: timedelta) -> bool:
    """Seen within three poll intervals (a minute at least): it is polling as asked."""
    window = max(3 * poll_interval, timedelta(minutes=1))
    return ven.last_seen_at is not None and now - ven.last_seen_at <= window


# --- VENs -----------------------------------------------------------------------------------------


async def vens_page(request: web.Request, viewer: Viewer) -> web.Response:
    context = context_of(request)
    now = now_of(request)
    async with context.store.transaction() as tx:
        found = await tx.vens.page(limit=1000)
    poll = context.settings.poll_interval
    rows = [{"ven": v, "online": online(v, now, poll)} for v in found]
    return render(
        request,
        "operator/vens.html",
        viewer,
        rows=rows,
        queue=[v for v in found if v.status is Status.PENDING],
        notice=request.query.get("notice"),
        error=None,
    )


async def _ven_action(request: web.Request, viewer: Viewer, action: Any, done: str) -> web.Response:
    ven_id = request.match_info["ven_id"]
    try:
        await action(context_of(request), ven_id, actor=viewer.actor, now=now_of(request))
    except OadrError as err:
        return see_other(BASE + "/vens", f"Nothing changed: {err}")
    return see_other(BASE + "/vens", f"VEN {ven_id} {done}.")


async def approve(request: web.Request, viewer: Viewer) -> web.Response:
    return await _ven_action(request, viewer, operator.approve_ven, "approved")


async def reject(request: web.Request, viewer: Viewer) -> web.Response:
    return await _ven_action(request, viewer, operator.reject_ven, "rejected")


async def set_groups(request: web.Request, viewer: Viewer) -> web.Response:
    ven_id = request.match_info["ven_id"]
    groups = forms.split_list(viewer.field("groups"))
    if any(len(g) > 128 for g in groups):
        return see_other(BASE + "/vens", "Nothing changed: a group id is longer than 128.")
    try:
        await operator.set_groups(
            context_of(request), ven_id, groups, actor=viewer.actor, now=now_of(request)
        )
    except OadrError as err:
        return see_other(BASE + "/vens", f"Nothing changed: {err}")
    return see_other(BASE + "/vens", f"Groups of VEN {ven_id} saved.")


# --- events ---------------------------------------------------------------------------------------


async def _events_form(
    request: web.Request,
    viewer: Viewer,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> web.Response:
    context = context_of(request)
    now = now_of(request)
    async with context.store.transaction() as tx:
        listed = await tx.events.listing(now=now, limit=200)
        registered = await tx.vens.registered()
        excluded = await _excluded(tx)
    default_start = (now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    return render(
        request,
        "operator/events.html",
        viewer,
        status=status,
        events=[event_rules.refresh(e, now) for e in listed],
        end=event_rules.end,
        vens=sorted(v.ven_id for v in registered),
        excluded=excluded,
        signals=forms.SIGNALS,
        errors=errors or {},
        values=values
        or {"start": default_start, "interval_minutes": "60", "values": "1", "signal": "SIMPLE"},
        notice=request.query.get("notice"),
    )


async def events_page(request: web.Request, viewer: Viewer) -> web.Response:
    return await _events_form(request, viewer)


def _fields(viewer: Viewer) -> dict[str, str]:
    assert viewer.form is not None
    return {k: v.strip() for k, v in viewer.form.items() if isinstance(v, str) and k != "ven_ids"}


async def create_event(request: web.Request, viewer: Viewer) -> web.Response:
    context = context_of(request)
    now = now_of(request)
    fields = _fields(viewer)
    assert viewer.form is not None
    ven_ids = [v for v in viewer.form.getall("ven_ids", []) if isinstance(v, str) and v]
    async with context.store.transaction() as tx:
        known: set[str] = {v.ven_id for v in await tx.vens.page(limit=10_000)}
        if fields.get("event_id") and await tx.events.get(fields["event_id"]) is not None:
            return await _events_form(
                request,
                viewer,
                status=422,
                values=fields | {"ven_ids": ven_ids},
                errors={"event_id": "an event with this id exists"},
            )
    try:
        body = forms.validated(schemas.EventCreate, forms.event_create(fields, ven_ids, now, known))
        event = schemas.event(body, created=now)
        async with context.store.transaction() as tx:
            await _refuse_excluded(tx, event, now)
        created = await operator.create_event(context, event, actor=viewer.actor, now=now)
    except forms.FormErrors as errors:
        return await _events_form(
            request,
            viewer,
            status=422,
            errors=errors.messages,
            values=fields | {"ven_ids": ven_ids},
        )
    except OadrError as err:
        return await _events_form(
            request, viewer, status=422, errors={"": str(err)}, values=fields | {"ven_ids": ven_ids}
        )
    return see_other(f"{BASE}/events/{created.event_id}", "Event created.")


async def _excluded(tx: Tx) -> set[str]:
    return involvement.excluded(await ConsoleStore(tx.connection).all_preferences())


async def _refuse_excluded(tx: Tx, event: Event, now: datetime) -> None:
    """FormErrors if the event would reach a gateway whose prosumer asked, in the console, not
    to be included in events (`console.involvement`): the event is not made at all."""
    excluded = await _excluded(tx)
    reached = sorted(
        v.ven_id
        for v in await tx.vens.registered()
        if v.ven_id in excluded and delivery.events_for(v, [event], now)
    )
    if not reached:
        return
    errors = forms.FormErrors()
    names = ", ".join(reached)
    by_id = [v for v in reached if v in event.target.ven_ids]
    if by_id:
        errors.add(
            "ven_ids",
            f"{', '.join(by_id)}: the prosumer asked not to be included in events; unselect it",
        )
    groups = set(event.target.group_ids)
    if groups:
        errors.add(
            "group_ids",
            f"a group includes {names}, whose prosumer asked not to be included in events; "
            "choose VENs one by one instead",
        )
    errors.add(
        "",
        f"Not created: the event would reach {names}, whose prosumer asked not to be "
        "included in events.",
    )
    raise errors


async def delivery_rows(tx: Tx, event: Event, now: datetime) -> list[dict[str, Any]]:
    """Each VEN the event targets or was sent to: what it has and what it answered."""
    sent = {d.ven_id: d for d in await tx.deliveries.for_event(event.event_id)}
    targeted = {
        v.ven_id for v in await tx.vens.registered() if delivery.events_for(v, [event], now)
    }
    opted_out = {
        ven_id
        for ven_id, opt in await tx.opts.active()
        if opt.event_id == event.event_id and opt.opt_type.value == "optOut"
    }
    rows = []
    for ven_id in sorted(targeted | set(sent)):
        d = sent.get(ven_id)
        rows.append(
            {
                "ven_id": ven_id,
                "targeted": ven_id in targeted,
                "delivered_modification": None if d is None else d.modification_number,
                "delivered_at": None
                if d is None or d.delivered_at is None
                else d.delivered_at.isoformat(),
                "up_to_date": d is not None and d.modification_number == event.modification_number,
                "opt": None if d is None or d.opt_type is None else d.opt_type.value,
                "opt_modification": None if d is None else d.opt_modification_number,
                "opted_out_later": ven_id in opted_out,
            }
        )
    return rows


async def _load_event(tx: Tx, event_id: str, now: datetime) -> Event:
    found = await tx.events.get(event_id)
    if found is None:
        raise NotFound(f"There is no event {event_id!r}.")
    return event_rules.refresh(found, now)


async def _event_page(
    request: web.Request,
    viewer: Viewer,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> web.Response:
    now = now_of(request)
    async with context_of(request).store.transaction() as tx:
        event = await _load_event(tx, request.match_info["event_id"], now)
        rows = await delivery_rows(tx, event, now)
    signal = event.signals[0]
    current = {
        "signal": signal.signal_name.value,
        "values": "",  # empty: unchanged; the current values are shown as the placeholder
        "interval_minutes": str(int(signal.intervals[0].duration.total_seconds() // 60)),
    }
    return render(
        request,
        "operator/event.html",
        viewer,
        status=status,
        event=event,
        end=event_rules.end(event),
        rows=rows,
        signals=forms.SIGNALS,
        errors=errors or {},
        values=values or current,
        current_values=", ".join(f"{i.value:g}" for i in signal.intervals),
        notice=request.query.get("notice"),
    )


async def event_page(request: web.Request, viewer: Viewer) -> web.Response:
    return await _event_page(request, viewer)


async def event_deliveries(request: web.Request, viewer: Viewer) -> web.Response:
    """The delivery table as JSON, for the page's live refresh."""
    now = now_of(request)
    async with context_of(request).store.transaction() as tx:
        event = await _load_event(tx, request.match_info["event_id"], now)
        rows = await delivery_rows(tx, event, now)
    return web.json_response(
        {
            "status": event.status.value,
            "modification_number": event.modification_number,
            "rows": rows,
        }
    )


async def modify_event(request: web.Request, viewer: Viewer) -> web.Response:
    event_id = request.match_info["event_id"]
    context = context_of(request)
    now = now_of(request)
    fields = _fields(viewer)
    try:
        patch = forms.validated(schemas.EventPatch, forms.event_patch(fields, now))
        async with context.store.transaction() as tx:
            current = await _load_event(tx, event_id, now)
        await operator.modify_event(
            context, event_id, actor=viewer.actor, now=now, **schemas.changes(current, patch)
        )
    except forms.FormErrors as errors:
        return await _event_page(request, viewer, status=422, errors=errors.messages, values=fields)
    except OadrError as err:
        return await _event_page(request, viewer, status=422, errors={"": str(err)}, values=fields)
    return see_other(f"{BASE}/events/{event_id}", "Event modified.")


async def cancel_event(request: web.Request, viewer: Viewer) -> web.Response:
    event_id = request.match_info["event_id"]
    try:
        await operator.cancel_event(
            context_of(request), event_id, actor=viewer.actor, now=now_of(request)
        )
    except OadrError as err:
        return await _event_page(request, viewer, status=422, errors={"": str(err)})
    return see_other(f"{BASE}/events/{event_id}", "Event cancelled.")


# --- grid, market, audit --------------------------------------------------------------------------


async def grid_page(request: web.Request, viewer: Viewer) -> web.Response:
    now = now_of(request)
    async with context_of(request).store.transaction() as tx:
        points = await views.grid_points(tx, now)
    return render(
        request, "operator/grid.html", viewer, points=points, charts=[p.chart for p in points]
    )


async def market_page(request: web.Request, viewer: Viewer) -> web.Response:
    async with context_of(request).store.transaction() as tx:
        market = await views.market(tx, aggregator_id=None)
    return render(request, "operator/market.html", viewer, market=market)


async def audit_page(request: web.Request, viewer: Viewer) -> web.Response:
    subject = request.query.get("subject") or None
    async with context_of(request).store.transaction() as tx:
        entries = await tx.audit.page(subject=subject, limit=300)
    return render(request, "operator/audit.html", viewer, entries=entries, subject=subject or "")
