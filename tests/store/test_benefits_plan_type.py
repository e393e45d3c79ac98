"""Benefits verification answers with the plan type of the patient's primary coverage when
the payer's eligibility answer does not carry one (affordability routes on it)."""

from __future__ import annotations

from typing import Any

from activities.partners import PartnerActivities
from domain.actions import PartnerCall
from domain.partner_actions import ACTIONS
from domain.partners import BenefitsRequest, BenefitsResult
from store import Store
from store.patients import CoverageDetails, PatientDetails


class Payer:
    def __init__(self, plan_type: str | None) -> None:
        self.plan_type = plan_type

    async def verify_benefits(self, request: BenefitsRequest) -> BenefitsResult:
        return BenefitsResult(coverage_active=True, pa_required=True, plan_type=self.plan_type)


def call(patient_ref: str) -> PartnerCall:
    return PartnerCall(
        journey_ref=f"journey/p/{patient_ref}", patient_ref=patient_ref, program="p",
        step_id="benefits", idempotency_key=f"journey/p/{patient_ref}/benefits/1",
        action="payer.verify_benefits", fields={"drug_code": "99999-0001-01"},
    )  # fmt: skip


async def verify(store: Store, payer: Payer, patient_ref: str) -> dict[str, Any]:
    partners = PartnerActivities(
        {"payer": payer}, store.timeline, store.correlations,
        plan_type_of=store.patients.plan_type,
    )  # fmt: skip
    run = partners._activity(ACTIONS["payer.verify_benefits"])
    answer: dict[str, Any] = await run(call(patient_ref))
    return answer


async def test_the_intakes_plan_type_fills_what_the_payer_did_not_say(store: Store) -> None:
    store.patients.upsert("pt-medicare", PatientDetails())
    store.patients.set_coverage("pt-medicare", CoverageDetails(plan_type="commercial"), rank=2)
    store.patients.set_coverage("pt-medicare", CoverageDetails(plan_type="medicare"), rank=1)
    assert (await verify(store, Payer(None), "pt-medicare"))["plan_type"] == "medicare"
    # The payer's own word wins; a patient without coverage on file stays unknown.
    assert (await verify(store, Payer("commercial"), "pt-medicare"))["plan_type"] == "commercial"
    store.patients.upsert("pt-nocover", PatientDetails())
    assert (await verify(store, Payer(None), "pt-nocover"))["plan_type"] is None
