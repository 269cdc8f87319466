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

Events listed: those sent to the prosumer's own gateway, and the market awards dispatched to a
virtual end node it was a member of (`views.market_events`). Each shows what it achieved
(`achieved`) and its reward (`console.rewards`, defined there and on the page). Preferences:
`console.involvement` says which one the DSO honours and which the gateway keeps itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web

from console import involvement, rewards, views
from console.accounts import Role
from console.store import ConsoleStore
from console.web import (
    PREFIX,
    Viewer,
    context_of,
    now_of,
    page,
    render,
    see_other,
    settings_of,
)
from dataservice.service import DataError, DataService
from dataservice.store.repository import DataRepository
from oadr import events as event_rules
from oadr import opts
from oadr.enums import EventStatus, OptReason, OptType
from oadr.errors import OadrError
from oadr.model import CreateOpt, Event, EventId, OptId, RequestId, VenId
from vtn.store.audit import AuditEntry
from vtn.store.db import Tx
from vtn.store.reports import Reading

PROSUMER = page(Role.PROSUMER)
BASE = PREFIX + "/prosumer"


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


def _reward(
    event: Event,
    mine: Achieved | None,
    market: views.MarketEvent | None,
    members: dict[str, Achieved | None],
    rate_eur_per_kwh: Decimal,
    now: datetime,
) -> dict[str, Any] | None:
    """The reward and the figures behind it, once the event is over and measured."""
    end = event_rules.end(event)
    if mine is None or end is None or end > now or event.status is EventStatus.CANCELLED:
        return None
    mine_kwh = rewards.delivered_kwh(mine.reduction_kwh)
    if market is None:
        reward = rewards.direct(mine_kwh=mine_kwh, rate_eur_per_kwh=rate_eur_per_kwh)
        return {"reward": reward, "rate_eur_per_kwh": rate_eur_per_kwh}
    award = market.stored.award
    members_kwh = [
        rewards.delivered_kwh(None if a is None else a.reduction_kwh) for a in members.values()
    ]
    settled = (
        None if market.statement is None else rewards.node_payment(market.statement, award.bid_id)
    )
    awarded_kwh = sum(award.awarded_kw, Decimal(0)) * market.request.block_hours
    reward = rewards.market(
        mine_kwh=mine_kwh,
        members_kwh=members_kwh,
        settled_payment_eur=settled,
        awarded_kwh=awarded_kwh,
        price_eur_per_kwh=award.price_eur_per_kwh,
    )
    return {
        "reward": reward,
        "node_id": award.node_id,
        "node_eur": None if settled is None else rewards.cents(settled),
        # The share, not the other members' kWh: their telemetry is theirs.
        "share_percent": rewards.cents(rewards.share(Decimal(100), mine_kwh, members_kwh)),
        "price_eur_per_kwh": award.price_eur_per_kwh,
        "awarded_kwh": awarded_kwh,
    }


async def _member_achieved(
    tx: Tx, market: views.MarketEvent, event: Event, ven_id: str, mine: Achieved | None
) -> dict[str, Achieved | None]:
    """Each member's delivery in this event, measured as mine is (the same window)."""
    found: dict[str, Achieved | None] = {ven_id: mine}
    end = event_rules.end(event)
    if end is None:
        return found
    start = event.active_period.start
    for member in market.member_ven_ids:
        if member != ven_id:
            readings = await tx.readings.query(
                ven_id=member, start=start - (end - start), end=end, limit=100_000
            )
            found[member] = achieved(readings, event)
    return found


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
    rate = settings_of(request).direct_event_rate_eur_per_kwh
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
        sent: dict[str, Any] = {d.event_id: d for d in await tx.deliveries.for_ven(ven_id)}
        from_market = await views.market_events(tx, ven_id)
        rows: list[dict[str, Any]] = []
        for event_id in sent.keys() | from_market.keys():
            event = await tx.events.get(event_id)
            if event is None:
                continue
            event = event_rules.refresh(event, now)
            d = sent.get(event_id)
            market = from_market.get(event_id)
            mine = achieved(readings, event)
            members = (
                {} if market is None else await _member_achieved(tx, market, event, ven_id, mine)
            )
            rows.append(
                {
                    "event": event,
                    "end": event_rules.end(event),
                    "sent": d is not None,
                    "market": market,
                    "opt": None if d is None or d.opt_type is None else d.opt_type.value,
                    "opted_out": event.event_id in opted_out,
                    "upcoming": d is not None and _upcoming(event, now),
                    "achieved": mine,
                    "reward": _reward(event, mine, market, members, rate, now),
                }
            )
        rows.sort(key=lambda row: row["event"].active_period.start, reverse=True)
        stored = await ConsoleStore(tx.connection).preferences(ven_id)
    day = [r for r in readings if r.start and r.start >= now - timedelta(hours=24)]
    traces = []
    for r_id in sorted({r.r_id for r in day if r.r_id.endswith(views.POWER_SUFFIX)}):
        mine_day = [r for r in day if r.r_id == r_id and r.value is not None]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": r_id,
                "x": [r.start.isoformat() for r in mine_day if r.start],
                "y": [r.value for r in mine_day],
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
        preferences=values or {"involvement": involvement.involvement_of(stored)},
        choices=involvement.CHOICES,
        never=involvement.NEVER,
        gateway_enforced=involvement.GATEWAY_ENFORCED,
        direct_rate=rate,
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


async def _record_opt_out(tx: Tx, viewer: Viewer, event: Event, now: datetime) -> CreateOpt:
    """The opt the VEN would have sent, stored and audited at the VTN; may raise OadrError."""
    ven_id = VenId(viewer.subject)
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
    opts.validate(opt)
    await tx.opts.add(ven_id, opt, now)
    await tx.audit.add(
        AuditEntry(
            at=now,
            actor=viewer.actor,
            action="console.opt.out",
            subject=ven_id,
            detail={"event_id": event.event_id, "opt_id": opt.opt_id, "source": "console"},
        )
    )
    return opt


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
        try:
            await _record_opt_out(tx, viewer, event, now)
        except OadrError as err:
            return see_other(BASE, f"Nothing changed: {err}")
    context.notify(ven_id)
    return see_other(BASE, f"You opted out of event {event_id}.")


async def save_preferences(request: web.Request, viewer: Viewer) -> web.Response:
    """Store the choice; "do not include me" also opts out of the upcoming events already sent
    (the operator's form refuses new ones: `operator_pages.create_event`)."""
    assert viewer.form is not None
    fields = {k: v.strip() for k, v in viewer.form.items() if isinstance(v, str)}
    values, errors = involvement.check(fields)
    if errors:
        return await _page(request, viewer, status=422, errors=errors, values=values)
    context = context_of(request)
    now = now_of(request)
    out_of: list[str] = []
    async with context.store.transaction() as tx:
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
        if values["involvement"] == involvement.NEVER:
            opted = {
                o.event_id
                for _, o in await tx.opts.active(viewer.subject)
                if o.opt_type is OptType.OPT_OUT
            }
            for d in await tx.deliveries.for_ven(viewer.subject):
                event = await tx.events.get(d.event_id)
                if event is None or d.event_id in opted:
                    continue
                event = event_rules.refresh(event, now)
                if _upcoming(event, now):
                    await _record_opt_out(tx, viewer, event, now)
                    out_of.append(event.event_id)
    if out_of:
        context.notify(VenId(viewer.subject))
        return see_other(
            BASE,
            f"Preferences saved. You opted out of upcoming event(s) {', '.join(sorted(out_of))}.",
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
