"""Admin API bearer tokens: `<token_id>.<secret>`, stored as a salted scrypt hash.

The secret is shown once, when the token is made (`flex4grid vtn token create`); the database
keeps `scrypt$n$r$p$salt$hash`, so a copy of the database lets nobody call the API. A token has
a role: `operator` may change things, `viewer` may only read. Revocation takes effect on the
next request (every request reads the token's row).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from vtn.store.audit import AuditEntry, TokenRecord
from vtn.store.db import Store


class TokenRole(StrEnum):
    OPERATOR = "operator"  # reads and changes everything
    VIEWER = "viewer"  # reads only
    # Acts for the aggregator named by the token's subject, on /admin/v1/market/ only; the
    # market's handlers let it see and change only that aggregator's own things.
    AGGREGATOR = "aggregator"


class TokenError(Exception):
    """A token that does not authenticate: missing, malformed, unknown, revoked or wrong."""


# scrypt at n=2**14, r=8, p=1: ~50 ms and 16 MiB per check; the cache below keeps that off
# every request after the first.
_N, _R, _P, _DKLEN = 2**14, 8, 1, 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_secret(secret: str, salt: bytes) -> str:
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            secret.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


@dataclass(frozen=True, slots=True)
class NewToken:
    record: TokenRecord
    token: str  # `<token_id>.<secret>`: printed once, never stored


def new_token(name: str, role: TokenRole, now: datetime, subject: str | None = None) -> NewToken:
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    record = TokenRecord(
        token_id=token_id,
        name=name,
        role=role.value,
        secret_hash=hash_secret(secret, secrets.token_bytes(16)),
        created_at=now,
        revoked_at=None,
        subject=subject,
    )
    return NewToken(record=record, token=f"{token_id}.{secret}")


def split(token: str) -> tuple[str, str]:
    token_id, dot, secret = token.strip().partition(".")
    if not dot or not token_id or not secret:
        raise TokenError("malformed token (expected <token_id>.<secret>)")
    return token_id, secret


# --- store operations (the CLI makes and revokes tokens; the API checks them) ---------------------


async def create(
    store: Store,
    name: str,
    role: TokenRole,
    *,
    actor: str,
    now: datetime,
    subject: str | None = None,
) -> str:
    """A new token, audited; returns the token text (the only time it exists in the clear).

    An aggregator token needs its `subject` (the aggregator id); other roles have none.
    """
    if (role is TokenRole.AGGREGATOR) != (subject is not None):
        raise ValueError("an aggregator token needs a subject (the aggregator id); others none")
    made = new_token(name, role, now, subject)
    async with store.transaction() as tx:
        await tx.tokens.add(made.record)
        await tx.audit.add(
            AuditEntry(
                at=now,
                actor=actor,
                action="token.create",
                subject=made.record.token_id,
                detail={"name": name, "role": role.value}
                | ({} if subject is None else {"subject": subject}),
            )
        )
    return made.token


async def revoke(store: Store, token_id: str, *, actor: str, now: datetime) -> bool:
    async with store.transaction() as tx:
        revoked = await tx.tokens.revoke(token_id, now)
        if revoked:
            await tx.audit.add(
                AuditEntry(at=now, actor=actor, action="token.revoke", subject=token_id, detail={})
            )
    return revoked


class Verifier:
    """Checks presented tokens against the store; remembers secrets that verified once.

    The cache maps (token_id, stored hash) to a fast digest of the secret that matched it, so
    scrypt runs once per token per process; the row (and so revocation) is read every time.
    """

    def __init__(self, store: Store, max_entries: int = 1024) -> None:
        self.store = store
        self.max_entries = max_entries
        self._verified: dict[tuple[str, str], bytes] = {}

    async def authenticate(self, token: str) -> TokenRecord:
        token_id, secret = split(token)
        async with self.store.transaction() as tx:
            record = await tx.tokens.get(token_id)
        if record is None:
            raise TokenError("unknown token")
        if record.revoked_at is not None:
            raise TokenError("token revoked")
        key = (record.token_id, record.secret_hash)
        quick = hashlib.sha256(secret.encode()).digest()
        remembered = self._verified.get(key)
        if remembered is not None and hmac.compare_digest(remembered, quick):
            return record
        # scrypt is CPU-bound: off the event loop, so OpenADR traffic is not held up.
        if not await asyncio.to_thread(verify_secret, secret, record.secret_hash):
            raise TokenError("wrong token secret")
        if len(self._verified) >= self.max_entries:
            self._verified.clear()
        self._verified[key] = quick
        return record
