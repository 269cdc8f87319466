"""Alembic environment for the VTN server database (SQLite via aiosqlite, PostgreSQL via asyncpg).

Where the database is, first found wins: a connection handed over by `vtn.store.migrate` (the
VTN and the tests), `alembic -x url=...`, `sqlalchemy.url` set in code, or $FLEX4GRID_DB_URL.
The command line runs the same way as the VTN: `FLEX4GRID_DB_URL=sqlite:///vtn.db alembic upgrade
head` from the repository root.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

import console.tables  # noqa: F401  (the web console's tables, likewise)
import dataservice.store.tables  # noqa: F401  (the data service's tables, likewise)
import forecast.tables  # noqa: F401  (the forecast's tables, likewise)
import market.store.tables  # noqa: F401  (puts the market's tables on the VTN's metadata)
from vtn.store import migrate
from vtn.store.db import normalize_url

config = context.config

if config.config_file_name is not None and config.attributes.get("connection") is None:
    # Only on the command line: a VTN calling upgrade() keeps its own logging.
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("FLEX4GRID_DB_URL")
    )
    if not url:
        raise SystemExit("no database: pass -x url=URL or set FLEX4GRID_DB_URL")
    return url


def run_on(connection: Connection) -> None:
    # migrate.migration_engine() gives SQLite real transactions, so its DDL can roll back too.
    context.configure(
        connection=connection, transactional_ddl=True, **migrate.autogenerate_options()
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online(url: str) -> None:
    engine = migrate.migration_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_on)
            await connection.commit()
    finally:
        await engine.dispose()


def run_offline(url: str) -> None:
    """`alembic upgrade head --sql`: print the DDL for a DBA instead of running it."""
    context.configure(
        url=normalize_url(url),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **migrate.autogenerate_options(),
    )
    with context.begin_transaction():
        context.run_migrations()


handed_over = config.attributes.get("connection")
if isinstance(handed_over, Connection):
    run_on(handed_over)
elif context.is_offline_mode():
    run_offline(database_url())
else:
    asyncio.run(run_online(database_url()))
