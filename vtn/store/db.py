"""The VTN's database connection: one `Store`, transactions that hand out the repositories.

SQLite (the embedded default) runs in WAL mode with synchronous=FULL, foreign keys on, and
`BEGIN IMMEDIATE` for every transaction on a single pooled connection, so concurrent requests
queue instead of failing with "database is locked". PostgreSQL (production) uses asyncpg and a
normal pool. Whatever a service does inside `transaction()` is committed before it returns, so
a reply sent after it never acknowledges something a crash could lose.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from vtn.store import changes, nonces
from vtn.store.audit import AuditLog, Tokens
from vtn.store.events import Deliveries, Events
from vtn.store.nonces import Nonces
from vtn.store.outbox import Outbox
from vtn.store.reports import Opts, Readings, Reports
from vtn.store.tables import metadata
from vtn.store.vens import Vens


@dataclass(frozen=True)
class Tx:
    """One open transaction and the repositories that work inside it."""

    connection: AsyncConnection
    vens: Vens
    events: Events
    deliveries: Deliveries
    outbox: Outbox
    opts: Opts
    reports: Reports
    readings: Readings
    tokens: Tokens
    audit: AuditLog
    nonces: Nonces


def sqlite_url(path: str) -> str:
    return f"sqlite+aiosqlite:///{path}"


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite:///` URLs and pick the async drivers."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


# PostgreSQL connections one process opens at most (`vtn serve --db-connections`), each opened
# when first needed and kept: closing and reopening them under load (a PostgreSQL backend
# started, types read again) cost ~40 % of report-ingest throughput (issue 11). A transaction
# waits `POOL_WAIT_S` for one (`--db-wait`), then fails (the request is answered 469, or 500 on
# the admin API).
POOL_CONNECTIONS = 30
POOL_WAIT_S = 30.0


class Store:
    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        connections: int = POOL_CONNECTIONS,
        wait_s: float = POOL_WAIT_S,
    ) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        options: dict[str, Any] = {"echo": echo, "pool_timeout": wait_s}
        if self.is_sqlite:
            options.update(pool_size=1, max_overflow=0)
        else:
            # No pre-ping (a round trip before every transaction, ~9 % of a pushing worker's
            # CPU): a connection the server dropped fails its transaction once, SQLAlchemy then
            # discards the whole pool and the next transaction reconnects (issue 11; the VTN
            # answers that one request with an error, and nothing it acknowledged is lost).
            options.update(pool_size=connections, max_overflow=0, pool_pre_ping=False)
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        # This process's view of the poll change counter (vtn/store/changes.py, vtn/quiet.py).
        self.changes = changes.ChangeSequence()
        if self.is_sqlite:
            _configure_sqlite(self.engine)

    async def create_all(self) -> None:
        """Create the schema directly (tests); deployments run the Alembic migrations."""
        async with self.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        marks = changes.TxChanges()
        async with self.engine.begin() as connection:
            yield Tx(
                connection=connection,
                vens=Vens(connection, marks),
                events=Events(connection, marks),
                deliveries=Deliveries(connection),
                outbox=Outbox(connection, marks),
                opts=Opts(connection),
                reports=Reports(connection),
                readings=Readings(connection),
                tokens=Tokens(connection),
                audit=AuditLog(connection),
                nonces=Nonces(connection),
            )
            if marks.pollable:
                await changes.bump(connection)
        if marks.pollable:
            self.changes.committed_locally()

    async def remember_nonces(self, signed: dict[str, datetime]) -> set[str]:
        """Record ReplayProtect nonces, durably once this returns; the ones no worker had seen
        before (vtn/replay.py): one statement outside any transaction."""
        async with self.engine.connect() as connection:
            return await nonces.remember_at_once(connection, signed)

    async def forget_nonces_before(self, cutoff: datetime) -> int:
        async with self.transaction() as tx:
            return await tx.nonces.forget_before(cutoff)

    async def close(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
