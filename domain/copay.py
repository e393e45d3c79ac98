"""Copay-card program (manufacturer co-pay assistance): enrollment request and answer.

Commercially insured patients only: the anti-kickback statute bars copay cards for
Medicare (Part D included), Medicaid and other government plans (DOMAIN.md §4). A card
carries BIN / PCN / group / member id and an annual benefit cap.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from domain.partners import PartnerRequest

PlanType = Literal["commercial", "medicare", "medicaid", "tricare", "va", "other_government"]
CopayRejection = Literal["government_insurance", "benefit_cap_reached", "not_enrolled"]


class CopayEnrollRequest(PartnerRequest):
    copay_program: str = Field(min_length=1, description="The manufacturer's copay program id.")
    plan_type: PlanType = Field(description="The patient's insurance: commercial or government.")


class CopayCard(BaseModel):
    bin: str = Field(description="Pharmacy benefit BIN (6 digits).")
    pcn: str = Field(description="Processor control number.")
    group: str
    member_id: str
    annual_benefit_cap: float = Field(description="Program pays at most this much a year (USD).")


class CopayEnrollResult(BaseModel):
    enrollment_id: str
    outcome: Literal["approved", "rejected"]
    card: CopayCard | None = Field(None, description="When approved.")
    rejection: CopayRejection | None = Field(None, description="When rejected: why.")
