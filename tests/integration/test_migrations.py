"""The Alembic migrations against the models in vtn/store/tables.py, on SQLite and PostgreSQL:
a migrated database is exactly what the models describe (so the tests' create_all() is a fair
shortcut), migrations go down and up again, upgrade is safe to repeat and to race, and a VTN
runs on a migrated database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata, produce_migrations, render_python_code
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from certs.dev import DevPki
from oadr.model import (
    CreatedPartyRegistration,
    CreatePartyRegistration,
    DistributeEvent,
    EiResponse,
    Poll,
    RegisteredReport,
    RegisterReport,
    RequestId,
    Response,
    Target,
    VenId,
)
from tests.factories import make_event
from tests.integration.vtn_harness import VenClient, running_vtn, utc_now
from vtn.services import operator
from vtn.store import migrate
from vtn.store.db import Store
from vtn.store.tables import UtcDateTime, metadata

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


async def on(url: str, work: Callable[[Connection], T]) -> T:
    """Run synchronous SQLAlchemy/Alembic code on one connection to `url`, then commit."""
    engine = migrate.migration_engine(url)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


def differences(to: sa.MetaData = metadata) -> Callable[[Connection], list[Any]]:
    """What `alembic revision --autogenerate` would write to make the database match `to`."""

    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts=migrate.autogenerate_options())
        return list(compare_metadata(context, to))

    return compare


def schema(connection: Connection) -> dict[str, Any]:
    """The database's tables as reflected: columns, keys, indexes, constraints."""
    inspector = sa.inspect(connection)

    def by_name(items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        return sorted(items, key=lambda item: str(item["name"]))

    tables: dict[str, Any] = {}
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        columns = [
            {**column, "type": column["type"].compile(dialect=connection.dialect)}
            for column in inspector.get_columns(table)
        ]
        tables[table] = {
            "columns": columns,
            "primary_key": inspector.get_pk_constraint(table),
            "foreign_keys": by_name(inspector.get_foreign_keys(table)),
            "indexes": by_name(inspector.get_indexes(table)),
            "unique": by_name(inspector.get_unique_constraints(table)),
        }
    return tables


def table_names(connection: Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


async def test_a_migrated_database_matches_the_models(database_url: str) -> None:
    await migrate.upgrade(database_url)

    assert await on(database_url, differences()) == []
    assert await migrate.current_revision(database_url) == migrate.head_revision()


async def test_migrations_create_what_create_all_creates(database_url: str) -> None:
    """The integration tests build their databases with create_all(); that is only a fair
    shortcut while it gives the same tables, keys, indexes and constraints as the migrations."""
    await migrate.upgrade(database_url)
    migrated = await on(database_url, schema)
    await migrate.downgrade(database_url)
    assert await on(database_url, table_names) <= {"alembic_version"}

    store = Store(database_url)
    try:
        await store.create_all()
    finally:
        await store.close()
    created = await on(database_url, schema)

    assert set(migrated) == set(metadata.tables)
    assert migrated == created


async def test_the_comparison_sees_a_model_the_migrations_lack(database_url: str) -> None:
    """The agreement test above can fail: a column added to the models, a type changed."""
    await migrate.upgrade(database_url)
    changed = sa.MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["vens"].append_column(sa.Column("tariff", sa.String(32)))
    changed.tables["events"].c.market_context.type = sa.Integer()

    found = await on(database_url, differences(changed))

    added = [diff for diff in found if isinstance(diff, tuple) and diff[0] == "add_column"]
    assert [(diff[2], diff[3].name) for diff in added] == [("vens", "tariff")]
    modified = [diff[0] for diff in found if isinstance(diff, list)]
    assert [(kind, table, column) for kind, _, table, column, *_ in modified] == [
        ("modify_type", "events", "market_context")
    ]


async def test_a_timestamp_column_that_drifted_is_reported(database_url: str) -> None:
    """UtcDateTime compares equal only to a DateTime with a zone (PostgreSQL) or a DATETIME
    (SQLite has no zones): the type hook is not just saying "equal" to everything."""
    await migrate.upgrade(database_url)

    def drift(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(
                "ALTER TABLE seen_nonces ALTER COLUMN signed_at TYPE TIMESTAMP WITHOUT TIME ZONE"
            )
        else:
            connection.exec_driver_sql("DROP INDEX ix_seen_nonces_signed_at")
            connection.exec_driver_sql("ALTER TABLE seen_nonces DROP COLUMN signed_at")
            connection.exec_driver_sql("ALTER TABLE seen_nonces ADD COLUMN signed_at VARCHAR(40)")

    await on(database_url, drift)
    found = await on(database_url, differences())

    modified = [change for diff in found if isinstance(diff, list) for change in diff]
    assert ("modify_type", "seen_nonces", "signed_at") in [
        (kind, table, column) for kind, _, table, column, *_ in modified
    ]


async def test_migrations_render_plain_sqlalchemy_types(database_url: str) -> None:
    """A new revision names sa.DateTime(timezone=True), never our UtcDateTime, and uses batch
    mode (SQLite can't ALTER a column in place)."""

    def render(connection: Connection) -> str:
        context = MigrationContext.configure(connection, opts=migrate.autogenerate_options())
        operations = produce_migrations(context, metadata).upgrade_ops
        assert operations is not None
        return render_python_code(operations, render_item=migrate.render_item, render_as_batch=True)

    code = await on(database_url, render)  # an empty database: every table is new

    assert "UtcDateTime" not in code
    assert code.count("sa.DateTime(timezone=True)") == sum(
        isinstance(column.type, UtcDateTime)
        for table in metadata.tables.values()
        for column in table.columns
    )


async def test_downgrade_to_base_and_upgrade_again(database_url: str) -> None:
    await migrate.upgrade(database_url)
    await migrate.downgrade(database_url, "base")

    assert await on(database_url, table_names) <= {"alembic_version"}
    assert await migrate.current_revision(database_url) is None

    await migrate.upgrade(database_url)
    assert await on(database_url, differences()) == []
    assert await migrate.current_revision(database_url) == migrate.head_revision()


async def test_upgrade_is_idempotent_and_keeps_data(database_url: str) -> None:
    await migrate.upgrade(database_url)
    now = utc_now()
    await on(
        database_url,
        lambda connection: connection.execute(
            sa.insert(metadata.tables["seen_nonces"]).values(nonce="n-1", signed_at=now)
        ),
    )

    await migrate.upgrade(database_url)
    await migrate.upgrade(database_url)

    rows = await on(
        database_url,
        lambda connection: connection.execute(
            sa.select(metadata.tables["seen_nonces"].c.nonce)
        ).all(),
    )
    assert [row.nonce for row in rows] == ["n-1"]
    assert await migrate.current_revision(database_url) == migrate.head_revision()


async def test_workers_starting_together_migrate_once(database_url: str) -> None:
    """`--workers N` may start N upgrades at once on a new database: they wait for each other
    instead of failing on "table already exists"."""
    # A regression here tends to hang (each waits on the other), so fail on time instead.
    await asyncio.wait_for(
        asyncio.gather(*(migrate.upgrade(database_url) for _ in range(4))), timeout=60
    )

    assert await migrate.current_revision(database_url) == migrate.head_revision()
    assert await on(database_url, differences()) == []


async def test_the_alembic_command_line_uses_flex4grid_db_url(database_url: str) -> None:
    """Operators can run `alembic upgrade head` from the repository with $FLEX4GRID_DB_URL."""
    environment = {**os.environ, "FLEX4GRID_DB_URL": database_url}
    command = [sys.executable, "-m", "alembic", "upgrade", "head"]
    finished = await asyncio.to_thread(
        subprocess.run, command, cwd=REPO, env=environment, capture_output=True, text=True
    )

    assert finished.returncode == 0, finished.stderr
    assert await migrate.current_revision(database_url) == migrate.head_revision()


@pytest.mark.parametrize("url", ["sqlite:///vtn.db", "postgresql://db.invalid/vtn"])
def test_offline_mode_prints_the_ddl(url: str) -> None:
    """`alembic upgrade head --sql` writes the DDL for a DBA without connecting anywhere."""
    command = [sys.executable, "-m", "alembic", "-x", f"url={url}", "upgrade", "head", "--sql"]
    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)

    assert finished.returncode == 0, finished.stderr
    for table in metadata.tables:
        assert f"CREATE TABLE {table} (" in finished.stdout
    head = migrate.head_revision()
    assert (
        f"INSERT INTO alembic_version (version_num) VALUES ('{head}')" in finished.stdout
        or f"UPDATE alembic_version SET version_num='{head}'" in finished.stdout
    )


async def register(client: VenClient) -> VenId:
    """Registration and the VTN's RegisterReport, fetched by poll and acknowledged."""
    created = await client.send(
        CreatePartyRegistration(request_id=RequestId("reg-1"), ven_name="house-1")
    )
    assert isinstance(created, CreatedPartyRegistration) and created.ven_id is not None
    vtn_reports = await client.send(Poll(ven_id=created.ven_id))
    assert isinstance(vtn_reports, RegisterReport)
    ack = await client.send(
        RegisteredReport(
            response=EiResponse(code=200, request_id=vtn_reports.request_id),
            ven_id=created.ven_id,
        )
    )
    assert isinstance(ack, Response) and ack.response.code == 200
    return created.ven_id


async def test_a_vtn_runs_on_a_migrated_database(pki: DevPki, database_url: str) -> None:
    """No create_all(): the deployment path. A VEN registers and gets an event; after a
    restart (which migrates again) the VTN still knows it and delivers nothing twice."""
    async with running_vtn(pki, database_url, migrate=True) as vtn:
        client = vtn.client()
        ven_id = await register(client)
        now = utc_now()
        event = replace(
            make_event(start=now + timedelta(hours=1)), target=Target(ven_ids=(ven_id,))
        )
        created = await operator.create_event(vtn.context, event, actor="test", now=now)
        delivered = await client.send(Poll(ven_id=ven_id))
        assert isinstance(delivered, DistributeEvent)
        assert [e.event_id for e in delivered.events] == [created.event_id]

    assert await migrate.current_revision(database_url) == migrate.head_revision()
    async with running_vtn(pki, database_url, migrate=True) as vtn:
        after_restart = await vtn.client().send(Poll(ven_id=ven_id))
    assert isinstance(after_restart, Response) and after_restart.response.code == 200
