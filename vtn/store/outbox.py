"""VTN-initiated messages queued per VEN until a poll (or a push) delivers them, in order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from oadr.model import PAYLOAD_TYPES, Payload
from vtn.store import jsonform
from vtn.store.changes import TxChanges
from vtn.store.tables import outbox

_TYPES: dict[str, type[Payload]] = {t.__name__: t for t in PAYLOAD_TYPES}


# Every poll looks for a queued message: built once (see vtn/store/vens.py).
_NEXT = (
    select(outbox.c.id, outbox.c.payload_type, outbox.c.body)
    .where(outbox.c.ven_id == bindparam("ven_id"), outbox.c.delivered_at.is_(None))
    .order_by(outbox.c.id)
    .limit(1)
    .with_for_update()
)


_MARK_DELIVERED = (
    update(outbox)
    .where(outbox.c.id == bindparam("message_id"))
    .values(delivered_at=bindparam("at"))
)


class Outbox:
    def __init__(self, connection: AsyncConnection, changes: TxChanges | None = None) -> None:
        self.connection = connection
        self.changes = TxChanges() if changes is None else changes

    async def put(self, ven_id: str, payload: Payload, now: datetime) -> int:
        self.changes.mark()  # a VEN may have something new to fetch
        result = await self.connection.execute(
            insert(outbox)
            .values(
                ven_id=ven_id,
                payload_type=type(payload).__name__,
                body=jsonform.dump(payload),
                created_at=now,
            )
            .returning(outbox.c.id)
        )
        return int(result.scalar_one())

    async def next(self, ven_id: str) -> tuple[int, Payload] | None:
        """The oldest undelivered message for this VEN, locked until the transaction ends."""
        row = (await self.connection.execute(_NEXT, {"ven_id": ven_id})).first()
        if row is None:
            return None
        return int(row.id), jsonform.load(_TYPES[row.payload_type], row.body)

    async def next_among(self, ven_ids: Sequence[str]) -> dict[str, tuple[int, Payload]]:
        """`next` for many VENs in one query, without locking (push planning: the delivery is
        checked again under lock when it is recorded, `undelivered_among`)."""
        if not ven_ids:
            return {}
        oldest = (
            select(func.min(outbox.c.id))
            .where(outbox.c.ven_id.in_(list(ven_ids)), outbox.c.delivered_at.is_(None))
            .group_by(outbox.c.ven_id)
        )
        query = select(outbox.c.id, outbox.c.ven_id, outbox.c.payload_type, outbox.c.body).where(
            outbox.c.id.in_(oldest)
        )
        return {
            row.ven_id: (int(row.id), jsonform.load(_TYPES[row.payload_type], row.body))
            for row in await self.connection.execute(query)
        }

    async def undelivered_among(self, message_ids: Sequence[int]) -> set[int]:
        """Which of these messages are still undelivered, their rows locked until the
        transaction ends (a poll handing one out holds the same lock: `next`)."""
        if not message_ids:
            return set()
        query = (
            select(outbox.c.id)
            .where(outbox.c.id.in_(sorted(message_ids)), outbox.c.delivered_at.is_(None))
            .order_by(outbox.c.id)
            .with_for_update()
        )
        return {int(i) for i in (await self.connection.execute(query)).scalars()}

    async def mark_delivered_many(self, delivered: Sequence[tuple[int, datetime]]) -> None:
        if delivered:
            await self.connection.execute(
                _MARK_DELIVERED, [{"message_id": i, "at": at} for i, at in delivered]
            )

    async def pending(self, ven_id: str) -> int:
        query = select(func.count()).where(
            outbox.c.ven_id == ven_id, outbox.c.delivered_at.is_(None)
        )
        return int((await self.connection.execute(query)).scalar_one())
