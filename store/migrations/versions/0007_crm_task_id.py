"""task queue: the task's id in the external CRM queue, and an unanswered create's time

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
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("crm_task_id", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("crm_create_started_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.create_index(op.f("ix_task_crm_task_id"), "task", ["crm_task_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_task_crm_task_id"), table_name="task")
    with op.batch_alter_table("task") as batch:
        batch.drop_column("crm_create_started_at")
        batch.drop_column("crm_task_id")
