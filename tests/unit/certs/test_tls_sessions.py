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


def test_the_least_recently_used_origin_goes_past_capacity() -> None:
    cache = SessionCache(capacity=2)
    cache.put("https://a:1", session())
    cache.put("https://b:1", session())
    assert cache.get("https://a:1") is not None  # a is now the most recently used
    cache.put("https://c:1", session())
    assert len(cache) == 2
    assert cache.get("https://b:1") is None
    assert cache.get("https://a:1") is not None and cache.get("https://c:1") is not None


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
    off = SessionCache(capacity=0)
    off.put("https://a:1", session())
    assert off.get("https://a:1") is None
