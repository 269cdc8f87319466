"""Admin API tokens (stored hashed) and the append-only audit log of who changed what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vtn.store.tables import admin_tokens, audit_log


@dataclass(frozen=True, slots=True)
class TokenRecord:
    token_id: str
    name: str
    role: str
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None
    subject: str | None = None  # whom the token acts for (an aggregator's id); None: the DSO


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]


class Tokens:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, token: TokenRecord) -> None:
        await self.connection.execute(
            insert(admin_tokens).values(
                token_id=token.token_id,
                name=token.name,
                role=token.role,
                secret_hash=token.secret_hash,
                created_at=token.created_at,
                revoked_at=token.revoked_at,
                subject=token.subject,
            )
        )

    async def get(self, token_id: str) -> TokenRecord | None:
        row = (
            (
                await self.connection.execute(
                    select(admin_tokens).where(admin_tokens.c.token_id == token_id)
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else TokenRecord(**row)

    async def revoke(self, token_id: str, now: datetime) -> bool:
        result = await self.connection.execute(
            update(admin_tokens)
            .where(admin_tokens.c.token_id == token_id, admin_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return bool(result.rowcount)

    async def page(self) -> list[TokenRecord]:
        rows = await self.connection.execute(
            select(admin_tokens).order_by(admin_tokens.c.created_at)
        )
        return [TokenRecord(**row) for row in rows.mappings()]


class AuditLog:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, entry: AuditEntry) -> None:
        await self.connection.execute(
            insert(audit_log).values(
                at=entry.at,
                actor=entry.actor,
                action=entry.action,
                subject=entry.subject,
                detail=entry.detail,
            )
        )

    async def page(
        self, *, subject: str | None = None, offset: int = 0, limit: int = 100
    ) -> list[AuditEntry]:
        query = select(audit_log).order_by(audit_log.c.id.desc())
        if subject is not None:
            query = query.where(audit_log.c.subject == subject)
        rows = await self.connection.execute(query.offset(offset).limit(limit))
        return [
            AuditEntry(
                at=row["at"],
                actor=row["actor"],
                action=row["action"],
                subject=row["subject"],
                detail=row["detail"],
            )
            for row in rows.mappings()
        ]
