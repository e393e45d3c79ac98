"""The copay-card adapter against the running sandbox over loopback, and its answer parser."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from adapters.copay import CopayClient
from adapters.errors import PartnerRejected, PartnerUnavailable
from domain.copay import CopayEnrollRequest
from tests.sandbox.harness import get_json, put_scenario


def request(patient: str, **extra: Any) -> CopayEnrollRequest:
    fields: dict[str, Any] = {
        "journey_ref": f"journey-{patient}",
        "patient_ref": patient,
        "program": "demo",
        "idempotency_key": f"wf-1/step-{uuid.uuid4().hex[:8]}",
        "copay_program": "demo-copay",
        "plan_type": "commercial",
        **extra,
    }
    return CopayEnrollRequest(**fields)


async def test_commercial_patient_is_approved_with_the_configured_cap(
    sandbox_url: str, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, copay_annual_cap=12500.0)
    async with CopayClient(sandbox_url) as client:
        result = await client.enroll(request(patient))
    assert result.outcome == "approved"
    assert result.rejection is None
    assert result.enrollment_id.startswith("ce_")
    assert result.card is not None
    assert len(result.card.bin) == 6 and result.card.bin.isdigit()
    assert result.card.pcn and result.card.group and result.card.member_id
    assert result.card.annual_benefit_cap == 12500.0
    [row] = await get_json(sandbox_url, "/_sandbox/received", service="copay", patient_ref=patient)
    assert row["summary"]["plan_type"] == "commercial"
    assert row["summary"]["enrollment_id"] == result.enrollment_id


@pytest.mark.parametrize("plan_type", ["medicare", "medicaid"])
async def test_government_insurance_is_rejected_even_when_scenario_approves(
    sandbox_url: str, patient: str, plan_type: str
) -> None:
    await put_scenario(sandbox_url, patient, copay="approve")
    async with CopayClient(sandbox_url) as client:
        result = await client.enroll(request(patient, plan_type=plan_type))
    assert (result.outcome, result.rejection) == ("rejected", "government_insurance")
    assert result.card is None


@pytest.mark.parametrize(
    ("scenario", "rejection"),
    [("cap_reached", "benefit_cap_reached"), ("not_enrolled", "not_enrolled")],
)
async def test_rejection_scenarios(
    sandbox_url: str, patient: str, scenario: str, rejection: str
) -> None:
    await put_scenario(sandbox_url, patient, copay=scenario)
    async with httpx.AsyncClient() as http:
        result = await CopayClient(sandbox_url, http=http).enroll(request(patient))
    assert (result.outcome, result.rejection) == ("rejected", rejection)
    assert result.card is None


async def test_repeated_request_returns_the_same_enrollment(sandbox_url: str, patient: str) -> None:
    req = request(patient)
    async with CopayClient(sandbox_url) as client:
        first = await client.enroll(req)
        second = await client.enroll(req)
    assert second == first
    [row] = await get_json(sandbox_url, "/_sandbox/received", service="copay", patient_ref=patient)
    assert row["attempts"] == 2
    assert row["idempotency_key"] == req.idempotency_key


async def test_invalid_plan_type_is_rejected(sandbox_url: str, patient: str) -> None:
    # The model refuses an unknown plan type; bypass it to see the partner's 400 mapped.
    good = request(patient)
    bad = CopayEnrollRequest.model_construct(**{**good.model_dump(), "plan_type": "private"})
    async with CopayClient(sandbox_url) as client:
        with pytest.raises(PartnerRejected) as info:
            await client.enroll(bad)
    assert info.value.status == 400
    assert info.value.code == "copay.invalid_request"
    assert "plan_type" in info.value.detail
    assert patient not in str(info.value)


async def test_outage_is_unavailable_then_recovers(sandbox_url: str, patient: str) -> None:
    await put_scenario(
        sandbox_url, patient, outage={"service": "copay", "seconds": 0.3, "status": 503}
    )
    req = request(patient)
    async with CopayClient(sandbox_url) as client:
        with pytest.raises(PartnerUnavailable) as info:
            await client.enroll(req)
        assert info.value.status == 503
        assert info.value.partner == "copay"
        await asyncio.sleep(0.35)
        result = await client.enroll(req)
    assert result.outcome == "approved"


async def test_slow_partner_times_out_as_unavailable(sandbox_url: str, patient: str) -> None:
    await put_scenario(sandbox_url, patient, slow_ms=400)
    async with CopayClient(sandbox_url, timeout=0.1) as client:
        with pytest.raises(PartnerUnavailable) as info:
            await client.enroll(request(patient))
    assert info.value.status is None
    assert "timeout" in info.value.detail


SECRET_VALUE = "pt-SECRET-9f3a"  # what a partner might echo; must never reach the error
CARD = {
    "bin": "610020",
    "pcn": "PCN1",
    "group": "G1",
    "member_id": SECRET_VALUE,
    "annual_benefit_cap": 15000,
}


@pytest.mark.parametrize(
    ("answer", "what"),
    [
        ([SECRET_VALUE], "not a JSON object"),
        ({"status": "approved", "card": CARD}, "no enrollment_id"),
        ({"enrollment_id": "", "status": "approved", "card": CARD}, "no enrollment_id"),
        ({"enrollment_id": "ce_1", "status": SECRET_VALUE}, "unknown status"),
        ({"enrollment_id": "ce_1"}, "unknown status"),
        ({"enrollment_id": "ce_1", "status": "approved"}, "approved without card"),
        ({"enrollment_id": "ce_1", "status": "approved", "card": None}, "approved without card"),
        (
            {"enrollment_id": "ce_1", "status": "approved", "card": {**CARD, "member_id": ""}},
            "card.member_id",
        ),
        (
            {"enrollment_id": "ce_1", "status": "approved", "card": {**CARD, "bin": SECRET_VALUE}},
            "card.bin",
        ),
        (
            {
                "enrollment_id": "ce_1",
                "status": "approved",
                "card": {**CARD, "annual_benefit_cap": "15000"},
            },
            "card.annual_benefit_cap",
        ),
        (
            {
                "enrollment_id": "ce_1",
                "status": "approved",
                "card": {**CARD, "annual_benefit_cap": True},
            },
            "card.annual_benefit_cap",
        ),
        ({"enrollment_id": "ce_1", "status": "rejected"}, "unknown reason"),
        ({"enrollment_id": "ce_1", "status": "rejected", "reason": SECRET_VALUE}, "unknown reason"),
    ],
)
async def test_malformed_2xx_answer_is_unavailable(answer: Any, what: str) -> None:
    def partner(req: httpx.Request) -> httpx.Response:
        assert req.url.path == "/copay/enrollments"
        return httpx.Response(201, content=json.dumps(answer).encode())

    async with httpx.AsyncClient(transport=httpx.MockTransport(partner)) as http:
        client = CopayClient("http://copay.test", http=http)
        with pytest.raises(PartnerUnavailable) as info:
            await client.enroll(request("pt-1"))
    assert info.value.status == 201
    assert info.value.detail.startswith("malformed response: ")
    assert what in info.value.detail
    assert SECRET_VALUE not in str(info.value)


async def test_request_wire_format_and_a_200_answer() -> None:
    seen: list[httpx.Request] = []

    def partner(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        body = {"enrollment_id": "ce_1", "status": "approved", "card": CARD}
        return httpx.Response(200, json=body)

    req = request("pt-1", plan_type="commercial")
    async with httpx.AsyncClient(transport=httpx.MockTransport(partner)) as http:
        result = await CopayClient("http://copay.test/", http=http).enroll(req)
    [sent] = seen
    assert sent.method == "POST"
    assert str(sent.url) == "http://copay.test/copay/enrollments"
    assert sent.headers["Idempotency-Key"] == req.idempotency_key
    assert json.loads(sent.content) == {
        "patient_ref": "pt-1",
        "journey_ref": "journey-pt-1",
        "program": "demo",
        "copay_program": "demo-copay",
        "plan_type": "commercial",
    }
    assert result.card is not None
    assert result.card.annual_benefit_cap == 15000.0
    assert isinstance(result.card.annual_benefit_cap, float)
