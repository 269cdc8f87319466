"""Load forecasting (issue 12): stored forecasts with the model and data version that made
them, and the actions (flex requests, events) taken on red windows, one per point and window.

See forecast/store.py. Only CREATE TABLE and CREATE INDEX, so it also works offline on SQLite.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "forecasts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("point_id", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("data_version", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("isp_s", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forecasts")),
    )
    op.create_index(
        op.f("ix_forecasts_point_id_created_at"), "forecasts", ["point_id", "created_at"]
    )
    op.create_table(
        "forecast_actions",
        sa.Column("point_id", sa.String(length=128), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=False),
        sa.Column("forecast_id", sa.Integer(), nullable=False),
        sa.Column("needed_kw", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("point_id", "window_start", name=op.f("pk_forecast_actions")),
    )


def downgrade() -> None:
    op.drop_table("forecast_actions")
    op.drop_index(op.f("ix_forecasts_point_id_created_at"), table_name="forecasts")
    op.drop_table("forecasts")
