"""Logging in and out of the console: accounts, server-side sessions, lockout, all audited.

The cookie carries a random session id (256 bits); the database keeps only its SHA-256, so a
copy of the database cannot be replayed as a cookie. Each session has its own CSRF synchronizer
token (OWASP CSRF cheat sheet), which every form carries and every POST must echo.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from console import accounts
from console.accounts import Account, Policy, Role, Session
from console.store import ConsoleStore
from vtn.admin.tokens import hash_secret, verify_secret
from vtn.store.audit import AuditEntry
from vtn.store.db import Store

# Checked against when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = hash_secret("not-a-password", b"flex4grid-dummy!")


class LoginRefused(Exception):
    """Wrong name or password, a disabled account, or one locked after too many failures."""


@dataclass(frozen=True, slots=True)
class LoggedIn:
    account: Account
    session: Session
    session_id: str  # for the cookie; never stored


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def create_account(
    store: Store,
    username: str,
    password: str,
    role: Role,
    subject: str | None,
    *,
    actor: str,
    now: datetime,
) -> Account:
    accounts.check_new_account(username, password, role, subject)
    password_hash = await asyncio.to_thread(hash_secret, password, secrets.token_bytes(16))
    account = Account(
        username=username, password_hash=password_hash, role=role, subject=subject, created_at=now
    )
    async with store.transaction() as tx:
        console = ConsoleStore(tx.connection)
        if await console.account(username) is not None:
            raise accounts.AccountError(f"user {username!r} exists")
        await console.add_account(account)
        await tx.audit.add(
            AuditEntry(
                at=now,
                actor=actor,
                action="console.user.create",
                subject=username,
                detail={"role": role.value, "subject": subject},
            )
        )
    return account


async def login(
    store: Store, username: str, password: str, *, policy: Policy, now: datetime
) -> LoggedIn:
    """A new session for a right password; LoginRefused (counted, audited) otherwise."""
    async with store.transaction() as tx:
        account = await ConsoleStore(tx.connection).account(username)
    if account is None:
        await asyncio.to_thread(verify_secret, password, _DUMMY_HASH)
        raise LoginRefused("wrong username or password")
    if account.disabled_at is not None:
        raise LoginRefused("this account is disabled")
    if account.locked(now):
        raise LoginRefused("too many failed logins: this account is locked for a while")
    good = await asyncio.to_thread(verify_secret, password, account.password_hash)
    if not good:
        await _count_failure(store, username, policy=policy, now=now)
    return await _open_session(store, username, now=now)


async def _count_failure(store: Store, username: str, *, policy: Policy, now: datetime) -> None:
    """Count a wrong password (committed before the refusal leaves) and refuse the login."""
    async with store.transaction() as tx:
        console = ConsoleStore(tx.connection)
        current = await console.account(username)
        assert current is not None  # accounts are never deleted, only disabled
        failed = accounts.after_failure(current, now, policy)
        await console.save_login_state(failed)
        await tx.audit.add(
            AuditEntry(
                at=now,
                actor=f"console:{username}",
                action="console.login.fail",
                subject=username,
                detail={"locked": failed.locked(now)},
            )
        )
    if failed.locked(now):
        raise LoginRefused("too many failed logins: this account is locked for a while")
    raise LoginRefused("wrong username or password")


async def _open_session(store: Store, username: str, *, now: datetime) -> LoggedIn:
    session_id = secrets.token_urlsafe(32)  # a new id at every login: no session fixation
    session = Session(
        session_hash=session_hash(session_id),
        username=username,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
    )
    async with store.transaction() as tx:
        console = ConsoleStore(tx.connection)
        current = await console.account(username)
        assert current is not None
        await console.save_login_state(accounts.after_success(current))
        await console.add_session(session)
        await tx.audit.add(
            AuditEntry(
                at=now,
                actor=f"console:{username}",
                action="console.login",
                subject=username,
                detail={},
            )
        )
    return LoggedIn(account=current, session=session, session_id=session_id)


async def resume(
    store: Store, session_id: str, *, policy: Policy, now: datetime
) -> tuple[Account, Session] | None:
    """The live session a cookie names (and its account), touched; None if it is over."""
    hashed = session_hash(session_id)
    async with store.transaction() as tx:
        console = ConsoleStore(tx.connection)
        session = await console.session(hashed)
        if session is None:
            return None
        account = await console.account(session.username)
        if (
            account is None
            or account.disabled_at is not None
            or not accounts.session_alive(session, now, policy)
        ):
            await console.end_session(hashed)
            return None
        await console.touch_session(hashed, now)
    return account, session


async def logout(store: Store, session_id: str, *, now: datetime) -> None:
    hashed = session_hash(session_id)
    async with store.transaction() as tx:
        console = ConsoleStore(tx.connection)
        session = await console.session(hashed)
        if session is not None:
            await console.end_session(hashed)
            await tx.audit.add(
                AuditEntry(
                    at=now,
                    actor=f"console:{session.username}",
                    action="console.logout",
                    subject=session.username,
                    detail={},
                )
            )
