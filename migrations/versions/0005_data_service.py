"""The privacy-preserving data service (issue 13): prosumers (with their wrapped data keys),
encrypted day blobs, recipients, data tokens, consent grants, and the append-only releases,
release members and access log, whose UPDATE and DELETE a trigger refuses (PostgreSQL: one
plpgsql function for all three; SQLite: RAISE(ABORT) triggers).

The trigger text is written out here, not imported, so this revision stays what it was when
dataservice/store/tables.py changes. Only CREATE TABLE, CREATE INDEX and CREATE TRIGGER, so it
also works offline on SQLite.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("data_access_log", "data_releases", "data_release_members")

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION data_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$
"""


def _triggers() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION data_append_only()"
            )
    else:
        for table in APPEND_ONLY:
            for statement in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{statement.lower()} BEFORE {statement} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'table {table} is append-only: {statement} "
                    "refused'); END"
                )


def upgrade() -> None:
    op.create_table(
        "data_ingest_marks",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column(
            "last_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_data_ingest_marks")),
    )
    op.create_table(
        "data_recipients",
        sa.Column("recipient_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("wrapped_pseudonym_key", sa.LargeBinary(), nullable=False),
        sa.Column("master_key_id", sa.String(length=16), nullable=False),
        sa.Column("epsilon_budget", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("recipient_id", name=op.f("pk_data_recipients")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_data_recipients_fingerprint")),
    )
    op.create_table(
        "data_releases",
        sa.Column(
            "release_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("recipient_id", sa.String(length=128), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("area", sa.String(length=255), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("members_digest", sa.String(length=64), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("release_id", name=op.f("pk_data_releases")),
    )
    op.create_index(
        op.f("ix_data_releases_recipient_id_window_start"),
        "data_releases",
        ["recipient_id", "window_start"],
        unique=False,
    )

    op.create_table(
        "data_tokens",
        sa.Column("token_id", sa.String(length=128), nullable=False),
        sa.Column("holder_kind", sa.String(length=16), nullable=False),
        sa.Column("holder_id", sa.String(length=128), nullable=False),
        sa.Column("secret_hash", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_data_tokens")),
    )
    op.create_index(
        op.f("ix_data_tokens_holder_kind_holder_id"),
        "data_tokens",
        ["holder_kind", "holder_id"],
        unique=False,
    )

    op.create_table(
        "data_access_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("recipient_id", sa.String(length=128), nullable=True),
        sa.Column("prosumer_id", sa.String(length=128), nullable=True),
        sa.Column(
            "release_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("purpose", sa.String(length=64), nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["release_id"],
            ["data_releases.release_id"],
            name=op.f("fk_data_access_log_release_id_data_releases"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_access_log")),
    )
    op.create_index(op.f("ix_data_access_log_at"), "data_access_log", ["at"], unique=False)
    op.create_index(
        op.f("ix_data_access_log_prosumer_id_at"),
        "data_access_log",
        ["prosumer_id", "at"],
        unique=False,
    )

    op.create_table(
        "data_prosumers",
        sa.Column("prosumer_id", sa.String(length=128), nullable=False),
        sa.Column("ven_id", sa.String(length=128), nullable=True),
        sa.Column("areas", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["ven_id"],
            ["vens.ven_id"],
            name=op.f("fk_data_prosumers_ven_id_vens"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("prosumer_id", name=op.f("pk_data_prosumers")),
        sa.UniqueConstraint("ven_id", name=op.f("uq_data_prosumers_ven_id")),
    )
    op.create_table(
        "data_release_members",
        sa.Column(
            "release_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("prosumer_id", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["release_id"],
            ["data_releases.release_id"],
            name=op.f("fk_data_release_members_release_id_data_releases"),
        ),
        sa.PrimaryKeyConstraint("release_id", "prosumer_id", name=op.f("pk_data_release_members")),
    )
    op.create_index(
        op.f("ix_data_release_members_prosumer_id"),
        "data_release_members",
        ["prosumer_id"],
        unique=False,
    )

    op.create_table(
        "data_days",
        sa.Column("prosumer_id", sa.String(length=128), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["prosumer_id"],
            ["data_prosumers.prosumer_id"],
            name=op.f("fk_data_days_prosumer_id_data_prosumers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("prosumer_id", "day", name=op.f("pk_data_days")),
    )
    op.create_index(op.f("ix_data_days_day"), "data_days", ["day"], unique=False)

    op.create_table(
        "data_grants",
        sa.Column("grant_id", sa.String(length=128), nullable=False),
        sa.Column("prosumer_id", sa.String(length=128), nullable=False),
        sa.Column("recipient_id", sa.String(length=128), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("access", sa.String(length=16), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["prosumer_id"],
            ["data_prosumers.prosumer_id"],
            name=op.f("fk_data_grants_prosumer_id_data_prosumers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["data_recipients.recipient_id"],
            name=op.f("fk_data_grants_recipient_id_data_recipients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("grant_id", name=op.f("pk_data_grants")),
    )
    op.create_index(
        op.f("ix_data_grants_prosumer_id"), "data_grants", ["prosumer_id"], unique=False
    )
    op.create_index(
        op.f("ix_data_grants_recipient_id_purpose"),
        "data_grants",
        ["recipient_id", "purpose"],
        unique=False,
    )

    op.create_table(
        "data_prosumer_keys",
        sa.Column("prosumer_id", sa.String(length=128), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("master_key_id", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["prosumer_id"],
            ["data_prosumers.prosumer_id"],
            name=op.f("fk_data_prosumer_keys_prosumer_id_data_prosumers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("prosumer_id", name=op.f("pk_data_prosumer_keys")),
    )
    _triggers()


def downgrade() -> None:
    # Dropping a table drops its triggers; the function is ours alone.
    op.drop_table("data_prosumer_keys")
    op.drop_index(op.f("ix_data_grants_recipient_id_purpose"), table_name="data_grants")
    op.drop_index(op.f("ix_data_grants_prosumer_id"), table_name="data_grants")

    op.drop_table("data_grants")
    op.drop_index(op.f("ix_data_days_day"), table_name="data_days")

    op.drop_table("data_days")
    op.drop_index(op.f("ix_data_release_members_prosumer_id"), table_name="data_release_members")

    op.drop_table("data_release_members")
    op.drop_table("data_prosumers")
    op.drop_index(op.f("ix_data_access_log_prosumer_id_at"), table_name="data_access_log")
    op.drop_index(op.f("ix_data_access_log_at"), table_name="data_access_log")

    op.drop_table("data_access_log")
    op.drop_index(op.f("ix_data_tokens_holder_kind_holder_id"), table_name="data_tokens")

    op.drop_table("data_tokens")
    op.drop_index(op.f("ix_data_releases_recipient_id_window_start"), table_name="data_releases")

    op.drop_table("data_releases")
    op.drop_table("data_recipients")
    op.drop_table("data_ingest_marks")
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS data_append_only()")
