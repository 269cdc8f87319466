"""Schema migrations of the VTN database: Alembic (migrations/ at the repository root) run from
code, for `flex4grid vtn serve` and the tests.

`upgrade(url)` brings any database to the newest revision in one transaction and is safe to
call on every start: at head it does nothing, and two processes starting at once wait for each
other (PostgreSQL: an advisory lock; SQLite: `BEGIN IMMEDIATE`). The autogenerate options live
here too, so `alembic revision --autogenerate` and the test that holds the migrations to
`vtn.store.tables` compare the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import DateTime, event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.schema import Column
from sqlalchemy.types import TypeEngine

from vtn.store.db import normalize_url
from vtn.store.tables import UtcDateTime, metadata

SCRIPT_LOCATION = Path(__file__).resolve().parents[2] / "migrations"

# Any constant will do, as long as nothing else in the database takes the same advisory lock.
_PG_LOCK_KEY = 0x466C657834477264  # "Flex4Grd"


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic Config built in code (no alembic.ini needed); env.py reads these."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if url is not None:
        # ConfigParser treats % as interpolation: a password may contain one.
        config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, f"no migrations in {SCRIPT_LOCATION}"
    return head


def migration_engine(url: str) -> AsyncEngine:
    """An engine for migrating: no pool, and on SQLite DDL inside real transactions.

    pysqlite commits before DDL by itself; with its own transaction handling off and BEGIN
    IMMEDIATE emitted by us, a failed migration rolls back whole and a concurrent one waits.
    Foreign keys stay off (SQLite's default) so batch mode can copy and drop tables.
    """
    engine = create_async_engine(normalize_url(url), poolclass=NullPool)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _lock(connection: Connection) -> None:
    """Serialize concurrent migrators for the rest of this transaction (PostgreSQL)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")


async def upgrade(url: str, revision: str = "head") -> None:
    """`alembic upgrade head` on the database at `url`, committed as one transaction."""
    engine = migration_engine(url)
    try:
        async with engine.begin() as connection:

            def run(sync_connection: Connection) -> None:
                _lock(sync_connection)
                command.upgrade(alembic_config(connection=sync_connection), revision)

            await connection.run_sync(run)
    finally:
        await engine.dispose()


async def downgrade(url: str, revision: str = "base") -> None:
    """`alembic downgrade` (to base: every VTN table dropped); for tests and operators."""
    engine = migration_engine(url)
    try:
        async with engine.begin() as connection:

            def run(sync_connection: Connection) -> None:
                _lock(sync_connection)
                command.downgrade(alembic_config(connection=sync_connection), revision)

            await connection.run_sync(run)
    finally:
        await engine.dispose()


async def current_revision(url: str) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    engine = migration_engine(url)
    try:
        async with engine.connect() as connection:

            def read(sync_connection: Connection) -> str | None:
                return MigrationContext.configure(sync_connection).get_current_revision()

            return await connection.run_sync(read)
    finally:
        await engine.dispose()


# --- autogenerate: how the models are rendered into and compared with migrations ---


def compare_type(
    context: MigrationContext,
    inspected_column: Column[Any],
    metadata_column: Column[Any],
    inspected_type: TypeEngine[Any],
    metadata_type: TypeEngine[Any],
) -> bool | None:
    """True when the database's type differs; None leaves the decision to Alembic.

    `UtcDateTime` is a zone-aware DateTime in the database. SQLite has no such type (it
    reflects DATETIME, and UtcDateTime stores UTC without an offset there), so only the
    affinity is compared on it; PostgreSQL must say TIMESTAMP WITH TIME ZONE.
    """
    if not isinstance(metadata_type, UtcDateTime):
        return None
    if not isinstance(inspected_type, DateTime):
        return True
    return context.dialect.name != "sqlite" and not inspected_type.timezone


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Migrations name plain SQLAlchemy types, never our TypeDecorator (it may change later)."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def autogenerate_options() -> dict[str, Any]:
    """`context.configure(...)` options for env.py and for comparing a database with models."""
    return {
        "target_metadata": metadata,
        "compare_type": compare_type,
        "compare_server_default": True,
        "render_item": render_item,
        "render_as_batch": True,  # SQLite can't ALTER most things: copy-and-move instead
    }
