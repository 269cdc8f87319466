"""The poll change counter (issue 11): one row whose `seq` every transaction that can give a VEN
something new bumps, so VTN workers can answer a quiet poll from memory and know when not to.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "poll_changes",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_poll_changes")),
    )
    op.bulk_insert(table, [{"id": 1, "seq": 0}])


def downgrade() -> None:
    op.drop_table("poll_changes")
