"""Databases for integration tests: every test runs on SQLite and on PostgreSQL.

PostgreSQL is found at FLEX4GRID_PG_URL (default postgresql://127.0.0.1:5432/test); each test
gets a database of its own, dropped afterwards. Where no server answers, the PostgreSQL variants
skip with the reason, unless FLEX4GRID_REQUIRE_SERVICES=1 (CI), which makes that a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("FLEX4GRID_PG_URL", "postgresql://127.0.0.1:5432/test")
REQUIRE_SERVICES = os.environ.get("FLEX4GRID_REQUIRE_SERVICES") == "1"


def unavailable(service: str, why: str) -> None:
    message = f"{service} not available: {why}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (FLEX4GRID_REQUIRE_SERVICES=1)")
    pytest.skip(message)


async def _pg_admin_connection() -> object:
    import asyncpg

    url = make_url(PG_URL)
    try:
        return await asyncpg.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            user=url.username or os.environ.get("USER", "postgres"),
            password=url.password,
            database=url.database or "postgres",
            timeout=5,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable("PostgreSQL", f"{PG_URL}: {exc}")
        raise  # unreachable: unavailable() skips or fails


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'vtn.db'}"
        return
    admin = await _pg_admin_connection()
    name = f"flex4grid_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    try:
        yield (
            make_url(PG_URL)
            .set(drivername="postgresql+asyncpg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
        await admin.close()  # type: ignore[attr-defined]
