"""What crosses the boundary between journeys and partners: requests, results, events.

Our own small models; FHIR / Twilio / SendGrid shapes exist only inside adapters/.
Every request carries `journey_ref` (the workflow id: pseudonymous) so partners can
echo it back in callbacks, and an `idempotency_key` derived from workflow id + step id.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class PartnerRequest(BaseModel):
    journey_ref: str = Field(description="Workflow id; pseudonymous, echoed back in callbacks.")
    patient_ref: str = Field(description="Pseudonymous patient id.")
    program: str
    idempotency_key: str
    step_id: str = Field("", description="Template step that made the request (for the timeline).")


class BenefitsRequest(PartnerRequest):
    drug_code: str = Field(min_length=1, description="NDC or program product code.")


class BenefitsResult(BaseModel):
    coverage_active: bool
    pa_required: bool
    out_of_pocket: float | None = None
    plan_type: str | None = Field(
        None,
        description="commercial, medicare_part_d, medicaid, other_government (None: the "
        "payer did not say): a copay card is for commercial plans only.",
    )


class PriorAuthRequest(PartnerRequest):
    drug_code: str = Field(min_length=1, description="NDC or program product code.")
    appeal_of: str | None = Field(None, description="PA number being appealed, if an appeal.")


class AppealRequest(PriorAuthRequest):
    appeal_of: str = Field(min_length=1, description="PA number of the denied request.")


PaOutcome = Literal["approved", "denied", "pended"]


class PriorAuthResult(BaseModel):
    pa_number: str
    outcome: PaOutcome
    review_action_code: str = Field(
        "", description="X12 306: A1 certified, A3 not certified, A4 pended."
    )
    expires_on: date | None = Field(
        None,
        description="Last day the approval is valid (PAS ClaimResponse.preAuthPeriod.end); "
        "None: not approved, or the payer did not say.",
    )


class PharmacyReferralRequest(PartnerRequest):
    drug_code: str = Field(min_length=1, description="NDC or program product code.")
    days_supply: int = Field(ge=1, le=365, description="Days supply per fill.")


class PharmacyReferralResult(BaseModel):
    rx_id: str


class RefillEnrollmentRequest(PartnerRequest):
    drug_code: str = Field(min_length=1, description="NDC or program product code.")
    days_supply: int = Field(ge=1, le=365, description="Days supply per fill.")
    starts_on: date = Field(
        description="The journey's date of enrollment, in journey time (not the wall "
        "clock): the pharmacy's refill program counts its fills from this day."
    )


class RefillEnrollmentResult(BaseModel):
    rx_id: str
    status: str = "enrolled"


class ConsentRequest(PartnerRequest):
    documents: list[str] = Field(
        default_factory=lambda: ["hipaa_authorization", "program_terms"],
        description="Documents to sign.",
    )


class ConsentRequestResult(BaseModel):
    request_id: str


class SmsRequest(PartnerRequest):
    to: str
    body: str
    status_callback: str


class SmsResult(BaseModel):
    message_sid: str
    status: str
    error_code: str | None = Field(
        None, description="Twilio ErrorCode of an undelivered / failed message (e.g. 30003)."
    )


class VoiceRequest(PartnerRequest):
    to: str
    text: str = Field(min_length=1, description="What the call says (spoken by <Say>).")
    language: str = Field(
        "en", description="Patient's language: 'es' / 'es-…' speaks es-US, anything else en-US."
    )
    status_callback: str


class VoiceResult(BaseModel):
    call_sid: str
    status: str
    answered_by: str | None = Field(
        None, description="Twilio AnsweredBy (human, machine_end_beep, ...) once known."
    )


class EmailRequest(PartnerRequest):
    to: str
    subject: str
    body: str


class EmailResult(BaseModel):
    message_id: str


class PartnerEvent(BaseModel):
    """A callback, normalised: what the receiver signals to the journey."""

    event_id: str = Field(description="Partner's event id; journeys deduplicate on it.")
    type: str
    correlation_key: str = Field(description="PA number, Rx id, consent request id, message id.")
    journey_ref: str | None = Field(None, description="Workflow id, when the partner echoed it.")
    occurred_at: datetime
    data: dict[str, Any] = Field(default_factory=dict)
