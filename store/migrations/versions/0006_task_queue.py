"""task queue: a task's title, the journey's own task id, the outcome it was closed with

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.add_column(
            sa.Column("title", sa.String(length=200), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("journey_task_id", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("escalation_level", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_index(op.f("ix_task_owner_role"), "task", ["owner_role"])


def downgrade() -> None:
    op.drop_index(op.f("ix_task_owner_role"), table_name="task")
    with op.batch_alter_table("task") as batch:
        batch.drop_column("escalation_level")
        batch.drop_column("outcome")
        batch.drop_column("journey_task_id")
        batch.drop_column("title")
