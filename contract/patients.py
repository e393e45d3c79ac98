"""/v1/patients bodies: registration (FHIR-shaped), profile, timeline, consents,
preferences.

Registration is shaped after FHIR R4 Patient, Coverage and Practitioner (element names
in snake_case like the rest of /v1): `name.given/family`, `telecom[system, value]`,
`address.line/city/state/postal_code/country`, `communication` as `language`,
`coverage[payor, plan_type, subscriber_id]`, the prescriber's NPI. Inside, the store
keeps its own models. Responses never carry contact details unmasked.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contract.ids import Program
from domain.journey import HHMM, LANGUAGE

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


# -- registration (PUT /v1/patients/{patient_id}) -----------------------------------------

PlanType = Literal["commercial", "medicare", "medicaid", "other"]
NPI = r"^[0-9]{10}$"


class HumanName(_Strict):
    given: list[str] = Field(default_factory=list, max_length=3)
    family: str | None = Field(None, max_length=200)


class ContactPoint(_Strict):
    """FHIR ContactPoint: a phone (E.164) or an email address."""

    system: Literal["phone", "email"]
    value: str = Field(max_length=320)
    use: Literal["mobile", "home", "work"] | None = None


class Address(_Strict):
    line: list[str] = Field(default_factory=list, max_length=2)
    city: str | None = Field(None, max_length=100)
    state: str | None = Field(None, max_length=100, description="State / province code.")
    postal_code: str | None = Field(None, max_length=20)
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2.")


class Caregiver(_Strict):
    """FHIR Patient.contact: the person who may be contacted for the patient."""

    name: HumanName | None = None
    relationship: str | None = Field(None, max_length=50, examples=["parent"])
    telecom: list[ContactPoint] = Field(default_factory=list, max_length=2)


class CoverageIn(_Strict):
    """FHIR Coverage, with the pharmacy-benefit (NCPDP) identifiers a claim needs."""

    payor: str = Field(max_length=64, description="Payer id.", examples=["payer-acme"])
    payor_name: str | None = Field(None, max_length=200)
    plan_type: PlanType = Field(description="Decides copay-card eligibility.")
    plan_name: str | None = Field(None, max_length=200)
    subscriber_id: str | None = Field(None, max_length=64, description="Member id.")
    group: str | None = Field(None, max_length=64)
    rx_bin: str | None = Field(None, max_length=16)
    rx_pcn: str | None = Field(None, max_length=32)
    rx_group: str | None = Field(None, max_length=64)
    relationship: Literal["self", "spouse", "child", "other"] | None = None
    period_start: date | None = None
    period_end: date | None = None


class Prescriber(_Strict):
    """FHIR Practitioner, identified by NPI."""

    npi: str = Field(pattern=NPI, description="10-digit National Provider Identifier.")
    name: str | None = Field(None, max_length=200)
    practice_name: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=32)
    fax: str | None = Field(None, max_length=32)


class PatientIn(_Strict):
    """Create or update a patient. Fields left out keep their stored value; `telecom`
    given replaces the phone and email on file; `coverage` given replaces every coverage
    (first = primary)."""

    name: HumanName | None = None
    birth_date: date | None = None
    telecom: list[ContactPoint] | None = Field(None, max_length=4)
    address: Address | None = None
    timezone: str | None = Field(
        None, max_length=64, description="IANA zone.", examples=["America/Chicago"]
    )
    language: str | None = Field(None, pattern=LANGUAGE, examples=["es-US"])
    caregiver: Caregiver | None = None
    coverage: list[CoverageIn] | None = Field(None, max_length=3)
    prescriber: Prescriber | None = None


class CoverageOut(BaseModel):
    rank: int = Field(description="1 primary, 2 secondary...")
    payor: str | None
    plan_type: str | None
    subscriber_id: str | None = Field(description="Masked.", examples=["•••89"])


class YearPdcOut(BaseModel):
    year: int
    pdc: float = Field(description="Proportion of days covered (PQA), 0 to 1.")
    adherent: bool
    in_population: bool = Field(description="Counts in the PQA measure population.")


class AdherenceOut(BaseModel):
    """One therapy's refills (a refill_adherence journey), as the journey knows them."""

    journey_id: str
    status: str = Field(examples=["on_therapy", "at_risk", "discontinued"])
    run_out: date | None = Field(None, description="The day supply runs out.")
    pdc_year_to_date: float | None = None
    pdc_by_year: list[YearPdcOut] = Field(default_factory=list)
    risk_level: str | None = None
    risk_score: int | None = None
    risk_reasons: list[str] = Field(default_factory=list, description="Figures, never names.")


class PatientOut(BaseModel):
    """What the store holds about a patient, masked: which details are on file, contact
    details masked, consents in force, flags."""

    patient_ref: str = Field(description="Pitwall's pseudonym (what journeys and logs show).")
    status: Literal["active", "forgotten"]
    forgotten_at: datetime | None = None
    on_file: list[str] = Field(description="Contact details on file (field names only).")
    contacts: dict[str, str] = Field(
        default_factory=dict, description='Masked, e.g. {"phone": "+1•••••0199"}.'
    )
    timezone: str | None = None
    language: str
    coverages: list[CoverageOut]
    prescriber: bool
    opted_out: bool
    do_not_contact: bool
    consents_in_force: int
    created_at: datetime
    adherence: list[AdherenceOut] = Field(
        default_factory=list,
        description="Each therapy's refills: run-out, PDC, refill-gap risk (from its journey; "
        "empty while Temporal cannot be reached).",
    )


class PatientRegistered(PatientOut):
    created: bool = Field(description="This request created the patient.")
    changed: list[str] = Field(description="Fields this request changed (names, not values).")


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


class QuietHoursIn(_Strict):
    start: str = Field(pattern=HHMM, description="HH:MM local; no contact from...",
                       examples=["21:00"])  # fmt: skip
    end: str = Field(pattern=HHMM, description="...until HH:MM (may wrap midnight).",
                     examples=["08:00"])  # fmt: skip


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


# -- contacts (GET /v1/patients/{patient_id}/contacts) -------------------------------------


class ContactOut(BaseModel):
    """One contact decision, as the contact ledger explains it."""

    decided_at: datetime
    journey_id: str | None = None
    step_id: str | None = None
    program: str
    channel: str
    purpose: str
    message_class: str
    content: str | None = Field(None, description="Approved content and version, e.g. welcome@1.")
    attempt: int = Field(0, description="0 the first channel; n the n-th fallback.")
    status: str = Field(
        description="sending, sent, delivered, failed, deferred, suppressed, unknown."
    )
    reason: str | None = Field(None, description="Why suppressed, deferred or failed (a code).")
    defer_until: datetime | None = None
    sent_at: datetime | None = None
    decision: str = Field(
        description="In a line: sent, deferred until when and why, or suppressed because.",
        examples=["deferred until 2026-12-03 13:00Z (quiet_hours)"],
    )
    history: list[str] = Field(description="Every state it went through, oldest first.")


class ContactsOut(BaseModel):
    patient_ref: str
    opted_out: bool
    contacts: list[ContactOut] = Field(description="Oldest first, across journeys.")
