"""Request and response bodies of the journey, template and patient API.

The models are defined in `client/models.py` (the wire contract the HTTP client shares;
nothing may import api/); this module is where the API takes them from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from client.models import (
    JOURNEY_ID,
    KNOWN_EVENT_TYPES,
    PAGE_TOKEN,
    STAGE,
    TEMPLATE_ID,
    Control,
    FieldProblem,
    JourneyEvent,
    JourneyFilter,
    JourneyPage,
    JourneySummary,
    PreferencesIn,
    Problem,
    Program,
    QuietHoursIn,
    StartJourney,
    TemplateDetail,
    TemplateStep,
    TemplateSummary,
)
from domain.journey import LANGUAGE, PSEUDONYM, EventAck, JourneyState, StartAck

__all__ = [
    "E164",
    "EMAIL",
    "JOURNEY_ID",
    "KNOWN_EVENT_TYPES",
    "PAGE_TOKEN",
    "PSEUDONYM",
    "STAGE",
    "TEMPLATE_ID",
    "ConsentGrantIn",
    "ConsentOut",
    "ConsentRevokeIn",
    "ConsentRevokeOut",
    "ConsentsOut",
    "Control",
    "EventAck",
    "FieldProblem",
    "JourneyEvent",
    "JourneyFilter",
    "JourneyPage",
    "JourneyState",
    "JourneySummary",
    "PatientOut",
    "PreferenceVersion",
    "PreferencesIn",
    "PreferencesOut",
    "PreferencesPut",
    "Problem",
    "QuietHoursIn",
    "StartAck",
    "StartJourney",
    "TemplateDetail",
    "TemplateStep",
    "TemplateSummary",
    "TimelineEntryOut",
    "TimelineOut",
]


# -- patients (api/patients.py) -----------------------------------------------------------
# API-only for now: the HTTP client has no patient methods yet, so these live here.

_CODE = r"^[a-z][a-z0-9_]{1,63}$"  # reasons are codes (patient_request), never prose
EVIDENCE_REF = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,199}$"
TIMELINE_TYPE = r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$"
E164 = r"^\+[1-9][0-9]{6,14}$"
EMAIL = r"^[^@\s]{1,64}@[^@\s]{1,255}\.[A-Za-z]{2,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


ConsentChannel = Literal["sms", "email", "voice", "mail", "push"]
ConsentPurpose = Literal["treatment", "adherence", "marketing"]
ConsentMethod = Literal[
    "written", "electronic_signature", "enrollment_form", "verbal", "sms_keyword"
]


class PatientOut(BaseModel):
    """What the store holds about a patient, without personal data: which details are on
    file (names of fields, not values), consents in force, flags."""

    patient_ref: str
    status: Literal["active", "forgotten"]
    forgotten_at: datetime | None = None
    on_file: list[str] = Field(description="Contact details on file (field names only).")
    timezone: str | None = None
    language: str
    coverages: int
    prescriber: bool
    opted_out: bool
    do_not_contact: bool
    consents_in_force: int
    created_at: datetime


class TimelineEntryOut(BaseModel):
    occurred_at: datetime
    recorded_at: datetime
    journey_id: str | None = None
    type: str = Field(examples=["partner.callback"])
    summary: str = Field(description="Codes, not prose; no personal data.")
    correlation: dict[str, Any] = Field(description="PA number, Rx id, message id, task id...")
    redacted: bool = Field(description="Summary and correlation erased (patient forgotten).")


class TimelineOut(BaseModel):
    patient_ref: str
    entries: list[TimelineEntryOut] = Field(description="Oldest first.")


class ConsentOut(BaseModel):
    id: int
    person: Literal["patient", "caregiver"]
    channel: str
    address: str | None = Field(
        None, description="Masked, e.g. +1•••••0199 or p•••@e•••.com.", examples=["+1•••••0199"]
    )
    purpose: str
    program: str
    status: str = Field(description="FHIR Consent.status: active, rejected, inactive.")
    in_force: bool
    method: str
    evidence_ref: str | None = None
    detail_allowed: bool
    granted_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    recorded_at: datetime


class ConsentsOut(BaseModel):
    patient_ref: str
    in_force: list[ConsentOut] = Field(description="Consents in force now.")
    history: list[ConsentOut] = Field(description="Every consent ever recorded, oldest first.")


class ConsentGrantIn(_Strict):
    """Record a consent (or a refusal: status `rejected`). The address defaults to the one
    on file for the channel; a consent covers that exact address."""

    channel: ConsentChannel
    purpose: ConsentPurpose
    program: Program
    person: Literal["patient", "caregiver"] = "patient"
    method: ConsentMethod = "enrollment_form"
    evidence_ref: str | None = Field(
        None, pattern=EVIDENCE_REF, description="Signed form / e-consent request id (no PHI)."
    )
    expires_at: AwareDatetime | None = None
    detail_allowed: bool = Field(False, description="May messages name the drug or condition?")
    status: Literal["active", "rejected"] = "active"
    address: str | None = Field(
        None,
        max_length=320,
        description="Phone (E.164) or email the consent covers; default: the one on file. "
        "Never echoed back.",
    )


class ConsentRevokeIn(_Strict):
    """Revoke the consents in force that match (a filter left out matches all)."""

    reason: str = Field(pattern=_CODE, description="A code, e.g. patient_request.")
    channel: ConsentChannel | None = None
    purpose: ConsentPurpose | None = None
    program: Program | None = None


class ConsentRevokeOut(BaseModel):
    revoked: int
    consent_ids: list[int]


class PreferencesPut(_Strict):
    """A patient's contact preferences, whole (fields left out take their default). Every
    change is a new version; the history is kept."""

    channel_ranking: list[ConsentChannel] = Field(
        default_factory=list, max_length=5, description="Preferred channels, best first."
    )
    language: str | None = Field(None, pattern=LANGUAGE, examples=["es-US"])
    quiet_hours: QuietHoursIn | None = Field(
        None, description="Overrides the default quiet hours (recipient local time)."
    )
    do_not_contact: bool = False
    reason: str | None = Field(None, pattern=_CODE, description="A code, e.g. patient_request.")


class QuietHoursOut(BaseModel):
    start: str
    end: str


class PreferenceVersion(BaseModel):
    version: int
    channel_ranking: list[str]
    language: str | None = None
    quiet_hours: QuietHoursOut | None = None
    do_not_contact: bool
    reason: str | None = None
    source: str
    recorded_at: datetime


class PreferencesOut(BaseModel):
    patient_ref: str
    current: PreferenceVersion | None = Field(description="In force now; null: never set.")
    opted_out: bool = Field(description="An SMS opt-out (STOP) is in force.")
    history: list[PreferenceVersion] = Field(description="Every version, oldest first.")
