"""ReplayProtect nonces seen by any VTN worker, so a replay is caught across workers and
restarts (the in-memory `oadr.signing.ReplayGuard` only knows its own process's)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from vtn.store.tables import seen_nonces

# Every signed message records its nonce: built once per dialect (see vtn/store/vens.py).
_REMEMBER = {
    name: dialect.insert(seen_nonces)
    .values(nonce=bindparam("nonce"), signed_at=bindparam("signed_at"))
    .on_conflict_do_nothing()
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


class Nonces:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def remember(self, nonce: str, signed_at: datetime) -> bool:
        """Record a nonce; False if any worker has seen it before (a replay)."""
        statement = _REMEMBER[
            "postgresql" if self.connection.dialect.name == "postgresql" else "sqlite"
        ]
        result = await self.connection.execute(statement, {"nonce": nonce, "signed_at": signed_at})
        return bool(result.rowcount)

    async def forget_before(self, cutoff: datetime) -> int:
        """Drop nonces whose timestamps are outside the replay window anyway."""
        result = await self.connection.execute(
            delete(seen_nonces).where(seen_nonces.c.signed_at < cutoff)
        )
        return int(result.rowcount)
