"""Console accounts, sessions and prosumer preferences: rows <-> `console.accounts` values.

Works inside one of the VTN's transactions (`ConsoleStore(tx.connection)`), so a console change
and its audit entry commit together. Maps and decides nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from console.accounts import Account, Role, Session
from console.tables import console_preferences, console_sessions, console_users


def _account(row: RowMapping) -> Account:
    return Account(
        username=row["username"],
        password_hash=row["password_hash"],
        role=Role(row["role"]),
        subject=row["subject"],
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
        failed_logins=row["failed_logins"],
        locked_until=row["locked_until"],
    )


class ConsoleStore:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    # --- accounts ---

    async def add_account(self, account: Account) -> None:
        await self.connection.execute(
            insert(console_users).values(
                username=account.username,
                password_hash=account.password_hash,
                role=account.role.value,
                subject=account.subject,
                created_at=account.created_at,
                disabled_at=account.disabled_at,
                failed_logins=account.failed_logins,
                locked_until=account.locked_until,
            )
        )

    async def account(self, username: str) -> Account | None:
        query = select(console_users).where(console_users.c.username == username)
        row = (await self.connection.execute(query)).mappings().first()
        return None if row is None else _account(row)

    async def accounts(self) -> list[Account]:
        query = select(console_users).order_by(console_users.c.username)
        return [_account(row) for row in (await self.connection.execute(query)).mappings()]

    async def save_login_state(self, account: Account) -> None:
        await self.connection.execute(
            update(console_users)
            .where(console_users.c.username == account.username)
            .values(failed_logins=account.failed_logins, locked_until=account.locked_until)
        )

    # --- sessions ---

    async def add_session(self, session: Session) -> None:
        await self.connection.execute(
            insert(console_sessions).values(
                session_hash=session.session_hash,
                username=session.username,
                csrf_token=session.csrf_token,
                created_at=session.created_at,
                last_seen_at=session.last_seen_at,
            )
        )

    async def session(self, session_hash: str) -> Session | None:
        query = select(console_sessions).where(console_sessions.c.session_hash == session_hash)
        row = (await self.connection.execute(query)).mappings().first()
        return None if row is None else Session(**row)

    async def touch_session(self, session_hash: str, now: datetime) -> None:
        await self.connection.execute(
            update(console_sessions)
            .where(console_sessions.c.session_hash == session_hash)
            .values(last_seen_at=now)
        )

    async def end_session(self, session_hash: str) -> None:
        await self.connection.execute(
            delete(console_sessions).where(console_sessions.c.session_hash == session_hash)
        )

    async def end_sessions_of(self, username: str) -> None:
        await self.connection.execute(
            delete(console_sessions).where(console_sessions.c.username == username)
        )

    # --- prosumer preferences ---

    async def preferences(self, ven_id: str) -> dict[str, Any] | None:
        query = select(console_preferences.c.body).where(console_preferences.c.ven_id == ven_id)
        body = (await self.connection.execute(query)).scalar_one_or_none()
        return None if body is None else dict(body)

    async def all_preferences(self) -> dict[str, dict[str, Any]]:
        query = select(console_preferences.c.ven_id, console_preferences.c.body)
        return {ven_id: dict(body) for ven_id, body in await self.connection.execute(query)}

    async def save_preferences(self, ven_id: str, body: dict[str, Any], now: datetime) -> None:
        result = await self.connection.execute(
            update(console_preferences)
            .where(console_preferences.c.ven_id == ven_id)
            .values(body=body, updated_at=now)
        )
        if result.rowcount == 0:
            await self.connection.execute(
                insert(console_preferences).values(ven_id=ven_id, body=body, updated_at=now)
            )
