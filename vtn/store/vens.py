"""VENs and pre-provisioned fingerprints: rows <-> `vtn.vens.VenRecord` / `Provisioned`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from oadr.model import RegistrationId, VenId
from vtn.store.changes import TxChanges
from vtn.store.tables import events, outbox, provisioned_vens, vens
from vtn.vens import Provisioned, Status, VenRecord


def _record(row: RowMapping) -> VenRecord:
    return VenRecord(
        ven_id=VenId(row["ven_id"]),
        fingerprint=row["fingerprint"],
        ven_name=row["ven_name"],
        status=Status(row["status"]),
        created_at=row["created_at"],
        registration_id=None
        if row["registration_id"] is None
        else RegistrationId(row["registration_id"]),
        http_pull_model=row["http_pull_model"],
        transport_address=row["transport_address"],
        xml_signature=row["xml_signature"],
        report_only=row["report_only"],
        profile_name=row["profile_name"],
        groups=tuple(row["groups"]),
        resource_ids=tuple(row["resource_ids"]),
        party_id=row["party_id"],
        registered_at=row["registered_at"],
        last_seen_at=row["last_seen_at"],
        previous_fingerprint=row["previous_fingerprint"],
        certificate_name=row["certificate_name"],
        certificate_issuer=row["certificate_issuer"],
    )


def _row(record: VenRecord) -> dict[str, Any]:
    return {
        "ven_id": record.ven_id,
        "fingerprint": record.fingerprint,
        "ven_name": record.ven_name,
        "status": record.status.value,
        "created_at": record.created_at,
        "registration_id": record.registration_id,
        "http_pull_model": record.http_pull_model,
        "transport_address": record.transport_address,
        "xml_signature": record.xml_signature,
        "report_only": record.report_only,
        "profile_name": record.profile_name,
        "groups": list(record.groups),
        "resource_ids": list(record.resource_ids),
        "party_id": record.party_id,
        "registered_at": record.registered_at,
        "last_seen_at": record.last_seen_at,
        "previous_fingerprint": record.previous_fingerprint,
        "certificate_name": record.certificate_name,
        "certificate_issuer": record.certificate_issuer,
    }


# Every poll runs these: built once, so SQLAlchemy neither rebuilds the statement nor recomputes
# its cache key (a walk over all 20 columns) per request. With events.py, outbox.py and
# nonces.py alike, a poll's CPU fell from 1.8 to 1.1 ms on SQLite, 1.1 to 0.75 ms on PostgreSQL
# (benchmarks/README.md).
_BY_FINGERPRINT = select(vens).where(
    or_(vens.c.fingerprint == bindparam("fingerprint"),
        vens.c.previous_fingerprint == bindparam("fingerprint"))
)  # fmt: skip
# A poll's first and usually only statement: the VEN, whether a queued message waits for it, and
# how many events are not yet over; the common "nothing new" poll needs nothing else.
_NEXT_MESSAGE = (
    select(func.min(outbox.c.id))
    .where(outbox.c.ven_id == vens.c.ven_id, outbox.c.delivered_at.is_(None))
    .scalar_subquery()
    .label("poll_next_message")
)
_CURRENT_EVENTS = (
    select(func.count())
    .select_from(events)
    .where(or_(events.c.ends_at.is_(None), events.c.ends_at > bindparam("now")))
    .scalar_subquery()
    .label("poll_current_events")
)
_POLL_BY_FINGERPRINT = (
    select(vens, _NEXT_MESSAGE, _CURRENT_EVENTS)
    .where(or_(vens.c.fingerprint == bindparam("fingerprint"),
               vens.c.previous_fingerprint == bindparam("fingerprint")))
)  # fmt: skip
_POLL_BY_ID = select(vens, _NEXT_MESSAGE, _CURRENT_EVENTS).where(
    vens.c.ven_id == bindparam("ven_id")
)
_TOUCH = update(vens).where(vens.c.ven_id == bindparam("id")).values(last_seen_at=bindparam("now"))


@dataclass(frozen=True, slots=True)
class PollState:
    """A VEN as a poll finds it: its record and hints at what may be due.

    `next_message`: the id of its oldest undelivered outbox message, if any (a hint: the poll
    locks and reads it before handing it out). `current_events`: events not yet over, for any VEN.
    """

    ven: VenRecord
    next_message: int | None
    current_events: int


def _poll_state(row: RowMapping | None) -> PollState | None:
    if row is None:
        return None
    message = row["poll_next_message"]
    return PollState(
        _record(row), None if message is None else int(message), int(row["poll_current_events"])
    )


class Vens:
    def __init__(self, connection: AsyncConnection, changes: TxChanges | None = None) -> None:
        self.connection = connection
        self.changes = TxChanges() if changes is None else changes

    async def get(self, ven_id: str, *, for_update: bool = False) -> VenRecord | None:
        """The VEN; `for_update` locks its row until the transaction ends (who marks this VEN's
        deliveries, a poll or a pusher, takes turns)."""
        query = select(vens).where(vens.c.ven_id == ven_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.connection.execute(query)).mappings().first()
        return None if row is None else _record(row)

    async def by_fingerprint(self, fingerprint: str) -> VenRecord | None:
        """The VEN bound to this certificate, or to it as the one before a rotation."""
        result = await self.connection.execute(_BY_FINGERPRINT, {"fingerprint": fingerprint})
        row = result.mappings().first()
        return None if row is None else _record(row)

    async def poll_state(
        self, now: datetime, *, fingerprint: str | None = None, ven_id: str | None = None
    ) -> PollState | None:
        """By certificate fingerprint (as `by_fingerprint`) or, on insecure HTTP, by venID."""
        if fingerprint is not None:
            query, params = _POLL_BY_FINGERPRINT, {"fingerprint": fingerprint, "now": now}
        else:
            query, params = _POLL_BY_ID, {"ven_id": ven_id, "now": now}
        return _poll_state((await self.connection.execute(query, params)).mappings().first())

    async def save(self, record: VenRecord) -> None:
        self.changes.mark()  # a VEN may have something new to fetch
        values = _row(record)
        result = await self.connection.execute(
            update(vens).where(vens.c.ven_id == record.ven_id).values(**values)
        )
        if result.rowcount == 0:
            await self.connection.execute(insert(vens).values(**values))

    async def touch(self, ven_id: str, now: datetime) -> None:
        await self.connection.execute(_TOUCH, {"id": ven_id, "now": now})

    async def touch_many(self, seen: Sequence[tuple[str, datetime]]) -> None:
        """`touch` for many VENs, in one executemany."""
        if seen:
            await self.connection.execute(_TOUCH, [{"id": v, "now": at} for v, at in seen])

    async def lock_among(self, ven_ids: Iterable[str]) -> dict[str, VenRecord]:
        """These VENs (those that exist), their rows locked in venID order until the
        transaction ends (`get(for_update=True)` for many)."""
        query = (
            select(vens)
            .where(vens.c.ven_id.in_(sorted(set(ven_ids))))
            .order_by(vens.c.ven_id)
            .with_for_update()
        )
        rows = (await self.connection.execute(query)).mappings()
        return {row["ven_id"]: _record(row) for row in rows}

    async def page(
        self, *, status: Status | None = None, offset: int = 0, limit: int = 100
    ) -> list[VenRecord]:
        query = select(vens).order_by(vens.c.created_at, vens.c.ven_id)
        if status is not None:
            query = query.where(vens.c.status == status.value)
        rows = (await self.connection.execute(query.offset(offset).limit(limit))).mappings()
        return [_record(row) for row in rows]

    async def count(self, *, status: Status | None = None) -> int:
        query = select(func.count()).select_from(vens)
        if status is not None:
            query = query.where(vens.c.status == status.value)
        return int((await self.connection.execute(query)).scalar_one())

    async def count_by_status(self) -> dict[Status, int]:
        query = select(vens.c.status, func.count()).group_by(vens.c.status)
        return {Status(row[0]): int(row[1]) for row in await self.connection.execute(query)}

    async def count_seen_since(self, since: datetime) -> int:
        query = select(func.count()).select_from(vens).where(vens.c.last_seen_at >= since)
        return int((await self.connection.execute(query)).scalar_one())

    async def push_among(self, ven_ids: list[str]) -> list[VenRecord]:
        """Those of these VENs that take HTTP push (`vtn.push.is_push_ven`), in one query."""
        if not ven_ids:
            return []
        query = select(vens).where(
            vens.c.ven_id.in_(ven_ids),
            vens.c.status == Status.APPROVED.value,
            vens.c.registration_id.is_not(None),
            vens.c.http_pull_model.is_(False),
            vens.c.transport_address.is_not(None),
            vens.c.transport_address != "",
        )
        return [_record(row) for row in (await self.connection.execute(query)).mappings()]

    async def registered(self) -> list[VenRecord]:
        """Every approved VEN with a live registration (event fan-out, push)."""
        query = select(vens).where(
            vens.c.status == Status.APPROVED.value, vens.c.registration_id.is_not(None)
        )
        return [_record(row) for row in (await self.connection.execute(query)).mappings()]

    async def provisioned(self, fingerprint: str) -> Provisioned | None:
        row = (
            (
                await self.connection.execute(
                    select(provisioned_vens).where(provisioned_vens.c.fingerprint == fingerprint)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        return Provisioned(
            fingerprint=row["fingerprint"],
            created_at=row["created_at"],
            ven_name=row["ven_name"],
            ven_id=None if row["ven_id"] is None else VenId(row["ven_id"]),
            groups=tuple(row["groups"]),
        )

    async def provision(self, provisioned: Provisioned) -> None:
        await self.connection.execute(
            insert(provisioned_vens).values(
                fingerprint=provisioned.fingerprint,
                ven_name=provisioned.ven_name,
                ven_id=provisioned.ven_id,
                groups=list(provisioned.groups),
                created_at=provisioned.created_at,
            )
        )
