"""patient identities (external id hash -> pseudonym)

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
        "patient_identity",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("patient_ref", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_patient_identity")),
        sa.UniqueConstraint("patient_ref", name=op.f("uq_patient_identity_patient_ref")),
    )


def downgrade() -> None:
    op.drop_table("patient_identity")
