"""The copay-card program in the sandbox, over raw HTTP: scenarios, validation, control."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from domain.partner_actions import partners
from tests.sandbox.harness import get_json, put_scenario


def enrollment(patient: str, **overrides: Any) -> dict[str, Any]:
    return {
        "patient_ref": patient,
        "journey_ref": f"journey-{patient}",
        "program": "demo",
        "copay_program": "demo-copay",
        "plan_type": "commercial",
        **overrides,
    }


async def enroll(base: str, body: Any, key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key or f"wf-1/copay-{uuid.uuid4().hex[:8]}"}
    async with httpx.AsyncClient() as http:
        return await http.post(f"{base}/copay/enrollments", json=body, headers=headers)


async def test_commercial_patient_gets_a_card_with_the_configured_cap(
    sandbox_url: str, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, copay_annual_cap=9000.0)
    response = await enroll(sandbox_url, enrollment(patient))
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "approved"
    assert body["enrollment_id"].startswith("ce_")
    card = body["card"]
    assert len(card["bin"]) == 6 and card["bin"].isdigit()
    assert card["pcn"] and card["group"] and card["member_id"]
    assert card["annual_benefit_cap"] == 9000.0
    assert "reason" not in body
    [row] = await get_json(sandbox_url, "/_sandbox/received", service="copay", patient_ref=patient)
    assert row["operation"] == "enroll"
    assert row["journey_ref"] == f"journey-{patient}"
    assert row["summary"]["enrollment_id"] == body["enrollment_id"]
    assert row["summary"]["status"] == "approved"


async def test_default_cap_and_distinct_member_ids(sandbox_url: str, patient: str) -> None:
    first = (await enroll(sandbox_url, enrollment(patient))).json()
    second = (await enroll(sandbox_url, enrollment(patient))).json()
    assert first["card"]["annual_benefit_cap"] == 15000.0
    assert first["enrollment_id"] != second["enrollment_id"]
    assert first["card"]["member_id"] != second["card"]["member_id"]


@pytest.mark.parametrize("plan_type", ["medicare", "medicaid", "tricare", "va", "other_government"])
async def test_government_plans_are_rejected_even_when_scenario_approves(
    sandbox_url: str, patient: str, plan_type: str
) -> None:
    await put_scenario(sandbox_url, patient, copay="approve")
    response = await enroll(sandbox_url, enrollment(patient, plan_type=plan_type))
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "rejected"
    assert body["reason"] == "government_insurance"
    assert "card" not in body


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [("cap_reached", "benefit_cap_reached"), ("not_enrolled", "not_enrolled")],
)
async def test_rejection_scenarios(
    sandbox_url: str, patient: str, scenario: str, reason: str
) -> None:
    await put_scenario(sandbox_url, patient, copay=scenario)
    body = (await enroll(sandbox_url, enrollment(patient))).json()
    assert (body["status"], body["reason"]) == ("rejected", reason)
    assert "card" not in body
    # A government plan is rejected for the statute, not the scenario.
    gov = (await enroll(sandbox_url, enrollment(patient, plan_type="medicare"))).json()
    assert gov["reason"] == "government_insurance"


async def test_same_idempotency_key_returns_the_same_enrollment(
    sandbox_url: str, patient: str
) -> None:
    key = f"wf-1/copay-{uuid.uuid4().hex[:8]}"
    first = await enroll(sandbox_url, enrollment(patient), key)
    second = await enroll(sandbox_url, enrollment(patient), key)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    [row] = await get_json(sandbox_url, "/_sandbox/received", service="copay", patient_ref=patient)
    assert row["attempts"] == 2


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"plan_type": "private"}, "plan_type"),
        ({"plan_type": None}, "plan_type"),
        ({"copay_program": ""}, "copay_program"),
        ({"copay_program": 7}, "copay_program"),
        ({"patient_ref": 12}, "patient_ref"),
    ],
)
async def test_invalid_fields_get_400(
    sandbox_url: str, patient: str, overrides: dict[str, Any], field: str
) -> None:
    response = await enroll(sandbox_url, enrollment(patient, **overrides))
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_request", field)


async def test_not_json_gets_400(sandbox_url: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{sandbox_url}/copay/enrollments", content=b"{")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


async def test_outage_then_recovery(sandbox_url: str, patient: str) -> None:
    await put_scenario(
        sandbox_url, patient, outage={"service": "copay", "seconds": 0.3, "status": 503}
    )
    key = f"wf-1/copay-{uuid.uuid4().hex[:8]}"
    down = await enroll(sandbox_url, enrollment(patient), key)
    assert down.status_code == 503
    assert down.json()["error"]["code"] == "unavailable"
    await asyncio.sleep(0.35)
    up = await enroll(sandbox_url, enrollment(patient), key)
    assert up.status_code == 201
    assert up.json()["status"] == "approved"
    [row] = await get_json(sandbox_url, "/_sandbox/received", service="copay", patient_ref=patient)
    assert (row["attempts"], row["status"]) == (2, 201)


async def test_unknown_copay_scenario_is_refused(sandbox_url: str, patient: str) -> None:
    async with httpx.AsyncClient() as http:
        bad = await http.put(f"{sandbox_url}/_sandbox/scenarios/{patient}", json={"copay": "x"})
        cap = await http.put(
            f"{sandbox_url}/_sandbox/scenarios/{patient}", json={"copay_annual_cap": 0}
        )
    assert bad.status_code == cap.status_code == 422


async def test_health_lists_exactly_the_registry_partners(sandbox_url: str) -> None:
    health = await get_json(sandbox_url, "/_sandbox/health")
    assert health["ok"] is True
    services = health["services"]
    assert services == ["payer", "pharmacy", "consent", "copay", "sms", "email", "voice"]
    # The sandbox serves exactly the registry's partners (the registry's own order is by
    # action, so compare as sets, after checking neither side repeats a name) — plus voice
    # calls, which the sandbox serves ahead of the registry naming a voice partner.
    registry = partners()
    assert len(set(services)) == len(services)
    assert len(set(registry)) == len(registry)
    assert set(services) == set(registry) | {"voice"}
