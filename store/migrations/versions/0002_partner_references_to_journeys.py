"""partner references to journeys (correlation)

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
    op.create_table(
        "correlation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("journey_ref", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_correlation")),
        sa.UniqueConstraint("kind", "value", name=op.f("uq_correlation_kind_value")),
    )
    op.create_index(op.f("ix_correlation_value"), "correlation", ["value"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_correlation_value"), table_name="correlation")
    op.drop_table("correlation")
