"""The simulated payer's approval period (PAS ClaimResponse.preAuthPeriod), raw FHIR."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.claimresponse import ClaimResponse
from pydantic import ValidationError

from adapters.payer import build_pas_bundle
from domain.partners import PriorAuthRequest
from sandbox import payer as fhir
from sandbox.scenario import Scenario
from tests.sandbox.harness import put_scenario

ROOT = Path(__file__).resolve().parents[2]
FHIR = {"Content-Type": "application/fhir+json"}
ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def parsed(patient: str) -> dict[str, Any]:
    """What `parse_pas_bundle` makes of a minimal PAS request."""
    return {
        "claim": {
            "resourceType": "Claim",
            "identifier": [{"system": "urn:pitwall:journey-ref", "value": f"journey-{patient}"}],
            "type": {"coding": [{"code": "professional"}]},
            "patient": {"reference": "urn:uuid:patient"},
            "provider": {"identifier": {"value": "1234567893"}},
        },
        "patient_ref": patient,
        "journey_ref": f"journey-{patient}",
        "certification": None,
    }


def period_of(response: dict[str, Any]) -> tuple[date, date]:
    period = response["preAuthPeriod"]
    assert ISO_DATE.match(period["start"]) and ISO_DATE.match(period["end"])
    return date.fromisoformat(period["start"]), date.fromisoformat(period["end"])


def test_pa_valid_days_defaults_to_180_within_1_to_730() -> None:
    assert Scenario().pa_valid_days == fhir.PA_VALID_DAYS == 180
    assert Scenario(pa_valid_days=1).pa_valid_days == 1
    assert Scenario(pa_valid_days=730).pa_valid_days == 730
    for bad in (0, 731):
        with pytest.raises(ValidationError):
            Scenario(pa_valid_days=bad)


@pytest.mark.parametrize("days", [1, 30, 180, 730])
def test_an_approval_is_valid_from_the_decision_date_for_valid_days(days: int) -> None:
    before = datetime.now(UTC).date()
    response = fhir.claim_response(parsed("pt-1"), "PA1", "A1", valid_days=days)
    start, end = period_of(response)
    assert before <= start <= datetime.now(UTC).date()
    assert end == start + timedelta(days=days)
    ClaimResponse.model_validate(response)  # still a valid FHIR ClaimResponse


def test_the_response_bundle_passes_valid_days_on() -> None:
    bundle = fhir.response_bundle(parsed("pt-1"), "PA1", "A1", "b-1", valid_days=45)
    start, end = period_of(bundle["entry"][0]["resource"])
    assert end - start == timedelta(days=45)
    default = fhir.response_bundle(parsed("pt-1"), "PA1", "A1", "b-2")
    start, end = period_of(default["entry"][0]["resource"])
    assert end - start == timedelta(days=180)


@pytest.mark.parametrize("code", ["A3", "A4"])
def test_only_an_approval_has_a_period(code: str) -> None:
    assert "preAuthPeriod" not in fhir.claim_response(parsed("pt-1"), "PA1", code, valid_days=30)


def test_the_sandbox_payer_does_not_import_the_adapters() -> None:
    source = (ROOT / "sandbox" / "payer.py").read_text(encoding="utf-8")
    assert not re.search(r"^\s*(from|import)\s+adapters\b", source, re.MULTILINE)


async def test_the_scenario_rejects_an_out_of_range_pa_valid_days(sandbox_url: str) -> None:
    async with httpx.AsyncClient() as http:
        for bad in (0, 731):
            response = await http.put(
                f"{sandbox_url}/_sandbox/scenarios/pt-bad", json={"pa_valid_days": bad}
            )
            assert response.status_code == 422


async def _submit_raw(sandbox_url: str, patient: str) -> dict[str, Any]:
    """The platform's own PAS request, posted raw: the ClaimResponse as the payer sent it."""
    bundle = build_pas_bundle(
        PriorAuthRequest(
            journey_ref=f"journey-{patient}",
            patient_ref=patient,
            program="demo",
            idempotency_key=f"wf/{uuid.uuid4().hex[:8]}",
            drug_code="1",
        )
    )
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{sandbox_url}/fhir/Claim/$submit",
            content=bundle.model_dump_json().encode(),
            headers=FHIR,
        )
    assert response.status_code == 200
    cr: dict[str, Any] = response.json()["entry"][0]["resource"]
    assert cr["resourceType"] == "ClaimResponse"
    return cr


async def test_an_approval_over_http_carries_a_date_period(sandbox_url: str, patient: str) -> None:
    await put_scenario(sandbox_url, patient, pa="approve")
    start, end = period_of(await _submit_raw(sandbox_url, patient))
    assert end - start == timedelta(days=180)


async def test_an_approval_over_http_lasts_the_scenarios_pa_valid_days(
    sandbox_url: str, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, pa="approve", pa_valid_days=45)
    start, end = period_of(await _submit_raw(sandbox_url, patient))
    assert end - start == timedelta(days=45)


async def test_a_denial_over_http_has_no_period(sandbox_url: str, patient: str) -> None:
    await put_scenario(sandbox_url, patient, pa="deny", pa_valid_days=45)
    assert "preAuthPeriod" not in await _submit_raw(sandbox_url, patient)
