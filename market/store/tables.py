"""The market's database schema (SQLAlchemy Core), on the VTN's own `metadata`: one database,
one Alembic history (migrations/versions/0003_market.py creates these tables).

Market quantities are `Decimal` and are stored as their exact decimal text (`DecimalText`), never
as floats: SQLite has no exact numeric type, and a price of 0.1234 EUR/kWh must come back as
0.1234. Per-block volumes travel as JSON lists of the same decimal strings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from vtn.store.tables import ID, SERIAL, TIME, metadata


class DecimalText(TypeDecorator[Decimal]):
    """A `Decimal` kept as its exact text (`str(Decimal)`), on every backend."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"market quantities are Decimal, not {type(value).__name__}")
        return str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


DECIMAL = DecimalText()

# The grid model: feeders/transformers the DSO watches, and the prosumer resources under each.
market_points = Table(
    "market_points",
    metadata,
    Column("point_id", ID, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("capacity_kw", DECIMAL, nullable=False),
    Column("created_at", TIME, nullable=False),
)

# A resource sits physically under one congestion point: the prosumer id is the key.
market_point_resources = Table(
    "market_point_resources",
    metadata,
    Column("prosumer_id", ID, primary_key=True),
    Column("point_id", ID, ForeignKey("market_points.point_id"), nullable=False),
    Column("ven_id", ID),  # the prosumer gateway's venID at this VTN: its telemetry
    Column("added_at", TIME, nullable=False),
    Index(None, "point_id"),
)

market_aggregators = Table(
    "market_aggregators",
    metadata,
    Column("aggregator_id", ID, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("fingerprint", String(64), unique=True),  # certificate role `aggregator`, if any
    Column("created_at", TIME, nullable=False),
)

market_nodes = Table(
    "market_nodes",
    metadata,
    Column("node_id", ID, primary_key=True),
    Column("aggregator_id", ID, ForeignKey("market_aggregators.aggregator_id"), nullable=False),
    Column("point_id", ID, ForeignKey("market_points.point_id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("ven_id", ID, unique=True),  # the node's upstream VEN at this VTN
    Column("created_at", TIME, nullable=False),
    Index(None, "aggregator_id"),
)

# Memberships are kept when a prosumer leaves (left_at). `active_point_id` is the node's point
# while the membership is active and NULL after: unique with the prosumer, it lets a prosumer be
# in at most one active node per congestion point (NULLs never collide, on either backend).
market_memberships = Table(
    "market_memberships",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("node_id", ID, ForeignKey("market_nodes.node_id"), nullable=False),
    Column("prosumer_id", ID, nullable=False),
    Column("consent_ref", String(1024), nullable=False),
    Column("joined_at", TIME, nullable=False),
    Column("left_at", TIME),
    Column("active_point_id", ID),
    UniqueConstraint("prosumer_id", "active_point_id"),
    Index(None, "node_id"),
)

market_requests = Table(
    "market_requests",
    metadata,
    Column("request_id", ID, primary_key=True),
    Column("point_id", ID, ForeignKey("market_points.point_id"), nullable=False),
    Column("starts_at", TIME, nullable=False),
    Column("isp_s", Integer, nullable=False),
    Column("needed_kw", JSON, nullable=False),  # list of decimal strings, one per block
    Column("price_cap_eur_per_kwh", DECIMAL, nullable=False),
    Column("gate_closure", TIME, nullable=False),
    Column("pricing", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", TIME, nullable=False),
    Column("updated_at", TIME, nullable=False),
    Index(None, "status", "gate_closure"),
)

# Every status a request went through, with who moved it and when.
market_request_history = Table(
    "market_request_history",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column(
        "request_id",
        ID,
        ForeignKey("market_requests.request_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("status", String(16), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("at", TIME, nullable=False),
    Index(None, "request_id"),
)

# Every revision of every bid is kept; the highest revision counts.
market_bids = Table(
    "market_bids",
    metadata,
    Column("bid_id", ID, primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("request_id", ID, ForeignKey("market_requests.request_id"), nullable=False),
    Column("node_id", ID, ForeignKey("market_nodes.node_id"), nullable=False),
    Column("aggregator_id", ID, nullable=False),
    Column("offered_kw", JSON, nullable=False),
    Column("price_eur_per_kwh", DECIMAL, nullable=False),
    Column("divisible", Boolean, nullable=False),
    Column("valid_until", TIME, nullable=False),
    Column("submitted_at", TIME, nullable=False),
    Index(None, "request_id"),
)

market_awards = Table(
    "market_awards",
    metadata,
    Column("request_id", ID, ForeignKey("market_requests.request_id"), primary_key=True),
    Column("bid_id", ID, primary_key=True),
    Column("node_id", ID, nullable=False),
    Column("aggregator_id", ID, nullable=False),
    Column("awarded_kw", JSON, nullable=False),
    Column("price_eur_per_kwh", DECIMAL, nullable=False),
    Column("activation_factor", DECIMAL, nullable=False),
    Column("event_id", ID),  # the OpenADR event it was dispatched as
    Column("created_at", TIME, nullable=False),
    Index(None, "aggregator_id"),
)

# Measured delivery per awarded bid and block, with the baseline method that produced it.
market_deliveries = Table(
    "market_deliveries",
    metadata,
    Column("request_id", ID, ForeignKey("market_requests.request_id"), primary_key=True),
    Column("bid_id", ID, primary_key=True),
    Column("block", Integer, primary_key=True),
    Column("node_id", ID, nullable=False),
    Column("baseline_kw", DECIMAL, nullable=False),
    Column("actual_kw", DECIMAL, nullable=False),
    Column("method", String(255), nullable=False),
    Column("method_params", JSON, nullable=False),
    Column("measured_at", TIME, nullable=False),
)

market_statements = Table(
    "market_statements",
    metadata,
    Column("request_id", ID, ForeignKey("market_requests.request_id"), primary_key=True),
    Column("aggregator_id", ID, primary_key=True),
    Column("body", JSON, nullable=False),  # the settlement Statement as JSON
    Column("created_at", TIME, nullable=False),
    Index(None, "aggregator_id"),
)

__all__ = [
    "DECIMAL",
    "DecimalText",
    "market_aggregators",
    "market_awards",
    "market_bids",
    "market_deliveries",
    "market_memberships",
    "market_nodes",
    "market_point_resources",
    "market_points",
    "market_request_history",
    "market_requests",
    "market_statements",
]
