"""Partner actions a template can name: one activity each, named like the action."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from activities.errors import partner_errors
from adapters.consent import ConsentClient
from adapters.payer import PayerClient
from adapters.pharmacy import PharmacyClient
from domain.actions import PartnerCall
from domain.partners import (
    BenefitsRequest,
    ConsentRequest,
    PharmacyReferralRequest,
    PriorAuthRequest,
)


def _base(call: PartnerCall) -> dict[str, Any]:
    return {
        "journey_ref": call.journey_ref,
        "patient_ref": call.patient_ref,
        "program": call.program,
        "idempotency_key": call.idempotency_key,
    }


class PartnerActivities:
    def __init__(self, payer: PayerClient, pharmacy: PharmacyClient, consent: ConsentClient):
        self.payer = payer
        self.pharmacy = pharmacy
        self.consent = consent

    @activity.defn(name="consent.request")
    @partner_errors
    async def request_consent(self, call: PartnerCall) -> dict[str, Any]:
        result = await self.consent.request(ConsentRequest(**_base(call)))
        return result.model_dump()

    @activity.defn(name="payer.verify_benefits")
    @partner_errors
    async def verify_benefits(self, call: PartnerCall) -> dict[str, Any]:
        request = BenefitsRequest(**_base(call), drug_code=str(call.fields["drug_code"]))
        return (await self.payer.verify_benefits(request)).model_dump()

    @activity.defn(name="payer.submit_prior_auth")
    @partner_errors
    async def submit_prior_auth(self, call: PartnerCall) -> dict[str, Any]:
        request = PriorAuthRequest(**_base(call), drug_code=str(call.fields["drug_code"]))
        return (await self.payer.submit_prior_auth(request)).model_dump()

    @activity.defn(name="payer.submit_appeal")
    @partner_errors
    async def submit_appeal(self, call: PartnerCall) -> dict[str, Any]:
        request = PriorAuthRequest(
            **_base(call),
            drug_code=str(call.fields["drug_code"]),
            appeal_of=str(call.fields["appeal_of"]),
        )
        return (await self.payer.submit_prior_auth(request)).model_dump()

    @activity.defn(name="pharmacy.refer")
    @partner_errors
    async def refer_to_pharmacy(self, call: PartnerCall) -> dict[str, Any]:
        request = PharmacyReferralRequest(
            **_base(call),
            drug_code=str(call.fields["drug_code"]),
            days_supply=int(call.fields["days_supply"]),
        )
        return (await self.pharmacy.refer(request)).model_dump()
