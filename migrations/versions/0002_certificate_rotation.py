"""Certificate rotation: a VEN keeps its venID when it renews its certificate.

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
    with op.batch_alter_table("vens") as batch:
        batch.add_column(sa.Column("previous_fingerprint", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("certificate_name", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("certificate_issuer", sa.String(length=512), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_vens_previous_fingerprint"), ["previous_fingerprint"]
        )


def downgrade() -> None:
    with op.batch_alter_table("vens") as batch:
        batch.drop_constraint(op.f("uq_vens_previous_fingerprint"), type_="unique")
        batch.drop_column("certificate_issuer")
        batch.drop_column("certificate_name")
        batch.drop_column("previous_fingerprint")
