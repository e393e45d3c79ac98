"""initial store: patients, consents, preferences, ledger, timeline

Revision ID: 0001
Revises: (none)

Plain SQLAlchemy types only (store.types.UtcDateTime is a DateTime(timezone=True)), so this
file stays valid whatever the models become.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consent",
        sa.Column("person", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("program", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("evidence_ref", sa.String(length=200), nullable=True),
        sa.Column("detail_allowed", sa.Boolean(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_ref", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=64), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent")),
    )
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_patient_ref"), ["patient_ref"], unique=False)

    op.create_table(
        "contact_ledger",
        sa.Column("idempotency_key", sa.String(length=300), nullable=False),
        sa.Column("patient_ref", sa.String(length=64), nullable=False),
        sa.Column("journey_ref", sa.String(length=300), nullable=True),
        sa.Column("program", sa.String(length=64), nullable=False),
        sa.Column("step_id", sa.String(length=100), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("message_class", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("defer_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("provider_message_id", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_ledger")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_contact_ledger_idempotency_key")),
        sa.UniqueConstraint(
            "patient_ref", "dedupe_key", name=op.f("uq_contact_ledger_patient_ref_dedupe_key")
        ),
    )
    with op.batch_alter_table("contact_ledger", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contact_ledger_patient_ref_sent_at"),
            ["patient_ref", "sent_at"],
            unique=False,
        )

    op.create_table(
        "opt_out",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_ref", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_source", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opt_out")),
    )
    with op.batch_alter_table("opt_out", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_opt_out_patient_ref"), ["patient_ref"], unique=False)

    op.create_table(
        "patient",
        sa.Column("given_name", sa.String(length=200), nullable=True),
        sa.Column("family_name", sa.String(length=200), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("address_line1", sa.String(length=200), nullable=True),
        sa.Column("address_line2", sa.String(length=200), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("postal_code", sa.String(length=20), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("caregiver_name", sa.String(length=200), nullable=True),
        sa.Column("caregiver_relationship", sa.String(length=50), nullable=True),
        sa.Column("caregiver_phone", sa.String(length=32), nullable=True),
        sa.Column("caregiver_email", sa.String(length=320), nullable=True),
        sa.Column("patient_ref", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("forgotten_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("patient_ref", name=op.f("pk_patient")),
    )
    op.create_table(
        "preference",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_ref", sa.String(length=64), nullable=False),
        sa.Column("channel_ranking", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("quiet_hours_start", sa.Time(), nullable=True),
        sa.Column("quiet_hours_end", sa.Time(), nullable=True),
        sa.Column("do_not_contact", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_preference")),
    )
    with op.batch_alter_table("preference", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_preference_patient_ref"), ["patient_ref"], unique=False
        )

    op.create_table(
        "timeline_entry",
        sa.Column("idempotency_key", sa.String(length=300), nullable=False),
        sa.Column("patient_ref", sa.String(length=64), nullable=False),
        sa.Column("journey_ref", sa.String(length=300), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.String(length=200), nullable=False),
        sa.Column("correlation", sa.JSON(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redacted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timeline_entry")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_timeline_entry_idempotency_key")),
    )
    with op.batch_alter_table("timeline_entry", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_timeline_entry_journey_ref_occurred_at"),
            ["journey_ref", "occurred_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_timeline_entry_patient_ref_occurred_at"),
            ["patient_ref", "occurred_at"],
            unique=False,
        )

    op.create_table(
        "unmatched_callback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("correlation_key", sa.String(length=200), nullable=False),
        sa.Column("journey_ref", sa.String(length=300), nullable=True),
        sa.Column("patient_ref", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unmatched_callback")),
    )
    with op.batch_alter_table("unmatched_callback", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_unmatched_callback_event_id"), ["event_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_unmatched_callback_patient_ref"), ["patient_ref"], unique=False
        )

    op.create_table(
        "contact_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ledger_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ledger_id"],
            ["contact_ledger.id"],
            name=op.f("fk_contact_event_ledger_id_contact_ledger"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_event")),
    )
    with op.batch_alter_table("contact_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contact_event_ledger_id"), ["ledger_id"], unique=False)

    op.create_table(
        "coverage",
        sa.Column("payer_id", sa.String(length=64), nullable=True),
        sa.Column("payer_name", sa.String(length=200), nullable=True),
        sa.Column("plan_name", sa.String(length=200), nullable=True),
        sa.Column("plan_type", sa.String(length=32), nullable=True),
        sa.Column("member_id", sa.String(length=64), nullable=True),
        sa.Column("group_number", sa.String(length=64), nullable=True),
        sa.Column("rx_bin", sa.String(length=16), nullable=True),
        sa.Column("rx_pcn", sa.String(length=32), nullable=True),
        sa.Column("rx_group", sa.String(length=64), nullable=True),
        sa.Column("relationship", sa.String(length=32), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_ref", sa.String(length=64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_ref"], ["patient.patient_ref"], name=op.f("fk_coverage_patient_ref_patient")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coverage")),
        sa.UniqueConstraint("patient_ref", "rank", name=op.f("uq_coverage_patient_ref_rank")),
    )
    with op.batch_alter_table("coverage", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coverage_patient_ref"), ["patient_ref"], unique=False)

    op.create_table(
        "prescriber",
        sa.Column("npi", sa.String(length=10), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("practice_name", sa.String(length=200), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("fax", sa.String(length=32), nullable=True),
        sa.Column("address", sa.String(length=400), nullable=True),
        sa.Column("patient_ref", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_ref"], ["patient.patient_ref"], name=op.f("fk_prescriber_patient_ref_patient")
        ),
        sa.PrimaryKeyConstraint("patient_ref", name=op.f("pk_prescriber")),
    )


def downgrade() -> None:
    op.drop_table("prescriber")
    with op.batch_alter_table("coverage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coverage_patient_ref"))

    op.drop_table("coverage")
    with op.batch_alter_table("contact_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_event_ledger_id"))

    op.drop_table("contact_event")
    with op.batch_alter_table("unmatched_callback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unmatched_callback_patient_ref"))
        batch_op.drop_index(batch_op.f("ix_unmatched_callback_event_id"))

    op.drop_table("unmatched_callback")
    with op.batch_alter_table("timeline_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_timeline_entry_patient_ref_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_timeline_entry_journey_ref_occurred_at"))

    op.drop_table("timeline_entry")
    with op.batch_alter_table("preference", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_preference_patient_ref"))

    op.drop_table("preference")
    op.drop_table("patient")
    with op.batch_alter_table("opt_out", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_opt_out_patient_ref"))

    op.drop_table("opt_out")
    with op.batch_alter_table("contact_ledger", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_ledger_patient_ref_sent_at"))

    op.drop_table("contact_ledger")
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_patient_ref"))

    op.drop_table("consent")
