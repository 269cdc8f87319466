"""The VTN's PostgreSQL pool (`vtn serve --db-connections N --db-wait S`): a worker opens at most
N connections, and a transaction that finds none free fails after S seconds with a clear error
(answered 469 by the OpenADR edge) instead of queueing without end."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from vtn.store.db import Store

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]


async def test_a_full_pool_refuses_after_the_wait_and_recovers(database_url: str) -> None:
    store = Store(database_url, connections=3, wait_s=0.5)
    release, all_held = asyncio.Event(), asyncio.Event()
    holding = 0

    async def hold() -> None:
        nonlocal holding
        async with store.transaction() as tx:
            await tx.connection.execute(text("SELECT 1"))
            holding += 1
            if holding == 3:
                all_held.set()
            await release.wait()

    try:
        holders = [asyncio.create_task(hold()) for _ in range(3)]
        async with asyncio.timeout(10):
            await all_held.wait()
        started = time.monotonic()
        with pytest.raises(PoolTimeout):
            async with store.transaction() as tx:
                await tx.connection.execute(text("SELECT 1"))
        waited = time.monotonic() - started
        assert 0.4 <= waited < 5, waited
        release.set()
        await asyncio.gather(*holders)
        async with store.transaction() as tx:  # free again
            assert (await tx.connection.execute(text("SELECT 1"))).scalar() == 1
        # the connections opened under load stay open for the next burst
        assert "Connections in pool: 3 " in store.engine.pool.status()
    finally:
        release.set()
        await store.close()
