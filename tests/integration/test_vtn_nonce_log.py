"""ReplayProtect nonces in group commits (vtn/replay.py) on SQLite and PostgreSQL: concurrent
signed requests share one transaction, yet each nonce is accepted exactly once, across batches,
across workers (another store on the same database) and across restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.factories import NOW
from vtn.replay import NonceLog
from vtn.store.db import Store
from vtn.store.tables import seen_nonces


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = Store(database_url)
    await store.create_all()
    yield store
    await store.close()


def log_for(store: Store) -> NonceLog:
    return NonceLog(store, keep_for=timedelta(minutes=1))


async def test_concurrent_nonces_share_transactions_and_each_is_new_once(store: Store) -> None:
    log = log_for(store)
    nonces = [f"n{i}" for i in range(200)]
    first = await asyncio.gather(*(log.remember(n, NOW, NOW) for n in nonces))
    assert all(first)
    assert log.batches < len(nonces) / 4, "requests waiting together share a commit"
    again = await asyncio.gather(*(log.remember(n, NOW, NOW) for n in nonces[:50]))
    assert not any(again)
    async with store.transaction() as tx:
        count = (
            await tx.connection.execute(select(func.count()).select_from(seen_nonces))
        ).scalar()
    assert count == 200, "every accepted nonce is in the database before its reply"


async def test_the_same_nonce_twice_in_one_batch_is_accepted_once(store: Store) -> None:
    log = log_for(store)
    results = await asyncio.gather(*(log.remember("same", NOW, NOW) for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]


async def test_a_nonce_seen_by_another_worker_or_before_a_restart_is_a_replay(
    store: Store,
) -> None:
    assert await log_for(store).remember("n", NOW, NOW)
    other = Store(store.url)
    try:
        assert not await log_for(other).remember("n", NOW, NOW)
        assert await log_for(other).remember("m", NOW, NOW)
    finally:
        await other.close()


async def test_when_the_database_fails_no_request_is_accepted(store: Store) -> None:
    log = log_for(store)
    async with store.transaction() as tx:
        await tx.connection.exec_driver_sql("DROP TABLE seen_nonces")
    results = await asyncio.gather(
        *(log.remember(f"n{i}", NOW, NOW) for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, Exception) for r in results)


async def test_old_nonces_are_purged(store: Store) -> None:
    log = NonceLog(store, keep_for=timedelta(minutes=1), purge_every=3)
    for i in range(3):
        assert await log.remember(f"old{i}", NOW - timedelta(minutes=5), NOW)
    assert await log.remember("new", NOW, NOW)
    async with store.transaction() as tx:
        left = (await tx.connection.execute(select(seen_nonces.c.nonce))).scalars().all()
    assert left == ["new"]
