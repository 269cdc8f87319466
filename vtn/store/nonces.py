"""ReplayProtect nonces seen by any VTN worker, so a replay is caught across workers and
restarts (the in-memory `oadr.signing.ReplayGuard` only knows its own process's)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from vtn.store.tables import seen_nonces


class Nonces:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def remember_many(self, signed: dict[str, datetime]) -> set[str]:
        """Record nonces in one statement; the ones no worker had seen before."""
        if not signed:
            return set()
        dialect = postgresql if self.connection.dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(seen_nonces)
            .values([{"nonce": nonce, "signed_at": at} for nonce, at in signed.items()])
            .on_conflict_do_nothing()
            .returning(seen_nonces.c.nonce)
        )
        return set((await self.connection.execute(statement)).scalars())

    async def forget_before(self, cutoff: datetime) -> int:
        """Drop nonces whose timestamps are outside the replay window anyway."""
        result = await self.connection.execute(
            delete(seen_nonces).where(seen_nonces.c.signed_at < cutoff)
        )
        return int(result.rowcount)
