"""The prosumer's page (made for a phone): its own consumption and generation, the events it
took part in and what each achieved, opt-out of an upcoming event, its preferences, and its
data-sharing grants with the log of who accessed its data, with revoke.

Ownership: the account's subject is the prosumer's venID; every read is keyed by it, and a
revoke names the prosumer, so a grant of anyone else is "not found".

An opt-out from the console is stored at the VTN as the opt the VEN would have sent
(oadrCreateOpt for the event's current modification, optReason `notParticipating`, an optID
starting `console-`) and audited as `console.opt.out` with `source: console`, so the operator's
delivery table shows the VEN out of that event. The VEN itself is not told: OpenADR 2.0b has no
VTN-to-VEN opt message.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from console import views
from console.accounts import Role
from console.store import ConsoleStore
from console.web import PREFIX, Viewer, context_of, now_of, page, render, see_other
from dataservice.service import DataError, DataService
from dataservice.store.repository import DataRepository
from oadr import events as event_rules
from oadr import opts
from oadr.enums import EventStatus, OptReason, OptType
from oadr.errors import OadrError
from oadr.model import CreateOpt, Event, EventId, OptId, RequestId, VenId
from vtn.store.audit import AuditEntry
from vtn.store.reports import Reading

PROSUMER = page(Role.PROSUMER)
BASE = PREFIX + "/prosumer"
INVOLVEMENT = {
    "automatic": "My gateway decides for me (within my preferences)",
    "ask": "Ask me before each event",
    "never": "Do not take part in events",
}
DEFAULT_PREFERENCES: dict[str, Any] = {
    "involvement": "automatic",
    "max_event_hours": 2,
    "ev_min_soc_percent": 20,
}


def add_routes(app: web.Application) -> None:
    app.router.add_get(BASE, PROSUMER(prosumer_page))
    app.router.add_post(BASE + "/events/{event_id}/opt-out", PROSUMER(opt_out))
    app.router.add_post(BASE + "/preferences", PROSUMER(save_preferences))
    app.router.add_post(BASE + "/grants/{grant_id}/revoke", PROSUMER(revoke_grant))


@dataclass(frozen=True)
class Achieved:
    """Mean power during the event against the same length just before it (kW, kWh)."""

    before_kw: float
    during_kw: float
    hours: float  # the event's length

    @property
    def reduction_kw(self) -> float:
        return self.before_kw - self.during_kw

    @property
    def reduction_kwh(self) -> float:
        return self.reduction_kw * self.hours


def achieved(readings: list[Reading], event: Event) -> Achieved | None:
    end = event_rules.end(event)
    if end is None:
        return None
    start = event.active_period.start
    length = end - start

    def mean(lo: datetime, hi: datetime) -> float | None:
        buckets = views.bucketed(r for r in readings if r.start and lo <= r.start < hi)
        return sum(buckets.values()) / len(buckets) if buckets else None

    before, during = mean(start - length, start), mean(start, end)
    if before is None or during is None:
        return None
    return Achieved(before_kw=before, during_kw=during, hours=length.total_seconds() / 3600)


def _upcoming(event: Event, now: datetime) -> bool:
    return event.active_period.start > now and event.status is not EventStatus.CANCELLED


async def _page(
    request: web.Request,
    viewer: Viewer,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> web.Response:
    ven_id = viewer.subject
    now = now_of(request)
    async with context_of(request).store.transaction() as tx:
        ven = await tx.vens.get(ven_id)
        readings = await tx.readings.query(
            ven_id=ven_id, start=now - timedelta(days=7), limit=200_000
        )
        opted_out = {
            o.event_id
            for _, o in await tx.opts.active(ven_id)
            if o.opt_type is OptType.OPT_OUT and o.event_id
        }
        rows = []
        for d in sorted(
            await tx.deliveries.for_ven(ven_id), key=lambda d: d.delivered_at, reverse=True
        ):
            event = await tx.events.get(d.event_id)
            if event is None:
                continue
            event = event_rules.refresh(event, now)
            rows.append(
                {
                    "event": event,
                    "end": event_rules.end(event),
                    "opt": None if d.opt_type is None else d.opt_type.value,
                    "opted_out": event.event_id in opted_out,
                    "upcoming": _upcoming(event, now),
                    "achieved": achieved(readings, event),
                }
            )
        stored = await ConsoleStore(tx.connection).preferences(ven_id)
    day = [r for r in readings if r.start and r.start >= now - timedelta(hours=24)]
    traces = []
    for r_id in sorted({r.r_id for r in day if r.r_id.endswith(views.POWER_SUFFIX)}):
        mine = [r for r in day if r.r_id == r_id and r.value is not None]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": r_id,
                "x": [r.start.isoformat() for r in mine if r.start],
                "y": [r.value for r in mine],
            }
        )
    grants, accesses, data_note = await _data(request, ven_id)
    return render(
        request,
        "prosumer.html",
        viewer,
        status=status,
        ven=ven,
        rows=rows,
        chart=views.chart("own-power", traces, y_title="kW (drawn from the grid > 0)"),
        has_readings=bool(traces),
        preferences=values or (stored or DEFAULT_PREFERENCES),
        involvement=INVOLVEMENT,
        errors=errors or {},
        grants=grants,
        accesses=accesses,
        data_note=data_note,
        now=now,
        notice=request.query.get("notice"),
    )


async def _data(request: web.Request, ven_id: str) -> tuple[list[Any], list[Any], str | None]:
    """Grants and the access log from the data service, if it runs and knows this prosumer."""
    service = _data_service(request)
    async with context_of(request).store.transaction() as tx:
        prosumer = await DataRepository(tx.connection).prosumer_of_ven(ven_id)
    if prosumer is None:
        return [], [], "Your data is not held by the data service."
    grants = await service.grants_of(prosumer.prosumer_id)
    accesses = await service.accesses_of(prosumer.prosumer_id)
    return grants, list(reversed(accesses))[:200], None


def _data_service(request: web.Request) -> Any:
    """The data service on the VTN's database: grants and the access log need no master key."""
    return DataService(context_of(request).store, None)


async def prosumer_page(request: web.Request, viewer: Viewer) -> web.Response:
    return await _page(request, viewer)


async def opt_out(request: web.Request, viewer: Viewer) -> web.Response:
    ven_id = VenId(viewer.subject)
    event_id = request.match_info["event_id"]
    context = context_of(request)
    now = now_of(request)
    async with context.store.transaction() as tx:
        sent = {d.event_id for d in await tx.deliveries.for_ven(ven_id)}
        event = await tx.events.get(event_id) if event_id in sent else None
        if event is None:  # not one of this prosumer's events: no such event, as far as it knows
            return see_other(BASE, "Nothing changed: no such event.")
        event = event_rules.refresh(event, now)
        if not _upcoming(event, now):
            return see_other(
                BASE, "Nothing changed: the event has started, ended or was cancelled."
            )
        opt = CreateOpt(
            request_id=RequestId(uuid.uuid4().hex),
            opt_id=OptId(f"console-{uuid.uuid4().hex[:12]}"),
            opt_type=OptType.OPT_OUT,
            opt_reason=OptReason.NOT_PARTICIPATING,
            ven_id=ven_id,
            created=now,
            event_id=EventId(event.event_id),
            modification_number=event.modification_number,
        )
        try:
            opts.validate(opt)
        except OadrError as err:
            return see_other(BASE, f"Nothing changed: {err}")
        await tx.opts.add(ven_id, opt, now)
        await tx.audit.add(
            AuditEntry(
                at=now,
                actor=viewer.actor,
                action="console.opt.out",
                subject=ven_id,
                detail={"event_id": event_id, "opt_id": opt.opt_id, "source": "console"},
            )
        )
    context.notify(ven_id)
    return see_other(BASE, f"You opted out of event {event_id}.")


def _check_preferences(fields: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    errors: dict[str, str] = {}
    involvement = fields.get("involvement", "")
    if involvement not in INVOLVEMENT:
        errors["involvement"] = "choose one of the options"
    values: dict[str, Any] = {"involvement": involvement}
    for name, low, high, label in (
        ("max_event_hours", 0, 24, "hours"),
        ("ev_min_soc_percent", 0, 100, "percent"),
    ):
        text = fields.get(name, "")
        try:
            number = int(text)
        except ValueError:
            errors[name] = f"a whole number of {label}"
            values[name] = text
            continue
        if not low <= number <= high:
            errors[name] = f"between {low} and {high} {label}"
        values[name] = number
    return values, errors


async def save_preferences(request: web.Request, viewer: Viewer) -> web.Response:
    assert viewer.form is not None
    fields = {k: v.strip() for k, v in viewer.form.items() if isinstance(v, str)}
    values, errors = _check_preferences(fields)
    if errors:
        return await _page(request, viewer, status=422, errors=errors, values=values)
    now = now_of(request)
    async with context_of(request).store.transaction() as tx:
        await ConsoleStore(tx.connection).save_preferences(viewer.subject, values, now)
        await tx.audit.add(
            AuditEntry(
                at=now,
                actor=viewer.actor,
                action="console.preferences",
                subject=viewer.subject,
                detail=values,
            )
        )
    return see_other(BASE, "Preferences saved.")


async def revoke_grant(request: web.Request, viewer: Viewer) -> web.Response:
    service = _data_service(request)
    grant_id = request.match_info["grant_id"]
    async with context_of(request).store.transaction() as tx:
        prosumer = await DataRepository(tx.connection).prosumer_of_ven(viewer.subject)
    if prosumer is None:
        return see_other(BASE, "Nothing changed: no such grant.")
    now = now_of(request)
    try:
        await service.revoke(grant_id, viewer.actor, now, prosumer_id=prosumer.prosumer_id)
    except DataError:
        return see_other(BASE, "Nothing changed: no such grant.")
    # The data service's own access log has it too; the VTN's audit log lists console changes.
    async with context_of(request).store.transaction() as tx:
        await tx.audit.add(
            AuditEntry(
                at=now,
                actor=viewer.actor,
                action="console.grant.revoke",
                subject=viewer.subject,
                detail={"grant_id": grant_id},
            )
        )
    return see_other(BASE, "Grant revoked: that recipient can no longer read your data.")
