"""The VTN's database schema (SQLAlchemy Core). Alembic migrations in migrations/ create it;
a test fails when the two disagree.

Model values that travel as a whole (an Event, a registered Report, a ReportRequest, an opt) are
stored as JSON next to the columns the VTN queries by. Times are UTC (`DateTime(timezone=True)`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on every backend (SQLite keeps no zone: we store UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the VTN stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(128)
TIME = UtcDateTime()
# An autoincrementing 64-bit key on PostgreSQL; SQLite only autoincrements INTEGER keys.
SERIAL = BigInteger().with_variant(Integer(), "sqlite")

vens = Table(
    "vens",
    metadata,
    Column("ven_id", ID, primary_key=True),
    Column("registration_id", ID, unique=True),  # null once cancelled
    Column("ven_name", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # vtn.vens.Status
    Column("http_pull_model", Boolean, nullable=False),
    Column("transport_address", String(1024)),
    Column("xml_signature", Boolean, nullable=False),
    Column("report_only", Boolean, nullable=False),
    Column("profile_name", String(16), nullable=False),
    Column("groups", JSON, nullable=False),  # list of groupIDs
    Column("resource_ids", JSON, nullable=False),
    Column("party_id", ID),
    Column("created_at", TIME, nullable=False),
    Column("registered_at", TIME),
    Column("last_seen_at", TIME),
    # The certificate before a rotation: still accepted while the trust store accepts it (the
    # CA's overlap window), so a VEN can renew its key without an outage. (Migration 0002.)
    Column("previous_fingerprint", String(64)),
    Column("certificate_name", String(255)),  # subject CN: the identity a rotation keeps
    Column("certificate_issuer", String(512)),  # issuer DN: a rotation stays with one CA
    Index(None, "previous_fingerprint", unique=True),
)

# Pre-provisioned VENs for the allow-list registration policy (and pre-allocated venIDs, N1_0025).
provisioned_vens = Table(
    "provisioned_vens",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("ven_name", String(255)),
    Column("ven_id", ID, unique=True),
    Column("groups", JSON, nullable=False),
    Column("created_at", TIME, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("event_id", ID, primary_key=True),
    Column("modification_number", Integer, nullable=False),
    Column("market_context", String(1024), nullable=False),
    Column("cancelled", Boolean, nullable=False),
    Column("starts_at", TIME, nullable=False),
    Column("ends_at", TIME),  # null: open-ended
    Column("body", JSON, nullable=False),  # the oadr.model.Event, as of modification_number
    Column("created_at", TIME, nullable=False),
    Column("updated_at", TIME, nullable=False),
    Index(None, "ends_at"),
)

# Which modification of which event each VEN has been sent, and its answer to it.
event_deliveries = Table(
    "event_deliveries",
    metadata,
    Column("event_id", ID, ForeignKey("events.event_id", ondelete="CASCADE"), primary_key=True),
    Column("ven_id", ID, ForeignKey("vens.ven_id", ondelete="CASCADE"), primary_key=True),
    Column("modification_number", Integer, nullable=False),  # the latest one sent
    Column("delivered_at", TIME, nullable=False),
    Column("opt_type", String(8)),  # optIn/optOut for the modification below, once answered
    Column("opt_modification_number", Integer),
    Column("response_code", Integer),
    Column("responded_at", TIME),
    Index(None, "ven_id"),
)

# VTN-initiated messages waiting for a VEN's next poll (or a push): durable, in order.
outbox = Table(
    "outbox",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("ven_id", ID, ForeignKey("vens.ven_id", ondelete="CASCADE"), nullable=False),
    Column("payload_type", String(64), nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", TIME, nullable=False),
    Column("delivered_at", TIME),
    Index(None, "ven_id", "delivered_at", "id"),
)

opts = Table(
    "opts",
    metadata,
    Column("ven_id", ID, ForeignKey("vens.ven_id", ondelete="CASCADE"), primary_key=True),
    Column("opt_id", ID, primary_key=True),
    Column("opt_type", String(8), nullable=False),
    Column("event_id", ID),
    Column("body", JSON, nullable=False),  # the oadr.model.CreateOpt
    Column("created_at", TIME, nullable=False),
    Column("cancelled_at", TIME),
)

# Report capabilities a VEN registered (its METADATA reports), one row per reportSpecifierID.
registered_reports = Table(
    "registered_reports",
    metadata,
    Column("ven_id", ID, ForeignKey("vens.ven_id", ondelete="CASCADE"), primary_key=True),
    Column("report_specifier_id", ID, primary_key=True),
    Column("report_name", String(64)),
    Column("body", JSON, nullable=False),  # the oadr.model.Report (metadata)
    Column("registered_at", TIME, nullable=False),
)

report_requests = Table(
    "report_requests",
    metadata,
    Column("ven_id", ID, ForeignKey("vens.ven_id", ondelete="CASCADE"), primary_key=True),
    Column("report_request_id", ID, primary_key=True),
    Column("report_specifier_id", ID, nullable=False),
    Column("body", JSON, nullable=False),  # the oadr.model.ReportRequest
    Column("created_at", TIME, nullable=False),
    Column("acknowledged_at", TIME),  # the VEN's oadrCreatedReport named it pending
    Column("cancelled_at", TIME),
)

# Telemetry as a time series: one row per reading of one rID.
readings = Table(
    "readings",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("ven_id", ID, ForeignKey("vens.ven_id", ondelete="CASCADE"), nullable=False),
    Column("report_request_id", ID, nullable=False),
    Column("report_specifier_id", ID, nullable=False),
    Column("report_name", String(64)),
    Column("r_id", ID, nullable=False),
    Column("resource_id", ID),  # from the rID's registered reportDataSource, when known
    Column("starts_at", TIME),
    Column("duration_s", Integer),
    Column("value", Float),  # null for a resource status reading
    Column("status", JSON),  # oadr.model.ResourceStatus for TELEMETRY_STATUS
    Column("data_quality", String(64)),
    Column("received_at", TIME, nullable=False),
    UniqueConstraint("ven_id", "report_request_id", "r_id", "starts_at"),
    Index(None, "ven_id", "r_id", "starts_at"),
)

admin_tokens = Table(
    "admin_tokens",
    metadata,
    Column("token_id", ID, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("role", String(32), nullable=False),
    Column("secret_hash", String(128), nullable=False),
    Column("created_at", TIME, nullable=False),
    Column("revoked_at", TIME),
    # Whose token it is, for roles that act for someone: an aggregator's id (migration 0003).
    Column("subject", ID),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("at", TIME, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("detail", JSON, nullable=False),
    Index(None, "at"),
)

# ReplayProtect nonces seen by any worker, so a replay to another worker is caught too.
seen_nonces = Table(
    "seen_nonces",
    metadata,
    Column("nonce", String(256), primary_key=True),
    Column("signed_at", TIME, nullable=False),
    Index(None, "signed_at"),
)

# One row: a counter every transaction bumps when it may give some VEN something new to fetch (an
# event added or changed, a queued message, a VEN's registration or targets changed), so a worker
# knows when what it remembers of "nothing new for this VEN" is stale (vtn/store/changes.py).
poll_changes = Table(
    "poll_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
)

__all__ = [
    "admin_tokens",
    "audit_log",
    "event_deliveries",
    "events",
    "metadata",
    "opts",
    "outbox",
    "poll_changes",
    "provisioned_vens",
    "readings",
    "registered_reports",
    "report_requests",
    "seen_nonces",
    "vens",
]
