"""VTN-initiated messages queued per VEN until a poll (or a push) delivers them, in order."""

from __future__ import annotations

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

    async def mark_delivered(self, message_id: int, now: datetime) -> None:
        await self.connection.execute(
            update(outbox).where(outbox.c.id == message_id).values(delivered_at=now)
        )

    async def pending(self, ven_id: str) -> int:
        query = select(func.count()).where(
            outbox.c.ven_id == ven_id, outbox.c.delivered_at.is_(None)
        )
        return int((await self.connection.execute(query)).scalar_one())
