"""Partner actions a template can name: one activity each, named like the action."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel
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
from store.correlations import CorrelationRepository
from store.timeline import TimelineEvent, TimelineRepository

CORRELATION_IDS = ("pa_number", "rx_id", "request_id")


def _base(call: PartnerCall) -> dict[str, Any]:
    return {
        "journey_ref": call.journey_ref,
        "patient_ref": call.patient_ref,
        "program": call.program,
        "idempotency_key": call.idempotency_key,
    }


class PartnerActivities:
    def __init__(
        self,
        payer: PayerClient,
        pharmacy: PharmacyClient,
        consent: ConsentClient,
        timeline: TimelineRepository,
        correlations: CorrelationRepository,
    ) -> None:
        self.payer = payer
        self.pharmacy = pharmacy
        self.consent = consent
        self.timeline = timeline
        self.correlations = correlations

    async def _done(self, call: PartnerCall, result: BaseModel) -> dict[str, Any]:
        """Put the call on the patient's timeline (once per key) and answer the journey."""
        answer = result.model_dump()
        ids = {k: str(v) for k, v in answer.items() if k in CORRELATION_IDS}
        outcome = answer.get("outcome") or ("pa required" if answer.get("pa_required") else "ok")
        note = TimelineEvent(
            idempotency_key=f"{call.idempotency_key}:partner.call",
            patient_ref=call.patient_ref,
            journey_ref=call.journey_ref,
            type="partner.call",
            summary=f"{call.action}: {outcome}",
            correlation={"step": call.step_id, **ids},
        )

        def write() -> None:
            self.timeline.record(note)
            for kind, value in ids.items():
                self.correlations.remember(kind, value, call.journey_ref)

        await asyncio.to_thread(write)
        return answer

    @activity.defn(name="consent.request")
    @partner_errors
    async def request_consent(self, call: PartnerCall) -> dict[str, Any]:
        return await self._done(call, await self.consent.request(ConsentRequest(**_base(call))))

    @activity.defn(name="payer.verify_benefits")
    @partner_errors
    async def verify_benefits(self, call: PartnerCall) -> dict[str, Any]:
        request = BenefitsRequest(**_base(call), drug_code=str(call.fields["drug_code"]))
        return await self._done(call, await self.payer.verify_benefits(request))

    @activity.defn(name="payer.submit_prior_auth")
    @partner_errors
    async def submit_prior_auth(self, call: PartnerCall) -> dict[str, Any]:
        request = PriorAuthRequest(**_base(call), drug_code=str(call.fields["drug_code"]))
        return await self._done(call, await self.payer.submit_prior_auth(request))

    @activity.defn(name="payer.submit_appeal")
    @partner_errors
    async def submit_appeal(self, call: PartnerCall) -> dict[str, Any]:
        request = PriorAuthRequest(
            **_base(call),
            drug_code=str(call.fields["drug_code"]),
            appeal_of=str(call.fields["appeal_of"]),
        )
        return await self._done(call, await self.payer.submit_prior_auth(request))

    @activity.defn(name="pharmacy.refer")
    @partner_errors
    async def refer_to_pharmacy(self, call: PartnerCall) -> dict[str, Any]:
        request = PharmacyReferralRequest(
            **_base(call),
            drug_code=str(call.fields["drug_code"]),
            days_supply=int(call.fields["days_supply"]),
        )
        return await self._done(call, await self.pharmacy.refer(request))
