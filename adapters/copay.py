"""Manufacturer copay-card program adapter: enrollment out, card (or a typed rejection) back.

Commercially insured patients only: the anti-kickback statute bars copay cards for
Medicare, Medicaid and other government plans, so the program itself rejects them.

Enrollment: ``POST {base}/copay/enrollments`` JSON, with ``Idempotency-Key``::

    {"patient_ref", "journey_ref", "program", "copay_program",
     "plan_type": "commercial" | "medicare" | "medicaid" | "tricare" | "va"
                  | "other_government"}

→ 200 / 201, one of::

    {"enrollment_id": "ce_…", "status": "approved",
     "card": {"bin": "610020", "pcn", "group", "member_id", "annual_benefit_cap": 15000.0}}
    {"enrollment_id": "ce_…", "status": "rejected",
     "reason": "government_insurance" | "benefit_cap_reached" | "not_enrolled"}

Errors: 4xx ``{"error": {"code", "field"}}`` → `PartnerRejected` (``copay.invalid_request``
for 400 / 422); 5xx, 429, timeouts → `PartnerUnavailable`. A 2xx answer without an
enrollment id, with an unknown status or reason, or approved without a complete card is
the partner failing: `PartnerUnavailable` ("malformed response: …", field names only,
never the values). No callbacks: the answer is final.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, get_args

import httpx

from adapters.errors import PartnerUnavailable
from adapters.http import PartnerClient, PartnerHttp, classify_error_object
from domain.copay import CopayCard, CopayEnrollRequest, CopayEnrollResult, CopayRejection

PARTNER = "copay"
STATUSES = frozenset({"approved", "rejected"})
REASONS: frozenset[str] = frozenset(get_args(CopayRejection))
CARD_TEXT_FIELDS = ("bin", "pcn", "group", "member_id")
BIN = re.compile(r"^[0-9]{6}$")


def _malformed(status: int, what: str) -> PartnerUnavailable:
    return PartnerUnavailable(PARTNER, status, f"malformed response: {what}")


def _card(raw: Any, status: int) -> CopayCard:
    if not isinstance(raw, Mapping):
        raise _malformed(status, "approved without card")
    for key in CARD_TEXT_FIELDS:
        value = raw.get(key)
        if not isinstance(value, str) or not value:
            raise _malformed(status, f"card.{key} missing or not a string")
    if not BIN.match(raw["bin"]):
        raise _malformed(status, "card.bin is not 6 digits")
    cap = raw.get("annual_benefit_cap")
    if (
        not isinstance(cap, int | float)
        or isinstance(cap, bool)
        or not math.isfinite(cap)
        or cap <= 0
    ):
        raise _malformed(status, "card.annual_benefit_cap missing or not a positive number")
    return CopayCard(
        bin=raw["bin"],
        pcn=raw["pcn"],
        group=raw["group"],
        member_id=raw["member_id"],
        annual_benefit_cap=float(cap),
    )


def parse_enrollment(body: Any, status: int) -> CopayEnrollResult:
    """A 2xx enrollment answer → CopayEnrollResult; PartnerUnavailable when malformed."""
    if not isinstance(body, Mapping):
        raise _malformed(status, "body is not a JSON object")
    enrollment_id = body.get("enrollment_id")
    if not isinstance(enrollment_id, str) or not enrollment_id:
        raise _malformed(status, "no enrollment_id")
    outcome = body.get("status")
    if outcome not in STATUSES:
        raise _malformed(status, "unknown status")
    if outcome == "approved":
        return CopayEnrollResult(
            enrollment_id=enrollment_id,
            outcome="approved",
            card=_card(body.get("card"), status),
        )
    reason = body.get("reason")
    if reason not in REASONS:
        raise _malformed(status, "rejected with an unknown reason")
    return CopayEnrollResult(enrollment_id=enrollment_id, outcome="rejected", rejection=reason)


class CopayClient(PartnerClient):
    def __init__(
        self, base_url: str, http: httpx.AsyncClient | None = None, timeout: float = 10.0
    ) -> None:
        self._http = PartnerHttp(
            PARTNER, base_url, http=http, timeout=timeout, classify=classify_error_object
        )

    async def enroll(self, req: CopayEnrollRequest) -> CopayEnrollResult:
        payload = {
            "patient_ref": req.patient_ref,
            "journey_ref": req.journey_ref,
            "program": req.program,
            "copay_program": req.copay_program,
            "plan_type": req.plan_type,
        }
        response = await self._http.post(
            "/copay/enrollments", idempotency_key=req.idempotency_key, json=payload
        )
        return parse_enrollment(self._http.json(response), response.status_code)


__all__ = ["CopayClient", "parse_enrollment"]


Client = CopayClient  # what activities/ builds for partner 'copay'
