"""Events (the latest modification of each) and their delivery to each VEN with its opt answer."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Insert, and_, bindparam, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from oadr import events as event_rules
from oadr.enums import EventStatus, OptType
from oadr.model import Event, EventId, VenId
from vtn.delivery import Sent
from vtn.store import jsonform
from vtn.store.changes import TxChanges
from vtn.store.tables import event_deliveries, events


def _values(event: Event, now: datetime) -> dict[str, object]:
    return {
        "modification_number": event.modification_number,
        "market_context": event.market_context,
        "cancelled": event.status is EventStatus.CANCELLED,
        "starts_at": event.active_period.start,
        "ends_at": event_rules.end(event),
        "body": jsonform.dump(event),
        "updated_at": now,
    }


# Every poll asks for the current events: built once (see vtn/store/vens.py).
_NOT_OVER = or_(events.c.ends_at.is_(None), events.c.ends_at > bindparam("now"))
_CURRENT = select(events.c.body).where(_NOT_OVER).order_by(events.c.starts_at, events.c.event_id)
# The same, with the modification this VEN was sent of each (one statement instead of two).
_CURRENT_WITH_SENT = (
    select(
        events.c.body,
        event_deliveries.c.modification_number.label("sent_modification_number"),
        event_deliveries.c.delivered_at,
        event_deliveries.c.opt_modification_number,
    )
    .select_from(
        events.outerjoin(
            event_deliveries,
            and_(
                event_deliveries.c.event_id == events.c.event_id,
                event_deliveries.c.ven_id == bindparam("ven_id"),
            ),
        )
    )
    .where(_NOT_OVER)
    .order_by(events.c.starts_at, events.c.event_id)
)


@functools.cache
def _mark_sent(dialect_name: str) -> Insert:
    """`Deliveries.mark_sent_many`'s statement, built once per dialect (building `excluded`
    and compiling an upsert each time cost more than running it)."""
    insert_ = (postgresql if dialect_name == "postgresql" else sqlite).insert
    statement = insert_(event_deliveries)
    newer = statement.excluded
    upsert: Insert = statement.on_conflict_do_update(
        index_elements=[event_deliveries.c.event_id, event_deliveries.c.ven_id],
        set_={"modification_number": newer.modification_number, "delivered_at": newer.delivered_at},
        where=event_deliveries.c.modification_number < newer.modification_number,
    )
    return upsert


_RECORD_OPT = (
    update(event_deliveries)
    .where(
        event_deliveries.c.event_id == bindparam("event"),
        event_deliveries.c.ven_id == bindparam("ven"),
    )
    .values(
        opt_type=bindparam("opt"),
        opt_modification_number=bindparam("number"),
        response_code=bindparam("code"),
        responded_at=bindparam("at"),
    )
)


# `Deliveries.sent`, built once: building a select per call costs more CPU than running it.
_SENT = select(event_deliveries.c.event_id, event_deliveries.c.modification_number).where(
    event_deliveries.c.ven_id == bindparam("ven_id"),
    event_deliveries.c.event_id.in_(bindparam("event_ids", expanding=True)),
)


@dataclass(frozen=True, slots=True)
class OptAnswer:
    """A VEN's optIn/optOut for one modification of one event (`Deliveries.record_opts`)."""

    ven_id: VenId
    event_id: EventId
    modification_number: int
    opt_type: OptType
    response_code: int
    at: datetime


class Events:
    def __init__(self, connection: AsyncConnection, changes: TxChanges | None = None) -> None:
        self.connection = connection
        self.changes = TxChanges() if changes is None else changes

    async def add(self, event: Event, now: datetime) -> None:
        self.changes.mark()  # a VEN may have something new to fetch
        await self.connection.execute(
            insert(events).values(event_id=event.event_id, created_at=now, **_values(event, now))
        )

    async def replace(self, event: Event, now: datetime) -> None:
        self.changes.mark()  # a VEN may have something new to fetch
        await self.connection.execute(
            update(events).where(events.c.event_id == event.event_id).values(**_values(event, now))
        )

    async def get(self, event_id: str, *, for_update: bool = False) -> Event | None:
        query = select(events.c.body).where(events.c.event_id == event_id)
        if for_update:
            query = query.with_for_update()
        body = (await self.connection.execute(query)).scalar_one_or_none()
        return None if body is None else jsonform.load(Event, body)

    async def current(self, now: datetime) -> list[Event]:
        """Events not yet over (open-ended ones included, cancelled ones too until their end)."""
        rows = await self.connection.execute(_CURRENT, {"now": now})
        return [jsonform.load(Event, body) for body in rows.scalars()]

    async def current_with_sent(
        self, ven_id: str, now: datetime
    ) -> list[tuple[Event, Sent | None]]:
        """`current(now)`, each with what this VEN was sent of it (None: never)."""
        rows = await self.connection.execute(_CURRENT_WITH_SENT, {"now": now, "ven_id": ven_id})
        return [
            (
                jsonform.load(Event, row.body),
                None
                if row.sent_modification_number is None
                else Sent(
                    int(row.sent_modification_number),
                    row.delivered_at,
                    row.opt_modification_number,
                ),
            )
            for row in rows
        ]

    async def page(
        self, *, now: datetime, include_past: bool = False, offset: int = 0, limit: int = 100
    ) -> list[Event]:
        query = select(events.c.body).order_by(events.c.starts_at.desc(), events.c.event_id)
        if not include_past:
            query = query.where(or_(events.c.ends_at.is_(None), events.c.ends_at > now))
        rows = await self.connection.execute(query.offset(offset).limit(limit))
        return [jsonform.load(Event, body) for body in rows.scalars()]

    async def listing(
        self, *, now: datetime, state: str = "all", offset: int = 0, limit: int = 100
    ) -> list[Event]:
        """Latest start first. `active`: started, not over, not cancelled; `pending`: not yet
        started, not cancelled; `all`: every event ever created."""
        query = select(events.c.body).order_by(events.c.starts_at.desc(), events.c.event_id)
        if state == "active":
            query = query.where(
                events.c.starts_at <= now,
                or_(events.c.ends_at.is_(None), events.c.ends_at > now),
                events.c.cancelled.is_(False),
            )
        elif state == "pending":
            query = query.where(events.c.starts_at > now, events.c.cancelled.is_(False))
        rows = await self.connection.execute(query.offset(offset).limit(limit))
        return [jsonform.load(Event, body) for body in rows.scalars()]


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one VEN was sent of one event, and what it answered."""

    event_id: EventId
    ven_id: VenId
    modification_number: int
    delivered_at: datetime
    opt_type: OptType | None
    opt_modification_number: int | None
    response_code: int | None
    responded_at: datetime | None


class Deliveries:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def sent(self, ven_id: str, event_ids: Iterable[str]) -> dict[EventId, int]:
        """The latest modification number of each event already sent to this VEN."""
        ids = list(event_ids)
        if not ids:
            return {}
        rows = await self.connection.execute(_SENT, {"ven_id": ven_id, "event_ids": ids})
        return {EventId(row.event_id): int(row.modification_number) for row in rows}

    async def sent_records(
        self, ven_ids: Sequence[str], event_ids: Sequence[str]
    ) -> dict[tuple[VenId, EventId], Sent]:
        """What each of these VENs was sent of each of these events, in one query."""
        if not ven_ids or not event_ids:
            return {}
        query = select(
            event_deliveries.c.ven_id,
            event_deliveries.c.event_id,
            event_deliveries.c.modification_number,
            event_deliveries.c.delivered_at,
            event_deliveries.c.opt_modification_number,
        ).where(
            event_deliveries.c.ven_id.in_(list(ven_ids)),
            event_deliveries.c.event_id.in_(list(event_ids)),
        )
        return {
            (VenId(row.ven_id), EventId(row.event_id)): Sent(
                int(row.modification_number), row.delivered_at, row.opt_modification_number
            )
            for row in await self.connection.execute(query)
        }

    async def mark_sent(self, ven_id: str, sent: Sequence[Event], now: datetime) -> None:
        await self.mark_sent_many([(ven_id, sent, now)])

    async def mark_sent_many(self, sent: Sequence[tuple[str, Sequence[Event], datetime]]) -> None:
        """Record each event's modification as sent to each VEN, in one executemany. A number
        already recorded is never lowered (a push and a poll may overlap: going back would send
        the newer modification again), and one already recorded keeps its time."""
        rows = [
            {
                "event_id": event.event_id,
                "ven_id": ven_id,
                "modification_number": event.modification_number,
                "delivered_at": at,
            }
            for ven_id, listed, at in sent
            for event in listed
        ]
        if rows:
            await self.connection.execute(_mark_sent(self.connection.dialect.name), rows)

    async def resent(self, ven_id: str, event_ids: Sequence[str], now: datetime) -> None:
        """The list went out again with these events in the same modification (`Sent.at`)."""
        if event_ids:
            await self.connection.execute(
                update(event_deliveries)
                .where(
                    event_deliveries.c.ven_id == ven_id,
                    event_deliveries.c.event_id.in_(list(event_ids)),
                )
                .values(delivered_at=now)
            )

    async def record_opts(self, answers: Sequence[OptAnswer]) -> None:
        """Store each VEN's answer to one modification of an event it was sent (one executemany)."""
        if answers:
            await self.connection.execute(
                _RECORD_OPT,
                [
                    {
                        "ven": a.ven_id,
                        "event": a.event_id,
                        "number": a.modification_number,
                        "opt": a.opt_type.value,
                        "code": a.response_code,
                        "at": a.at,
                    }
                    for a in answers
                ],
            )

    async def for_event(self, event_id: str) -> list[Delivery]:
        return await self.for_events([event_id])

    async def for_events(self, event_ids: Sequence[str]) -> list[Delivery]:
        """Who was sent these events, and what they answered; one query however many."""
        query = (
            select(event_deliveries)
            .where(event_deliveries.c.event_id.in_(list(event_ids)))
            .order_by(event_deliveries.c.event_id, event_deliveries.c.ven_id)
        )
        return [_delivery(row) for row in (await self.connection.execute(query)).mappings()]

    async def for_ven(self, ven_id: str, event_ids: Sequence[str] | None = None) -> list[Delivery]:
        """This VEN's deliveries, of every event or of `event_ids` only."""
        query = select(event_deliveries).where(event_deliveries.c.ven_id == ven_id)
        if event_ids is not None:
            query = query.where(event_deliveries.c.event_id.in_(list(event_ids)))
        return [_delivery(row) for row in (await self.connection.execute(query)).mappings()]


def _delivery(row: object) -> Delivery:
    r = dict(row)  # type: ignore[call-overload]
    return Delivery(
        event_id=EventId(r["event_id"]),
        ven_id=VenId(r["ven_id"]),
        modification_number=r["modification_number"],
        delivered_at=r["delivered_at"],
        opt_type=None if r["opt_type"] is None else OptType(r["opt_type"]),
        opt_modification_number=r["opt_modification_number"],
        response_code=r["response_code"],
        responded_at=r["responded_at"],
    )
