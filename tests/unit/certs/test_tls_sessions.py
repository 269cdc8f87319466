"""The client's TLS session cache: one session per origin, the least recently used dropped past
its capacity, an expired or unresumable one never offered. (Real TLS resumption, end to end:
tests/integration/test_vtn_push.py.)"""

from __future__ import annotations

import ssl
import time
from types import SimpleNamespace
from typing import cast

from certs.tls import SessionCache


def session(age_s: float = 0.0, timeout_s: int = 7200, ticket: bool = True) -> ssl.SSLSession:
    """Stands in for an ssl.SSLSession, which only a real handshake makes."""
    fake = SimpleNamespace(
        time=int(time.time() - age_s), timeout=timeout_s, has_ticket=ticket, id=b""
    )
    return cast(ssl.SSLSession, fake)


def test_each_origin_gets_back_its_own_last_session() -> None:
    cache = SessionCache(capacity=10)
    first, second, other = session(), session(), session()
    cache.put("https://a:1", first)
    cache.put("https://a:1", second)
    cache.put("https://b:1", other)
    assert cache.get("https://a:1") is second
    assert cache.get("https://b:1") is other
    assert cache.get("https://a:2") is None  # another port is another server


def test_full_it_keeps_the_sessions_it_has_and_takes_no_new_origin() -> None:
    """Going round more servers than it can keep, evicting the oldest would leave no session to
    resume with when the round comes back; keeping the first ones resumes with those."""
    cache = SessionCache(capacity=2)
    first, second = session(), session()
    cache.put("https://a:1", first)
    cache.put("https://b:1", second)
    cache.put("https://c:1", session())
    assert len(cache) == 2 and cache.get("https://c:1") is None
    assert cache.get("https://a:1") is first and cache.get("https://b:1") is second
    newer = session()
    cache.put("https://a:1", newer)  # an origin it has is refreshed
    assert cache.get("https://a:1") is newer


def test_full_it_makes_room_by_dropping_expired_sessions() -> None:
    cache = SessionCache(capacity=2)
    cache.put("https://old:1", session(age_s=300, timeout_s=200))  # expired, never read since
    cache.put("https://b:1", session())
    cache.put("https://c:1", session())
    assert cache.get("https://c:1") is not None
    assert cache.get("https://old:1") is None


def test_an_expired_session_is_dropped_not_offered() -> None:
    cache = SessionCache(capacity=10)
    cache.put("https://a:1", session(age_s=300, timeout_s=200))
    assert cache.get("https://a:1") is None
    assert len(cache) == 0


def test_a_session_the_server_cannot_resume_is_not_kept_and_capacity_0_keeps_none() -> None:
    cache = SessionCache(capacity=10)
    cache.put("https://a:1", session(ticket=False))  # no ticket and no session id
    cache.put("https://b:1", None)
    assert len(cache) == 0
    off = SessionCache(capacity=0)  # resumption off
    off.put("https://a:1", session())
    assert off.get("https://a:1") is None
