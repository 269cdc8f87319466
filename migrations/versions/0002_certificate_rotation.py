"""Certificate rotation: a VEN keeps its venID when it renews its certificate.

Plain ADD COLUMN and CREATE UNIQUE INDEX, which SQLite does natively (no table rebuild), so
the migration also works offline (`alembic upgrade head --sql`).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("vens", sa.Column("previous_fingerprint", sa.String(length=64), nullable=True))
    op.add_column("vens", sa.Column("certificate_name", sa.String(length=255), nullable=True))
    op.add_column("vens", sa.Column("certificate_issuer", sa.String(length=512), nullable=True))
    op.create_index(
        op.f("ix_vens_previous_fingerprint"), "vens", ["previous_fingerprint"], unique=True
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_vens_previous_fingerprint"), table_name="vens")
    with op.batch_alter_table("vens") as batch:
        batch.drop_column("certificate_issuer")
        batch.drop_column("certificate_name")
        batch.drop_column("previous_fingerprint")
