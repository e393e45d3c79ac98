"""Partner actions, declared once: what a template's `partner_action` step may call.

One `PartnerAction` per action: its typed request and result models, the result field
that partner callbacks correlate on, the callback events that answer it and the partner
(webhook scope, adapter, sandbox service) it belongs to. Template validation, the
activities, worker registration, the workflow-test fakes, webhook scopes and the
README's action table all read this registry; nothing else lists actions.

Inputs: a request model's fields beyond the envelope (`PartnerRequest`) are the action's
inputs. A step gives them in `inputs` (expressions) or, failing that, a template
parameter of the same name fills them; a required input given by neither fails at load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, ValidationError, model_validator

from domain.actions import PartnerCall
from domain.copay import CopayEnrollRequest, CopayEnrollResult
from domain.partners import (
    AppealRequest,
    BenefitsRequest,
    BenefitsResult,
    ConsentRequest,
    ConsentRequestResult,
    PartnerRequest,
    PharmacyReferralRequest,
    PharmacyReferralResult,
    PriorAuthRequest,
    PriorAuthResult,
    RefillEnrollmentRequest,
    RefillEnrollmentResult,
)

ENVELOPE = frozenset(PartnerRequest.model_fields)
# Failures that no template's on_error takes: the journey is held for an operator.
PARTNER_UNAVAILABLE = "partner.unavailable"  # the partner stayed down past the retries
REQUEST_INVALID = "request.invalid"  # the request could not be built from the inputs

# A pended PA on which the payer asks for more (a PAS ClaimResponse still A4 with a
# CommunicationRequest): `data.requested` lists LOINC attachment codes / `PWK01:<code>`.
PA_INFO_REQUESTED = "pa.info_requested"
LoincCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,7}-[0-9]$")]


class PriorAuthSubmitRequest(PriorAuthRequest):
    """`payer.submit_prior_auth`: a new PA request, or (``update_of``) a PAS Claim Update
    of a pended one, e.g. carrying the information the payer asked for."""

    update_of: str | None = Field(
        None,
        min_length=1,
        description="PA number of the pended request this updates (PAS Claim Update).",
    )
    supporting_info: list[LoincCode] = Field(
        default_factory=list,
        max_length=20,
        description="LOINC codes of the documents supplied with an update.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> PriorAuthSubmitRequest:
        if self.update_of and self.appeal_of:
            raise ValueError("update_of and appeal_of exclude each other")
        if self.supporting_info and not self.update_of:
            raise ValueError("supporting_info needs update_of")
        return self


@dataclass(frozen=True)
class PartnerAction:
    name: str
    partner: str  # adapters/<partner>.py, the `webhooks:<partner>` scope, the sandbox service
    method: str  # the adapter client's method that performs it
    request: type[PartnerRequest]
    result: type[BaseModel]
    description: str
    correlation: str | None = None  # result field the answering callbacks carry
    events: tuple[str, ...] = ()  # callback event types that answer this action

    def inputs(self) -> dict[str, bool]:
        """Input name → required, in declaration order."""
        return {
            name: info.is_required()
            for name, info in self.request.model_fields.items()
            if name not in ENVELOPE
        }

    def result_fields(self) -> set[str]:
        return set(self.result.model_fields)


_ACTIONS = (
    PartnerAction(
        name="payer.verify_benefits",
        partner="payer",
        method="verify_benefits",
        request=BenefitsRequest,
        result=BenefitsResult,
        description="Benefits investigation: FHIR CoverageEligibilityRequest.",
    ),
    PartnerAction(
        name="payer.submit_prior_auth",
        partner="payer",
        method="submit_prior_auth",
        request=PriorAuthSubmitRequest,
        result=PriorAuthResult,
        correlation="pa_number",
        events=("pa.decided", PA_INFO_REQUESTED),
        description="Prior authorization: Da Vinci PAS `Claim/$submit`; a pend is answered "
        "later by `pa.decided`, or by `pa.info_requested` (the payer asks for documents; "
        "submit again with `update_of` = the PA number: same PA, pended again).",
    ),
    PartnerAction(
        name="payer.submit_appeal",
        partner="payer",
        method="submit_prior_auth",
        request=AppealRequest,
        result=PriorAuthResult,
        correlation="pa_number",
        events=("pa.decided",),
        description="Appeal of a denied prior authorization (`Claim.related` → the PA).",
    ),
    PartnerAction(
        name="pharmacy.refer",
        partner="pharmacy",
        method="refer",
        request=PharmacyReferralRequest,
        result=PharmacyReferralResult,
        correlation="rx_id",
        events=(
            "pharmacy.filled",
            "pharmacy.shipped",
            "pharmacy.delivered",
            "pharmacy.claim_paid",
            "pharmacy.claim_rejected",
        ),
        description="Refer the prescription to the specialty pharmacy; fill, ship and "
        "delivery come back as callbacks.",
    ),
    PartnerAction(
        name="pharmacy.enroll_refills",
        partner="pharmacy",
        method="enroll_refills",
        request=RefillEnrollmentRequest,
        result=RefillEnrollmentResult,
        correlation="rx_id",
        events=("pharmacy.dispensed",),
        description="Enroll the prescription in the pharmacy's refill program: every "
        "dispense (MedicationDispense, any status) comes back as `pharmacy.dispensed`.",
    ),
    PartnerAction(
        name="consent.request",
        partner="consent",
        method="request",
        request=ConsentRequest,
        result=ConsentRequestResult,
        correlation="request_id",
        events=("consent.signed", "consent.declined"),
        description="Send the HIPAA authorization and program terms for e-signature.",
    ),
    PartnerAction(
        name="copay.enroll",
        partner="copay",
        method="enroll",
        request=CopayEnrollRequest,
        result=CopayEnrollResult,
        correlation="enrollment_id",
        description="Enroll a commercially insured patient in the manufacturer's copay-card "
        "program: card details, or a typed rejection.",
    ),
)

ACTIONS: dict[str, PartnerAction] = {a.name: a for a in _ACTIONS}
# Messaging gateways call back too, but are not template actions (message steps use them).
MESSAGING_PARTNERS = ("sms", "email")


def action(name: str) -> PartnerAction:
    return ACTIONS[name]


def partners() -> tuple[str, ...]:
    """Every partner service: the actions' partners, then the messaging gateways."""
    return (*dict.fromkeys(a.partner for a in _ACTIONS), *MESSAGING_PARTNERS)


def webhook_partners() -> tuple[str, ...]:
    """Partners that call us back (each has a `webhooks:{partner}` scope)."""
    return (*dict.fromkeys(a.partner for a in _ACTIONS if a.events), *MESSAGING_PARTNERS)


def correlation_fields() -> tuple[str, ...]:
    """Result fields that partners' callbacks may carry instead of our reference."""
    return tuple(dict.fromkeys(a.correlation for a in _ACTIONS if a.correlation))


def callback_events() -> dict[str, str]:
    """Callback event type → the partner that sends it."""
    return {event: a.partner for a in _ACTIONS for event in a.events}


class RequestInvalid(ValueError):
    """The call's inputs do not make the action's request; the message names fields only."""


def build_request(call: PartnerCall) -> PartnerRequest:
    """The action's typed request from a journey's call (inputs plus the envelope)."""
    spec = ACTIONS[call.action]
    try:
        return spec.request.model_validate(
            {**call.fields, **call.model_dump(include=set(ENVELOPE))}
        )
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "request" for e in exc.errors()})
        raise RequestInvalid(
            f"{REQUEST_INVALID}: {spec.name} input(s) {', '.join(fields)} missing or invalid"
        ) from None
