"""The local flexibility market (issue 8): grid model, aggregators, virtual end nodes and
their consented memberships, flex requests (with their status history), bids (every revision),
awards, deliveries (with the baseline method) and settlement statements; and the `subject` of an
admin token (an aggregator's tokens act for that aggregator).

Market quantities are exact decimal text (VARCHAR), see market/store/tables.py. Only CREATE
TABLE, CREATE INDEX and a plain ADD COLUMN, so it also works offline on SQLite.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "market_aggregators",
        sa.Column("aggregator_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("aggregator_id", name=op.f("pk_market_aggregators")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_market_aggregators_fingerprint")),
    )
    op.create_table(
        "market_points",
        sa.Column("point_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("capacity_kw", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("point_id", name=op.f("pk_market_points")),
    )
    op.create_table(
        "market_nodes",
        sa.Column("node_id", sa.String(length=128), nullable=False),
        sa.Column("aggregator_id", sa.String(length=128), nullable=False),
        sa.Column("point_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("ven_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["aggregator_id"],
            ["market_aggregators.aggregator_id"],
            name=op.f("fk_market_nodes_aggregator_id_market_aggregators"),
        ),
        sa.ForeignKeyConstraint(
            ["point_id"],
            ["market_points.point_id"],
            name=op.f("fk_market_nodes_point_id_market_points"),
        ),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_market_nodes")),
        sa.UniqueConstraint("ven_id", name=op.f("uq_market_nodes_ven_id")),
    )
    op.create_index(
        op.f("ix_market_nodes_aggregator_id"), "market_nodes", ["aggregator_id"], unique=False
    )
    op.create_table(
        "market_point_resources",
        sa.Column("prosumer_id", sa.String(length=128), nullable=False),
        sa.Column("point_id", sa.String(length=128), nullable=False),
        sa.Column("ven_id", sa.String(length=128), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["point_id"],
            ["market_points.point_id"],
            name=op.f("fk_market_point_resources_point_id_market_points"),
        ),
        sa.PrimaryKeyConstraint("prosumer_id", name=op.f("pk_market_point_resources")),
    )
    op.create_index(
        op.f("ix_market_point_resources_point_id"),
        "market_point_resources",
        ["point_id"],
        unique=False,
    )
    op.create_table(
        "market_requests",
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("point_id", sa.String(length=128), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("isp_s", sa.Integer(), nullable=False),
        sa.Column("needed_kw", sa.JSON(), nullable=False),
        sa.Column("price_cap_eur_per_kwh", sa.String(length=40), nullable=False),
        sa.Column("gate_closure", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pricing", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["point_id"],
            ["market_points.point_id"],
            name=op.f("fk_market_requests_point_id_market_points"),
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_market_requests")),
    )
    op.create_index(
        op.f("ix_market_requests_status_gate_closure"),
        "market_requests",
        ["status", "gate_closure"],
        unique=False,
    )
    op.create_table(
        "market_awards",
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("bid_id", sa.String(length=128), nullable=False),
        sa.Column("node_id", sa.String(length=128), nullable=False),
        sa.Column("aggregator_id", sa.String(length=128), nullable=False),
        sa.Column("awarded_kw", sa.JSON(), nullable=False),
        sa.Column("price_eur_per_kwh", sa.String(length=40), nullable=False),
        sa.Column("activation_factor", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["market_requests.request_id"],
            name=op.f("fk_market_awards_request_id_market_requests"),
        ),
        sa.PrimaryKeyConstraint("request_id", "bid_id", name=op.f("pk_market_awards")),
    )
    op.create_index(
        op.f("ix_market_awards_aggregator_id"), "market_awards", ["aggregator_id"], unique=False
    )
    op.create_table(
        "market_bids",
        sa.Column("bid_id", sa.String(length=128), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("node_id", sa.String(length=128), nullable=False),
        sa.Column("aggregator_id", sa.String(length=128), nullable=False),
        sa.Column("offered_kw", sa.JSON(), nullable=False),
        sa.Column("price_eur_per_kwh", sa.String(length=40), nullable=False),
        sa.Column("divisible", sa.Boolean(), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"], ["market_nodes.node_id"], name=op.f("fk_market_bids_node_id_market_nodes")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["market_requests.request_id"],
            name=op.f("fk_market_bids_request_id_market_requests"),
        ),
        sa.PrimaryKeyConstraint("bid_id", "revision", name=op.f("pk_market_bids")),
    )
    op.create_index(op.f("ix_market_bids_request_id"), "market_bids", ["request_id"], unique=False)
    op.create_table(
        "market_deliveries",
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("bid_id", sa.String(length=128), nullable=False),
        sa.Column("block", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=128), nullable=False),
        sa.Column("baseline_kw", sa.String(length=40), nullable=False),
        sa.Column("actual_kw", sa.String(length=40), nullable=False),
        sa.Column("method", sa.String(length=255), nullable=False),
        sa.Column("method_params", sa.JSON(), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["market_requests.request_id"],
            name=op.f("fk_market_deliveries_request_id_market_requests"),
        ),
        sa.PrimaryKeyConstraint("request_id", "bid_id", "block", name=op.f("pk_market_deliveries")),
    )
    op.create_table(
        "market_memberships",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("node_id", sa.String(length=128), nullable=False),
        sa.Column("prosumer_id", sa.String(length=128), nullable=False),
        sa.Column("consent_ref", sa.String(length=1024), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active_point_id", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["market_nodes.node_id"],
            name=op.f("fk_market_memberships_node_id_market_nodes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_market_memberships")),
        sa.UniqueConstraint(
            "prosumer_id",
            "active_point_id",
            name=op.f("uq_market_memberships_prosumer_id_active_point_id"),
        ),
    )
    op.create_index(
        op.f("ix_market_memberships_node_id"), "market_memberships", ["node_id"], unique=False
    )
    op.create_table(
        "market_request_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["market_requests.request_id"],
            name=op.f("fk_market_request_history_request_id_market_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_market_request_history")),
    )
    op.create_index(
        op.f("ix_market_request_history_request_id"),
        "market_request_history",
        ["request_id"],
        unique=False,
    )
    op.create_table(
        "market_statements",
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("aggregator_id", sa.String(length=128), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["market_requests.request_id"],
            name=op.f("fk_market_statements_request_id_market_requests"),
        ),
        sa.PrimaryKeyConstraint("request_id", "aggregator_id", name=op.f("pk_market_statements")),
    )
    op.create_index(
        op.f("ix_market_statements_aggregator_id"),
        "market_statements",
        ["aggregator_id"],
        unique=False,
    )
    op.add_column("admin_tokens", sa.Column("subject", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("admin_tokens") as batch:
        batch.drop_column("subject")
    op.drop_index(op.f("ix_market_statements_aggregator_id"), table_name="market_statements")
    op.drop_table("market_statements")
    op.drop_index(op.f("ix_market_request_history_request_id"), table_name="market_request_history")
    op.drop_table("market_request_history")
    op.drop_index(op.f("ix_market_memberships_node_id"), table_name="market_memberships")
    op.drop_table("market_memberships")
    op.drop_table("market_deliveries")
    op.drop_index(op.f("ix_market_bids_request_id"), table_name="market_bids")
    op.drop_table("market_bids")
    op.drop_index(op.f("ix_market_awards_aggregator_id"), table_name="market_awards")
    op.drop_table("market_awards")
    op.drop_index(op.f("ix_market_requests_status_gate_closure"), table_name="market_requests")
    op.drop_table("market_requests")
    op.drop_index(op.f("ix_market_point_resources_point_id"), table_name="market_point_resources")
    op.drop_table("market_point_resources")
    op.drop_index(op.f("ix_market_nodes_aggregator_id"), table_name="market_nodes")
    op.drop_table("market_nodes")
    op.drop_table("market_points")
    op.drop_table("market_aggregators")
