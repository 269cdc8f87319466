"""Console accounts: who may exist, how long a session lives, what failed logins cost."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from console import accounts
from console.accounts import Account, AccountError, AddressThrottle, Policy, Role, Session

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
POLICY = Policy(
    idle=timedelta(minutes=30),
    absolute=timedelta(hours=12),
    max_failures=3,
    lockout=timedelta(minutes=15),
    address_failures=2,
    address_window=timedelta(minutes=10),
)


def make_account(**overrides: object) -> Account:
    fields: dict[str, object] = {
        "username": "dso",
        "password_hash": "scrypt$...",
        "role": Role.OPERATOR,
        "subject": None,
        "created_at": NOW,
    }
    return Account(**(fields | overrides))  # type: ignore[arg-type]


def make_session(created: timedelta, seen: timedelta) -> Session:
    return Session(
        session_hash="h",
        username="dso",
        csrf_token="t",
        created_at=NOW - created,
        last_seen_at=NOW - seen,
    )


@pytest.mark.parametrize(
    ("username", "password", "role", "subject"),
    [
        pytest.param("", "long enough pw", Role.OPERATOR, None, id="empty-name"),
        pytest.param("a b", "long enough pw", Role.OPERATOR, None, id="space-in-name"),
        pytest.param("x" * 65, "long enough pw", Role.OPERATOR, None, id="long-name"),
        pytest.param("dso", "short", Role.OPERATOR, None, id="short-password"),
        pytest.param("dso", "long enough pw", Role.OPERATOR, "agg-a", id="operator-with-subject"),
        pytest.param("agg", "long enough pw", Role.AGGREGATOR, None, id="aggregator-no-id"),
        pytest.param("pat", "long enough pw", Role.PROSUMER, None, id="prosumer-no-ven"),
    ],
)
def test_an_account_that_must_not_exist_is_refused(
    username: str, password: str, role: Role, subject: str | None
) -> None:
    with pytest.raises(AccountError):
        accounts.check_new_account(username, password, role, subject)


def test_a_good_account_passes() -> None:
    accounts.check_new_account("pat", "long enough pw", Role.PROSUMER, "ven-1")


@pytest.mark.parametrize(
    ("created", "seen", "alive"),
    [
        pytest.param(timedelta(hours=1), timedelta(minutes=5), True, id="fresh"),
        pytest.param(timedelta(hours=1), timedelta(minutes=30), False, id="idle"),
        pytest.param(timedelta(hours=12), timedelta(0), False, id="absolute"),
        pytest.param(timedelta(hours=11, minutes=59), timedelta(0), True, id="just-in-time"),
    ],
)
def test_a_session_ends_when_idle_or_too_old(
    created: timedelta, seen: timedelta, alive: bool
) -> None:
    assert accounts.session_alive(make_session(created, seen), NOW, POLICY) is alive


def test_the_last_allowed_failure_locks_the_account_for_the_lockout() -> None:
    account = make_account()
    for _ in range(POLICY.max_failures - 1):
        account = accounts.after_failure(account, NOW, POLICY)
        assert not account.locked(NOW)
    account = accounts.after_failure(account, NOW, POLICY)
    assert account.locked(NOW)
    assert account.locked(NOW + POLICY.lockout - timedelta(seconds=1))
    assert not account.locked(NOW + POLICY.lockout)


def test_a_success_clears_the_failures() -> None:
    account = accounts.after_failure(make_account(), NOW, POLICY)
    assert accounts.after_success(account).failed_logins == 0


def test_an_address_with_too_many_failures_waits_for_the_window() -> None:
    throttle = AddressThrottle(POLICY)
    throttle.failed("10.0.0.1", NOW)
    assert throttle.allowed("10.0.0.1", NOW)
    throttle.failed("10.0.0.1", NOW + timedelta(minutes=1))
    assert not throttle.allowed("10.0.0.1", NOW + timedelta(minutes=2))
    assert throttle.allowed("10.0.0.2", NOW + timedelta(minutes=2))  # others are not held up
    assert throttle.allowed("10.0.0.1", NOW + timedelta(minutes=10))  # the first one aged out


@pytest.mark.parametrize("module", ["console.accounts", "console.forms"])
def test_the_console_rules_import_no_io_framework(module: str) -> None:
    probe = (
        f"import importlib, json, sys\nimportlib.import_module({module!r})\n"
        "print(json.dumps([m for m in ('aiohttp', 'sqlalchemy', 'asyncio') if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == []
