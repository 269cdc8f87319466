"""Migration 0005 on SQLite and PostgreSQL: the tables the models describe (test_migrations
holds that), the append-only triggers made by the migration itself, and a clean downgrade;
and the benchmark in miniature, so it never rots (its figures are not checked)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from benchmarks import data_service as bench
from dataservice.store.tables import data_access_log
from vtn.store import migrate
from vtn.store.db import Store

NOW = datetime(2026, 3, 10, tzinfo=UTC)


async def test_the_migrated_access_log_is_append_only(database_url: str) -> None:
    await migrate.upgrade(database_url)
    store = Store(database_url)
    try:
        async with store.transaction() as tx:
            await tx.connection.execute(
                sa.insert(data_access_log).values(
                    at=NOW,
                    actor="operator:x",
                    action="grant",
                    outcome="allowed",
                    reason="allowed",
                    detail={},
                )
            )
        for statement in (
            sa.update(data_access_log).values(actor="someone else"),
            sa.delete(data_access_log),
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                async with store.transaction() as tx:
                    await tx.connection.execute(statement)
        async with store.transaction() as tx:
            actors = (await tx.connection.execute(sa.select(data_access_log.c.actor))).scalars()
            assert list(actors) == ["operator:x"]
    finally:
        await store.close()

    await migrate.downgrade(database_url, "0004")
    await migrate.upgrade(database_url)
    assert await migrate.current_revision(database_url) == migrate.head_revision()


async def test_the_benchmark_runs_in_miniature() -> None:
    timings = await bench.run("sqlite", prosumers=20, days=2)
    aggregates = [t for t in timings if t.label.startswith("aggregate")]
    assert [t.label for t in aggregates] == [
        "aggregate QUARTER_HOUR",
        "aggregate DAILY",
        "aggregate DAILY eps=1.0",
    ]
    assert all("20 members" in t.detail for t in aggregates)
