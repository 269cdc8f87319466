"""The data service's schema (SQLAlchemy Core) on the VTN's `metadata`; migration 0005 makes it.

Raw readings exist only as ciphertext (`data_days.blob`, one prosumer-day each) under a
prosumer key that itself exists only wrapped by the master key (`data_prosumer_keys`). Nothing
else here is a reading. The access log, the releases and their member lists are append-only:
no repository updates or deletes them, and a trigger on each refuses UPDATE and DELETE (on
PostgreSQL and SQLite alike), so even the service's own database role cannot rewrite history
without dropping the trigger first.
"""

from __future__ import annotations

from sqlalchemy import (
    DDL,
    JSON,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    event,
)

from vtn.store.tables import ID, SERIAL, TIME, metadata

data_prosumers = Table(
    "data_prosumers",
    metadata,
    Column("prosumer_id", ID, primary_key=True),
    # The VEN whose reports are this prosumer's metering (the VTN's readings), if any.
    Column("ven_id", ID, ForeignKey("vens.ven_id", ondelete="SET NULL"), unique=True),
    Column("areas", JSON, nullable=False),  # congestion points, feeders: what aggregates group by
    Column("created_at", TIME, nullable=False),
    Column("erased_at", TIME),  # kept as a tombstone so ingest never brings it back
)

data_prosumer_keys = Table(
    "data_prosumer_keys",
    metadata,
    Column("prosumer_id", ID,
           ForeignKey("data_prosumers.prosumer_id", ondelete="CASCADE"), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("master_key_id", String(16), nullable=False),
    Column("created_at", TIME, nullable=False),
)  # fmt: skip

data_days = Table(
    "data_days",
    metadata,
    Column("prosumer_id", ID,
           ForeignKey("data_prosumers.prosumer_id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),  # UTC day
    Column("blob", LargeBinary, nullable=False),  # AES-GCM(96 quarter-hours), bound to (id, day)
    Column("updated_at", TIME, nullable=False),
    Index(None, "day"),
)  # fmt: skip

data_recipients = Table(
    "data_recipients",
    metadata,
    Column("recipient_id", ID, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("fingerprint", String(64), unique=True),  # its `service` certificate, if it uses one
    Column("wrapped_pseudonym_key", LargeBinary, nullable=False),
    Column("master_key_id", String(16), nullable=False),
    Column("epsilon_budget", Float, nullable=False),
    Column("created_at", TIME, nullable=False),
)

# Bearer tokens of recipients and prosumers (scrypt-hashed like the admin tokens).
data_tokens = Table(
    "data_tokens",
    metadata,
    Column("token_id", ID, primary_key=True),
    Column("holder_kind", String(16), nullable=False),  # recipient | prosumer
    Column("holder_id", ID, nullable=False),
    Column("secret_hash", String(128), nullable=False),
    Column("created_at", TIME, nullable=False),
    Column("revoked_at", TIME),
    Index(None, "holder_kind", "holder_id"),
)

data_grants = Table(
    "data_grants",
    metadata,
    Column("grant_id", ID, primary_key=True),
    Column("prosumer_id", ID,
           ForeignKey("data_prosumers.prosumer_id", ondelete="CASCADE"), nullable=False),
    Column("recipient_id", ID,
           ForeignKey("data_recipients.recipient_id", ondelete="CASCADE"), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("level", Integer, nullable=False),  # dataservice.consent.Level
    Column("access", String(16), nullable=False),  # dataservice.consent.Access
    Column("granted_at", TIME, nullable=False),
    Column("expires_at", TIME, nullable=False),
    Column("period_start", TIME),
    Column("period_end", TIME),
    Column("revoked_at", TIME),
    Index(None, "prosumer_id"),
    Index(None, "recipient_id", "purpose"),
)  # fmt: skip

# Append-only: every aggregate released, and over whom (the differencing rule reads these).
data_releases = Table(
    "data_releases",
    metadata,
    Column("release_id", SERIAL, primary_key=True, autoincrement=True),
    Column("recipient_id", ID, nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("level", Integer, nullable=False),
    Column("area", String(255), nullable=False),
    Column("window_start", TIME, nullable=False),
    Column("window_end", TIME, nullable=False),
    Column("member_count", Integer, nullable=False),
    Column("members_digest", String(64), nullable=False),  # anonymity.digest of the members
    Column("epsilon", Float, nullable=False),  # 0: exact (no noise, no budget spent)
    Column("released_at", TIME, nullable=False),
    Index(None, "recipient_id", "window_start"),
)

data_release_members = Table(
    "data_release_members",
    metadata,
    Column("release_id", SERIAL, ForeignKey("data_releases.release_id"), primary_key=True,
           autoincrement=False),
    Column("prosumer_id", ID, primary_key=True),
    Index(None, "prosumer_id"),
)  # fmt: skip

# Append-only: every access to anyone's data, allowed or refused, and every consent change.
data_access_log = Table(
    "data_access_log",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("at", TIME, nullable=False),
    Column("actor", String(255), nullable=False),  # recipient:<id>, prosumer:<id>, operator:<n>
    Column("action", String(32), nullable=False),
    Column("recipient_id", ID),
    Column("prosumer_id", ID),  # whose data (individual access), if one
    Column("release_id", SERIAL, ForeignKey("data_releases.release_id")),  # aggregate access
    Column("purpose", String(64)),
    Column("level", Integer),
    Column("outcome", String(16), nullable=False),  # allowed | refused
    Column("reason", String(64), nullable=False),
    Column("detail", JSON, nullable=False),
    Index(None, "prosumer_id", "at"),
    Index(None, "at"),
)

# Where ingest from the VTN's readings table got to (its autoincrement id).
data_ingest_marks = Table(
    "data_ingest_marks",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("last_id", SERIAL, nullable=False, autoincrement=False),
    Column("updated_at", TIME, nullable=False),
)

APPEND_ONLY = ("data_access_log", "data_releases", "data_release_members")

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION data_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$
"""


def pg_trigger(table: str) -> str:
    return (
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION data_append_only()"
    )


def sqlite_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'table {table} is append-only: {op} refused'); END"
        for op in ("UPDATE", "DELETE")
    ]


def _ddl(statement: str, dialect: str) -> DDL:
    # DDL() formats its text with %: RAISE's placeholders must be escaped for it.
    escaped = statement.replace("%", "%%")
    return DDL(escaped).execute_if(dialect=dialect)  # type: ignore[no-untyped-call]


# create_all() (the tests' shortcut) makes the same triggers as migration 0005.
for _name in APPEND_ONLY:
    _table = metadata.tables[_name]
    event.listen(_table, "after_create", _ddl(PG_FUNCTION, "postgresql"))
    event.listen(_table, "after_create", _ddl(pg_trigger(_name), "postgresql"))
    for _statement in sqlite_triggers(_name):
        event.listen(_table, "after_create", _ddl(_statement, "sqlite"))
