"""Tables. Patient contact details live here and nowhere else (not in workflows)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class PatientContact(SQLModel, table=True):
    patient_ref: str = Field(primary_key=True, max_length=64)
    phone: str | None = None
    email: str | None = None
    timezone: str = "America/New_York"
    language: str = "en"


class ContactConsent(SQLModel, table=True):
    """A consent to be contacted: person x channel x purpose x program; history is kept."""

    id: int | None = Field(default=None, primary_key=True)
    patient_ref: str = Field(index=True, max_length=64)
    channel: str
    purpose: str
    program: str
    granted_at: datetime = Field(default_factory=_now)
    revoked_at: datetime | None = None
    method: str = "enrollment_form"


class OptOut(SQLModel, table=True):
    """One opt-out suppresses every channel and program until a new opt-in clears it."""

    id: int | None = Field(default=None, primary_key=True)
    patient_ref: str = Field(index=True, max_length=64)
    at: datetime = Field(default_factory=_now)
    cleared_at: datetime | None = None
    source: str = "sms_reply"


class UnmatchedCallback(SQLModel, table=True):
    """A partner callback no journey could take: kept for operator review, never dropped."""

    id: int | None = Field(default=None, primary_key=True)
    partner: str
    event_id: str = Field(index=True)
    event_type: str
    correlation_key: str
    journey_ref: str | None = None
    reason: str
    received_at: datetime = Field(default_factory=_now)
    payload: str
