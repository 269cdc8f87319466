"""The VTN's first schema.

VENs, events and their deliveries, the outbox, opts, reports and readings, admin tokens, the
audit log, and the ReplayProtect nonces.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 07:15:46
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_tokens",
        sa.Column("token_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_admin_tokens")),
    )
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_table(
        "events",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("modification_number", sa.Integer(), nullable=False),
        sa.Column("market_context", sa.String(length=1024), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_ends_at"), "events", ["ends_at"])
    op.create_table(
        "provisioned_vens",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("ven_name", sa.String(length=255), nullable=True),
        sa.Column("ven_id", sa.String(length=128), nullable=True),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_provisioned_vens")),
        sa.UniqueConstraint("ven_id", name=op.f("uq_provisioned_vens_ven_id")),
    )
    op.create_table(
        "seen_nonces",
        sa.Column("nonce", sa.String(length=256), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_seen_nonces")),
    )
    op.create_index(op.f("ix_seen_nonces_signed_at"), "seen_nonces", ["signed_at"])
    op.create_table(
        "vens",
        sa.Column("ven_id", sa.String(length=128), nullable=False),
        sa.Column("registration_id", sa.String(length=128), nullable=True),
        sa.Column("ven_name", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("http_pull_model", sa.Boolean(), nullable=False),
        sa.Column("transport_address", sa.String(length=1024), nullable=True),
        sa.Column("xml_signature", sa.Boolean(), nullable=False),
        sa.Column("report_only", sa.Boolean(), nullable=False),
        sa.Column("profile_name", sa.String(length=16), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("resource_ids", sa.JSON(), nullable=False),
        sa.Column("party_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("ven_id", name=op.f("pk_vens")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_vens_fingerprint")),
        sa.UniqueConstraint("registration_id", name=op.f("uq_vens_registration_id")),
    )
    op.create_table(
        "event_deliveries",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("ven_id", sa.String(length=128), nullable=False),
        sa.Column("modification_number", sa.Integer(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opt_type", sa.String(length=8), nullable=True),
        sa.Column("opt_modification_number", sa.Integer(), nullable=True),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.event_id"],
            name=op.f("fk_event_deliveries_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ven_id"],
            ["vens.ven_id"],
            name=op.f("fk_event_deliveries_ven_id_vens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "ven_id", name=op.f("pk_event_deliveries")),
    )
    op.create_index(op.f("ix_event_deliveries_ven_id"), "event_deliveries", ["ven_id"])
    op.create_table(
        "opts",
        sa.Column("ven_id", sa.String(length=128), nullable=False),
        sa.Column("opt_id", sa.String(length=128), nullable=False),
        sa.Column("opt_type", sa.String(length=8), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["ven_id"], ["vens.ven_id"], name=op.f("fk_opts_ven_id_vens"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ven_id", "opt_id", name=op.f("pk_opts")),
    )
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("ven_id", sa.String(length=128), nullable=False),
        sa.Column("payload_type", sa.String(length=64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["ven_id"], ["vens.ven_id"], name=op.f("fk_outbox_ven_id_vens"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(
        op.f("ix_outbox_ven_id_delivered_at_id"), "outbox", ["ven_id", "delivered_at", "id"]
    )
    op.create_table(
        "readings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("ven_id", sa.String(length=128), nullable=False),
        sa.Column("report_request_id", sa.String(length=128), nullable=False),
        sa.Column("report_specifier_id", sa.String(length=128), nullable=False),
        sa.Column("report_name", sa.String(length=64), nullable=True),
        sa.Column("r_id", sa.String(length=128), nullable=False),
        sa.Column("resource_id", sa.String(length=128), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Integer(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("status", sa.JSON(), nullable=True),
        sa.Column("data_quality", sa.String(length=64), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ven_id"], ["vens.ven_id"], name=op.f("fk_readings_ven_id_vens"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_readings")),
        sa.UniqueConstraint(
            "ven_id",
            "report_request_id",
            "r_id",
            "starts_at",
            name=op.f("uq_readings_ven_id_report_request_id_r_id_starts_at"),
        ),
    )
    op.create_index(
        op.f("ix_readings_ven_id_r_id_starts_at"), "readings", ["ven_id", "r_id", "starts_at"]
    )
    op.create_table(
        "registered_reports",
        sa.Column("ven_id", sa.String(length=128), nullable=False),
        sa.Column("report_specifier_id", sa.String(length=128), nullable=False),
        sa.Column("report_name", sa.String(length=64), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ven_id"],
            ["vens.ven_id"],
            name=op.f("fk_registered_reports_ven_id_vens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "ven_id", "report_specifier_id", name=op.f("pk_registered_reports")
        ),
    )
    op.create_table(
        "report_requests",
        sa.Column("ven_id", sa.String(length=128), nullable=False),
        sa.Column("report_request_id", sa.String(length=128), nullable=False),
        sa.Column("report_specifier_id", sa.String(length=128), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["ven_id"],
            ["vens.ven_id"],
            name=op.f("fk_report_requests_ven_id_vens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ven_id", "report_request_id", name=op.f("pk_report_requests")),
    )


def downgrade() -> None:
    op.drop_table("report_requests")
    op.drop_table("registered_reports")
    op.drop_table("readings")
    op.drop_table("outbox")
    op.drop_table("opts")
    op.drop_table("event_deliveries")
    op.drop_table("vens")
    op.drop_table("seen_nonces")
    op.drop_table("provisioned_vens")
    op.drop_table("events")
    op.drop_table("audit_log")
    op.drop_table("admin_tokens")
