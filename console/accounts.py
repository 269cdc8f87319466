"""Console accounts and sessions: who may log in, for how long, and what a failed login costs.

Pure rules (no I/O, no clock, no randomness): the store keeps the records, `console.auth` applies
these rules with the VTN's clock. Roles: `operator` (the DSO), `aggregator` (subject = its
aggregator id), `prosumer` (subject = its venID). A session ends after `idle` without a request
or `absolute` after login, whichever comes first (OWASP session management: both timeouts).
Repeated wrong passwords lock the account for a while (OWASP: "account lockout").
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum


class Role(StrEnum):
    OPERATOR = "operator"
    AGGREGATOR = "aggregator"
    PROSUMER = "prosumer"


class AccountError(ValueError):
    """An account that cannot be made as asked (bad name, short password, missing subject)."""


MIN_PASSWORD_LENGTH = 10
MAX_USERNAME_LENGTH = 64


@dataclass(frozen=True, slots=True)
class Policy:
    """How long sessions live and how hard guessing passwords is."""

    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)
    max_failures: int = 5  # consecutive wrong passwords before a lockout
    lockout: timedelta = timedelta(minutes=15)
    # Failed logins from one client address within `address_window` before it must wait:
    # guessing across many usernames (which no account lockout sees) is slowed down too.
    address_failures: int = 20
    address_window: timedelta = timedelta(minutes=10)


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    username: str
    password_hash: str
    role: Role
    subject: str | None  # aggregator id / venID; None for an operator
    created_at: datetime
    disabled_at: datetime | None = None
    failed_logins: int = 0
    locked_until: datetime | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    session_hash: str
    username: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime


def check_new_account(username: str, password: str, role: Role, subject: str | None) -> None:
    """Raise AccountError for an account that must not exist; else None."""
    if not username or len(username) > MAX_USERNAME_LENGTH or not username.isprintable():
        raise AccountError(f"username must be 1 to {MAX_USERNAME_LENGTH} printable characters")
    if any(c.isspace() for c in username):
        raise AccountError("username must not contain spaces")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if (role is Role.OPERATOR) != (subject is None):
        raise AccountError(
            "an operator has no subject; an aggregator needs its aggregator id and a prosumer "
            "its venID (--subject)"
        )


def session_alive(session: Session, now: datetime, policy: Policy) -> bool:
    return now - session.last_seen_at < policy.idle and now - session.created_at < policy.absolute


def after_failure(account: Account, now: datetime, policy: Policy) -> Account:
    """One more wrong password; the one that reaches `max_failures` locks the account."""
    failures = account.failed_logins + 1
    if failures >= policy.max_failures:
        return replace(account, failed_logins=0, locked_until=now + policy.lockout)
    return replace(account, failed_logins=failures)


def after_success(account: Account) -> Account:
    return replace(account, failed_logins=0, locked_until=None)


@dataclass
class AddressThrottle:
    """Failed logins per client address in a sliding window (in memory, per VTN process)."""

    policy: Policy
    max_addresses: int = 10_000
    _failures: dict[str, deque[datetime]] = field(default_factory=dict)

    def _recent(self, address: str, now: datetime) -> deque[datetime]:
        times = self._failures.get(address, deque())
        while times and now - times[0] >= self.policy.address_window:
            times.popleft()
        return times

    def allowed(self, address: str, now: datetime) -> bool:
        return len(self._recent(address, now)) < self.policy.address_failures

    def failed(self, address: str, now: datetime) -> None:
        if address not in self._failures and len(self._failures) >= self.max_addresses:
            self._failures.clear()  # bounded memory; an attacker gains one fresh window
        times = self._recent(address, now)
        times.append(now)
        self._failures[address] = times
