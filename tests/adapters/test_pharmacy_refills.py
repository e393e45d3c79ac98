"""The pharmacy refill program: `pharmacy.enroll_refills` out (against the running
sandbox), `pharmacy.dispensed` callbacks in (every dispense, any status)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters import pharmacy
from adapters.errors import CallbackInvalid, PartnerRejected, PartnerUnavailable
from adapters.pharmacy import PharmacyClient
from domain import adherence
from domain.actions import PartnerCall
from domain.events import declared_event_types
from domain.partner_actions import action, build_request, callback_events
from domain.partners import RefillEnrollmentRequest, RefillEnrollmentResult
from tests.sandbox.harness import get_json, put_scenario, settled

STANDARDS = Path(__file__).resolve().parents[1] / "fixtures" / "standards"
SECRET_VALUE = "PATIENT-SMITH-1970"


def standard(path: str) -> Any:
    return json.loads((STANDARDS / path).read_bytes())


def enrollment(patient: str, **fields: Any) -> RefillEnrollmentRequest:
    return RefillEnrollmentRequest(
        **{
            "journey_ref": f"journey-{patient}",
            "patient_ref": patient,
            "program": "demo",
            "idempotency_key": f"wf-1/refills-{uuid.uuid4().hex[:8]}",
            "drug_code": "00002-7510-01",
            "days_supply": 28,
            "starts_on": date(2025, 1, 6),
            **fields,
        }
    )


# ------------------------------------------------------------------ enroll_refills


async def test_enroll_refills_sends_the_program_and_gets_an_rx(
    sandbox_url: str, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, refill_history="none")
    request = enrollment(patient, days_supply=30, starts_on=date(2031, 2, 28))
    async with PharmacyClient(sandbox_url) as client:
        result = await client.enroll_refills(request)
        again = await client.enroll_refills(request)  # a retried activity: same key
    assert result.rx_id.startswith("rx_") and result.status == "enrolled"
    assert again == result
    [row] = await get_json(
        sandbox_url, "/_sandbox/received", service="pharmacy", patient_ref=patient
    )
    assert row["operation"] == "refill_enrollment"
    assert row["idempotency_key"] == request.idempotency_key and row["attempts"] == 2
    assert row["journey_ref"] == f"journey-{patient}"
    summary = row["summary"]
    assert (summary["ndc"], summary["days_supply"], summary["starts_on"]) == (
        "00002-7510-01",
        30,
        "2031-02-28",  # the journey's date, as given: not the sandbox's today
    )
    await settled(sandbox_url, patient)


async def test_an_invalid_enrollment_is_rejected_naming_the_field(
    sandbox_url: str, patient: str
) -> None:
    # Our model refuses 0 too; built unchecked here to prove the partner refuses it.
    bad = enrollment(patient).model_copy(update={"days_supply": 0})
    async with PharmacyClient(sandbox_url) as client:
        with pytest.raises(PartnerRejected) as info:
            await client.enroll_refills(bad)
    assert info.value.status == 400
    assert info.value.code == "pharmacy.invalid_request"
    assert "days_supply" in info.value.detail
    assert patient not in str(info.value)


async def test_an_outage_is_unavailable_then_recovers(sandbox_url: str, patient: str) -> None:
    await put_scenario(
        sandbox_url,
        patient,
        refill_history="none",
        outage={"service": "pharmacy", "seconds": 0.3, "status": 503},
    )
    request = enrollment(patient)
    async with PharmacyClient(sandbox_url) as client:
        with pytest.raises(PartnerUnavailable) as info:
            await client.enroll_refills(request)
        assert info.value.status == 503
        await asyncio.sleep(0.35)  # the scripted outage's length, not a wait for absence
        result = await client.enroll_refills(request)
    assert result.rx_id.startswith("rx_")


@pytest.mark.parametrize(
    ("answer", "status"),
    [({"rx_id": "rx_1", "status": "active"}, "active"), ({"rx_id": "rx_1"}, "enrolled")],
)
async def test_the_answer_is_read(answer: dict[str, Any], status: str) -> None:
    seen: list[httpx.Request] = []

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=answer)

    async with httpx.AsyncClient(transport=httpx.MockTransport(reply)) as http:
        result = await PharmacyClient("http://pharmacy.test", http=http).enroll_refills(
            enrollment("pt-1")
        )
    assert result == RefillEnrollmentResult(rx_id="rx_1", status=status)
    [sent] = seen
    assert sent.url.path == "/pharmacy/refill-enrollments"
    assert sent.headers["Idempotency-Key"].startswith("wf-1/refills-")
    assert json.loads(sent.content) == {
        "patient_ref": "pt-1",
        "journey_ref": "journey-pt-1",
        "program": "demo",
        "medication": {"ndc": "00002-7510-01"},
        "days_supply": 28,
        "starts_on": "2025-01-06",
    }


@pytest.mark.parametrize("answer", [{"status": "enrolled"}, {"rx_id": ""}, ["rx_1"]])
async def test_an_answer_without_an_rx_is_the_partner_failing(answer: Any) -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(201, json=answer))
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(PartnerUnavailable, match="no rx_id"):
            await PharmacyClient("http://pharmacy.test", http=http).enroll_refills(
                enrollment("pt-1")
            )


def test_the_action_is_declared_once_for_templates() -> None:
    spec = action("pharmacy.enroll_refills")
    assert (spec.partner, spec.method, spec.correlation) == ("pharmacy", "enroll_refills", "rx_id")
    assert spec.events == ("pharmacy.dispensed",)
    assert spec.inputs() == {"drug_code": True, "days_supply": True, "starts_on": True}
    assert callback_events()["pharmacy.dispensed"] == "pharmacy"
    assert "pharmacy.dispensed" in pharmacy.EVENT_TYPES
    assert "pharmacy.dispensed" in declared_event_types()
    call = PartnerCall(
        action="pharmacy.enroll_refills",
        journey_ref="wf-1",
        patient_ref="pt-1",
        program="demo",
        idempotency_key="wf-1/refills",
        step_id="refills",
        fields={"drug_code": "00002-7510-01", "days_supply": 28, "starts_on": "2025-01-06"},
    )
    request = build_request(call)
    assert isinstance(request, RefillEnrollmentRequest)
    assert request.starts_on == date(2025, 1, 6)


# ------------------------------------------------------------------ pharmacy.dispensed


def dispensed(dispense: Any = None, **fields: Any) -> dict[str, Any]:
    body = {
        "event_id": "evt-d1",
        "type": "pharmacy.dispensed",
        "rx_id": "rx_1",
        "journey_ref": "wf-1",
        "patient_ref": "pt-1",
        "occurred_at": "2025-02-03T15:00:00Z",
        **fields,
    }
    if dispense is not None:
        body["medication_dispense"] = dispense
    return body


def medication_dispense(status: str = "completed", **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationDispense",
        "id": "md-rx-1-2",
        "status": status,
        "medicationCodeableConcept": {
            "coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "00002-7510-01"}]
        },
        "subject": {"identifier": {"system": "urn:example:patient", "value": "pt-1"}},
        "quantity": {
            "value": 28,
            "unit": "tablet",
            "system": "http://unitsofmeasure.org",
            "code": "{tbl}",
        },
        "daysSupply": {"value": 28, "unit": "Day", "system": "http://unitsofmeasure.org",
                       "code": "d"},
        "whenHandedOver": "2025-02-03T15:00:00Z",
        "extension": [
            {"url": pharmacy.DRUG_GROUP_EXTENSION, "valueCode": "adalimumab"},
        ],
        **fields,
    }  # fmt: skip


def test_a_completed_dispense_is_a_fill() -> None:
    event = pharmacy.parse_callback(json.dumps(dispensed(medication_dispense())).encode())
    assert (event.type, event.event_id, event.correlation_key, event.journey_ref) == (
        "pharmacy.dispensed",
        "evt-d1",
        "rx_1",
        "wf-1",
    )
    assert event.occurred_at.isoformat() == "2025-02-03T15:00:00+00:00"
    assert event.data == {
        "rx_id": "rx_1",
        "dispense_id": "md-rx-1-2",
        "dispense_status": "completed",
        "is_fill": True,
        "days_supply": 28,
        "dispensed_at": "2025-02-03T15:00:00+00:00",
        "quantity": 28.0,
        "quantity_unit": "{tbl}",
        "medication_code": "http://hl7.org/fhir/sid/ndc|00002-7510-01",
        "drug_groups": ["adalimumab"],
    }
    fill = adherence.fill_of(event.data)
    assert fill is not None
    assert (fill.filled_on, fill.days_supply) == (date(2025, 2, 3), 28)
    assert fill.drug_groups == frozenset({"adalimumab"})


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled", "declined"])
def test_any_other_status_names_the_dispense_and_is_no_fill(status: str) -> None:
    """An entered-in-error re-send is how the pharmacy cancels a dispense it reported:
    the journey needs its id to take that fill out, and must never count it."""
    event = pharmacy.parse_callback(dispensed(medication_dispense(status)))
    assert event.data == {
        "rx_id": "rx_1",
        "dispense_id": "md-rx-1-2",
        "dispense_status": status,
        "is_fill": False,
    }
    assert adherence.fill_of(event.data) is None


def test_a_delivered_fhir_dispense_names_its_id_whatever_the_status() -> None:
    entered_in_error = standard("fhir-r4/MedicationDispense/medicationdispense0305.json")
    event = pharmacy.parse_callback(
        {"event_id": "e", "type": "pharmacy.delivered", "rx_id": "rx9",
         "medication_dispense": entered_in_error}
    )  # fmt: skip
    assert event.data["dispense_id"] == "meddisp0305"
    assert event.data["dispense_status"] == "entered-in-error"
    assert event.data["is_fill"] is False and "days_supply" not in event.data


def test_a_dispense_without_an_id_still_counts() -> None:
    md = medication_dispense()
    del md["id"]
    event = pharmacy.parse_callback(dispensed(md))
    assert event.data["dispense_id"] is None and event.data["is_fill"] is True


@pytest.mark.parametrize(
    "body",
    [
        dispensed(),  # no medication_dispense
        dispensed(None, medication_dispense=None),  # JSON null
        # Plain fields are read for pharmacy.delivered only, never for the refill program.
        dispensed(None, days_supply=28, dispensed_at="2025-02-03T15:00:00Z"),
        dispensed({"resourceType": "MedicationRequest", "status": "completed"}),
        dispensed([medication_dispense()]),
        dispensed(medication_dispense(status=SECRET_VALUE)),
        dispensed(medication_dispense(daysSupply=None)),  # completed without daysSupply
    ],
)
def test_a_malformed_dispensed_callback_is_invalid(body: dict[str, Any]) -> None:
    with pytest.raises(CallbackInvalid) as info:
        pharmacy.parse_callback(json.dumps(body).encode())
    assert SECRET_VALUE not in str(info.value)
