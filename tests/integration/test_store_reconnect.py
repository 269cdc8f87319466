"""The VTN's store on PostgreSQL after the server dropped its connections (a restart, a
failover, an idle timeout): the transaction that meets a dead connection fails with a clear
error, and the store reconnects by itself for the next ones, without a VTN restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from tests.integration.conftest import _pg_admin_connection
from vtn.store.db import Store

# Only the PostgreSQL variant of `database_url`: dropping server connections is its matter.
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = Store(database_url)
    yield store
    await store.close()


async def transaction_works(store: Store) -> bool:
    async with store.transaction() as tx:
        return (await tx.connection.execute(text("SELECT 1"))).scalar() == 1


async def terminate_backends(store: Store) -> None:
    """What a PostgreSQL restart does to the store's connections."""
    name = make_url(store.url).database
    admin = await _pg_admin_connection()
    try:
        await admin.execute(  # type: ignore[attr-defined]
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
    finally:
        await admin.close()  # type: ignore[attr-defined]


async def test_after_the_server_drops_every_connection_the_store_reconnects(
    store: Store,
) -> None:
    assert all(await asyncio.gather(*(transaction_works(store) for _ in range(5))))
    await terminate_backends(store)
    outcomes = []
    for _ in range(4):
        try:
            outcomes.append(await transaction_works(store))
        except DBAPIError as err:
            assert err.connection_invalidated, "seen as a lost connection, not a bad query"
            outcomes.append(False)
    assert outcomes[-3:] == [True, True, True], outcomes
    assert outcomes.count(False) <= 1, "one failed transaction at most, then a fresh pool"


async def test_nonces_are_recorded_again_after_the_server_drops_every_connection(
    store: Store,
) -> None:
    """The nonce log's statement runs on the driver connection outside SQLAlchemy's
    transaction (vtn/store/nonces.py): a lost connection must still be dropped from the pool."""
    await store.create_all()
    now = datetime.now(UTC)
    assert await store.remember_nonces({f"before-{i}": now for i in range(3)})
    await terminate_backends(store)
    outcomes = []
    for i in range(4):
        try:
            outcomes.append(await store.remember_nonces({f"after-{i}": now}) == {f"after-{i}"})
        except Exception:  # the driver's own error: the statement met a dead connection
            outcomes.append(False)
    assert outcomes[-3:] == [True, True, True], outcomes
    assert outcomes.count(False) <= 1, "one failed batch at most, then a fresh connection"
    assert await store.remember_nonces({"before-0": now}) == set(), "still known: a replay"
