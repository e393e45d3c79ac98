"""contact policy: ledger content / attempt / receipt columns, unreachable addresses, tasks

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


def upgrade() -> None:
    with op.batch_alter_table("contact_ledger") as batch:
        batch.add_column(sa.Column("content_ref", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("awaits_receipt", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "unreachable_address",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_ref", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address_digest", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unreachable_address")),
        sa.UniqueConstraint(
            "patient_ref",
            "channel",
            "address_digest",
            name=op.f("uq_unreachable_address_patient_ref_channel_address_digest"),
        ),
    )
    op.create_index(
        op.f("ix_unreachable_address_patient_ref"), "unreachable_address", ["patient_ref"]
    )
    op.create_table(
        "task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("business_status", sa.String(length=64), nullable=True),
        sa.Column("owner_role", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("patient_ref", sa.String(length=64), nullable=True),
        sa.Column("journey_ref", sa.String(length=300), nullable=True),
        sa.Column("step_id", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
        sa.UniqueConstraint("key", name=op.f("uq_task_key")),
    )
    op.create_index(op.f("ix_task_patient_ref"), "task", ["patient_ref"])
    op.create_table(
        "task_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], name=op.f("fk_task_event_task_id_task")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_event")),
    )
    op.create_index(op.f("ix_task_event_task_id"), "task_event", ["task_id"])


def downgrade() -> None:
    op.drop_table("task_event")
    op.drop_table("task")
    op.drop_table("unreachable_address")
    with op.batch_alter_table("contact_ledger") as batch:
        batch.drop_column("awaits_receipt")
        batch.drop_column("attempt")
        batch.drop_column("content_ref")
